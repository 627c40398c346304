"""The Dagster code location: every asset, check, resource and schedule under defs/."""

import warnings
from pathlib import Path

import dagster as dg

from b2b_platform.defs.core.order_facts import build_fct_order_lines
from b2b_platform.defs.core.web_facts import build_fct_logins
from b2b_platform.defs.operations.deployment import operations_definitions
from b2b_platform.defs.partitions import MonthlyAsset
from b2b_platform.defs.platform_db.raw import build_raw_orders
from b2b_platform.defs.platform_db.staging_orders import build_staging_orders
from b2b_platform.defs.resources import resource_definitions
from b2b_platform.defs.weblogs.raw import build_raw_weblogs
from b2b_platform.defs.weblogs.staging import build_staging_web_requests
from b2b_platform.lib.column_docs import with_column_docs
from b2b_platform.lib.dagster_internals import with_backfill_policy
from b2b_platform.lib.resources import CalendarResource
from b2b_platform.lib.settings import Settings

# Who answers for an asset: the analysts for reports, marketing for the lead source,
# the data platform team for the rest. The group and the `layer` tag are the key's
# first part (raw, staging, core, reports), so no asset module declares them.
OWNERS = {"reports": ["team:analytics"], "leads": ["team:marketing-analytics"]}
DEFAULT_OWNERS = ["team:data-platform"]

# The monthly assets, built over the months of the settings each time the definitions
# are (see defs/partitions.py); every other asset is found in defs/ by Dagster.
MONTHLY_ASSETS: tuple[MonthlyAsset, ...] = (
    build_raw_orders,
    build_staging_orders,
    build_raw_weblogs,
    build_staging_web_requests,
    build_fct_order_lines,
    build_fct_logins,
)


def with_shared_attributes(spec: dg.AssetSpec) -> dg.AssetSpec:
    layer = spec.key.path[0]
    owners = OWNERS.get(layer) or OWNERS.get(spec.tags.get("source", "")) or DEFAULT_OWNERS
    return spec.replace_attributes(
        group_name=layer, owners=owners, tags={**spec.tags, "layer": layer}
    )


@dg.definitions
def defs() -> dg.Definitions:
    # The settings are read once, here: the months (the jobs take them from their assets),
    # the resources, and whether sensors and schedules start (operations).
    settings = Settings.from_env()
    months = CalendarResource.from_settings(settings).monthly_partitions()
    loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    # Column meanings are declared once, in defs/columns.yaml, and applied here.
    # backfill_policy is a beta parameter and map_asset_specs a preview API: their
    # warnings would repeat at every load (load_from_defs_folder silences them for the
    # assets it finds), and test_definitions pins what they do (the monthly assets'
    # months, the documented schema on every table asset).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        monthly = dg.Definitions(assets=[build(months) for build in MONTHLY_ASSETS])
        built = dg.Definitions.merge(
            loaded, monthly, resource_definitions(settings), operations_definitions(settings)
        ).map_asset_specs(func=lambda spec: with_column_docs(with_shared_attributes(spec)))
    if settings.warehouse_writers == 1:
        return built
    # A lake takes several writers: a backfill's months go to runs of their own, which
    # the queue runs side by side up to the pool's limit, instead of one run over all.
    return with_backfill_policy(built, dg.BackfillPolicy.multi_run(1), _runs_months_in_one)


def _runs_months_in_one(asset: dg.AssetsDefinition) -> bool:
    policy = asset.backfill_policy
    return policy is not None and policy.max_partitions_per_run is None
