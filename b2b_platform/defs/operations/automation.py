"""Declarative automation: unpartitioned core tables and reports follow their inputs."""

import dagster as dg

from b2b_platform.defs.operations.default_status import sensor_status
from b2b_platform.lib.orchestration.stage_launchers import RUN_TAG
from b2b_platform.lib.settings import Settings


def build_follow_upstream_sensor(
    status: dg.DefaultSensorStatus, interval_seconds: int = 30
) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        "follow_upstream_sensor",
        target=dg.AssetSelection.all(),
        default_status=status,
        minimum_interval_seconds=interval_seconds,
        run_tags={RUN_TAG: "automation follow_upstream_sensor"},
        description="Evaluates the automation conditions: a core table or report whose inputs "
        "were updated, and whose upstream blocking checks passed, is materialized.",
    )


@dg.definitions
def automation() -> dg.Definitions:
    settings = Settings.from_env()
    every = min(30, settings.sensor_interval_seconds)  # reports follow within half a minute
    return dg.Definitions(sensors=[build_follow_upstream_sensor(sensor_status(settings), every)])
