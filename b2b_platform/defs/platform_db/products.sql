-- The product catalogue, typed and trimmed.
SELECT product_id, trim(sku) AS sku, trim(name) AS name, trim(category) AS category,
       nullif(trim(brand), '') AS brand, lower(trim(unit)) AS unit,
       TRY_CAST(created_at AS TIMESTAMP) AS created_at,
       TRY_CAST(updated_at AS TIMESTAMP) AS updated_at
FROM raw.products r
