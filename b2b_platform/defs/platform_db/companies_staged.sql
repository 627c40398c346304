-- The surviving companies as staging.companies keeps them, an invalid CUIT set to NULL.
SELECT company_id,
       CASE WHEN cuit_ok THEN cuit_digits END AS cuit,
       CASE WHEN cuit_ok THEN substr(cuit_digits, 1, 2) || '-'
            || substr(cuit_digits, 3, 8) || '-' || substr(cuit_digits, 11, 1)
       END AS cuit_formatted,
       trim(legal_name) AS legal_name,
       nullif(trim(industry), '') AS industry,
       upper(trim(country_code)) AS country_code,
       nullif(trim(province), '') AS province,
       nullif(trim(city), '') AS city,
       TRY_CAST(created_at AS TIMESTAMP) AS created_at,
       TRY_CAST(updated_at AS TIMESTAMP) AS updated_at,
       NOT cuit_ok AS cuit_flagged
FROM companies_checked
WHERE surviving_company_id = company_id
