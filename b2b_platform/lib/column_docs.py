"""What each column of the core and report tables means (defs/columns.yaml), as the
column schema Dagster shows on the asset page and on every materialization."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import dagster as dg
import yaml

COLUMNS_FILE = Path(__file__).parents[1] / "defs" / "columns.yaml"


@cache
def column_docs() -> dict[str, dict[str, tuple[str, str]]]:
    """{"reports/monthly_sales": {"month": ("DATE", "Calendar month ..."), ...}, ...}"""
    loaded = yaml.safe_load(COLUMNS_FILE.read_text(encoding="utf-8"))
    return {
        table: {column: (str(kind), str(text)) for column, (kind, text) in columns.items()}
        for table, columns in loaded.items()
    }


def documented_schema(key: dg.AssetKey) -> dg.TableSchema | None:
    columns = column_docs().get(key.to_user_string())
    if columns is None:
        return None
    return dg.TableSchema(
        columns=[dg.TableColumn(name, kind, text) for name, (kind, text) in columns.items()]
    )


def with_column_docs(spec: dg.AssetSpec) -> dg.AssetSpec:
    """The spec with its documented column schema, for assets that have one."""
    schema = documented_schema(spec.key)
    if schema is None:
        return spec
    return spec.merge_attributes(metadata={"dagster/column_schema": schema})


def column_description(table: str, column: str) -> str | None:
    """The description of warehouse column `schema.table`.`column`, if documented."""
    documented = column_docs().get(table.replace(".", "/"), {}).get(column)
    return documented[1] if documented else None
