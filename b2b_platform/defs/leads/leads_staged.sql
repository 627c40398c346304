-- The kept leads as staging.leads holds them: the channel named by the first pattern
-- it matches (variable channel_patterns), else folded to a word; bad fields set to NULL.
-- The patterns are matched once per distinct label, not per lead: a pattern that is not
-- a constant is compiled again on every call.
WITH channels AS (
    SELECT label, coalesce(
               list_filter(getvariable('channel_patterns'),
                           lambda p: regexp_matches(folded, p.pattern))[1].channel,
               nullif(regexp_replace(folded, '[^a-z0-9]+', '_', 'g'), '')
           ) AS channel
    FROM (SELECT DISTINCT channel AS label, lower(strip_accents(trim(channel))) AS folded
          FROM leads_checked)
)
SELECT l.lead_key AS lead_id, l.captured_ts AS captured_at,
       trim(l.campaign) AS campaign, ch.channel,
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
FROM leads_checked l
LEFT JOIN channels ch ON ch.label IS NOT DISTINCT FROM l.channel
LEFT JOIN country_codes c ON c.country = l.country
WHERE l.appearance = 1
