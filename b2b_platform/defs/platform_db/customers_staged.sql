-- The surviving customers as staging.customers keeps them, bad fields set to NULL.
SELECT customer_id, doc_type AS document_type,
       CASE WHEN doc_ok THEN doc_norm END AS document_number,
       trim(full_name) AS full_name,
       CASE WHEN NOT birth_implausible THEN birth END AS date_of_birth,
       nullif(lower(trim(email)), '') AS email,
       nullif(trim(phone), '') AS phone,
       nullif(trim(province), '') AS province,
       nullif(trim(city), '') AS city,
       TRY_CAST(created_at AS TIMESTAMP) AS created_at,
       TRY_CAST(updated_at AS TIMESTAMP) AS updated_at,
       NOT doc_ok AS document_flagged,
       birth_implausible AS birth_date_flagged
FROM customers_checked WHERE surviving_customer_id = customer_id
