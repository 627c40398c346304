"""SQL kept as SQL: queries live in .sql files beside the module that runs them, and the
values they need are bound as DuckDB variables (`SET VARIABLE name = ?`, read in the
query with `getvariable('name')`), never pasted into the text. Variables work where
prepared parameters cannot: in a CREATE TABLE AS, a view, or a query a check reads again
in the same transaction.

The one place where names reach SQL text: a table, column or schema name is pasted only
through `quote_identifier` (or the fragments here built with it), so a name means that
name whatever characters it holds. `make shape` holds every other module to it: an
f-string of SQL pastes only these functions' results and module-level constants, or SQL
a caller passes in that is declared `SqlFragment`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, NewType

import duckdb

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")

# SQL text written in the code (a slice's query, a check's condition, a view's SQL), passed
# to a function that pastes it: a parameter or a dataclass field annotated with it may be
# pasted into an f-string of SQL (`make shape` reads the annotation). Never a value, a name
# from data or a user's text: those are bound as parameters or quoted here.
SqlFragment = NewType("SqlFragment", str)


@cache
def sql_file(module_file: str, name: str) -> str:
    """The text of `<name>.sql` in the directory of `module_file` (pass `__file__`)."""
    return Path(module_file).with_name(f"{name}.sql").read_text(encoding="utf-8")


def quote_identifier(name: str) -> str:
    """A table or column name as a DuckDB identifier, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


def qualified_name(name: str) -> str:
    """A dotted name as code writes it ("staging.orders", "main.cuit_is_valid"), each
    part quoted: `"staging"."orders"`. The parts of the names here hold no dot."""
    return ".".join(quote_identifier(part) for part in name.split("."))


def identifier_list(names: Iterable[str]) -> str:
    """Column names quoted and separated by commas: a SELECT's or an INSERT's list."""
    return ", ".join(quote_identifier(name) for name in names)


def any_null(names: Iterable[str]) -> str:
    """Whether any of these columns is NULL: `"a" IS NULL OR "b" IS NULL`."""
    return " OR ".join(f"{quote_identifier(name)} IS NULL" for name in names)


def column_type(dtype: str) -> str:
    """A column's type as DESCRIBE names it (`DECIMAL(18,3)`, `VARCHAR[]`), parsed by
    DuckDB first: text that is not one type raises instead of reaching a statement."""
    return str(duckdb.sqltype(dtype))


def placeholders(count: int) -> str:
    """One parameter marker per value: `?, ?, ?`."""
    return ", ".join("?" for _ in range(count))


def quote_literal(text: str) -> str:
    """Text as a SQL string literal, for the few places DuckDB takes no parameter (a
    file to LOAD or COPY TO, a database to ATTACH)."""
    return "'" + text.replace("'", "''") + "'"


def expression_list(expressions: Iterable[SqlFragment]) -> str:
    """SQL expressions written in code (their names quoted here), separated by commas: a
    SELECT's list of computed columns."""
    return ", ".join(expressions)


def concatenation(expressions: Iterable[SqlFragment], separator: str) -> str:
    """SQL expressions concatenated with `||`, the separator's literal between them: NULL
    if any of them is."""
    return f" || {quote_literal(separator)} || ".join(expressions)


def integer_literal(value: int) -> str:
    """A whole number as a SQL literal, for the few arguments DuckDB takes only as
    constants (bitstring_agg's range): `int()` first, so text that is not one raises."""
    return str(int(value))


def bind_variables(conn: duckdb.DuckDBPyConnection, variables: Mapping[str, Any]) -> None:
    """Set each variable on the connection; the value travels as a parameter."""
    for name, value in variables.items():
        if not IDENTIFIER.fullmatch(name):  # names come from code; say so if one does not
            raise ValueError(f"not a SQL variable name: {name!r}")
        conn.execute(f"SET VARIABLE {quote_identifier(name)} = ?", [value])
