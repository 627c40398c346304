"""The Dagster code location: every asset, check, resource and schedule under defs/."""

import warnings
from pathlib import Path

import dagster as dg

from b2b_platform.lib.column_docs import with_column_docs


@dg.definitions
def defs() -> dg.Definitions:
    loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    # Column meanings are declared once, in defs/columns.yaml, and applied here.
    # map_asset_specs is a preview API: its warning would repeat at every load, and
    # test_definitions pins what it does (the documented schema on every table asset).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return loaded.map_asset_specs(func=with_column_docs)
