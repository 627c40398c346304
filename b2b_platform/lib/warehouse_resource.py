"""The warehouse as a Dagster resource: a DuckDB file, or a DuckLake and its data path."""

from __future__ import annotations

from dagster_duckdb import DuckDBResource

from b2b_platform.lib.warehouse_location import WarehouseLocation


class WarehouseResource(DuckDBResource):
    """The warehouse every step writes and every check reads.

    `database` is a DuckDB file path or a `ducklake:postgres:<conninfo>` catalog;
    `lake_data_path` is where a lake keeps its Parquet files.
    """

    lake_data_path: str = ""

    def location(self) -> WarehouseLocation:
        return WarehouseLocation(target=self.database, data_path=self.lake_data_path)
