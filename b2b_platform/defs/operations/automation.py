"""Declarative automation: unpartitioned core tables and reports follow their inputs."""

import dagster as dg

from b2b_platform.lib.orchestration.stage_launchers import RUN_TAG


def build_follow_upstream_sensor(
    status: dg.DefaultSensorStatus, interval_seconds: int = 30
) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        "follow_upstream_sensor",
        target=dg.AssetSelection.all(),
        default_status=status,
        minimum_interval_seconds=interval_seconds,
        run_tags={RUN_TAG: "automation follow_upstream_sensor"},
        # evaluated where the code is: follow_upstream.ReadOlderInputs is Python
        use_user_code_server=True,
        description="Evaluates the automation conditions: a core table or report whose inputs "
        "were updated, and whose upstream blocking checks passed, is materialized.",
    )
