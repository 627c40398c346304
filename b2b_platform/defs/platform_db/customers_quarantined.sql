-- The customers' findings for the quarantine: flagged documents and birth dates,
-- merged duplicates, each with what was wrong in words (masked).
SELECT customer_id AS record_key, 'invalid_document' AS reason_code,
       'flagged' AS action,
       doc_type || ' ''' || mask_text(document_number) || ''' is not a valid '
       || doc_type || ' number; document set to NULL' AS detail, raw_record
FROM customers_checked WHERE NOT doc_ok AND surviving_customer_id = customer_id
UNION ALL
SELECT customer_id, 'implausible_birth_date', 'flagged',
       'born ' || mask_date(birth) || ', in the future or over 120 years ago;'
       || ' birth date set to NULL', raw_record
FROM customers_checked
WHERE birth_implausible AND surviving_customer_id = customer_id
UNION ALL
SELECT customer_id, 'duplicate_customer', 'merged',
       'same ' || doc_type || ' ' || mask_text(doc_norm) || ' as customer '
       || surviving_customer_id || '; merged into it', raw_record
FROM customers_checked WHERE surviving_customer_id <> customer_id
