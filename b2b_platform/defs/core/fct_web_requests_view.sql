SELECT source_file, line_number, requested_at,
       CAST(requested_at AS DATE) AS request_date, utc_offset,
       user_id, company_id, user_id IS NOT NULL AS is_authenticated, country_code,
       coalesce(md5(user_agent), 'unknown') AS device_key, device_label, device_type,
       is_bot, method, path, status, bytes, is_login, product_id, server, partition_key
FROM staging.web_requests
