-- The leads' findings for the quarantine, each with what was wrong in words (masked).
WITH found AS (
    SELECT source_file || '#' || sheet_row AS record_key,
           'missing_lead_id' AS reason_code, 'rejected' AS action,
           'row has no lead id' AS detail, source_row
    FROM leads_checked WHERE no_lead_id
    UNION ALL
    SELECT source_file || '#' || sheet_row, 'missing_contact', 'rejected',
           'lead ' || lead_key || ' has neither email nor phone', source_row
    FROM leads_checked WHERE no_contact AND NOT no_lead_id
    UNION ALL
    SELECT source_file || '#' || sheet_row, 'duplicate_lead', 'merged',
           'lead ' || lead_key || ' already in ' || first_appearance, source_row
    FROM leads_checked WHERE appearance > 1
    UNION ALL
    SELECT source_file || '#' || sheet_row, 'invalid_email', 'flagged',
           'email ''' || mask_text(email) || ''' is not an address; set to NULL', source_row
    FROM leads_checked WHERE email_bad AND appearance = 1
    UNION ALL
    SELECT source_file || '#' || sheet_row, 'invalid_cuit', 'flagged',
           'CUIT ''' || mask_personal(cuit) || ''' fails the check digit; set to NULL', source_row
    FROM leads_checked WHERE cuit_bad AND appearance = 1
)
SELECT record_key, reason_code, action, detail,
       json_merge_patch(to_json(source_row), json_object(
           'contact_name', mask_text(source_row.contact_name),
           'email', mask_text(source_row.email),
           'phone', mask_text(source_row.phone),
           'cuit', mask_personal(source_row.cuit),
           -- a sole proprietor's company name is the person's name
           'company_name', CASE WHEN is_personal_cuit(source_row.cuit)
               THEN mask_text(source_row.company_name) ELSE source_row.company_name END))
           AS raw_record
FROM found
