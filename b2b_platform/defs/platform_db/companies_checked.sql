-- Every raw company, its CUIT reduced to digits and checked, and the company it merges
-- into (the lowest id with the same valid CUIT).
CREATE OR REPLACE TEMP TABLE companies_checked AS
WITH source AS (SELECT * EXCLUDE (_extracted_at) FROM raw.companies),
typed AS (
    SELECT r.*,
           regexp_replace(trim(r.cuit), '[\s\-./]', '', 'g') AS cuit_digits,
           r AS source_row  -- the raw record, made text (masked) only if quarantined
    FROM source r
), validated AS (
    SELECT *, cuit_is_valid(cuit_digits) AS cuit_ok FROM typed
)
SELECT *,
       CASE WHEN cuit_ok THEN min(company_id) OVER (PARTITION BY cuit_digits)
            ELSE company_id END AS surviving_company_id
FROM validated
