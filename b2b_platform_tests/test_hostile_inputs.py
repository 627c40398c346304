"""The hostile-input corpus loaded by one `b2b run`: every file isolated, memory bounded,
nothing outside the configured directories read (see hostile_corpus.py for the cases)."""

import os
import shutil
from pathlib import Path

import pytest

from b2b_platform_tests.helpers import query, warehouse_env
from b2b_platform_tests.hostile_corpus import CASES, SECRET, run_b2b, write_corpus

pytestmark = pytest.mark.slow

PEAK_RSS_LIMIT_MIB = 2048


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, tiny_sources):
    data_dir, _ = tiny_sources
    work = tmp_path_factory.mktemp("hostile")
    logs, leads = work / "in" / "weblogs", work / "in" / "leads"
    shutil.copytree(data_dir / "weblogs", logs)
    shutil.copytree(data_dir / "leads", leads)
    write_corpus(logs, leads)
    warehouse = work / "warehouse" / "b2b.duckdb"
    env = {
        **os.environ,
        **warehouse_env(data_dir, warehouse),
        "B2B_LOG_DIR": str(logs),
        "B2B_LEADS_DIR": str(leads),
        "DAGSTER_HOME": str(work / "home"),
    }
    first = run_b2b(env, "run")
    second = run_b2b(env, "run")  # nothing new: the same outcome, nothing re-read
    return warehouse, logs, leads, first, second


def _manifest(warehouse: Path) -> dict[str, tuple[str, str | None]]:
    rows = query(warehouse, "SELECT path, status, error FROM etl.file_manifest")
    return {Path(path).name: (status, error) for path, status, error in rows}


def test_the_run_finishes_bounded_and_names_every_failed_file(hostile_run):
    _, _, _, (code, _, peak_mib, _, err), _ = hostile_run
    assert code == 1, err[-3000:]  # files failed; nothing crashed or aborted
    assert peak_mib < PEAK_RSS_LIMIT_MIB
    for case in CASES:
        if case.status == "failed":
            lines = [line for line in err.splitlines() if case.name in line]
            assert len(lines) == 1 and lines[0].startswith("b2b: error:"), (case.name, err)
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "case", CASES, ids=[c.name.encode("utf-8", "replace").decode() for c in CASES]
)
def test_each_entry_gets_its_outcome(hostile_run, case):
    warehouse = hostile_run[0]
    shown = case.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    status, error = _manifest(warehouse)[shown]
    assert status == case.status, error
    assert case.error in (error or ""), error
    for reason, count in case.reasons.items():
        found = query(
            warehouse,
            "SELECT count(*) FROM quarantine.rejected_records WHERE reason_code = ?"
            " AND (starts_with(record_key, ?) OR starts_with(record_key, ?))",
            [reason, f"{case.name}:", str(Path(hostile_run[2]) / case.name)],
        )[0][0]
        assert found == count, (case.name, reason)


def test_nothing_outside_the_directories_was_read(hostile_run):
    warehouse, *_, (_, _, _, out, err), _ = hostile_run
    assert SECRET not in out + err
    columns = query(
        warehouse,
        "SELECT table_schema, table_name, column_name FROM information_schema.columns"
        " WHERE data_type = 'VARCHAR' AND table_schema <> 'main'",
    )
    for schema, table, column in columns:
        hits = query(
            warehouse,
            f'SELECT count(*) FROM {schema}.{table} WHERE contains("{column}", ?)',
            [SECRET],
        )[0][0]
        assert hits == 0, f"{schema}.{table}.{column}"


def test_odd_but_legal_lines_load_with_their_fields(hostile_run):
    warehouse = hostile_run[0]
    rows = query(
        warehouse,
        "SELECT split_part(source_file, '/', -1), user_agent, client_ip FROM raw.weblogs"
        " WHERE source_file LIKE '%access-2026-11-0_.log' OR source_file LIKE '%access-2026-11-10.log'"
        " ORDER BY ALL",
    )
    by_file: dict[str, list] = {}
    for name, agent, client in rows:
        by_file.setdefault(name, []).append((agent, client))
    # a control byte no longer cuts the line: the whole agent is there
    assert sorted(a for a, _ in by_file["access-2026-11-08.log"]) == [
        "Mozilla/5.0 \x1e\x1c\x1d",
        "Mozilla/5.0 \x1f unit-separator",
    ]
    ((agent, _),) = by_file["access-2026-11-09.log"]
    assert len(agent) == 512  # cut before parsing
    ((_, client),) = by_file["access-2026-11-10.log"]
    assert client is None  # 999.999.999.999 is no address
    assert "access-2026-11-04.log" not in by_file  # empty files: loaded, no rows


def test_checks_pass_and_the_accounting_holds(hostile_run):
    warehouse = hostile_run[0]
    broken = query(
        warehouse,
        "SELECT source, entity, partition_key FROM etl.record_accounting"
        " WHERE rows_read <> rows_loaded + rows_rejected + rows_merged",
    )
    assert broken == []
    # two empty day files are not "the same file loaded twice"; failed files fail alone
    _, _, _, (_, _, _, out, _), _ = hostile_run
    assert "manifest_consistent" not in out
    assert "unique_key" not in out


def test_a_second_run_reads_nothing_again(hostile_run):
    first, second = hostile_run[3], hostile_run[4]
    assert second[0] == first[0]
    warehouse = hostile_run[0]
    loaded_twice = query(
        warehouse,
        "SELECT count(*) FROM etl.run_log WHERE asset_key = 'raw/weblogs' AND rows_read > 0",
    )[0][0]
    months_with_new_lines = query(
        warehouse,
        "SELECT count(DISTINCT partition_key) FROM etl.file_manifest WHERE source = 'weblogs'",
    )[0][0]
    assert loaded_twice <= months_with_new_lines  # the second run read no line
