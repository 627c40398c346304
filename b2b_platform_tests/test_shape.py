"""The code's shape holds its goals: no cycle, no upward import, no private Dagster
import, no value pasted into SQL (`make shape` prints the same measure with every
finding)."""

from pathlib import Path

from b2b_platform_tests import shape


def test_no_import_cycle_no_upward_import_no_private_dagster_import() -> None:
    findings = shape.measure()
    assert findings.cycles == []
    assert findings.upward_imports == []  # b2b_common < source_db < generators < b2b_platform
    assert findings.private_imports == []


def test_no_value_pasted_into_sql() -> None:
    assert shape.measure().sql_values == []


def test_the_measure_sees_what_it_looks_for(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text(
        "from dagster._core.definitions import x\n"
        "import b2b_platform.lib\n"
        "def f(conn, month, table):\n"
        "    conn.execute(f'SELECT * FROM {table} WHERE month = {month}')\n"
    )
    findings = shape.Findings()
    imports = shape.scan(module, findings)
    assert findings.private_imports and "dagster._core.definitions" in findings.private_imports[0]
    assert len(findings.sql_fstrings) == 1 and findings.sql_values[0].endswith("pastes month")
    assert "b2b_platform" in imports
