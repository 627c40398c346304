"""The sensors, schedules and upkeep jobs of a deployment, built from its settings: whether
they start running (B2B_AUTOMATION), how often sensors tick, and whether the warehouse
is a lake (which alone gets the nightly upkeep)."""

import dagster as dg

from b2b_platform.defs.operations.automation import build_follow_upstream_sensor
from b2b_platform.defs.operations.default_status import schedule_status, sensor_status
from b2b_platform.defs.operations.lake_maintenance import build_lake_upkeep
from b2b_platform.defs.operations.run_failures import build_run_break_sensors
from b2b_platform.defs.operations.schedules import build_daily_refresh
from b2b_platform.defs.operations.sensors import (
    build_lead_workbooks_sensor,
    build_weblog_files_sensor,
)
from b2b_platform.lib.settings import Settings


def operations_definitions(settings: Settings) -> dg.Definitions:
    sensors_on, schedules_on = sensor_status(settings), schedule_status(settings)
    every = settings.sensor_interval_seconds
    operations = dg.Definitions(
        sensors=[
            build_weblog_files_sensor(sensors_on, every),
            build_lead_workbooks_sensor(sensors_on, every),
            # reports follow their inputs within half a minute
            build_follow_upstream_sensor(sensors_on, min(30, every)),
            *build_run_break_sensors(sensors_on),
        ],
        schedules=[build_daily_refresh(schedules_on)],
    )
    if not settings.warehouse.is_lake:
        return operations
    return dg.Definitions.merge(operations, build_lake_upkeep(schedules_on))
