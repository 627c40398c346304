-- core.dim_device: one row per distinct user agent, and the `unknown` row.
SELECT md5(user_agent) AS device_key, user_agent, device_label, device_type,
       device_family, device_brand, device_model, os_family, os_version,
       browser_family, browser_version, is_bot
FROM staging.user_agents
UNION ALL
SELECT 'unknown', NULL, 'Unknown device', 'other', NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, false
