"""B2B platform data warehouse: a Dagster code location over DuckDB."""
