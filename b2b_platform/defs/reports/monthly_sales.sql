-- One row per month of the report window, zeros where nothing sold (see monthly_sales.py).
-- Variables: window_start, window_end (dates), previous_month (the month before the
-- window), as_of_month, as_of_month_complete, first_loaded_month, and
-- month_to_date_compared_with (TIMESTAMP: where the previous month's like-for-like part
-- ends, for the change of an as-of month still in progress).
WITH months AS (
    SELECT m::DATE AS month, m::DATE >= getvariable('first_loaded_month') AS loaded
    FROM range(getvariable('previous_month'), getvariable('as_of_month') + INTERVAL 1 MONTH,
               INTERVAL 1 MONTH) AS t(m)
),
sales AS (
    SELECT date_trunc('month', ordered_at)::DATE AS month,
           count(DISTINCT order_id) AS orders, sum(quantity) AS units,
           sum(revenue) AS revenue
    FROM core.fct_order_lines
    WHERE ordered_at >= getvariable('previous_month')::TIMESTAMP
      AND ordered_at < getvariable('window_end')::TIMESTAMP
    GROUP BY ALL
),
-- the same days of the month before the as-of month, for a month to date
previous_to_date AS (
    SELECT coalesce(sum(revenue), 0) AS revenue
    FROM core.fct_order_lines
    WHERE ordered_at >= (getvariable('as_of_month') - INTERVAL 1 MONTH)::TIMESTAMP
      AND ordered_at < getvariable('month_to_date_compared_with')
),
filled AS (
    SELECT m.month, m.loaded, coalesce(s.orders, 0)::BIGINT AS orders,
           coalesce(s.units, 0)::BIGINT AS units,
           coalesce(s.revenue, 0)::DECIMAL(18, 2) AS revenue,
           m.month = getvariable('as_of_month') AND NOT getvariable('as_of_month_complete')
               AS to_date,
           lag(m.loaded) OVER (ORDER BY m.month) AS previous_loaded,
           lag(coalesce(s.revenue, 0)) OVER (ORDER BY m.month) AS previous_revenue
    FROM months m LEFT JOIN sales s USING (month)
),
compared AS (
    SELECT f.*,
           CASE WHEN to_date THEN (SELECT revenue FROM previous_to_date)
                ELSE previous_revenue END AS compared_revenue
    FROM filled f
)
SELECT month, orders, units, revenue,
       CASE WHEN orders > 0 THEN revenue / orders ELSE 0 END::DECIMAL(18, 2)
           AS avg_order_value,
       CASE WHEN previous_loaded AND loaded AND compared_revenue > 0
            THEN round((revenue - compared_revenue) * 100 / compared_revenue, 2)
       END::DECIMAL(12, 2) AS revenue_change_pct,
       NOT loaded OR to_date AS is_partial
FROM compared
WHERE month >= getvariable('window_start')
