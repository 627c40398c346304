"""The code's shape holds its goals: no import cycle and no upward import between the
packages nor between b2b_platform's modules, no private Dagster import, SQL f-strings
pasting only quoted identifiers, constants and the SQL helper module's fragments
(`make shape` prints the same measure with every finding). Each rule is also fed a
small bad example, to show it bites."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

from b2b_platform_tests import shape

# SQL f-strings still pasting what the rule forbids, per file (none left): lower a number
# when you fix one; never raise it.
SQL_PASTES_LEFT: dict[str, int] = {}


def test_no_import_cycle_no_upward_import_no_private_dagster_import() -> None:
    findings = shape.measure()
    assert findings.cycles == []
    assert findings.upward_imports == []  # b2b_common < source_db < generators < b2b_platform
    assert findings.private_imports == []
    assert findings.module_upward_imports == []  # lib < defs < definitions.py < cli*.py
    assert findings.module_cycles == []
    assert findings.part_cycles == []  # lib/'s and defs/'s packages and top-level modules


def test_no_new_sql_paste() -> None:
    found = Counter(item.split(":")[0] for item in shape.measure().sql_pastes)
    grown = {path: n for path, n in found.items() if n > SQL_PASTES_LEFT.get(path, 0)}
    assert grown == {}, "new SQL pastes (run `make shape` for their lines)"


def _measure(root: Path, files: dict[str, str]) -> shape.Findings:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return shape.measure(sorted(root.rglob("*.py")), root)


def test_the_sql_rule_allows_only_quoting_constants_and_helper_fragments(tmp_path: Path) -> None:
    findings = _measure(tmp_path, {"b2b_platform/lib/bad.py": '''
        from b2b_platform.lib.warehouse import sql as helpers
        from b2b_platform.lib.warehouse.sql import identifier_list, quote_identifier

        TABLE = "etl.run_log"
        ORDER = {"a": "month"}

        def f(conn, month, table, columns, s):
            cols = identifier_list(columns)
            if month:
                name = quote_identifier(table)
            else:
                name = table  # one assignment that is not the helper's spoils the name
            conn.execute(f"SELECT {cols} FROM {TABLE} ORDER BY {ORDER[month]}")  # fine
            conn.execute(f"SELECT * FROM {helpers.qualified_name(table)}")  # fine
            conn.execute(f"SELECT * FROM {TABLE} WHERE month = {month}")  # a value
            conn.execute(f"SELECT * FROM {table}")  # a parameter, whatever its name
            conn.execute(f"SELECT * FROM {name}")
            conn.execute(f"SELECT * FROM {s.table}")  # an attribute
            conn.execute(f"SELECT {', '.join(columns)} FROM {TABLE}")  # a join
            print(f"no SQL here: {month}")
        '''})  # fmt: skip
    pasted = [item.split(" pastes ")[1] for item in findings.sql_pastes]
    assert pasted == ["month", "table", "name", "s.table", "', '.join(columns)"]
    assert len(findings.sql_fstrings) == 7


def test_the_sql_rule_allows_fragments_declared_sql_fragment(tmp_path: Path) -> None:
    findings = _measure(tmp_path, {"b2b_platform/lib/bad.py": '''
        from collections.abc import Mapping
        from dataclasses import dataclass
        from b2b_platform.lib.warehouse.sql import SqlFragment

        ALL_ROWS = "TRUE"

        @dataclass(frozen=True)
        class Slice:
            query: SqlFragment
            where: SqlFragment | None
            table: str

        def f(conn, s: Slice, views: Mapping[str, SqlFragment], where: SqlFragment | None,
              text: str, other: SqlFragment):
            if not where:
                where = ALL_ROWS  # a constant keeps it a fragment
            other = text  # any other assignment spoils it
            conn.execute(f"SELECT * FROM ({s.query}) WHERE {s.where}")  # fine
            conn.execute(f"CREATE VIEW v AS {views['v']} WHERE {where}")  # fine
            conn.execute(f"SELECT * FROM {s.table}")  # a field that is not a fragment
            conn.execute(f"SELECT * FROM t WHERE {text}")  # a str parameter
            conn.execute(f"SELECT * FROM t WHERE {other}")
            conn.execute(f"SELECT * FROM t WHERE {SqlFragment(text)}")  # a cast, not a quote
        '''})  # fmt: skip
    pasted = [item.split(" pastes ")[1] for item in findings.sql_pastes]
    assert pasted == ["s.table", "text", "other", "SqlFragment(text)"]


def test_the_import_rules_see_local_relative_and_type_only_imports(tmp_path: Path) -> None:
    findings = _measure(tmp_path, {
        "b2b_platform/__init__.py": "",
        "b2b_platform/definitions.py": "def defs(): ...\n",
        "b2b_platform/lib/__init__.py": "",
        "b2b_platform/lib/fanout.py": '''
            def run():
                from b2b_platform.definitions import defs  # a local import still counts
                return defs()
            ''',
        "b2b_platform/lib/reader.py": "from ..defs import loading\n",  # relative, upward
        "b2b_platform/defs/__init__.py": "",
        "b2b_platform/defs/loading.py": "from b2b_platform.defs.not_a_log import absurd\n",
        "b2b_platform/defs/not_a_log.py": '''
            from typing import TYPE_CHECKING
            from dagster import _core
            if TYPE_CHECKING:
                from b2b_platform.defs.loading import FilePiece
            def absurd(): ...
            ''',
        "b2b_common/__init__.py": "import b2b_platform.lib\n",  # a package imported upward
    })  # fmt: skip
    assert [u.split(" ", 1)[1] for u in findings.module_upward_imports] == [
        "b2b_platform.lib.fanout -> b2b_platform.definitions",
        "b2b_platform.lib.reader -> b2b_platform.defs.loading",
    ]
    assert findings.module_upward_imports[0].startswith("b2b_platform/lib/fanout.py:3 ")
    [cycle] = findings.module_cycles
    assert cycle.startswith("b2b_platform.defs.loading, b2b_platform.defs.not_a_log: ")
    assert "b2b_platform/defs/not_a_log.py:5" in cycle
    assert findings.private_imports == ["b2b_platform/defs/not_a_log.py:3 dagster._core"]
    assert findings.upward_imports == ["b2b_common -> b2b_platform (b2b_common/__init__.py:1)"]


def test_the_import_rules_see_a_cycle_between_packages_through_different_modules(
    tmp_path: Path,
) -> None:
    """No two modules import each other, yet lib/warehouse and lib/settings.py lean on
    each other: the cycle a package-level picture shows."""
    findings = _measure(tmp_path, {
        "b2b_platform/__init__.py": "",
        "b2b_platform/lib/__init__.py": "",
        "b2b_platform/lib/settings.py": "from b2b_platform.lib.warehouse.location import parse\n",
        "b2b_platform/lib/warehouse/__init__.py": "",
        "b2b_platform/lib/warehouse/location.py": "def parse(): ...\n",
        "b2b_platform/lib/warehouse/resource.py": "from b2b_platform.lib.settings import Settings\n",
        "b2b_platform/lib/weblogs/__init__.py": "",
        "b2b_platform/lib/weblogs/reader.py": "from b2b_platform.lib.warehouse import location\n",
    })  # fmt: skip
    assert findings.module_cycles == []
    [cycle] = findings.part_cycles
    assert cycle.startswith("b2b_platform.lib.settings, b2b_platform.lib.warehouse: ")
    assert "b2b_platform/lib/warehouse/resource.py:1" in cycle and "weblogs" not in cycle
