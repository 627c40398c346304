-- Every raw lead typed (dates in the formats people type, Excel serials included),
-- its contact and CUIT checked, and its appearance among the leads with the same id
-- (the first one is kept; a rejected row is never merged). Variables: email_pattern.
CREATE OR REPLACE TEMP TABLE leads_checked AS
WITH source AS (SELECT * EXCLUDE (_loaded_at) FROM raw.marketing_leads),
typed AS (
    SELECT r.*,
           nullif(upper(trim(r.lead_id)), '') AS lead_key,
           coalesce(
               TRY_CAST(r.captured_at AS TIMESTAMP),
               try_strptime(r.captured_at, '%d/%m/%Y'),
               try_strptime(r.captured_at, '%d/%m/%Y %H:%M'),
               try_strptime(r.captured_at, '%d-%m-%Y'),
               -- an Excel serial number left without a date format
               CASE WHEN regexp_full_match(r.captured_at, '[0-9]{5}(\.[0-9]+)?')
                    THEN TIMESTAMP '1899-12-30'
                         + to_milliseconds(CAST(round(r.captured_at::DOUBLE * 86400000) AS BIGINT))
               END) AS captured_ts,
           lower(trim(r.email)) AS email_norm,
           regexp_replace(trim(r.cuit), '[\s\-./]', '', 'g') AS cuit_digits,
           nullif(regexp_replace(r.phone, '[^0-9+]', '', 'g'), '') AS phone_norm,
           r AS source_row  -- the raw record, made text (masked) only if quarantined
    FROM source r
), validated AS (
    SELECT *,
           lead_key IS NULL AS no_lead_id,
           email_norm IS NULL AND phone_norm IS NULL AS no_contact,
           email_norm IS NOT NULL AND NOT regexp_matches(email_norm, getvariable('email_pattern')) AS email_bad,
           cuit_digits IS NOT NULL AND cuit_digits <> '' AND NOT cuit_is_valid(cuit_digits) AS cuit_bad
    FROM typed
), ranked AS (
    SELECT *,
           -- only rows kept are numbered: a rejected row is never merged
           CASE WHEN NOT rejected THEN row_number() OVER (
               PARTITION BY lead_key, rejected ORDER BY captured_ts NULLS LAST, source_file, sheet_row)
           END AS appearance,
           first_value(source_file || ' row ' || sheet_row) OVER (
               PARTITION BY lead_key, rejected ORDER BY captured_ts NULLS LAST, source_file, sheet_row)
               AS first_appearance
    FROM (SELECT *, no_lead_id OR no_contact AS rejected FROM validated)
)
SELECT * FROM ranked
