-- Every raw company, its CUIT reduced to digits and checked, and the company it merges
-- into (the lowest id with the same valid CUIT).
CREATE OR REPLACE TEMP TABLE companies_checked AS
WITH source AS (SELECT * EXCLUDE (_extracted_at) FROM raw.companies),
typed AS (
    SELECT r.*,
           regexp_replace(trim(r.cuit), '[\s\-./]', '', 'g') AS cuit_digits,
           -- a person's CUIT (sole proprietor) is personal data: masked
           json_merge_patch(to_json(r), json_object(
               'cuit', mask_personal(r.cuit),
               'legal_name', CASE WHEN is_personal_cuit(r.cuit)
                   THEN mask_text(r.legal_name) ELSE r.legal_name END))
               AS raw_record
    FROM source r
), validated AS (
    SELECT *, cuit_is_valid(cuit_digits) AS cuit_ok FROM typed
)
SELECT *,
       CASE WHEN cuit_ok THEN min(company_id) OVER (PARTITION BY cuit_digits)
            ELSE company_id END AS surviving_company_id
FROM validated
