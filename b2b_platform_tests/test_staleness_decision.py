"""Why `b2b run` decides staleness with its own slice versions (etl.slice_versions)
instead of Dagster's data versions and observable sources (docs/architecture.md,
"Refreshes that cost what changed").

The warehouse's reports and dimensions are whole tables built from every month of a
monthly fact. Dagster's stale-status resolver leaves a monthly parent out of an
unpartitioned child's causes (a time-window parent under the all-partitions mapping is
skipped "for performance reasons"), so a month rebuilt with other rows never makes a
report stale. This test pins that behaviour on a three-asset graph shaped like ours; if a
Dagster upgrade changes it, it fails, and the decision is worth making again.
"""

import warnings

import dagster as dg
from dagster._utils.test.data_versions import get_stale_status_resolver

MONTHS = dg.MonthlyPartitionsDefinition(start_date="2026-01-01", end_date="2026-04-01")


def test_dagster_staleness_never_reaches_a_table_built_from_every_month() -> None:
    listing = {"2026-01-01": "a", "2026-02-01": "b", "2026-03-01": "c"}

    @dg.observable_source_asset(partitions_def=MONTHS)
    def log_listing() -> dg.DataVersionsByPartition:
        return dg.DataVersionsByPartition(dict(listing))

    @dg.asset(partitions_def=MONTHS, deps=[log_listing])
    def monthly_requests(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        rows = context.partition_key + listing[context.partition_key]
        return dg.MaterializeResult(data_version=dg.DataVersion(rows))

    @dg.asset(deps=[monthly_requests])
    def report() -> None: ...

    assets = [log_listing, monthly_requests, report]
    observe = dg.define_asset_job("observe_listing", selection=[log_listing])
    defs = dg.Definitions(assets=assets, jobs=[observe])

    def status() -> dict[str, str]:
        resolver = get_stale_status_resolver(instance, assets)
        found = {m: resolver.get_status(monthly_requests.key, m).value for m in listing}
        return found | {"report": resolver.get_status(report.key).value}

    with warnings.catch_warnings(), dg.instance_for_test() as instance:
        warnings.simplefilter("ignore")
        defs.resolve_job_def("observe_listing").execute_in_process(instance=instance)
        for month in listing:
            dg.materialize(
                [log_listing, monthly_requests], instance=instance, partition_key=month,
                selection=[monthly_requests],
            )  # fmt: skip
        dg.materialize([monthly_requests, report], instance=instance, selection=[report])
        assert set(status().values()) == {"FRESH"}

        listing["2026-02-01"] = "B"  # February's log files changed
        defs.resolve_job_def("observe_listing").execute_in_process(instance=instance)
        # the observed source does reach its month...
        assert status()["2026-02-01"] == "STALE"
        dg.materialize(
            [log_listing, monthly_requests], instance=instance, partition_key="2026-02-01",
            selection=[monthly_requests],
        )  # fmt: skip
        # ...and February now holds other rows (another data version), yet the report
        # built from every month is not stale: nothing would rebuild it
        assert status() == dict.fromkeys([*listing, "report"], "FRESH")
