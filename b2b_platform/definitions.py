"""The Dagster code location: every asset, check, resource and schedule under defs/."""

import warnings
from pathlib import Path

import dagster as dg

from b2b_platform.defs.partitions import with_months
from b2b_platform.lib.column_docs import with_column_docs
from b2b_platform.lib.dagster_api import with_backfill_policy
from b2b_platform.lib.resources import CalendarResource
from b2b_platform.lib.settings import Settings

# Who answers for an asset: the analysts for reports, marketing for the lead source,
# the data platform team for the rest. The group and the `layer` tag are the key's
# first part (raw, staging, core, reports), so no asset module declares them.
OWNERS = {"reports": ["team:analytics"], "leads": ["team:marketing-analytics"]}
DEFAULT_OWNERS = ["team:data-platform"]


def with_shared_attributes(spec: dg.AssetSpec) -> dg.AssetSpec:
    layer = spec.key.path[0]
    owners = OWNERS.get(layer) or OWNERS.get(spec.tags.get("source", "")) or DEFAULT_OWNERS
    return spec.replace_attributes(
        group_name=layer, owners=owners, tags={**spec.tags, "layer": layer}
    )


@dg.definitions
def defs() -> dg.Definitions:
    loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    # The months are resolved from the settings now, when the definitions are built;
    # the jobs take them from their assets.
    settings = Settings.from_env()
    months = CalendarResource.from_settings(settings).monthly_partitions()
    # Column meanings are declared once, in defs/columns.yaml, and applied here.
    # map_asset_specs is a preview API: its warning would repeat at every load, and
    # test_definitions pins what it does (the documented schema on every table asset).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        built = loaded.map_asset_specs(
            func=lambda spec: with_column_docs(with_months(with_shared_attributes(spec), months))
        )
    if settings.warehouse_writers == 1:
        return built
    # A lake takes several writers: a backfill's months go to runs of their own, which
    # the queue runs side by side up to the pool's limit, instead of one run over all.
    return with_backfill_policy(built, dg.BackfillPolicy.multi_run(1), _runs_months_in_one)


def _runs_months_in_one(asset: dg.AssetsDefinition) -> bool:
    policy = asset.backfill_policy
    return policy is not None and policy.max_partitions_per_run is None
