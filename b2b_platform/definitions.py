"""The Dagster code location: every asset, check, resource and schedule under defs/."""

import warnings
from pathlib import Path

import dagster as dg

from b2b_platform.lib.column_docs import with_column_docs

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
    # Column meanings are declared once, in defs/columns.yaml, and applied here.
    # map_asset_specs is a preview API: its warning would repeat at every load, and
    # test_definitions pins what it does (the documented schema on every table asset).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return loaded.map_asset_specs(
            func=lambda spec: with_column_docs(with_shared_attributes(spec))
        )
