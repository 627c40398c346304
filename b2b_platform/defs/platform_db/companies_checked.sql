-- Every raw company, its CUIT reduced to digits and checked, and the company it merges
-- into (the lowest id with the same valid CUIT).
CREATE OR REPLACE TEMP TABLE companies_checked AS
WITH source AS (SELECT * EXCLUDE (_extracted_at) FROM raw.companies),
typed AS (
    SELECT r.*,
           regexp_replace(trim(r.cuit), '[\s\-./]', '', 'g') AS cuit_digits,
           r AS source_row  -- the raw record, made text (masked) only if quarantined (below)
    FROM source r
), validated AS (
    SELECT *, cuit_is_valid(cuit_digits) AS cuit_ok FROM typed
), checked AS (
    SELECT *,
           CASE WHEN cuit_ok THEN min(company_id) OVER (PARTITION BY cuit_digits)
                ELSE company_id END AS surviving_company_id
    FROM validated
)
-- the raw record kept only where the quarantine shows it (a flagged or merged company)
SELECT * REPLACE (
    CASE WHEN NOT cuit_ok OR surviving_company_id <> company_id
         THEN source_row END AS source_row
)
FROM checked
