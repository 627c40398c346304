"""What the project relies on in Dagster's non-public calls (lib/dagster_internals.py): an
upgrade that changes one of them fails here first."""

import datetime as dt
import uuid

import dagster as dg

from b2b_platform.lib import dagster_internals


@dg.asset
def parent() -> None: ...


@dg.asset(deps=[parent])
def child() -> None: ...


def test_the_graph_of_definitions_walks_parents_before_children() -> None:
    graph = dagster_internals.asset_graph(dg.Definitions(assets=[child, parent]))
    order = dagster_internals.toposorted_keys(graph)
    assert order.index(parent.key) < order.index(child.key)
    assert set(graph.get(child.key).parent_keys) == {parent.key}
    assert set(graph.get(parent.key).child_keys) == {child.key}
    assert graph.get(child.key).partitions_def is None and graph.get(child.key).is_materializable
    assert set(graph.get_all_asset_keys()) == {parent.key, child.key}


@dg.multi_asset(specs=[dg.AssetSpec("left"), dg.AssetSpec("right")])
def pair():  # a multi-asset that writes nothing
    return None


def test_a_multi_asset_names_the_keys_that_run_with_it() -> None:
    graph = dagster_internals.asset_graph(dg.Definitions(assets=[pair, parent]))
    assert set(graph.get(dg.AssetKey("left")).execution_set_asset_keys) == {
        dg.AssetKey("left"),
        dg.AssetKey("right"),
    }
    assert set(graph.get(parent.key).execution_set_asset_keys) == {parent.key}


def test_an_asset_sees_the_graph_of_its_run() -> None:
    seen: list[set[dg.AssetKey]] = []

    @dg.asset(deps=[parent])
    def looking(context: dg.AssetExecutionContext) -> None:
        graph = dagster_internals.run_asset_graph(context)
        seen.append(set(graph.get(context.asset_key).parent_keys))

    assert dg.materialize([parent, looking]).success
    assert seen == [{parent.key}]


def test_a_dead_run_is_failed_its_slots_freed_and_its_last_event_dated() -> None:
    with dg.instance_for_test() as instance:
        result = dg.materialize([parent], instance=instance)
        finished = dagster_internals.last_event_time(instance, result.run_id)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        assert finished is not None and abs((now - finished).total_seconds()) < 60
        assert dagster_internals.last_event_time(instance, str(uuid.uuid4())) is None

        run = instance.add_run(
            dg.DagsterRun(job_name="b2b_refresh", run_id=str(uuid.uuid4()),
                          status=dg.DagsterRunStatus.STARTED)
        )  # fmt: skip
        storage = instance.event_log_storage
        storage.set_concurrency_slots("duckdb_warehouse", 1)
        assert storage.claim_concurrency_slot("duckdb_warehouse", run.run_id, "a_step").is_claimed
        dagster_internals.free_pool_slots(instance, run.run_id)
        assert storage.get_concurrency_info("duckdb_warehouse").active_slot_count == 0

        dagster_internals.fail_run(instance, run, "the `b2b run` process died during this run")
        after = instance.get_run_by_id(run.run_id)
        assert after is not None and after.status == dg.DagsterRunStatus.FAILURE


def test_a_pool_limit_is_set() -> None:
    instance = dg.DagsterInstance.ephemeral()
    dagster_internals.set_pool_limit(instance, "some_pool", 3)
    assert instance.event_log_storage.get_concurrency_info("some_pool").slot_count == 3


def test_a_backfill_policy_is_put_on_chosen_assets_only() -> None:
    months = dg.MonthlyPartitionsDefinition(start_date="2026-01-01")

    @dg.asset(partitions_def=months, backfill_policy=dg.BackfillPolicy.single_run())
    def monthly() -> None: ...

    @dg.schedule(cron_schedule="0 3 * * *", target=[parent])
    def nightly() -> None: ...

    defs = dg.Definitions(assets=[parent, monthly], schedules=[nightly])
    mapped = dagster_internals.with_backfill_policy(
        defs, dg.BackfillPolicy.multi_run(1), lambda a: a.backfill_policy is not None
    )
    graph = mapped.resolve_asset_graph()
    assert graph.get(monthly.key).backfill_policy == dg.BackfillPolicy.multi_run(1)
    assert graph.get(parent.key).backfill_policy is None
    assert [s.name for s in mapped.schedules] == ["nightly"]


def test_an_automation_tick_reads_the_latest_materializations_it_loaded() -> None:
    seen: dict[dg.AssetKey, int | None] = {}

    class Latest(dg.AutomationCondition):
        @property
        def name(self) -> str:
            return "latest"

        def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
            assert isinstance(context.key, dg.AssetKey)
            for key in (context.key, *context.asset_graph.get(context.key).parent_keys):
                record = dagster_internals.latest_materialization(context, key)
                seen[key] = record.storage_id if record else None
            return dg.AutomationResult(context, context.get_empty_subset())

    watched = child.with_attributes(automation_condition=Latest())
    defs = dg.Definitions(assets=[parent, watched])
    instance = dg.DagsterInstance.ephemeral()
    dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert seen == {child.key: None, parent.key: None}  # never materialized
    assert dg.materialize([parent, child], instance=instance).success
    assert dg.materialize([parent], instance=instance).success
    dg.evaluate_automation_conditions(defs=defs, instance=instance)
    newest = {
        key: instance.fetch_materializations(key, limit=1).records[0].storage_id
        for key in (parent.key, child.key)
    }
    assert seen == newest and newest[parent.key] > newest[child.key]
