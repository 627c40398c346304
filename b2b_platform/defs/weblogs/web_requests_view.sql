-- the path is not stored in raw (it is the target without its query string); a
-- warehouse loaded before that still has the column, hence COLUMNS(...)
WITH w AS (
    SELECT COLUMNS(lambda c: c <> 'path'), split_part(target, '?', 1) AS path FROM raw.weblogs
)
SELECT w.source_file, w.line_number, w.requested_at, w.utc_offset,
       w.client_ip, w.client_host, i.country_code, w.vhost,
       w.username, u.user_id, u.company_id,
       w.method, w.path, w.target, w.protocol, w.request, w.status, w.bytes, w.referer,
       w.user_agent,
       coalesce(a.device_label, 'Unknown device') AS device_label,
       coalesce(a.device_type, 'other') AS device_type,
       a.os_family, a.browser_family,
       coalesce(a.is_bot, false) AS is_bot,
       coalesce(w.method = 'POST' AND w.path = '/login' AND w.status BETWEEN 200 AND 399
                AND u.user_id IS NOT NULL, false) AS is_login,
       TRY_CAST(regexp_extract(w.path, '^/products/([0-9]+)/?$', 1) AS BIGINT) AS product_id,
       w.server, w.partition_key
FROM w
LEFT JOIN staging.user_agents a ON a.user_agent = w.user_agent
LEFT JOIN staging.ip_countries i ON i.ip = w.client_ip
-- a user only on a request the server accepted: Apache logs the name a client sends
-- with a refused Basic-auth request too, so a 401 claims a user it never was. The
-- status goes inside the key, not beside it: DuckDB 1.4 (the lake's) turns a LEFT JOIN
-- with a condition on the left side alone into a nested loop (810k requests x 60k
-- users: 100 s a month), where an equality on one expression stays a hash join
LEFT JOIN staging.platform_users u
       ON u.username = CASE WHEN w.status BETWEEN 200 AND 399 THEN w.username END
