-- Lead conversion per campaign and channel, by attribution (see lead_conversion.py).
-- Variables: window_start, window_end (dates: the report window), attribution_days.
WITH leads AS (  -- the leads captured in the window
    SELECT * FROM core.fct_leads
    WHERE captured_at >= getvariable('window_start')::TIMESTAMP
      AND captured_at < getvariable('window_end')::TIMESTAMP
),
touches AS (  -- each matched company's first lead of a campaign and channel
    SELECT campaign, channel, company_id, min(captured_at) AS captured_at,
           least(min(captured_at) + to_days(getvariable('attribution_days')),
                 getvariable('window_end')::TIMESTAMP) AS window_closes
    FROM leads WHERE company_id IS NOT NULL
    GROUP BY ALL
),
valid_orders AS (  -- a valid order is in core.fct_order_lines (not cancelled or returned)
    SELECT order_id, company_id, min(ordered_at) AS ordered_at, sum(revenue) AS revenue
    FROM core.fct_order_lines GROUP BY ALL
),
classified AS (
    SELECT t.*,
           NOT EXISTS (SELECT 1 FROM valid_orders o WHERE o.company_id = t.company_id
                       AND o.ordered_at < t.captured_at) AS is_new,
           EXISTS (SELECT 1 FROM valid_orders o WHERE o.company_id = t.company_id
                   AND o.ordered_at >= t.captured_at AND o.ordered_at < t.window_closes)
               AS converted
    FROM touches t
),
-- first touch: an order is credited once, to the earliest capture whose attribution
-- window holds it (campaign and channel break a tie)
credited AS (
    SELECT t.campaign, t.channel, o.revenue,
           row_number() OVER (PARTITION BY o.order_id
                              ORDER BY t.captured_at, t.campaign, t.channel) AS touch
    FROM valid_orders o
    JOIN touches t ON t.company_id = o.company_id
                  AND o.ordered_at >= t.captured_at AND o.ordered_at < t.window_closes
),
attributed AS (
    SELECT campaign, channel, sum(revenue) AS revenue FROM credited WHERE touch = 1 GROUP BY ALL
),
companies AS (
    SELECT campaign, channel, count(*) AS matched,
           count(*) FILTER (WHERE is_new) AS new,
           count(*) FILTER (WHERE converted AND is_new) AS converted_new,
           count(*) FILTER (WHERE converted AND NOT is_new) AS converted_existing
    FROM classified GROUP BY ALL
),
per_group AS (SELECT campaign, channel, count(*) AS leads FROM leads GROUP BY ALL)
SELECT coalesce(g.campaign, '(no campaign)') AS campaign,
       coalesce(g.channel, '(no channel)') AS channel,
       g.leads,
       coalesce(c.matched, 0) AS companies_matched,
       coalesce(c.new, 0) AS companies_new,
       coalesce(c.matched - c.new, 0) AS companies_existing,
       coalesce(c.converted_new + c.converted_existing, 0) AS companies_converted,
       coalesce(c.converted_new, 0) AS converted_new,
       coalesce(c.converted_existing, 0) AS converted_existing,
       CASE WHEN c.new > 0 THEN round(c.converted_new / c.new, 4) END::DECIMAL(6, 4)
           AS new_conversion_rate,
       coalesce(r.revenue, 0)::DECIMAL(18, 2) AS attributed_revenue
FROM per_group g
LEFT JOIN companies c ON c.campaign IS NOT DISTINCT FROM g.campaign
                     AND c.channel IS NOT DISTINCT FROM g.channel
LEFT JOIN attributed r ON r.campaign IS NOT DISTINCT FROM g.campaign
                      AND r.channel IS NOT DISTINCT FROM g.channel
