-- core.dim_company: client companies, one row per company after merges.
-- the CUIT of a person (a sole proprietor: prefixes 20, 23, 24, 27) holds their
-- DNI, so analysts see it masked; staging keeps it for matching
SELECT c.company_id, mask_personal(c.cuit) AS cuit,
       mask_personal(c.cuit_formatted) AS cuit_formatted,
       coalesce(is_personal_cuit(c.cuit), false) AS cuit_is_personal, c.legal_name, c.industry,
       c.country_code, c.province, c.city, c.created_at, c.cuit_flagged,
       coalesce(m.merged, 0) AS merged_duplicates,
       s.company_id IS NOT NULL AS is_supplier
FROM staging.companies c
LEFT JOIN (SELECT surviving_company_id, count(*) AS merged
           FROM staging.company_merges GROUP BY ALL) m
       ON m.surviving_company_id = c.company_id
LEFT JOIN (SELECT DISTINCT company_id FROM staging.suppliers) s
       ON s.company_id = c.company_id
