-- core.dim_product: the catalogue with its suppliers and lowest current price at the
-- as-of day (variable as_of).
SELECT p.product_id, p.sku, p.name AS product_name, p.category, p.brand, p.unit,
       coalesce(o.suppliers, 0) AS suppliers, o.lowest_price, p.created_at
FROM staging.products p
LEFT JOIN (
    SELECT product_id, count(DISTINCT supplier_id) AS suppliers, min(price) AS lowest_price
    FROM staging.prices
    WHERE valid_from <= getvariable('as_of')
      AND (valid_to IS NULL OR valid_to >= getvariable('as_of'))
    GROUP BY ALL
) o USING (product_id)
