"""Whether sensors, the schedule and automation start running (B2B_AUTOMATION)."""

import dagster as dg

from b2b_platform.lib.settings import Settings


def sensor_status() -> dg.DefaultSensorStatus:
    on = Settings.from_env().automation_on
    return dg.DefaultSensorStatus.RUNNING if on else dg.DefaultSensorStatus.STOPPED


def schedule_status() -> dg.DefaultScheduleStatus:
    on = Settings.from_env().automation_on
    return dg.DefaultScheduleStatus.RUNNING if on else dg.DefaultScheduleStatus.STOPPED
