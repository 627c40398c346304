"""Resources and pools of the code location, configured from the environment."""

import dagster as dg

from b2b_platform.lib.resources import build_resources
from b2b_platform.lib.settings import Settings


@dg.definitions
def resources() -> dg.Definitions:
    # Only resources live here: a module with @dg.definitions hides its own assets.
    return dg.Definitions(resources=build_resources(Settings.from_env()))
