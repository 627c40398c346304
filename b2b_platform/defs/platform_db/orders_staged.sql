-- The month's valid orders, as staging.orders keeps them.
SELECT order_id, trim(order_number) AS order_number,
       company_key AS company_id, company_id AS source_company_id,
       customer_key AS customer_id, customer_id AS source_customer_id,
       user_id, ordered_ts AS ordered_at, status_norm AS status,
       upper(trim(currency)) AS currency,
       nullif(trim(shipping_province), '') AS shipping_province,
       nullif(trim(shipping_city), '') AS shipping_city,
       TRY_CAST(updated_at AS TIMESTAMP) AS updated_at,
       getvariable('partition_key') AS partition_key
FROM orders_checked WHERE reason IS NULL
