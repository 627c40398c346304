-- The month's rejected order lines for the quarantine, each with what was wrong in words;
-- `order_known` tells the month's own lines from those whose order does not exist
-- anywhere (they belong to no month and are accounted apart).
SELECT order_id || '/' || line_number AS record_key, reason AS reason_code,
       'rejected' AS action,
       CASE
           WHEN order_reason IS NOT NULL
               THEN 'order ' || order_id || ' rejected (' || order_reason || ')'
           WHEN reason = 'unknown_order' THEN 'order ' || order_id || ' does not exist'
           WHEN reason = 'unknown_product' THEN 'product ' || product_id || ' does not exist'
           WHEN reason = 'non_positive_quantity' THEN 'quantity ' || quantity || ' is not positive'
           ELSE 'unit price ' || coalesce(unit_price, 'NULL') || ' is not positive'
       END AS detail,
       to_json(source_row) AS raw_record, order_known
FROM lines_checked WHERE reason IS NOT NULL
