-- Every raw customer typed, its document normalized and checked for its type, its
-- birth date checked against the as-of day (variable as_of), and the customer it
-- merges into (the lowest id with the same valid document).
CREATE OR REPLACE TEMP TABLE customers_checked AS
WITH source AS (SELECT * EXCLUDE (_extracted_at) FROM raw.customers),
typed AS (
    SELECT r.*,
           upper(trim(document_type)) AS doc_type,
           upper(regexp_replace(trim(document_number), '[\s.\-]', '', 'g')) AS doc_clean,
           TRY_CAST(date_of_birth AS DATE) AS birth,
           r AS source_row  -- the raw record, made text (masked) only if quarantined (below)
    FROM source r
), normalized AS (
    SELECT *,
           CASE WHEN doc_type IN ('DNI', 'LC', 'LE', 'CI')
                THEN nullif(ltrim(doc_clean, '0'), '') ELSE doc_clean END AS doc_norm
    FROM typed
), validated AS (
    SELECT *,
           coalesce(CASE
               WHEN doc_type IN ('DNI', 'LC', 'LE') THEN regexp_full_match(doc_norm, '[0-9]{6,8}')
               WHEN doc_type = 'CI' THEN regexp_full_match(doc_norm, '[0-9]{5,9}')
               WHEN doc_type = 'PASAPORTE' THEN regexp_full_match(doc_norm, '[A-Z0-9]{6,10}')
               ELSE false END, false) AS doc_ok,
           coalesce(birth > getvariable('as_of')
                    OR birth < getvariable('as_of') - INTERVAL 120 YEAR, false) AS birth_implausible
    FROM normalized
), checked AS (
    SELECT *,
           CASE WHEN doc_ok THEN min(customer_id) OVER (PARTITION BY doc_type, doc_norm)
                ELSE customer_id END AS surviving_customer_id
    FROM validated
)
-- the raw record kept only where the quarantine shows it (a flagged or merged customer)
SELECT * REPLACE (
    CASE WHEN NOT doc_ok OR birth_implausible OR surviving_customer_id <> customer_id
         THEN source_row END AS source_row
)
FROM checked
