"""The progress line `b2b run` keeps on a terminal while a stage runs."""

import io
import time

import dagster as dg
import pytest

from b2b_platform.lib.orchestration import run_progress
from b2b_platform.lib.orchestration.run_progress import PUBLISHED, progress_line


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@dg.asset
def months_logged(context: dg.AssetExecutionContext) -> None:
    for month in ("Jan 2026", "Feb 2026", "Mar 2026"):
        context.log.info(f"{PUBLISHED}{month}")


@dg.asset
def second_step() -> None:
    pass


@pytest.fixture
def finished_run() -> tuple[dg.DagsterInstance, str]:
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([months_logged, second_step], instance=instance)
    return instance, result.run_id


def test_counts_published_months_and_finished_steps(finished_run, monkeypatch) -> None:
    instance, run_id = finished_run
    monkeypatch.setattr(run_progress, "POLL_SECONDS", 0.05)
    out = _Terminal()
    with progress_line(instance, lambda: run_id, steps=2, months=3, out=out):
        time.sleep(0.3)
    shown = out.getvalue()
    assert "3 of 6 months published" in shown
    assert shown.endswith("\r\x1b[K")  # the line is cleared for the stage's own line

    out = _Terminal()
    with progress_line(instance, lambda: run_id, steps=2, months=0, out=out):
        time.sleep(0.3)
    assert "2 of 2 steps done" in out.getvalue()


def test_reads_on_from_where_it_stopped(finished_run) -> None:
    instance, run_id = finished_run
    tally = run_progress._Tally(instance)
    tally.read(run_id)
    tally.read(run_id)  # nothing new: the counts do not double
    assert (tally.steps, tally.months) == (2, 3)


def test_prints_nothing_when_the_output_is_not_a_terminal(finished_run) -> None:
    instance, run_id = finished_run
    out = io.StringIO()
    with progress_line(instance, lambda: run_id, steps=2, months=3, out=out):
        pass
    assert out.getvalue() == ""
