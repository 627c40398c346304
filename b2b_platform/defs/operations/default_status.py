"""Whether sensors, the schedule and automation start running (B2B_AUTOMATION), read
when the definitions are built."""

import dagster as dg

from b2b_platform.lib.settings import Settings


def sensor_status(settings: Settings) -> dg.DefaultSensorStatus:
    on = settings.automation_on
    return dg.DefaultSensorStatus.RUNNING if on else dg.DefaultSensorStatus.STOPPED


def schedule_status(settings: Settings) -> dg.DefaultScheduleStatus:
    on = settings.automation_on
    return dg.DefaultScheduleStatus.RUNNING if on else dg.DefaultScheduleStatus.STOPPED
