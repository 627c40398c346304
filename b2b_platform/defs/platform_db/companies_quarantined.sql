-- The companies' findings for the quarantine: flagged CUITs and merged duplicates,
-- each with what was wrong in words (a person's CUIT masked).
SELECT company_id AS record_key, 'invalid_cuit' AS reason_code,
       'flagged' AS action,
       'CUIT ' || coalesce('''' || mask_personal(cuit) || '''', 'NULL')
       || CASE WHEN regexp_full_match(cuit_digits, '[0-9]{11}')
               THEN ' has a wrong check digit' ELSE ' is not 11 digits' END
       || '; CUIT set to NULL' AS detail,
       raw_record
FROM companies_checked WHERE NOT cuit_ok
UNION ALL
SELECT company_id, 'duplicate_cuit', 'merged',
       'same CUIT ' || mask_personal(cuit_digits) || ' as company ' || surviving_company_id
       || '; merged into it', raw_record
FROM companies_checked WHERE surviving_company_id <> company_id
