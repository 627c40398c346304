-- The month's valid lines of valid orders, with their revenue, as staging.order_lines
-- keeps them.
SELECT l.order_id, l.line_number, l.product_id, l.supplier_id, l.quantity,
       l.price AS unit_price, l.discount AS discount_pct,
       CAST(l.quantity * l.price * (1 - l.discount / 100) AS DECIMAL(18, 2)) AS revenue,
       o.ordered_ts AS ordered_at,
       getvariable('partition_key') AS partition_key
FROM lines_checked l JOIN orders_checked o USING (order_id)
WHERE l.reason IS NULL
