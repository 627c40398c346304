-- The month's rejected orders for the quarantine, each with what was wrong in words.
SELECT order_id AS record_key, reason AS reason_code, 'rejected' AS action,
       CASE reason
           WHEN 'invalid_timestamp'
               THEN 'ordered_at ' || coalesce(ordered_at, 'NULL') || ' is not a timestamp'
           WHEN 'future_order' THEN 'ordered_at ' || ordered_ts || ' is after the load cutoff'
           WHEN 'out_of_range'
               THEN 'ordered_at ' || ordered_ts || ' is before the first month B2B_FIRST_MONTH'
           WHEN 'invalid_status'
               THEN 'status ''' || status || ''' is not one of '
                    || array_to_string(getvariable('valid_statuses'), ', ')
           WHEN 'unknown_company' THEN 'company ' || company_id || ' does not exist'
           WHEN 'unknown_customer' THEN 'customer ' || customer_id || ' does not exist'
       END AS detail,
       to_json(source_row) AS raw_record
FROM orders_checked WHERE reason IS NOT NULL
