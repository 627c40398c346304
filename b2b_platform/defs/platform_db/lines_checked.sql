-- The month's raw order lines, typed, each with the first rule it breaks: the rule its
-- order broke, else its own (NULL: valid). Variables: partition_key.
CREATE OR REPLACE TEMP TABLE lines_checked AS
WITH source AS (
    SELECT * EXCLUDE (_extracted_at, _partition_key) FROM raw.order_items
    WHERE _partition_key = getvariable('partition_key')
), typed AS (
    SELECT i.*,
           TRY_CAST(i.unit_price AS DECIMAL(14, 2)) AS price,
           coalesce(TRY_CAST(i.discount_pct AS DECIMAL(5, 2)), 0) AS discount,
           o.order_id IS NOT NULL AS order_known,
           o.reason AS order_reason,
           i AS source_row  -- the raw record, made text only if rejected (below)
    FROM source i
    LEFT JOIN orders_checked o ON o.order_id = i.order_id
), checked AS (
    SELECT *,
           CASE
               WHEN NOT order_known THEN 'unknown_order'
               WHEN order_reason IS NOT NULL THEN order_reason
               WHEN NOT EXISTS (SELECT 1 FROM staging.products p
                                WHERE p.product_id = typed.product_id)
                   THEN 'unknown_product'
               WHEN quantity <= 0 THEN 'non_positive_quantity'
               WHEN price IS NULL OR price <= 0 THEN 'non_positive_price'
           END AS reason
    FROM typed
)
-- the raw record kept only where the quarantine shows it (a rejected line)
SELECT * REPLACE (CASE WHEN reason IS NOT NULL THEN source_row END AS source_row)
FROM checked
