-- The leads' findings for the quarantine, each with what was wrong in words (masked).
SELECT source_file || '#' || sheet_row AS record_key,
       'missing_lead_id' AS reason_code, 'rejected' AS action,
       'row has no lead id' AS detail, raw_record
FROM leads_checked WHERE no_lead_id
UNION ALL
SELECT source_file || '#' || sheet_row, 'missing_contact', 'rejected',
       'lead ' || lead_key || ' has neither email nor phone', raw_record
FROM leads_checked WHERE no_contact AND NOT no_lead_id
UNION ALL
SELECT source_file || '#' || sheet_row, 'duplicate_lead', 'merged',
       'lead ' || lead_key || ' already in ' || first_appearance, raw_record
FROM leads_checked WHERE appearance > 1
UNION ALL
SELECT source_file || '#' || sheet_row, 'invalid_email', 'flagged',
       'email ''' || mask_text(email) || ''' is not an address; set to NULL', raw_record
FROM leads_checked WHERE email_bad AND appearance = 1
UNION ALL
SELECT source_file || '#' || sheet_row, 'invalid_cuit', 'flagged',
       'CUIT ''' || mask_personal(cuit) || ''' fails the check digit; set to NULL', raw_record
FROM leads_checked WHERE cuit_bad AND appearance = 1
