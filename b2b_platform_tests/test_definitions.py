"""The code location loads, and every asset declares what the design requires."""

import dagster as dg

from b2b_platform.definitions import defs


def test_definitions_load():
    dg.Definitions.validate_loadable(defs())


def test_every_asset_is_fully_described():
    graph = defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name and node.group_name != "default", key
        assert node.kinds, key
        assert node.owners, key
        assert node.description and len(node.description) > 20, key
        if key.path[0] in ("raw", "staging"):
            assert node.tags.get("source") in {"platform_db", "weblogs", "leads"}, key


def test_every_core_and_report_table_describes_its_columns():
    graph = defs().resolve_asset_graph()
    tables = [k for k in graph.get_all_asset_keys() if k.path[0] in ("core", "reports")]
    tables.remove(dg.AssetKey(["reports", "report_files"]))  # files, not a table
    assert len(tables) >= 14
    for key in tables:
        schema = graph.get(key).metadata.get("dagster/column_schema")
        assert schema is not None, key
        assert all(c.description and c.type for c in schema.columns), key


def test_every_writer_is_in_the_warehouse_pool():
    assets = list(defs().assets or [])
    assert len(assets) > 20, assets
    for asset in assets:
        assert asset.node_def.pool == "duckdb_warehouse", asset.keys


def test_sensors_schedule_and_jobs_are_defined():
    definitions = defs()
    assert {s.name for s in definitions.sensors} == {
        "weblog_files_sensor", "lead_workbooks_sensor", "follow_upstream_sensor",
        "record_failed_runs", "record_canceled_runs",
    }  # fmt: skip
    assert {s.name for s in definitions.schedules} == {"daily_refresh"}
    assert {j.name for j in definitions.jobs} == {
        "weblogs_month_job", "leads_job", "daily_refresh_job", "b2b_refresh",
    }  # fmt: skip


def test_unpartitioned_core_and_reports_follow_upstream():
    graph = defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        follows = node.automation_condition is not None
        downstream = key.path[0] in ("core", "reports", "quarantine") and not node.partitions_def
        assert follows == downstream, key


def test_the_architecture_doc_shows_the_current_asset_graph():
    from pathlib import Path

    from b2b_platform_tests.readme_graph import END, START, mermaid_asset_graph

    document = (Path(__file__).parents[1] / "docs" / "architecture.md").read_text()
    shown = document.split(START)[1].split(END)[0].strip()
    assert shown == mermaid_asset_graph(defs()), (
        "docs/architecture.md's asset graph is stale:"
        " python -m b2b_platform_tests.readme_graph docs/architecture.md"
    )


def test_settings_are_read_when_the_definitions_are_built(monkeypatch) -> None:
    """Nothing is read from the environment at import: two builds in one process, with
    other settings in between, see each its own months and automation status."""
    monkeypatch.setenv("B2B_AUTOMATION", "off")
    before = defs()
    monkeypatch.setenv("B2B_AS_OF", "2026-12-02")
    monkeypatch.setenv("B2B_FIRST_MONTH", "2026-10")
    monkeypatch.setenv("B2B_AUTOMATION", "on")
    after = defs()

    def months(definitions: dg.Definitions, name: str) -> list[str]:
        partitions = definitions.resolve_job_def(name).partitions_def
        assert partitions is not None
        return partitions.get_partition_keys()

    assert months(before, "b2b_refresh") == ["2026-08-01", "2026-09-01", "2026-10-01", "2026-11-01"]
    assert months(after, "b2b_refresh") == ["2026-10-01", "2026-11-01", "2026-12-01"]
    raw_weblogs = after.resolve_assets_def(dg.AssetKey(["raw", "weblogs"]))
    assert raw_weblogs.partitions_def == after.resolve_job_def("weblogs_month_job").partitions_def
    for definitions, sensor_status, schedule_status in (
        (before, dg.DefaultSensorStatus.STOPPED, dg.DefaultScheduleStatus.STOPPED),
        (after, dg.DefaultSensorStatus.RUNNING, dg.DefaultScheduleStatus.RUNNING),
    ):
        assert {s.default_status for s in definitions.sensors or []} == {sensor_status}
        assert {s.default_status for s in definitions.schedules or []} == {schedule_status}


def test_stages_follow_dependencies_through_assets_left_out() -> None:
    """raw/weblogs feeds core/fct_web_requests through staging/web_requests: selected
    without it, the monthly load still runs first (a single run would not order them)."""
    from b2b_platform.lib.dagster_internals import asset_graph
    from b2b_platform.lib.orchestration.selection import plan_stages

    raw, facts, report = (
        dg.AssetKey(["raw", "weblogs"]),
        dg.AssetKey(["core", "fct_web_requests"]),
        dg.AssetKey(["reports", "top_devices"]),
    )
    stages = plan_stages(asset_graph(defs()), {raw, facts, report})
    assert [sorted(k.to_user_string() for k in stage.keys) for stage in stages] == [
        ["raw/weblogs"],
        ["core/fct_web_requests", "reports/top_devices"],
    ]


def test_monthly_assets_share_the_run_of_the_snapshots_they_read() -> None:
    """One run per stage: the snapshots and the months that read them, then what reads
    the months. Read only through an asset left out, the snapshot runs alone first."""
    from b2b_platform.lib.dagster_internals import asset_graph
    from b2b_platform.lib.orchestration.selection import plan_stages

    graph = asset_graph(defs())
    every = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    stages = plan_stages(graph, every)
    assert [stage.partitioned for stage in stages] == [True, False]
    first = {k.to_user_string() for k in stages[0].keys}
    assert {"raw/customers", "staging/customers", "raw/orders", "staging/orders"} <= first
    # built before, staging/customers may keep its rows: the months are planned after it
    customers = dg.AssetKey.from_user_string("staging/customers")
    stages = plan_stages(graph, every, alone={customers})
    assert [stage.partitioned for stage in stages] == [False, True, False]
    assert customers in stages[0].keys

    keys = {dg.AssetKey.from_user_string(k) for k in ("raw/customers", "staging/orders",
                                                       "staging/order_lines")}  # fmt: skip
    stages = plan_stages(graph, keys)
    assert [sorted(k.to_user_string() for k in stage.keys) for stage in stages] == [
        ["raw/customers"],
        ["staging/order_lines", "staging/orders"],
    ]


def test_monthly_assets_declare_their_months_and_the_tag() -> None:
    """A monthly asset's factory sets partitions_def and the tag selections name it by
    (automation ignores a monthly parent's checks by the tag): both or neither."""
    from b2b_platform.defs.partitions import BY_MONTH

    graph = defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        tagged = node.tags.get("partitioned_by") == BY_MONTH["partitioned_by"]
        assert tagged == (node.partitions_def is not None), key


def test_steps_version_slices_as_b2b_run_does() -> None:
    """The duckdb resource carries the settings' part of the version basis, read once
    when the resources are built: a step's basis is the one `b2b run` plans with."""
    from b2b_platform.lib.resources import build_resources
    from b2b_platform.lib.settings import Settings

    settings = Settings.from_env()
    versions = build_resources(settings)["duckdb"].versions
    assert versions is not None
    assert versions.basis() == settings.version_basis()
