"""SQL kept as SQL: queries live in .sql files beside the module that runs them, and the
values they need are bound as DuckDB variables (`SET VARIABLE name = ?`, read in the
query with `getvariable('name')`), never pasted into the text. Variables work where
prepared parameters cannot: in a CREATE TABLE AS, a view, or a query a check reads again
in the same transaction."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


@cache
def sql_file(module_file: str, name: str) -> str:
    """The text of `<name>.sql` in the directory of `module_file` (pass `__file__`)."""
    return Path(module_file).with_name(f"{name}.sql").read_text(encoding="utf-8")


def quote_identifier(name: str) -> str:
    """A table or column name as a DuckDB identifier, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


def bind_variables(conn: duckdb.DuckDBPyConnection, variables: Mapping[str, Any]) -> None:
    """Set each variable on the connection; the value travels as a parameter."""
    for name, value in variables.items():
        if not IDENTIFIER.fullmatch(name):  # names come from code; say so if one does not
            raise ValueError(f"not a SQL variable name: {name!r}")
        conn.execute(f"SET VARIABLE {name} = ?", [value])
