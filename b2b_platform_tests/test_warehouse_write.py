"""The one write helper: atomic slices, run records, dead-run sweep."""

import duckdb
import pytest

from b2b_platform.lib.warehouse.step import warehouse_step
from b2b_platform.lib.warehouse.writes import Accounting, QuarantineSlice, TableSlice


def _rows(path, sql):
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _write_month(path, month, values, run_id="r1", fail=False):
    with warehouse_step(path, run_id, "test/asset", month) as step:
        rows = ", ".join(f"({v}, '{month}')" for v in values)
        step.commit(
            [TableSlice("staging.things", f"SELECT * FROM (VALUES {rows}) t(value, month)",
                        where="month = ?", params=[month])],
            quarantine=[QuarantineSlice("src", "things", month,
                        "SELECT 'k1' AS record_key, 'bad' AS reason_code, 'rejected' AS action,"
                        " 'why' AS detail, '{}' AS raw_record")],
            accounting=[Accounting("src", "things", month, len(values) + 1,
                        f"SELECT count(*) FROM staging.things WHERE month = '{month}'")],
        )  # fmt: skip
        if fail:
            raise RuntimeError("boom after commit")


def test_slices_replace_only_their_month(tmp_path):
    path = tmp_path / "w.duckdb"
    _write_month(path, "2026-01", [1, 2, 3])
    _write_month(path, "2026-02", [4])
    _write_month(path, "2026-01", [5, 6])
    assert _rows(path, "SELECT value FROM staging.things ORDER BY 1") == [(4,), (5,), (6,)]
    accounting = _rows(path, "SELECT partition_key, rows_read, rows_loaded, rows_rejected"
                             " FROM etl.record_accounting ORDER BY 1")  # fmt: skip
    assert accounting == [("2026-01", 3, 2, 1), ("2026-02", 2, 1, 1)]
    assert _rows(path, "SELECT count(*) FROM quarantine.rejected_records") == [(2,)]
    log = _rows(
        path, "SELECT partition_key, status, rows_written FROM etl.run_log ORDER BY started_at"
    )
    assert [r[1] for r in log] == ["succeeded"] * 3


def test_failure_inside_the_transaction_keeps_the_old_slice(tmp_path):
    path = tmp_path / "w.duckdb"
    _write_month(path, "2026-01", [1, 2])
    with pytest.raises(duckdb.Error), warehouse_step(path, "r2", "test/asset", "2026-01") as step:
        step.commit([
            TableSlice("staging.things", "SELECT 9 AS value, '2026-01' AS month",
                       where="month = ?", params=["2026-01"]),
            TableSlice("staging.other", "SELECT * FROM no_such_table"),
        ])  # fmt: skip
    assert _rows(path, "SELECT value FROM staging.things ORDER BY 1") == [(1,), (2,)]
    status = _rows(path, "SELECT status, error IS NOT NULL, broken_at IS NOT NULL FROM etl.run_log"
                         " WHERE run_id = 'r2'")  # fmt: skip
    assert status == [("failed", True, True)]


def test_a_stop_whose_interrupt_lands_on_the_cleanup_is_still_a_stop(tmp_path, monkeypatch):
    """A signal interrupts whatever DuckDB statement runs when its thread hears it: landing
    on the step's own break record, the break is still recorded and the step still ends
    as a stop (KeyboardInterrupt), never as an error after which the run would go on."""
    from b2b_platform.lib.warehouse import slice_versions

    forget, calls = slice_versions.forget_versions, []

    def interrupted_once(conn, keys):
        calls.append(keys)
        if len(calls) == 1:
            raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")
        return forget(conn, keys)

    monkeypatch.setattr(slice_versions, "forget_versions", interrupted_once)
    path = tmp_path / "w.duckdb"
    with pytest.raises(KeyboardInterrupt), warehouse_step(path, "r1", "test/asset", None):
        raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")
    assert len(calls) == 2
    status = _rows(
        path, "SELECT status, broken_at IS NOT NULL FROM etl.run_log WHERE run_id = 'r1'"
    )
    assert status == [("interrupted", True)]


def test_new_columns_are_added_and_inserts_go_by_name(tmp_path):
    path = tmp_path / "w.duckdb"
    with warehouse_step(path, "r1", "a", "m1") as step:
        step.commit([TableSlice("raw.t", "SELECT 1 AS a, 'm1' AS p", where="p = ?", params=["m1"])])
    with warehouse_step(path, "r2", "a", "m2") as step:
        step.commit([TableSlice("raw.t", "SELECT 'm2' AS p, 2 AS a, 'x' AS extra",
                                where="p = ?", params=["m2"])])  # fmt: skip
    assert _rows(path, "SELECT a, p, extra FROM raw.t ORDER BY a") == [
        (1, "m1", None),
        (2, "m2", "x"),
    ]


def test_dead_running_steps_are_marked_interrupted(tmp_path):
    path = tmp_path / "w.duckdb"
    _write_month(path, "2026-01", [1])
    conn = duckdb.connect(str(path))
    conn.execute(
        "INSERT INTO etl.run_log (run_id, asset_key, partition_key, started_at, status)"
        " VALUES ('dead', 'test/asset', '2026-02', TIMESTAMP '2026-01-01 10:00', 'running')"
    )
    conn.close()
    _write_month(path, "2026-03", [1], run_id="r3")
    rows = _rows(
        path, "SELECT status, broken_at >= started_at, error FROM etl.run_log WHERE run_id = 'dead'"
    )
    assert rows[0][0] == "interrupted" and rows[0][1] is True and "killed" in rows[0][2]


def test_success_is_recorded_in_the_same_transaction_as_the_data(tmp_path):
    path = tmp_path / "w.duckdb"
    with pytest.raises(RuntimeError):
        _write_month(path, "2026-01", [1], fail=True)
    # the data committed together with its success record; a later error cannot contradict it
    assert _rows(path, "SELECT status FROM etl.run_log") == [("succeeded",)]
    assert _rows(path, "SELECT value FROM staging.things") == [(1,)]


def test_readers_wait_for_a_writer_then_fail_clearly(tmp_path):
    import subprocess
    import sys
    import time

    from b2b_common.errors import UserError
    from b2b_platform.lib.warehouse.connection import warehouse_connection

    path = tmp_path / "w.duckdb"
    _write_month(path, "2026-01", [1])
    holder = subprocess.Popen([sys.executable, "-c",
        f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(4)"],
        stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    messages: list[str] = []
    # the wait names what it waits for, and its end names it too
    holder_named = rf"locked by process {holder.pid} \(python"
    with (
        pytest.raises(UserError, match=holder_named + r".*gave up after 1 s"),
        warehouse_connection(path, read_only=True, wait_seconds=1, on_wait=messages.append),
    ):
        pass
    assert len(messages) == 1 and f"process {holder.pid}" in messages[0]
    messages.clear()
    started = time.monotonic()
    with warehouse_connection(
        path, read_only=True, wait_seconds=30, on_wait=messages.append
    ) as conn:
        assert conn.execute("SELECT count(*) FROM staging.things").fetchall() == [(1,)]
    assert time.monotonic() - started > 1
    assert "waiting up to 30 s" in messages[0] and "opened after waiting" in messages[1]
    holder.wait()


def _run_monthly_things(tmp_path, month, last_month: str):
    """Materialize staging.things from January 2026 to `last_month` through each_month,
    `month(month_step, partition_key)` being each month's work, into tmp_path/w.duckdb."""
    import dagster as dg

    from b2b_platform.lib.resources import build_resources
    from b2b_platform.lib.settings import Settings
    from b2b_platform.lib.warehouse.resource import WarehouseResource

    versions = build_resources(Settings.from_env())["duckdb"].versions
    warehouse = WarehouseResource(database=str(tmp_path / "w.duckdb"), versions=versions)

    @dg.asset(
        key=["staging", "things"],
        partitions_def=dg.MonthlyPartitionsDefinition(start_date="2026-01-01"),
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def things(context: dg.AssetExecutionContext, duckdb: WarehouseResource) -> None:
        duckdb.each_month(context, month)

    return dg.materialize(
        [things],
        resources={"duckdb": warehouse},
        tags={
            "dagster/asset_partition_range_start": "2026-01-01",
            "dagster/asset_partition_range_end": last_month,
        },
        raise_on_error=False,
    )


def _commit_thing(step, key: str) -> None:
    step.commit([TableSlice("staging.things", "SELECT getvariable('partition_key') AS partition_key",
                            where="partition_key = ?", params=[key])])  # fmt: skip


def test_a_steps_months_run_two_at_a_time_and_a_failed_month_stops_the_later_ones(tmp_path):
    """each_month on a warehouse file: the first month alone, then two side by side, each
    on its own connection; a month does not mark its neighbour's running step as dead;
    a failed month fails the step after its neighbour finished, and no later one starts."""
    import threading

    path = tmp_path / "w.duckdb"
    feb_in, mar_in = threading.Event(), threading.Event()
    overlapped: list[bool] = []

    def month(month_step, key: str) -> None:
        if key == "2026-03-01":  # begins once February's step is recorded as running
            feb_in.wait(10)
        with month_step(key) as step:
            if key == "2026-02-01":
                feb_in.set()
                overlapped.append(mar_in.wait(10))  # March runs meanwhile
            if key == "2026-03-01":
                mar_in.set()
            if key == "2026-04-01":
                raise RuntimeError("boom")
            _commit_thing(step, key)

    result = _run_monthly_things(tmp_path, month, "2026-06-01")
    assert not result.success and overlapped == [True]
    log = _rows(path, "SELECT partition_key[:7], status FROM etl.run_log ORDER BY 1")
    # April failed beside May; June, after them, never started
    assert log == [("2026-01", "succeeded"), ("2026-02", "succeeded"), ("2026-03", "succeeded"),
                   ("2026-04", "failed"), ("2026-05", "succeeded")]  # fmt: skip
    months = _rows(path, "SELECT partition_key[:7] FROM staging.things ORDER BY 1")
    assert months == [("2026-01",), ("2026-02",), ("2026-03",), ("2026-05",)]


def test_months_of_a_step_share_a_connection_while_quick_and_not_after_a_failure(
    tmp_path, monkeypatch
):
    """SharedConnection: the months of one step open the warehouse once; a failed
    month's connection is closed and the next month opens afresh; held longer than
    SHARED_CONNECTION_SECONDS, it says it has expired (each_month then closes it)."""
    from b2b_platform.lib.warehouse import connection as opener
    from b2b_platform.lib.warehouse import resource

    path = tmp_path / "w.duckdb"
    opened: list[duckdb.DuckDBPyConnection] = []
    connect = duckdb.connect

    def counted(*args, **kwargs):
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(opener.duckdb, "connect", counted)

    def month(shared, month, fail=False):
        with shared.use() as (conn, schema_made):
            with warehouse_step(path, "r1", "test/asset", month, connection=conn,
                                schema_made=schema_made) as step:  # fmt: skip
                if fail:
                    raise RuntimeError("boom")
                step.commit([TableSlice("staging.things", f"SELECT 1 AS v, '{month}' AS month",
                                        where="month = ?", params=[month])])  # fmt: skip
            return schema_made

    with resource.SharedConnection(resource.WarehouseResource(database=str(path)), print) as shared:
        assert [month(shared, m) for m in ("2026-01", "2026-02", "2026-03")] == [False, True, True]
        assert len(opened) == 1
        with pytest.raises(RuntimeError, match="boom"):
            month(shared, "2026-04", fail=True)
        assert month(shared, "2026-05") is False and len(opened) == 2  # opened afresh
        assert not shared.expired
        monkeypatch.setattr(resource, "SHARED_CONNECTION_SECONDS", 0.0)
        assert shared.expired
        shared.close()  # as each_month does with an expired lane
        month(shared, "2026-06")
        assert len(opened) == 3
    with pytest.raises(duckdb.ConnectionException):
        opened[-1].execute("SELECT 1")  # closed with the step
    rows = _rows(path, "SELECT month, status FROM staging.things JOIN etl.run_log"
                       " ON partition_key = month ORDER BY 1")  # fmt: skip
    assert rows == [("2026-01", "succeeded"), ("2026-02", "succeeded"), ("2026-03", "succeeded"),
                    ("2026-05", "succeeded"), ("2026-06", "succeeded")]  # fmt: skip


@pytest.mark.parametrize("held_too_long", [False, True], ids=["quick", "held-too-long"])
def test_a_steps_lanes_close_their_connections_together_once_one_was_held_too_long(
    tmp_path, monkeypatch, held_too_long
):
    """each_month keeps each lane's connection across its months while they are quick;
    once one was held longer than SHARED_CONNECTION_SECONDS, every lane closes its own
    before the next group of months, so a reader waiting for the file gets in."""
    from b2b_platform.lib.warehouse import connection as opener
    from b2b_platform.lib.warehouse import resource

    path = tmp_path / "w.duckdb"
    opened: list[str] = []
    connect = duckdb.connect

    def counted(*args, **kwargs):
        opened.append(str(args[0] if args else kwargs.get("database")))
        return connect(*args, **kwargs)

    monkeypatch.setattr(opener.duckdb, "connect", counted)
    if held_too_long:
        monkeypatch.setattr(resource, "SHARED_CONNECTION_SECONDS", 0.0)

    def month(month_step, key: str) -> None:
        with month_step(key) as step:
            _commit_thing(step, key)

    result = _run_monthly_things(tmp_path, month, "2026-05-01")
    assert result.success
    # January alone, then February and March, then April and May: two lanes open once
    # each, or every lane again before each of the two groups after January
    warehouse_opens = [name for name in opened if name == str(path)]
    assert len(warehouse_opens) == (5 if held_too_long else 2), opened
    months = _rows(path, "SELECT partition_key[:7] FROM staging.things ORDER BY 1")
    assert months == [("2026-01",), ("2026-02",), ("2026-03",), ("2026-04",), ("2026-05",)]
