"""Resources and the executor of the code location, configured from the settings."""

import dagster as dg

from b2b_platform.lib.resources import build_resources
from b2b_platform.lib.settings import Settings


def resource_definitions(settings: Settings) -> dg.Definitions:
    # Every step that writes waits for the one `duckdb_warehouse` pool slot, so a process
    # per step (the multiprocess executor) would buy no parallelism, only a Python and
    # Dagster start-up per step: runs launched by the daemon execute in their run worker.
    return dg.Definitions(resources=build_resources(settings), executor=dg.in_process_executor)
