-- The kept leads as staging.leads holds them: the channel named by the first pattern
-- it matches (variable channel_patterns), else folded to a word; bad fields set to NULL.
SELECT l.lead_key AS lead_id, l.captured_ts AS captured_at,
       trim(l.campaign) AS campaign, coalesce(
           list_filter(getvariable('channel_patterns'),
                       lambda p: regexp_matches(lower(strip_accents(trim(l.channel))), p.pattern))[1].channel,
           nullif(regexp_replace(lower(strip_accents(trim(l.channel))), '[^a-z0-9]+', '_', 'g'), '')
       ) AS channel,
       trim(l.company_name) AS company_name,
       CASE WHEN NOT l.cuit_bad AND l.cuit_digits <> '' THEN l.cuit_digits END AS cuit,
       trim(l.contact_name) AS contact_name,
       CASE WHEN NOT l.email_bad THEN l.email_norm END AS email,
       l.phone_norm AS phone,
       coalesce(c.code, upper(trim(l.country))) AS country_code,
       trim(l.province) AS province, trim(l.city) AS city,
       trim(l.industry) AS industry,
       l.email_bad AS email_flagged, l.cuit_bad AS cuit_flagged,
       l.source_file, l.sheet_row
FROM leads_checked l LEFT JOIN country_codes c ON c.country = l.country
WHERE l.appearance = 1
