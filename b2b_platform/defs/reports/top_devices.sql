-- The top devices of B2B client users in the report window (see top_devices.py).
WITH population AS (
    SELECT user_id, device_label, device_type
    FROM core.fct_web_requests
    WHERE user_id IS NOT NULL AND NOT is_bot
      AND requested_at >= getvariable('window_start')::TIMESTAMP
      AND requested_at < getvariable('window_end')::TIMESTAMP
),
devices AS (
    SELECT device_label AS device, count(DISTINCT user_id) AS users,
           count(*) AS requests
    FROM population GROUP BY ALL
),
types AS (
    SELECT device_label AS device, device_type
    FROM population GROUP BY device_label, device_type
    QUALIFY row_number() OVER (PARTITION BY device_label
                               ORDER BY count(*) DESC, device_type) = 1
),
everyone AS (SELECT count(DISTINCT user_id) AS users FROM population)
SELECT row_number() OVER (ORDER BY d.users DESC, d.requests DESC, d.device) AS rank,
       d.device, t.device_type, d.users, d.requests,
       round(d.users / e.users, 4)::DECIMAL(6, 4) AS share_of_users
FROM devices d JOIN types t USING (device) CROSS JOIN everyone e
QUALIFY rank <= getvariable('top')
