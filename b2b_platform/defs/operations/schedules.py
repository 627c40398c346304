"""The daily refresh: snapshots, the last two months, reports."""

import datetime as dt

import dagster as dg

from b2b_platform.defs.operations import jobs
from b2b_platform.lib.orchestration.stage_launchers import (
    PARTITION_RANGE_END,
    PARTITION_RANGE_START,
    RUN_TAG,
)
from b2b_platform.lib.resources import CalendarResource


def months_to_refresh(
    calendar: CalendarResource, current_time: dt.datetime | None = None
) -> tuple[str, str]:
    """The previous and the current month: late changes to orders (a status updated, a
    line corrected) land in them. Older months are closed; a backfill reruns them."""
    keys = calendar.monthly_partitions().get_partition_keys(current_time=current_time)
    return keys[max(len(keys) - 2, 0)], keys[-1]


def daily_refresh_request(
    context: dg.ScheduleEvaluationContext, calendar: CalendarResource
) -> dg.RunRequest:
    """A tick of the daily_refresh schedule."""
    first, last = months_to_refresh(calendar, context.scheduled_execution_time)
    return dg.RunRequest(
        run_key=f"daily-{context.scheduled_execution_time:%Y-%m-%d}",
        tags={
            PARTITION_RANGE_START: first,
            PARTITION_RANGE_END: last,
            RUN_TAG: "schedule daily_refresh",
        },
    )


def build_daily_refresh(status: dg.DefaultScheduleStatus) -> dg.ScheduleDefinition:
    return dg.schedule(
        name="daily_refresh",
        job=jobs.daily_refresh_job,
        cron_schedule="0 3 * * *",
        execution_timezone="America/Argentina/Buenos_Aires",
        default_status=status,
        description="Every night: platform snapshots and lead workbooks, the current and the "
        "previous month of orders and web logs, then every core table and report.",
    )(daily_refresh_request)
