"""`b2b export-warehouse` and `b2b import-warehouse` between two warehouse files (the lake
is the other end in test_lake.py), and the crafted exports an import refuses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from b2b_platform.cli import main
from b2b_platform_tests.helpers import snapshot

SCHEMAS = ("raw", "staging", "core", "reports", "quarantine", "etl")


def test_a_warehouse_moves_whole(built_warehouse, tmp_path, monkeypatch, capsys):
    export = tmp_path / "export"
    monkeypatch.setenv("B2B_WAREHOUSE", str(built_warehouse))
    assert main(["export-warehouse", str(export)]) == 0
    manifest = json.loads((export / "warehouse.json").read_text())
    assert manifest["tables"]["reports.monthly_sales"] == 13
    assert set(manifest["views"]) == {
        "staging.web_requests",
        "core.fct_web_requests",
        "quarantine.rejects_by_month",
    }

    copy = tmp_path / "copy" / "b2b.duckdb"
    monkeypatch.setenv("B2B_WAREHOUSE", str(copy))
    assert main(["import-warehouse", str(export)]) == 0
    assert "imported 43 tables" in capsys.readouterr().out
    assert snapshot(copy, SCHEMAS) == snapshot(built_warehouse, SCHEMAS)


def test_transfer_mistakes_are_one_line(built_warehouse, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("B2B_WAREHOUSE", str(built_warehouse))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("x")
    assert main(["export-warehouse", str(busy)]) == 2
    assert "is not empty: export into a new directory" in capsys.readouterr().err
    # into a warehouse that already has those tables: nothing is overwritten
    export = tmp_path / "export"
    assert main(["export-warehouse", str(export)]) == 0
    assert main(["import-warehouse", str(export)]) == 2
    assert "already holds" in capsys.readouterr().err
    monkeypatch.setenv("B2B_WAREHOUSE", str(tmp_path / "new.duckdb"))
    assert main(["import-warehouse", str(tmp_path / "nothing-here")]) == 2
    assert "written by `b2b export-warehouse`" in capsys.readouterr().err


# -- an export directory is input: crafted ones are refused, and run nothing ----------


@pytest.fixture(scope="module")
def clean_export(built_warehouse, tmp_path_factory) -> Path:
    export = tmp_path_factory.mktemp("clean") / "export"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("B2B_WAREHOUSE", str(built_warehouse))
        assert main(["export-warehouse", str(export)]) == 0
    return export


def _crafted(clean_export: Path, tmp_path: Path) -> Path:
    export = tmp_path / "crafted"
    shutil.copytree(clean_export, export)
    return export


def _edit_manifest(export: Path, edit) -> None:
    manifest = json.loads((export / "warehouse.json").read_text())
    edit(manifest)
    (export / "warehouse.json").write_text(json.dumps(manifest))


def _rewrite_table(export: Path, table: str, select: str) -> int:
    """Replace a table's Parquet file with `select` over its rows (FROM t)."""
    path = export / f"{table}.parquet"
    conn = duckdb.connect()
    conn.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{path}')")
    path.unlink()
    conn.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
    return conn.execute(f"SELECT count(*) FROM ({select})").fetchall()[0][0]


def _import(export: Path, target: Path, capsys) -> str:
    """Import into `target`: refused with one line, exit 2, and no warehouse left."""
    with pytest.MonkeyPatch.context() as env:  # set for this import only
        env.setenv("B2B_WAREHOUSE", str(target))
        code = main(["import-warehouse", str(export)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("b2b: error: "), err
    assert not target.exists()  # the target is left as it was: absent
    return err


def test_view_sql_in_a_manifest_is_never_run(clean_export, tmp_path, monkeypatch, capsys):
    """The manifest's view SQL is ignored: the code's own views are created."""
    export = _crafted(clean_export, tmp_path)
    leak = tmp_path / "shadow_copy.csv"
    _edit_manifest(export, lambda m: m["views"].update({
        "staging.web_requests":
            f"COPY (SELECT content FROM read_text('/etc/passwd')) TO '{leak}'",
    }))  # fmt: skip
    target = tmp_path / "w.duckdb"
    monkeypatch.setenv("B2B_WAREHOUSE", str(target))
    assert main(["import-warehouse", str(export)]) == 0
    assert not leak.exists()
    with duckdb.connect(str(target), read_only=True) as conn:
        sql = conn.execute(
            "SELECT sql FROM duckdb_views() WHERE view_name = 'web_requests'"
        ).fetchall()[0][0]
    assert "raw.weblogs" in sql and "read_text" not in sql


@pytest.mark.parametrize(
    "name",
    [
        "raw.t AS SELECT 1; COPY (SELECT 1) TO '{leak}'; CREATE TABLE raw.t2",
        "core.dim_customer_copy",
        "main.anything",
    ],
)
def test_a_table_the_code_does_not_define_is_refused(
    clean_export, tmp_path, monkeypatch, capsys, name
):
    export = _crafted(clean_export, tmp_path)
    leak = tmp_path / "leak.csv"
    name = name.format(leak=leak)
    _edit_manifest(export, lambda m: m["tables"].update({name: 1}))
    (export / f"{name.replace('/', '_')}.parquet").write_bytes(b"PAR1")
    err = _import(export, tmp_path / "w.duckdb", capsys)
    assert "does not define" in err and not leak.exists()


def test_a_view_entry_cannot_replace_a_table_of_a_populated_warehouse(
    built_warehouse, clean_export, tmp_path, monkeypatch, capsys
):
    export = _crafted(clean_export, tmp_path)
    _edit_manifest(export, lambda m: m["views"].update({
        "core.dim_customer": "CREATE OR REPLACE TABLE core.dim_customer AS SELECT 1 AS x",
    }))  # fmt: skip
    populated = tmp_path / "populated.duckdb"
    shutil.copy(built_warehouse, populated)
    before = snapshot(populated, SCHEMAS)
    monkeypatch.setenv("B2B_WAREHOUSE", str(populated))
    assert main(["import-warehouse", str(export)]) == 2
    assert "already holds" in capsys.readouterr().err
    assert snapshot(populated, SCHEMAS) == before


@pytest.mark.parametrize(
    ("table", "select", "said"),
    [
        ("core.dim_customer", "SELECT *, '30111222' AS document_number,"
         " 'Ana Pérez' AS full_name FROM t", "+document_number"),
        ("core.dim_company", "SELECT company_id FROM t", "-city"),
        ("core.dim_company", "SELECT * REPLACE (company_id::VARCHAR AS company_id) FROM t",
         "column types"),
    ],
)  # fmt: skip
def test_a_table_of_another_shape_is_refused(
    clean_export, tmp_path, monkeypatch, capsys, table, select, said
):
    export = _crafted(clean_export, tmp_path)
    rows = _rewrite_table(export, table, select)
    _edit_manifest(export, lambda m: m["tables"].update({table: rows}))
    err = _import(export, tmp_path / "w.duckdb", capsys)
    assert f"does not have the columns of {table}" in err and said in err


def test_personal_data_in_an_analyst_table_is_refused(clean_export, tmp_path, capsys):
    export = _crafted(clean_export, tmp_path)
    _rewrite_table(export, "core.dim_company",
                   "SELECT * REPLACE ('ana.perez' || company_id || '@example.com' AS city) FROM t")  # fmt: skip
    err = _import(export, tmp_path / "w.duckdb", capsys)
    assert "core.dim_company holds personal data" in err


def test_rows_that_do_not_add_up_are_refused(clean_export, tmp_path, capsys):
    export = _crafted(clean_export, tmp_path)
    _rewrite_table(export, "etl.record_accounting",
                   "SELECT * REPLACE (rows_read + 1 AS rows_read) FROM t")  # fmt: skip
    assert "etl.record_accounting" in _import(export, tmp_path / "w.duckdb", capsys)


def test_a_row_count_other_than_the_manifest_s_is_refused(clean_export, tmp_path, capsys):
    export = _crafted(clean_export, tmp_path)
    _rewrite_table(export, "reports.monthly_sales", "SELECT * FROM t LIMIT 3")
    assert "holds 3 rows, the manifest says 13" in _import(export, tmp_path / "w.duckdb", capsys)


def _manifest_text(text: str):
    return lambda export: (export / "warehouse.json").write_text(text)


def _replace_file(table: str, make):
    def damage(export: Path) -> None:
        path = export / f"{table}.parquet"
        path.unlink()
        make(path)

    return damage


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda e: (e / "warehouse.json").unlink(), "warehouse.json is missing"),
        (_manifest_text("{}"), "is not a warehouse manifest"),
        (_manifest_text("[1, 2]"), "is not a warehouse manifest"),
        (_manifest_text('{"tables": [["raw.companies", 3]]}'), "is not a warehouse manifest"),
        (_manifest_text('{"tables": {"raw.companies": "3"}}'), "is not a count"),
        (_manifest_text("not json"), "is not a warehouse manifest"),
        (_replace_file("raw.companies", lambda p: None), "raw.companies.parquet is missing"),
        (_replace_file("raw.companies", lambda p: p.write_text("hello")),
         "is not a readable Parquet file"),
        (_replace_file("raw.companies", lambda p: p.symlink_to("/etc/passwd")),
         "cannot be opened"),
        (_replace_file("raw.companies", lambda p: os.mkfifo(p)), "is not a regular file"),
        (_replace_file("raw.companies", lambda p: p.mkdir()), "is not a regular file"),
        (_replace_file("raw.companies",
                       lambda p: (p.with_name("elsewhere").write_text("x"),
                                  os.link(p.with_name("elsewhere"), p))), "is a hard link"),
        (lambda e: ((e / "w.json").write_text((e / "warehouse.json").read_text()),
                    (e / "warehouse.json").unlink(),
                    (e / "warehouse.json").symlink_to(e / "w.json")), "cannot be opened"),
    ],
)  # fmt: skip
def test_a_malformed_export_is_one_line_and_writes_nothing(
    clean_export, tmp_path, capsys, damage, said
):
    export = _crafted(clean_export, tmp_path)
    damage(export)
    assert said in _import(export, tmp_path / "w.duckdb", capsys)


def test_a_fifo_in_the_export_never_hangs_the_import(clean_export, tmp_path):
    """In a child process with a deadline: a regression hangs, it must not hang the suite."""
    export = _crafted(clean_export, tmp_path)
    _replace_file("raw.orders", lambda p: os.mkfifo(p))(export)
    env = {**os.environ, "B2B_WAREHOUSE": str(tmp_path / "w.duckdb")}
    result = subprocess.run(
        [sys.executable, "-m", "b2b_platform.cli", "import-warehouse", str(export)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 2 and "is not a regular file" in result.stderr


@pytest.mark.parametrize("target", ["file", "/proc/forbidden/export", "/dev/null"])
def test_export_to_somewhere_unwritable_is_one_line(
    built_warehouse, tmp_path, monkeypatch, capsys, target
):
    if target == "file":
        target = str(tmp_path / "a_file")
        Path(target).write_text("x")
    monkeypatch.setenv("B2B_WAREHOUSE", str(built_warehouse))
    assert main(["export-warehouse", target]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("b2b: error: "), err


def test_the_code_s_tables_are_what_the_graph_builds(built_warehouse):
    """warehouse_tables.json, what an import accepts, is exactly what a build makes."""
    from b2b_platform.defs.warehouse_contents import warehouse_contents
    from b2b_platform.lib.warehouse.connection import warehouse_connection
    from b2b_platform.lib.warehouse_transfer import table_shapes

    with warehouse_connection(built_warehouse, read_only=True) as conn:
        built = {name: tuple(map(tuple, columns)) for name, columns in table_shapes(conn).items()}
        views = {name for (name,) in conn.execute(
            "SELECT schema_name || '.' || view_name FROM duckdb_views()"
            " WHERE NOT internal AND database_name = current_database()").fetchall()}  # fmt: skip
    contents = warehouse_contents()
    assert built == dict(contents.tables), (
        "the graph builds other tables than warehouse_tables.json says: after checking the"
        " change, run `python -m b2b_platform_tests.warehouse_tables WAREHOUSE`"
    )
    assert views == set(contents.views)
