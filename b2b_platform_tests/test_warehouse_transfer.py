"""`b2b export-warehouse` and `b2b import-warehouse` between two warehouse files (the lake
is the other end in test_lake.py)."""

from __future__ import annotations

import json

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
        "staging.web_requests", "core.fct_web_requests", "quarantine.rejects_by_month"
    }

    copy = tmp_path / "copy" / "b2b.duckdb"
    monkeypatch.setenv("B2B_WAREHOUSE", str(copy))
    assert main(["import-warehouse", str(export)]) == 0
    assert "imported 42 tables" in capsys.readouterr().out
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
