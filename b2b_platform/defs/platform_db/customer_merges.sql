-- Which customer each merged duplicate became.
SELECT customer_id AS merged_customer_id, surviving_customer_id
FROM customers_checked WHERE surviving_customer_id <> customer_id
