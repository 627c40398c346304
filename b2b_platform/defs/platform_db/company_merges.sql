-- Which company each merged duplicate became.
SELECT company_id AS merged_company_id, surviving_company_id
FROM companies_checked WHERE surviving_company_id <> company_id
