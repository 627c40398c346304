-- The companies' findings for the quarantine: flagged CUITs and merged duplicates,
-- each with what was wrong in words (a person's CUIT masked).
WITH found AS (
    SELECT company_id AS record_key, 'invalid_cuit' AS reason_code,
           'flagged' AS action,
           'CUIT ' || coalesce('''' || mask_personal(cuit) || '''', 'NULL')
           || CASE WHEN regexp_full_match(cuit_digits, '[0-9]{11}')
                   THEN ' has a wrong check digit' ELSE ' is not 11 digits' END
           || '; CUIT set to NULL' AS detail,
           source_row
    FROM companies_checked WHERE NOT cuit_ok
    UNION ALL
    SELECT company_id, 'duplicate_cuit', 'merged',
           'same CUIT ' || mask_personal(cuit_digits) || ' as company ' || surviving_company_id
           || '; merged into it', source_row
    FROM companies_checked WHERE surviving_company_id <> company_id
)
SELECT record_key, reason_code, action, detail,
       -- a person's CUIT (sole proprietor) is personal data: masked
       json_merge_patch(to_json(source_row), json_object(
           'cuit', mask_personal(source_row.cuit),
           'legal_name', CASE WHEN is_personal_cuit(source_row.cuit)
               THEN mask_text(source_row.legal_name) ELSE source_row.legal_name END))
           AS raw_record
FROM found
