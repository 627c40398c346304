-- Lead conversion per campaign and channel (see lead_conversion.py).
WITH matched AS (
    SELECT campaign, channel, company_id, min(captured_at) AS first_captured_at
    FROM core.fct_leads WHERE company_id IS NOT NULL
    GROUP BY ALL
),
converted AS (
    SELECT m.campaign, m.channel, m.company_id
    FROM matched m
    WHERE EXISTS (SELECT 1 FROM core.fct_order_lines f
                  WHERE f.company_id = m.company_id
                    AND f.ordered_at > m.first_captured_at)
),
revenue AS (
    SELECT c.campaign, c.channel, sum(f.revenue) AS revenue
    FROM converted c
    JOIN core.fct_order_lines f ON f.company_id = c.company_id
    WHERE f.ordered_at >= getvariable('window_start')::TIMESTAMP
      AND f.ordered_at < getvariable('window_end')::TIMESTAMP
    GROUP BY ALL
),
per_group AS (
    SELECT l.campaign, l.channel, count(*) AS leads,
           (SELECT count(*) FROM matched m WHERE m.campaign IS NOT DISTINCT FROM l.campaign
              AND m.channel IS NOT DISTINCT FROM l.channel) AS companies_matched,
           (SELECT count(*) FROM converted c WHERE c.campaign IS NOT DISTINCT FROM l.campaign
              AND c.channel IS NOT DISTINCT FROM l.channel) AS companies_converted
    FROM core.fct_leads l GROUP BY ALL
)
SELECT coalesce(g.campaign, '(no campaign)') AS campaign,
       coalesce(g.channel, '(no channel)') AS channel,
       g.leads, g.companies_matched, g.companies_converted,
       CASE WHEN g.companies_matched > 0
            THEN round(g.companies_converted / g.companies_matched, 4)
       END::DECIMAL(6, 4) AS conversion_rate,
       coalesce(r.revenue, 0)::DECIMAL(18, 2) AS revenue
FROM per_group g
LEFT JOIN revenue r ON r.campaign IS NOT DISTINCT FROM g.campaign
                   AND r.channel IS NOT DISTINCT FROM g.channel
