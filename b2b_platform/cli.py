"""`b2b`: the operator's command line."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import gc
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from b2b_common.errors import UserError
from b2b_platform.cli_forget import add_forget_command
from b2b_platform.cli_read import (
    mask_configured,
    quarantine_command,
    report_command,
    status_command,
)
from b2b_platform.cli_transfer import add_transfer_commands

if TYPE_CHECKING:  # imported where used: `b2b --help` must not wait for Dagster to load
    import dagster as dg

    from b2b_platform.lib.orchestration.run_queue import RunQueue
    from b2b_platform.lib.orchestration.runner import RunOutcome
    from b2b_platform.lib.orchestration.stale_slices import SourceVersions, StalePlan
    from b2b_platform.lib.settings import Settings
    from b2b_platform.lib.warehouse.run_log import HeldSlice

# what builds the definitions, for the child processes that run months side by side
DEFS_ENTRY = "b2b_platform.definitions:defs"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # whatever an error quotes of a connection setting (a driver's, DuckDB's, Dagster's
    # text) is masked here too, not only where it was raised
    source_db_url = getattr(args, "source_db_url", None)  # `b2b generate --source-db-url`
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"b2b: error: {mask_configured(str(exc), source_db_url)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("b2b: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `b2b report | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception:  # unforeseen: the whole traceback for a bug report, passwords masked
        print(mask_configured(traceback.format_exc(), source_db_url), end="", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="b2b",
        description=__doc__,
        epilog="Documentation in the repository: README.md, docs/cli.md (each command,"
        " each message), docs/data-contracts.md (sources, settings, reports, quality rules,"
        " ETL tables), docs/operations.md (running, failures, backfills, deployment),"
        " docs/architecture.md, docs/security.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_generate(commands)
    _add_run(commands)
    _add_read_only(commands)
    add_transfer_commands(commands)
    add_forget_command(commands)
    return parser


def _add_generate(commands: argparse._SubParsersAction) -> None:
    generate = commands.add_parser(
        "generate", help="write the three simulated sources (database, web logs, lead workbooks)"
    )
    generate.add_argument(
        "--scale", default="small", help="tiny, small, large or xlarge (default small)"
    )
    generate.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    generate.add_argument(
        "--as-of", dest="as_of", help="last simulated day, YYYY-MM-DD (default today, UTC)"
    )
    generate.add_argument("--out", default="data", help="output directory (default data)")
    generate.add_argument(
        "--source-db-url",
        dest="source_db_url",
        help="write the platform database here instead of OUT/source/b2b_platform.db "
        "(sqlite:///path or postgresql://...)",
    )
    generate.set_defaults(handler=_generate)


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run", help="bring every asset and monthly partition up to date (resumable, idempotent)"
    )
    run.add_argument(
        "--select",
        help="Dagster asset selection, e.g. 'tag:source=weblogs' or 'key:staging/*' (default all)",
    )
    run.add_argument(
        "--in-process",
        dest="in_process",
        action="store_true",
        help="execute the runs in this process even when a Dagster daemon serves the instance "
        "(by default they are then queued to it, behind any other run writing the warehouse)",
    )
    run.add_argument(
        "--plan",
        action="store_true",
        help="print which assets and months are stale and why, and run nothing",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="build every selected asset and month, even those already up to date with "
        "their sources, inputs, code and settings",
    )
    run.add_argument(
        "--new-pseudonym-key",
        dest="new_pseudonym_key",
        action="store_true",
        help="make the pseudonym key in use the warehouse's, in place of the one its "
        "pseudonyms were made with (rotating the key; otherwise another key is refused)",
    )
    run.set_defaults(handler=_run)


def _add_read_only(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser(
        "status", help="last runs, quarantine counts by reason, file manifest summary"
    )
    status.set_defaults(handler=status_command)

    from b2b_platform.lib.report_files.output import FORMATS, REPORT_ORDER

    report = commands.add_parser(
        "report", help="print a report (all four when no name is given) for people or programs"
    )
    report.add_argument("name", nargs="?", choices=list(REPORT_ORDER), metavar="NAME",
                        help=f"one of {', '.join(REPORT_ORDER)}")  # fmt: skip
    report.add_argument("--month", metavar="YYYY-MM", help="one month of monthly_sales")
    report.add_argument("--format", choices=FORMATS, default="table",
                        help="table (default) or markdown for people; csv or json for programs"
                        " (raw numbers, ISO dates)")  # fmt: skip
    report.set_defaults(handler=report_command)

    quarantine = commands.add_parser(
        "quarantine", help="print the records the warehouse held back (masked as stored)"
    )
    quarantine.add_argument("--source", choices=("platform_db", "weblogs", "leads"))
    quarantine.add_argument("--reason", help="a reason code, e.g. invalid_cuit")
    quarantine.add_argument("--month", metavar="YYYY-MM", help="a month, or none (no month)")
    quarantine.add_argument("--limit", type=_positive, default=50, help="at most N records (50)")
    quarantine.add_argument("--format", choices=FORMATS, default="table",
                            help="table (default), markdown, csv or json")  # fmt: skip
    quarantine.set_defaults(handler=quarantine_command)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _generate(args: argparse.Namespace) -> int:
    from b2b_platform.lib.settings import parse_date
    from generators.config import SCALES, GenerationConfig
    from generators.report import format_summary
    from generators.sources import generate_sources

    if args.scale not in SCALES:
        raise UserError(f"unknown scale {args.scale!r}: choose one of {', '.join(SCALES)}")
    as_of = (
        parse_date(args.as_of, f"--as-of {args.as_of!r}")
        if args.as_of
        else dt.datetime.now(dt.UTC).date()
    )
    config = GenerationConfig(scale=SCALES[args.scale], seed=args.seed, as_of=as_of)
    summary = generate_sources(config, Path(args.out), args.source_db_url)
    print(format_summary(config, args.scale, summary))
    return 0


def _dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to data/dagster_home so runs persist and show in the UI."""
    home = Path(os.environ.get("DAGSTER_HOME") or Path("data") / "dagster_home").resolve()
    config = home / "dagster.yaml"
    try:
        home.mkdir(parents=True, exist_ok=True)
        if not config.exists():
            shutil.copyfile(Path(__file__).parent / "dagster.dev.yaml", config)
        if not os.access(home, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise UserError(
            f"DAGSTER_HOME {home} is not a writable directory ({exc.strerror or exc}):"
            " point DAGSTER_HOME at one"
        ) from None
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _run(args: argparse.Namespace) -> int:
    from b2b_platform.lib.settings import Settings

    settings = Settings.from_env()  # configuration errors surface here as one line
    settings.check_directories()
    home = _dagster_home()
    _check_pseudonym_key(settings, renew=args.new_pseudonym_key, plan_only=args.plan)
    # with no --select, every source is probed from now on, while the definitions and
    # Dagster's instance load; a selection is known once the definitions are
    sources = None if args.force or args.select else _probe_sources(settings, None)

    import dagster as dg

    from b2b_platform.definitions import defs
    from b2b_platform.lib.asset_step import WAREHOUSE_POOL
    from b2b_platform.lib.dagster_internals import set_pool_limit
    from b2b_platform.lib.orchestration.runner import (
        RunOutcome,
        fail_abandoned_runs,
        run_stages,
        single_cli_run,
    )
    from b2b_platform.lib.orchestration.selection import resolve_selection, stale_only

    definitions = defs()
    keys = resolve_selection(definitions, args.select)
    if sources is None and not args.force:
        sources = _probe_sources(settings, keys)
    planner = None if sources is None else _Planner(definitions, keys, settings, sources)
    # Dagster's code and definitions live as long as the process: leave them out of the
    # cyclic collector's passes, which otherwise re-walk them again and again mid-load
    gc.freeze()
    with single_cli_run(home, exclusive=settings.warehouse_writers == 1):
        instance = dg.DagsterInstance.get()
        # one writer at a time for a file, B2B_LAKE_WRITERS for a lake
        set_pool_limit(instance, WAREHOUSE_POOL, settings.warehouse_writers)
        abandoned = fail_abandoned_runs(instance)
        if abandoned:
            print(f"marked {abandoned} run(s) of a killed `b2b run` as failed")
        if not args.plan:  # here, since a run finding all up to date begins no step
            _close_dead_steps(instance, settings)
        plan = planner.plan(instance) if planner else None
        if args.plan:
            _print_plan(plan, keys)
            return 0
        if plan is not None:
            keys = stale_only(definitions, keys, plan)
            if not keys:
                print(f"up to date: nothing changed in the sources of the {len(plan.up_to_date)}"
                      " selected assets (`b2b run --force` builds them anyway)")  # fmt: skip
                # a file that failed is read again once it changes: until then it is unread
                return 1 if _report_unread_files() else 0
        queue = None if args.in_process else _daemon_queue(instance, settings)
        where = f"queued to the daemon via {queue.url}" if queue else "in this process"
        up_to_date = f"; {len(plan.up_to_date)} up to date" if plan else ""
        print(f"materializing {len(keys)} assets{up_to_date}, {where} (Dagster home {home})")
        started = time.perf_counter()
        stop = threading.Event()
        outcome = RunOutcome(interrupted=True)  # what a signal before the first run leaves
        with _stop_on_signals(stop, interrupt=queue is None):
            outcome = run_stages(
                definitions, instance, keys, _echo, stop, queue,
                record_break=lambda run_id: _record_break(instance, settings, run_id), plan=plan,
                writers=settings.warehouse_writers,
                replan=functools.partial(planner.plan, instance) if planner else None,
                defs_entry=DEFS_ENTRY,
            )  # fmt: skip
    elapsed = time.perf_counter() - started
    if outcome.interrupted:
        return _report_stop(outcome, keys, elapsed)
    return _report_outcome(outcome, elapsed)


def _check_pseudonym_key(settings: Settings, *, renew: bool, plan_only: bool) -> None:
    """Refuse now a pseudonym key other than the warehouse's, before any work (its step
    checks again); with `renew`, record the one in use as the warehouse's instead."""
    from b2b_platform.lib.resources import current_key, made_key
    from b2b_platform.lib.warehouse.pseudonym_key import check_warehouse_key, claim_key

    if not renew:
        check_warehouse_key(settings.warehouse, current_key(settings))
    elif not plan_only and settings.warehouse.exists():  # a new one records its first key
        claim_key(settings.warehouse, lambda: made_key(settings), True, replace=True)
        print("recorded the pseudonym key in use as the warehouse's: the pseudonymized"
              " tables are stale until built with it")  # fmt: skip


def _close_dead_steps(instance: dg.DagsterInstance, settings: Settings) -> None:
    """Close the records of steps a killed process left `running` (see close_dead_steps)."""
    from functools import partial

    from b2b_platform.lib.dagster_internals import last_event_time
    from b2b_platform.lib.warehouse.step import close_dead_steps

    dead = close_dead_steps(settings.warehouse, last_event_time=partial(last_event_time, instance))
    if dead:
        print(f"marked {len(dead)} step(s) a dead process left running as interrupted")


def _echo(line: str) -> None:
    """Print a line of a run's progress: a step's error in it may quote a setting."""
    print(mask_configured(line))


def _report_stop(outcome: RunOutcome, keys: set[dg.AssetKey], elapsed: float) -> int:
    """What a stopped `b2b run` got done, on stderr; exit code 130."""
    whole = sorted(k.to_user_string() for k in outcome.materialized - outcome.partly.keys())
    partly = sorted(
        f"{k.to_user_string()} ({done} of {of} months)" for k, (done, of) in outcome.partly.items()
    )
    missing = sorted(k.to_user_string() for k in keys - outcome.materialized)
    print(f"b2b: stopped after {elapsed:.1f} s; the break is recorded in etl.run_log",
          file=sys.stderr)  # fmt: skip
    print(f"  materialized ({len(whole)}): {', '.join(whole) or 'none'}", file=sys.stderr)
    if partly:
        print(f"  partly materialized ({len(partly)}): {', '.join(partly)}", file=sys.stderr)
    print(f"  not materialized ({len(missing)}): {', '.join(missing) or 'none'}",
          file=sys.stderr)  # fmt: skip
    return 130


def _report_outcome(outcome: RunOutcome, elapsed: float) -> int:
    """The end of a finished `b2b run`: counts, then every failure, held slice and unread
    file; non-zero while any of them remains, so a schedule alerts."""
    failed_files = _report_unread_files()
    held = _held_slices()
    print(f"{outcome.runs} run{'s' if outcome.runs != 1 else ''} in {elapsed:.1f} s")
    if outcome.failed_checks:
        print(f"failed checks: {', '.join(outcome.failed_checks)}")
    if outcome.not_started:
        names = sorted(name for stage in outcome.not_started for name in stage.split(", "))
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        print(f"not started, an input failed: {', '.join(names[:3])}{more}"
              " (`b2b run --plan` lists what is stale)")  # fmt: skip
    if not outcome.ok:
        failed = len(outcome.failed_runs)
        print(
            f"b2b: error: {failed} run{'s' if failed != 1 else ''} failed, for the causes above"
            " (event logs and stack traces: Runs in the Dagster UI, `make ui`)",
            file=sys.stderr,
        )
    held_months = [h for h in held if h.partition_key]  # the others failed their run above
    for slice_ in held_months:
        print(f"b2b: error: {slice_.where} held: {slice_.reason}", file=sys.stderr)
    if held_months:
        print(
            "  the reports use the months published before; see the records with"
            " `b2b quarantine --month YYYY-MM`, fix them at the source or raise"
            " B2B_MAX_REJECT_RATE",
            file=sys.stderr,
        )
    return 0 if outcome.ok and not failed_files and not held else 1


def _print_plan(plan: StalePlan | None, keys: set[dg.AssetKey]) -> None:
    """What a refresh would build: each stale asset, its stale months, and why."""
    if plan is None:
        print(f"--force: all {len(keys)} selected assets would be built")
        return
    print(f"{len(plan.slices)} of {len(keys)} selected assets are stale:")
    for key in sorted(plan.slices, key=lambda k: k.to_user_string()):
        months = sorted(m[:7] for m in plan.slices[key] if m)
        where = f" [{months[0]}..{months[-1]}, {len(months)} months]" if months else ""
        print(f"  {key.to_user_string()}{where}: {plan.reasons[key]}")


def _probe_sources(settings: Settings, keys: set[dg.AssetKey] | None) -> Future[SourceVersions]:
    """The versions of the sources the selected assets read (every source when `keys` is
    None), probed in a thread of its own: the probe is mostly the source database's work
    (aggregate queries; at `large` the orders' fingerprint is 3 s of it) and directory
    listings, which leave Python's lock free while this process loads Dagster."""

    def probe() -> SourceVersions:  # imported here, in the probe's thread
        from b2b_platform.defs.operations.source_versions import source_versions

        return source_versions(settings, keys)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="source-probe")
    sources = pool.submit(probe)
    pool.shutdown(wait=False)  # its one thread ends with the probe
    return sources


class _Planner:
    """Which selected slices are out of date: the sources probed once (`sources`, from
    _probe_sources), the recorded versions read again for each plan (stages record theirs
    as they go)."""

    def __init__(
        self,
        definitions: dg.Definitions,
        keys: set[dg.AssetKey],
        settings: Settings,
        sources: Future[SourceVersions],
    ) -> None:
        self.definitions, self.keys, self.settings = definitions, keys, settings
        self.sources = sources
        # the slices Dagster knows materialized (see plan_stale_slices), read once: what
        # the stages of this run materialize meanwhile is never planned again
        self.in_dagster: dict[dg.AssetKey, set[str | None]] | None = None

    def plan(self, instance: dg.DagsterInstance) -> StalePlan:
        from b2b_platform.lib.dagster_internals import asset_graph
        from b2b_platform.lib.orchestration.stale_slices import plan_stale_slices
        from b2b_platform.lib.warehouse.connection import warehouse_connection
        from b2b_platform.lib.warehouse.slice_versions import recorded_versions

        recorded = {}
        if self.settings.warehouse.exists():
            with warehouse_connection(
                self.settings.warehouse, read_only=True, on_wait=_echo
            ) as conn:
                recorded = recorded_versions(conn)
        if self.in_dagster is None:  # the stages of this run only add to it
            graph = asset_graph(self.definitions)
            monthly = {key for key in self.keys if graph.get(key).partitions_def is not None}
            self.in_dagster = {
                key: set(instance.get_materialized_partitions(key)) for key in monthly
            }
            # one query for every unpartitioned asset's record (asking each for its latest
            # materialization costs a query and more apiece: 0.77 s against 0.05 s for 28)
            for record in instance.get_asset_records(list(self.keys - monthly)):
                if record.asset_entry.last_materialization_record is not None:
                    self.in_dagster[record.asset_entry.asset_key] = {None}
        basis = self.settings.version_basis()
        return plan_stale_slices(
            self.definitions, self.keys, recorded, self.sources.result(), basis, self.in_dagster
        )


def _daemon_queue(instance: dg.DagsterInstance, settings: Settings) -> RunQueue | None:
    """The daemon's run queue when a daemon serves this instance and its webserver
    writes our warehouse; None (run here) otherwise, saying why when a daemon is up."""
    from b2b_platform.lib.orchestration.run_queue import QueueUnavailable, daemon_serves, find_queue
    from b2b_platform.lib.orchestration.stage_launchers import REFRESH_JOB
    from b2b_platform.lib.resources import build_resources

    if not daemon_serves(instance):
        return None
    try:
        queue = find_queue(settings.dagster_url, REFRESH_JOB, settings.warehouse)
    except QueueUnavailable as exc:
        print(f"b2b: note: a Dagster daemon serves this instance, but {mask_configured(str(exc))};"
              " running in this process (runs wait for the warehouse's pool either way)",
              file=sys.stderr)  # fmt: skip
        return None
    # its runs would be built with the daemon's settings, not ours: say which differ
    differing = queue.settings_differing(build_resources(settings))
    if differing:
        raise UserError(
            f"the Dagster daemon at {queue.url} runs with other values of"
            f" {', '.join(differing)}: give `b2b run` the same ones, restart `make ui` with"
            " these, or run here with `b2b run --in-process`"
        )
    return queue


def _record_break(instance: dg.DagsterInstance, settings: Settings, run_id: str) -> None:
    """Put an interrupted run on record in etl.run_log (a step in flight records its own
    break; this covers a signal between steps). Never more than a few seconds."""
    import dagster as dg

    from b2b_platform.defs.operations.run_failures import record_or_defer, run_break
    from b2b_platform.lib.warehouse.resource import WarehouseResource

    run = instance.get_run_by_id(run_id)
    if run is None or run.status == dg.DagsterRunStatus.SUCCESS:
        return  # the signal came after that run had finished: nothing broke
    error = "stopped by a signal to `b2b run` (SIGTERM or Ctrl-C)"
    failure = run_break(instance, run, error, "interrupted")
    warehouse = WarehouseResource.at(settings.warehouse)
    record_or_defer(warehouse, failure, lambda _: None, wait_seconds=2)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event, interrupt: bool) -> Iterator[None]:
    """SIGTERM and Ctrl-C stop `b2b run`: the run in flight is interrupted and no further
    run starts. A run executing in this process is interrupted by the exception (Dagster
    turns it into an interruption of the step); a run in the daemon's queue is canceled
    by the loop following it, which sees `stop`, so a launch is never cut half-way."""

    def handle(signum: int, frame: object) -> None:
        stop.set()
        if interrupt:
            raise KeyboardInterrupt

    stops = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, handle) for sig in stops}
    # Python runs `handle` only between statements of the main thread, which may be in
    # one long DuckDB statement for a minute; the signal's number is also written to this
    # pipe at once, and a thread reading it interrupts that statement
    heard, told = os.pipe()
    os.set_blocking(told, False)
    previous_fd = signal.set_wakeup_fd(told, warn_on_full_buffer=False)

    def listen() -> None:
        from b2b_platform.lib.warehouse.connection import interrupt_statements

        while data := os.read(heard, 16):
            if interrupt and any(byte in stops for byte in data):
                interrupt_statements()

    listener = threading.Thread(target=listen, name="stop-signals", daemon=True)
    listener.start()
    try:
        yield
    except KeyboardInterrupt:
        stop.set()  # between runs: run_stages is left, the outcome says what was done
    finally:
        signal.set_wakeup_fd(previous_fd)
        os.close(told)  # the listener reads the end of the pipe and returns
        listener.join(timeout=5)
        os.close(heard)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _held_slices() -> list[HeldSlice]:
    """The slices a blocking check holds back now (see run_log.held_slices)."""
    from b2b_platform.lib.settings import Settings
    from b2b_platform.lib.warehouse.connection import warehouse_connection
    from b2b_platform.lib.warehouse.run_log import held_slices

    settings = Settings.from_env()
    if not settings.warehouse.exists():
        return []
    try:
        with warehouse_connection(settings.warehouse, read_only=True, wait_seconds=10) as conn:
            return held_slices(conn, settings.first_month)
    except UserError as exc:
        print(f"b2b: note: {mask_configured(str(exc))}; `b2b status` lists held months",
              file=sys.stderr)  # fmt: skip
        return []


def _report_unread_files() -> list[tuple[str, str]]:
    """Print the input files that failed (errors) and the entries skipped (warnings), as
    the manifest has them; returns the failed ones."""
    failed_files = _files_with_status("failed")
    for path, error in failed_files:
        print(mask_configured(f"b2b: error: could not read {path}: {error}"), file=sys.stderr)
    for path, reason in _files_with_status("skipped"):
        print(f"b2b: warning: skipped {path}: {reason}", file=sys.stderr)
    return failed_files


def _files_with_status(status: str) -> list[tuple[str, str]]:
    """Input files the manifest records with this status, and why (failed, skipped).
    A warehouse busy with another run (the daemon's) is not waited for long: the same
    list is in `b2b status`."""
    from b2b_platform.lib.settings import Settings
    from b2b_platform.lib.warehouse.connection import warehouse_connection
    from b2b_platform.lib.warehouse.schema import table_exists

    settings = Settings.from_env()
    if not settings.warehouse.exists():
        return []
    try:
        with warehouse_connection(settings.warehouse, read_only=True, wait_seconds=10) as conn:
            if not table_exists(conn, "etl.file_manifest"):
                return []
            return [
                (str(path), str(error))
                for path, error in conn.execute(
                    "SELECT path, any_value(error) FROM etl.file_manifest WHERE status = ?"
                    " GROUP BY path ORDER BY path",  # a log read by two months: one line
                    [status],
                ).fetchall()
            ]
    except UserError as exc:
        print(f"b2b: note: {mask_configured(str(exc))}; `b2b status` lists files that could"
              " not be read", file=sys.stderr)  # fmt: skip
        return []


if __name__ == "__main__":
    sys.exit(main())
