-- core.dim_date: one row per day from first_day to end_day (variables), flagged when in
-- the report window.
SELECT d::DATE AS date, year(d) AS year, quarter(d) AS quarter, month(d) AS month,
       date_trunc('month', d)::DATE AS month_start, strftime(d, '%B') AS month_name,
       day(d) AS day, isodow(d) AS iso_day_of_week, strftime(d, '%A') AS day_name,
       isodow(d) >= 6 AS is_weekend, weekofyear(d) AS iso_week,
       d >= getvariable('window_start') AND d <= getvariable('as_of') AS in_report_window
FROM range(getvariable('first_day'), getvariable('end_day'), INTERVAL 1 DAY) AS t(d)
