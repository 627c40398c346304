"""Every check bites: fed the bad data it exists for, it fails, and a blocking one then
keeps the slice unpublished and everything downstream as it was.

Two levels. BITES holds, for each check of the code location, the bad data it exists
for, as SQL. The check is evaluated exactly as its asset binds it (each asset's audit is
recorded from one real build of the tiny data), on that build, inside a transaction the
test corrupts and rolls back: it passes before the bad data and fails after, and a
blocking one is reported as the failure that rolls its write back. Then a real run per
layer with one narrow fault shows what a failed blocking check does to the run: the step
fails naming the check, the previous slice stays, later stages never start.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import openpyxl
import pyarrow as pa
import pytest

from b2b_platform.defs.platform_db.raw import SNAPSHOT_TABLES
from b2b_platform.lib import checks
from b2b_platform.lib.asset_step import CheckAudit
from b2b_platform.lib.report_files.directory import StagedExport
from b2b_platform.lib.report_files.output import WORKBOOK_NAME
from b2b_platform.lib.resources import SourceDatabaseResource
from b2b_platform.lib.warehouse import step as warehouse
from b2b_platform.lib.warehouse import writes as warehouse_writes
from b2b_platform.lib.warehouse.step import WarehouseStep
from b2b_platform_tests.helpers import materialize, query, snapshot, warehouse_env

MONTH = "2026-09-01"  # a whole month in the middle of the tiny data (2026-08 to 2026-11)
IN_MONTH = f"partition_key = '{MONTH}'"
EVERY_SCHEMA = ("raw", "staging", "core", "reports", "quarantine", "etl")


# ---------------------------------------------------------------- the bad data


def lose_a_row(table: str, where: str = "true") -> str:
    return f"DELETE FROM {table} WHERE rowid = (SELECT min(rowid) FROM {table} WHERE {where})"


def repeat_a_row(table: str, where: str = "true") -> str:
    return f"INSERT INTO {table} SELECT * FROM {table} WHERE {where} LIMIT 1"


def _accounting(source: str, entity: str, month: str | None) -> str:
    partition = f"= '{month}'" if month else "IS NULL"
    return f"source = '{source}' AND entity = '{entity}' AND partition_key {partition}"


def unaccounted(source: str, entity: str, month: str | None = None) -> str:
    """A record read but neither loaded, rejected nor merged: it vanished."""
    return (
        "UPDATE etl.record_accounting SET rows_loaded = rows_loaded - 1"
        f" WHERE {_accounting(source, entity, month)}"
    )


def half_rejected(source: str, entity: str, month: str | None = None) -> str:
    """Half of the slice's records rejected for their content (the accounting still adds up)."""
    return (
        "UPDATE etl.record_accounting SET rows_loaded = rows_read // 2,"
        " rows_rejected = rows_read - rows_read // 2, rows_merged = 0"
        f" WHERE {_accounting(source, entity, month)}"
    )


def dangling(table: str, column: str, referenced: str, where: str = "true") -> str:
    """The row a fact points to is gone from the table it must resolve in."""
    return (
        f"DELETE FROM {referenced} WHERE {column} ="
        f" (SELECT {column} FROM {table} WHERE {where} AND {column} IS NOT NULL LIMIT 1)"
    )


def pii_column(table: str, column: str) -> str:
    return f"ALTER TABLE {table} ADD COLUMN {column} VARCHAR"


def pii_value(table: str, column: str, value: str) -> str:
    """A personal value in a column whose name says nothing about it."""
    return f"UPDATE {table} SET {column} = '{value}' WHERE rowid = (SELECT min(rowid) FROM {table})"


@dataclass(frozen=True)
class Bite:
    check: str  # asset/key:check_name
    bad: str  # SQL writing the bad data the check exists for
    label: str = ""  # which bad data, for a check given more than one

    @property
    def id(self) -> str:
        return f"{self.check}[{self.label}]" if self.label else self.check


REFERENCE = ("products", "suppliers", "prices", "platform_users")
DIMENSIONS = ("dim_company", "dim_customer", "dim_product", "dim_device", "dim_date", "dim_country")

BITES: list[Bite] = [
    # raw: every extracted row in the slice; every log line and file accounted for
    *(Bite(f"raw/{table}:extracted_all_rows", lose_a_row(f"raw.{table}"))
      for table in SNAPSHOT_TABLES),
    Bite("raw/orders:extracted_all_rows", lose_a_row("raw.orders", f"_partition_key = '{MONTH}'")),
    Bite("raw/order_items:extracted_all_rows",
         lose_a_row("raw.order_items", f"_partition_key = '{MONTH}'")),
    Bite("raw/weblogs:accounting_identity", unaccounted("weblogs", "log_lines", MONTH)),
    Bite("raw/weblogs:file_accounting", lose_a_row("raw.weblogs", IN_MONTH)),
    Bite("raw/weblogs:manifest_consistent",
         "INSERT INTO etl.file_manifest SELECT * REPLACE (path || '.copy' AS path)"
         f" FROM etl.file_manifest WHERE source = 'weblogs' AND {IN_MONTH} AND status = 'loaded'"
         " AND rows_read > 0 LIMIT 1",
         "a day's file loaded again under another name"),
    Bite("raw/weblogs:manifest_consistent",
         "DELETE FROM etl.file_manifest WHERE path ="
         f" (SELECT min(source_file) FROM raw.weblogs WHERE {IN_MONTH})",
         "rows of a file the manifest does not list"),
    Bite("raw/weblogs:log_lines_reject_rate", half_rejected("weblogs", "log_lines", MONTH)),
    Bite("raw/marketing_leads:manifest_consistent",
         "UPDATE raw.marketing_leads SET source_file = '/elsewhere/old_campaign.xlsx'"
         " WHERE rowid = (SELECT min(rowid) FROM raw.marketing_leads)",
         "rows of a workbook the manifest never listed"),
    # staging: keys, accounting, reject rates, references
    Bite("staging/companies:unique_key", repeat_a_row("staging.companies")),
    Bite("staging/companies:accounting_identity", unaccounted("platform_db", "companies")),
    Bite("staging/companies:cuit_unique",
         "UPDATE staging.companies SET cuit = (SELECT min(cuit) FROM staging.companies)"
         " WHERE cuit = (SELECT max(cuit) FROM staging.companies)",
         "two surviving companies with one CUIT"),
    Bite("staging/customers:unique_key",
         "UPDATE staging.customers SET customer_id = NULL"
         " WHERE customer_id = (SELECT min(customer_id) FROM staging.customers)",
         "a null key"),
    Bite("staging/customers:accounting_identity", unaccounted("platform_db", "customers")),
    *(Bite(f"staging/{name}:unique_key", repeat_a_row(f"staging.{name}")) for name in REFERENCE),
    *(Bite(f"staging/{name}:accounting_identity", unaccounted("platform_db", name))
      for name in ("products", "prices", "platform_users")),
    Bite("staging/suppliers:accounting_identity",
         f"DELETE FROM etl.record_accounting WHERE {_accounting('platform_db', 'suppliers', None)}",
         "nothing recorded"),
    Bite("staging/orders:unique_key", repeat_a_row("staging.orders", IN_MONTH)),
    Bite("staging/orders:accounting_identity", unaccounted("platform_db", "orders", MONTH)),
    Bite("staging/orders:orders_reject_rate", half_rejected("platform_db", "orders", MONTH)),
    Bite("staging/orders:company_known",
         dangling("staging.orders", "company_id", "staging.companies", IN_MONTH)),
    Bite("staging/order_lines:unique_key", repeat_a_row("staging.order_lines", IN_MONTH)),
    Bite("staging/order_lines:accounting_identity",
         unaccounted("platform_db", "order_items", MONTH)),
    Bite("staging/order_lines:order_lines_reject_rate",
         half_rejected("platform_db", "order_items", MONTH)),
    Bite("staging/order_lines:order_known",
         dangling("staging.order_lines", "order_id", "staging.orders", IN_MONTH)),
    Bite("staging/leads:unique_key", repeat_a_row("staging.leads")),
    Bite("staging/leads:accounting_identity", unaccounted("leads", "leads")),
    Bite("staging/leads:leads_reject_rate", half_rejected("leads", "leads")),
    Bite("staging/web_requests:accounting_identity", unaccounted("weblogs", "web_requests", MONTH)),
    Bite("staging/web_requests:unique_key", repeat_a_row("raw.weblogs", IN_MONTH),
         "a log line loaded twice"),
    Bite("staging/web_requests:unique_key", repeat_a_row("staging.ip_countries"),
         "a lookup key repeated"),
    Bite("staging/web_requests:bot_share", "UPDATE staging.user_agents SET is_bot = true"),
    Bite("staging/web_requests:unknown_country_share",
         "UPDATE staging.ip_countries SET country_code = NULL"),
    # core: one row per key, no personal data, every reference known
    *(Bite(f"core/{name}:unique_key", repeat_a_row(f"core.{name}"))
      for name in (*DIMENSIONS, "fct_leads")),
    Bite("core/fct_web_requests:unique_key", repeat_a_row("raw.weblogs"), "a log line twice"),
    Bite("core/fct_order_lines:unique_key", repeat_a_row("core.fct_order_lines", IN_MONTH)),
    Bite("core/fct_logins:unique_key", repeat_a_row("core.fct_logins", IN_MONTH)),
    Bite("core/dim_company:no_pii_columns", pii_value("core.dim_company", "cuit", "20123456786"),
         "a person's CUIT in clear"),
    Bite("core/dim_customer:no_pii_columns", pii_column("core.dim_customer", "document_number")),
    Bite("core/dim_product:no_pii_columns",
         pii_value("core.dim_product", "brand", "ventas.ana@proveedor.com.ar"), "an email"),
    Bite("core/dim_device:no_pii_columns", pii_column("core.dim_device", "client_ip")),
    Bite("core/dim_date:no_pii_columns", pii_column("core.dim_date", "birth_date")),
    Bite("core/dim_country:no_pii_columns", pii_column("core.dim_country", "phone")),
    Bite("core/fct_leads:no_pii_columns",
         pii_value("core.fct_leads", "company_name", "+54 11 4321-5678"), "a phone"),
    Bite("core/fct_order_lines:no_pii_columns", pii_column("core.fct_order_lines", "full_name")),
    Bite("core/fct_logins:no_pii_columns", pii_column("core.fct_logins", "username")),
    Bite("core/fct_web_requests:no_pii_columns",
         "CREATE OR REPLACE VIEW core.fct_web_requests AS SELECT * FROM staging.web_requests",
         "the view passes on the client IP and username"),
    Bite("core/fct_order_lines:company_known",
         dangling("core.fct_order_lines", "company_id", "core.dim_company", IN_MONTH)),
    Bite("core/fct_order_lines:customer_known",
         dangling("core.fct_order_lines", "customer_id", "core.dim_customer", IN_MONTH)),
    Bite("core/fct_order_lines:product_known",
         dangling("core.fct_order_lines", "product_id", "core.dim_product", IN_MONTH)),
    Bite("core/fct_logins:user_known",
         dangling("core.fct_logins", "user_id", "staging.platform_users", IN_MONTH)),
    # reports: shape, reconciliation, no personal data
    Bite("reports/monthly_sales:no_pii_columns", pii_column("reports.monthly_sales", '"Email"')),
    Bite("reports/top_devices:no_pii_columns",
         pii_value("reports.top_devices", "device", "30.111.222"), "a document number"),
    Bite("reports/top_products_by_country:no_pii_columns",
         pii_column("reports.top_products_by_country", "contact_name")),
    Bite("reports/lead_conversion:no_pii_columns",
         pii_value("reports.lead_conversion", "campaign", "maria.gomez@gmail.com"), "an email"),
    Bite("reports/monthly_sales:window_months",
         f"DELETE FROM reports.monthly_sales WHERE month = DATE '{MONTH}'", "a month missing"),
    Bite("reports/monthly_sales:revenue_reconciles",
         "UPDATE reports.monthly_sales SET revenue = revenue + 0.01"
         f" WHERE month = DATE '{MONTH}'", "a cent off"),
    Bite("reports/lead_conversion:attributed_within_sales",
         "UPDATE reports.lead_conversion SET attributed_revenue = attributed_revenue"
         " + 1000000000 WHERE rowid = (SELECT min(rowid) FROM reports.lead_conversion)",
         "an order credited twice"),
    Bite("quarantine/rejected_records:every_source_adds_up",
         unaccounted("leads", "leads"), "a source whose records do not add up"),
    Bite("reports/top_devices:ranked_top_five",
         "INSERT INTO reports.top_devices SELECT * REPLACE (6 AS rank)"
         " FROM reports.top_devices WHERE rank = 5", "a sixth device"),
    Bite("reports/top_products_by_country:top_three_by_five",
         "INSERT INTO reports.top_products_by_country"
         " SELECT * REPLACE (4 AS country_rank, 'UY' AS country_code)"
         " FROM reports.top_products_by_country WHERE country_rank = 1", "a fourth country"),
    Bite("reports/top_products_by_country:top_three_by_five",
         "UPDATE reports.top_products_by_country SET sku = NULL WHERE product_rank = 1",
         "a product missing from the catalogue"),
]  # fmt: skip

# Checks that only report: a failure publishes the slice anyway. Every other one blocks.
NON_BLOCKING = {
    "raw/weblogs:log_lines_reject_rate",
    "staging/web_requests:bot_share",
    "staging/web_requests:unknown_country_share",
    "reports/monthly_sales:window_months",
    "reports/monthly_sales:revenue_reconciles",
    "reports/lead_conversion:attributed_within_sales",
    "quarantine/rejected_records:every_source_adds_up",
    "reports/top_devices:ranked_top_five",
    "reports/top_products_by_country:top_three_by_five",
}
# Checks whose audit cannot run again after the build (it checks files since removed),
# and the tests that bite them instead.
BITTEN_ELSEWHERE = {
    "reports/report_files:files_written": "test_files_written_fails_on_an_incomplete_export",
}


# ---------------------------------------------------------------- one build, its audits


@dataclass(frozen=True)
class AuditedBuild:
    warehouse: Path
    audits: dict[tuple[str, str | None], CheckAudit]  # (check, month) -> the audit holding it

    def audit(
        self, conn: duckdb.DuckDBPyConnection, check: str
    ) -> tuple[dg.AssetCheckResult, list[str]]:
        """Run the audit holding `check` (of MONTH, if monthly) as its asset's write runs
        it: the check's result, and the blocking checks it reports failed."""
        audit = self.audits.get((check, MONTH)) or self.audits[(check, None)]
        blocking_failures = audit(conn)
        (result,) = [r for r in audit.results if _name(r, audit) == check]
        return result, blocking_failures


def _name(result: dg.AssetCheckResult, audit: CheckAudit) -> str:
    key = result.asset_key or audit.default_key
    assert key is not None
    return dg.AssetCheckKey(key, result.check_name).to_user_string()


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory, tiny_sources) -> AuditedBuild:
    """The whole graph built on the tiny data, keeping each write's audit: the asset's
    checks bound as the asset binds them (tables, keys, months, extracted row counts)."""
    data_dir, _ = tiny_sources
    path = tmp_path_factory.mktemp("bite") / "warehouse" / "b2b.duckdb"
    audited: list[tuple[str | None, CheckAudit]] = []
    commit = WarehouseStep.commit

    def recording_commit(step: WarehouseStep, *args, audit=None, **kwargs):
        if isinstance(audit, CheckAudit):
            audited.append((step.partition_key, audit))
        return commit(step, *args, audit=audit, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        for key, value in warehouse_env(data_dir, path).items():
            mp.setenv(key, value)
        mp.setattr(WarehouseStep, "commit", recording_commit)
        outcome = materialize()
    assert outcome.ok and not outcome.failed_checks, (outcome.failed_runs, outcome.failed_checks)
    audits = {
        (_name(result, audit), month): audit for month, audit in audited for result in audit.results
    }
    return AuditedBuild(path, audits)


@pytest.fixture
def conn(build: AuditedBuild) -> Iterator[duckdb.DuckDBPyConnection]:
    """The build, in a transaction rolled back after the test."""
    connection = duckdb.connect(str(build.warehouse))
    try:
        connection.execute("BEGIN TRANSACTION")
        yield connection
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def _shown(result: dg.AssetCheckResult) -> dict:
    return {k: getattr(v, "value", v) for k, v in result.metadata.items()}


# ---------------------------------------------------------------- every check fails on its bad data


def test_every_check_of_the_code_location_has_a_bite() -> None:
    from b2b_platform.definitions import defs

    declared = {
        spec.key.to_user_string() for asset in defs().assets or [] for spec in asset.check_specs
    }
    bitten = {bite.check for bite in BITES} | set(BITTEN_ELSEWHERE)
    assert len(declared) > 60
    assert declared == bitten, {
        "without a bite": sorted(declared - bitten),
        "not a check": sorted(bitten - declared),
    }
    blocking = {
        spec.key.to_user_string()
        for asset in defs().assets or []
        for spec in asset.check_specs
        if spec.blocking
    }
    assert declared - blocking == NON_BLOCKING


@pytest.mark.parametrize("bite", BITES, ids=lambda bite: bite.id)
def test_check_fails_on_the_bad_data_it_exists_for(
    build: AuditedBuild, conn: duckdb.DuckDBPyConnection, bite: Bite
) -> None:
    before, _ = build.audit(conn, bite.check)
    assert before.passed, ("fails on the data as built", _shown(before))
    conn.execute(bite.bad)
    result, blocking_failures = build.audit(conn, bite.check)
    assert not result.passed, _shown(result)
    # a failed blocking check is what makes WarehouseStep.commit roll the write back; it
    # is named with its figures, when it states them: `asset:check (figures)`
    named = [failure.split(" (")[0] for failure in blocking_failures]
    assert (bite.check in named) == (bite.check not in NON_BLOCKING)


def _export(build: AuditedBuild, tmp_path: Path) -> StagedExport:
    """The build's published export, copied into a staging directory of its own."""
    staged = StagedExport(path=tmp_path / "staged", target=tmp_path / "reports")
    shutil.copytree(build.warehouse.parent / "reports", staged.path)
    return staged


def _drop_sheet(path: Path) -> None:
    book = openpyxl.load_workbook(path)
    del book["top_devices"]
    book.save(path)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "monthly_sales.csv").unlink(),
        lambda d: (d / "lead_conversion.csv").write_bytes(b""),
        lambda d: (d / WORKBOOK_NAME).unlink(),
        lambda d: _drop_sheet(d / WORKBOOK_NAME),
    ],
    ids=["a csv missing", "an empty csv", "no workbook", "a sheet missing"],
)
def test_files_written_fails_on_an_incomplete_export(
    build: AuditedBuild, tmp_path: Path, damage
) -> None:
    from b2b_platform.defs.reports.report_files import files_written

    staged = _export(build, tmp_path)
    assert files_written(staged).passed
    damage(staged.path)
    result = files_written(staged)
    assert not result.passed and _shown(result)["missing"], _shown(result)


# ---------------------------------------------------------------- what a failed check does to a run


@pytest.fixture
def copy_of_build(
    build: AuditedBuild, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_sources
):
    """A private copy of the build and its exported files, the code location pointed at it."""
    data_dir, _ = tiny_sources
    path = tmp_path / "warehouse" / "b2b.duckdb"
    shutil.copytree(build.warehouse.parent, path.parent)
    for key, value in warehouse_env(data_dir, path).items():
        monkeypatch.setenv(key, value)
    return path


def _execute(path: Path, sql: str) -> None:
    with duckdb.connect(str(path)) as connection:
        connection.execute(sql)


def _failed_steps(path: Path) -> list[tuple]:
    return query(
        path,
        "SELECT asset_key, partition_key, error FROM etl.run_log WHERE status = 'failed'"
        " ORDER BY ALL",
    )


def _files(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


@pytest.mark.slow
def test_a_raw_slice_that_lost_a_row_is_not_published_and_nothing_downstream_runs(
    copy_of_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replace_slice = warehouse_writes.replace_slice

    def losing_a_row(conn: duckdb.DuckDBPyConnection, table_slice) -> int:
        written = replace_slice(conn, table_slice)
        if table_slice.table != "raw.companies":
            return written
        conn.execute(lose_a_row("raw.companies"))
        return written - 1

    monkeypatch.setattr(warehouse, "replace_slice", losing_a_row)
    before = snapshot(copy_of_build, EVERY_SCHEMA)
    outcome = materialize("key:raw/companies+")
    assert outcome.failed_checks == ["raw/companies:extracted_all_rows"]
    assert not outcome.ok and "raw/companies:extracted_all_rows" in outcome.failed_runs[0]
    # staging, core and reports depend on it: skipped in its run, the last stage not started
    monthly, last = outcome.not_started
    assert "staging/orders" in monthly and "reports/monthly_sales" in last
    assert snapshot(copy_of_build, EVERY_SCHEMA) == before  # nothing written anywhere
    ((asset, month, error),) = _failed_steps(copy_of_build)
    assert (asset, month) == ("raw/companies", None)
    assert "blocking check failed: raw/companies:extracted_all_rows" in error


@pytest.mark.slow
def test_a_month_with_a_repeated_order_is_held_and_the_reports_use_the_published_months(
    copy_of_build: Path,
) -> None:
    # the source sent one order of the month twice: its lines fan out with it
    _execute(copy_of_build, repeat_a_row("raw.orders", f"_partition_key = '{MONTH}'"))
    before = snapshot(copy_of_build, EVERY_SCHEMA)
    outcome = materialize("key:staging/orders+")
    held = f"(held {MONTH[:7]})"
    assert sorted(outcome.failed_checks) == [
        f"staging/order_lines:accounting_identity {held}",  # each line staged twice, read once
        f"staging/order_lines:unique_key {held}",
        f"staging/orders:unique_key {held}",
    ]
    # a held month holds only itself: the other months and everything downstream ran,
    # from what was published (the reports, the files)
    assert outcome.ok and outcome.not_started == []
    assert {"reports/monthly_sales", "reports/report_files"} <= {
        key.to_user_string() for key in outcome.materialized
    }
    # the held month kept its published slice, so nothing anywhere changed
    assert snapshot(copy_of_build, EVERY_SCHEMA) == before
    ((asset, month, error),) = _failed_steps(copy_of_build)
    assert (asset, month) == ("staging/order_lines,staging/orders", MONTH)
    assert "staging/orders:unique_key" in error and "staging/order_lines:unique_key" in error


@pytest.mark.slow
def test_a_dimension_with_a_repeated_key_keeps_its_previous_rows(copy_of_build: Path) -> None:
    _execute(copy_of_build, repeat_a_row("staging.companies"))
    before = snapshot(copy_of_build, ("core", "reports"))
    outcome = materialize("key:core/dim_company+")
    assert outcome.failed_checks == ["core/dim_company:unique_key"]
    # nothing is built from it (the facts' company_known check reads it): nothing waits
    assert not outcome.ok and outcome.not_started == []
    assert snapshot(copy_of_build, ("core", "reports")) == before
    ((asset, _, error),) = _failed_steps(copy_of_build)
    assert asset == "core/dim_company"
    assert "blocking check failed: core/dim_company:unique_key" in error


@pytest.mark.slow
def test_an_export_missing_a_file_is_not_published(
    copy_of_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from b2b_platform.defs.reports import report_files

    export_files = report_files.export_files

    def losing_a_csv(conn, reports, directory: Path, page) -> list[Path]:
        written = export_files(conn, reports, directory, page)
        (directory / "top_devices.csv").unlink()
        return written

    monkeypatch.setattr(report_files, "export_files", losing_a_csv)
    reports = copy_of_build.parent / "reports"
    before = _files(reports)
    outcome = materialize("key:reports/report_files")
    assert outcome.failed_checks == ["reports/report_files:files_written"]
    assert _files(reports) == before  # the previous export, whole
    beside = sorted(p.name for p in reports.parent.iterdir())  # no staging directory left
    assert beside == [copy_of_build.name, copy_of_build.name + ".files.json", "reports"]
    ((asset, _, error),) = _failed_steps(copy_of_build)
    assert asset == "reports/report_files"
    assert "blocking check failed: reports/report_files:files_written" in error


@pytest.mark.slow
def test_a_failed_report_check_only_reports(
    copy_of_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from b2b_platform.defs.reports import monthly_sales

    without_a_month = f"SELECT * FROM ({monthly_sales.QUERY}) WHERE month <> DATE '{MONTH}'"
    monkeypatch.setattr(monthly_sales, "QUERY", without_a_month)
    outcome = materialize("key:reports/monthly_sales")
    assert outcome.ok, outcome.failed_runs
    assert sorted(outcome.failed_checks) == [
        "reports/monthly_sales:revenue_reconciles",
        "reports/monthly_sales:window_months",
    ]
    assert query(copy_of_build, "SELECT count(*) FROM reports.monthly_sales") == [(12,)]


# ---------------------------------------------------------------- bugs these tests found (fixed)


@pytest.mark.slow
def test_an_extraction_that_loses_a_source_row_fails_extracted_all_rows(
    copy_of_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch_arrow = SourceDatabaseResource.fetch_arrow
    lost: list[str] = []

    def losing_the_last_row(self: SourceDatabaseResource, sql: str) -> pa.Table:
        table = fetch_arrow(self, sql)
        # the extraction (its count column), not the fingerprint
        if "companies" not in sql or "_source_rows" not in sql:
            return table
        lost.append(sql)
        return table.slice(0, table.num_rows - 1)

    monkeypatch.setattr(SourceDatabaseResource, "fetch_arrow", losing_the_last_row)
    _execute(copy_of_build, "DELETE FROM etl.slice_versions")  # extract again, though unchanged
    outcome = materialize("key:raw/companies")
    if not lost:
        pytest.fail("the extraction of companies was not faulted")
    assert outcome.failed_checks == ["raw/companies:extracted_all_rows"]


def test_unique_key_counts_only_the_nulls_of_its_own_slice() -> None:
    conn = duckdb.connect()
    conn.execute(
        "CREATE TABLE lines AS SELECT * FROM (VALUES (1, 1, '2026-09-01'),"
        " (2, NULL, '2026-10-01')) t(order_id, line_number, partition_key)"
    )
    september = checks.unique_key(
        conn, dg.AssetKey("lines"), "lines", ["order_id", "line_number"],
        where="partition_key = ?", params=["2026-09-01"],
    )  # fmt: skip
    assert september.passed, _shown(september)
