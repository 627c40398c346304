-- The most popular products in the countries most users log in from (see
-- top_products_by_country.py).
WITH login_users AS (
    SELECT DISTINCT country_code, user_id
    FROM core.fct_logins
    WHERE country_code IS NOT NULL
      AND requested_at >= getvariable('window_start')::TIMESTAMP
      AND requested_at < getvariable('window_end')::TIMESTAMP
),
countries AS (
    SELECT country_code, count(*) AS login_users,
           row_number() OVER (ORDER BY count(*) DESC, country_code) AS country_rank
    FROM login_users GROUP BY country_code
    QUALIFY country_rank <= getvariable('top_countries')
),
sales AS (
    SELECT u.country_code, f.product_id, sum(f.quantity) AS units,
           count(DISTINCT f.order_id) AS orders, sum(f.revenue) AS revenue
    FROM countries c
    JOIN login_users u USING (country_code)
    JOIN core.fct_order_lines f ON f.user_id = u.user_id
    WHERE f.ordered_at >= getvariable('window_start')::TIMESTAMP
      AND f.ordered_at < getvariable('window_end')::TIMESTAMP
    GROUP BY u.country_code, f.product_id
),
top_sales AS (
    SELECT * FROM sales
    QUALIFY row_number() OVER (PARTITION BY country_code
                               ORDER BY units DESC, revenue DESC, product_id)
            <= getvariable('top_products')
)
SELECT c.country_rank, c.country_code,
       coalesce(n.country_name, c.country_code) AS country_name, c.login_users,
       CASE WHEN s.product_id IS NOT NULL THEN
           row_number() OVER (PARTITION BY c.country_code
                              ORDER BY s.units DESC, s.revenue DESC, s.product_id)
       END AS product_rank,
       s.product_id, p.sku, p.product_name, s.units::BIGINT AS units,
       s.orders, s.revenue::DECIMAL(18, 2) AS revenue
FROM countries c
LEFT JOIN top_sales s USING (country_code)
LEFT JOIN core.dim_product p USING (product_id)
LEFT JOIN core.dim_country n ON n.country_code = c.country_code
