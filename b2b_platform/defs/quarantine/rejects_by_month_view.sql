SELECT coalesce(partition_key[:7], 'no month') AS month, source, entity,
       reason_code AS reason, action, count(*) AS records
FROM quarantine.rejected_records GROUP BY 1, 2, 3, 4, 5
