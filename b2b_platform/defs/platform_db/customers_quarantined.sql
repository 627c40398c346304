-- The customers' findings for the quarantine: flagged documents and birth dates,
-- merged duplicates, each with what was wrong in words (masked).
WITH found AS (
    SELECT customer_id AS record_key, 'invalid_document' AS reason_code,
           'flagged' AS action,
           doc_type || ' ''' || mask_text(document_number) || ''' is not a valid '
           || doc_type || ' number; document set to NULL' AS detail, source_row
    FROM customers_checked WHERE NOT doc_ok AND surviving_customer_id = customer_id
    UNION ALL
    SELECT customer_id, 'implausible_birth_date', 'flagged',
           'born ' || mask_date(birth) || ', in the future or over 120 years ago;'
           || ' birth date set to NULL', source_row
    FROM customers_checked
    WHERE birth_implausible AND surviving_customer_id = customer_id
    UNION ALL
    SELECT customer_id, 'duplicate_customer', 'merged',
           'same ' || doc_type || ' ' || mask_text(doc_norm) || ' as customer '
           || surviving_customer_id || '; merged into it', source_row
    FROM customers_checked WHERE surviving_customer_id <> customer_id
)
SELECT record_key, reason_code, action, detail,
       -- the quarantine keeps what an operator needs, not who the person is
       json_merge_patch(to_json(source_row), json_object(
           'document_number', mask_text(source_row.document_number),
           'full_name', mask_text(source_row.full_name),
           'date_of_birth', mask_date(source_row.date_of_birth),
           'email', mask_text(source_row.email),
           'phone', mask_text(source_row.phone))) AS raw_record
FROM found
