"""Resources and the executor of the code location, configured from the environment."""

import dagster as dg

from b2b_platform.lib.resources import build_resources
from b2b_platform.lib.settings import Settings


@dg.definitions
def resources() -> dg.Definitions:
    # Only resources live here: a module with @dg.definitions hides its own assets.
    # Every step that writes waits for the one `duckdb_warehouse` pool slot, so a process
    # per step (the multiprocess executor) would buy no parallelism, only a Python and
    # Dagster start-up per step: runs launched by the daemon execute in their run worker.
    return dg.Definitions(
        resources=build_resources(Settings.from_env()), executor=dg.in_process_executor
    )
