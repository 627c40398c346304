-- Each supplier's price for a product, typed, with the dates it is valid.
SELECT supplier_id, product_id, TRY_CAST(price AS DECIMAL(14, 2)) AS price,
       upper(trim(currency)) AS currency,
       TRY_CAST(valid_from AS DATE) AS valid_from, TRY_CAST(valid_to AS DATE) AS valid_to
FROM raw.supplier_products r
