-- Suppliers, each with its surviving company (a merged duplicate resolved).
SELECT r.supplier_id, coalesce(m.surviving_company_id, r.company_id) AS company_id,
       r.active::BOOLEAN AS active,
       TRY_CAST(r.created_at AS TIMESTAMP) AS created_at,
       TRY_CAST(r.updated_at AS TIMESTAMP) AS updated_at
FROM raw.suppliers r
LEFT JOIN staging.company_merges m ON m.merged_company_id = r.company_id
