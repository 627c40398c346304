-- People who log in, with their surviving company and role.
SELECT r.user_id, coalesce(m.surviving_company_id, r.company_id) AS company_id,
       trim(r.username) AS username, lower(trim(r.email)) AS email,
       lower(trim(r.role)) AS role,
       TRY_CAST(r.created_at AS TIMESTAMP) AS created_at,
       TRY_CAST(r.updated_at AS TIMESTAMP) AS updated_at
FROM raw.platform_users r
LEFT JOIN staging.company_merges m ON m.merged_company_id = r.company_id
