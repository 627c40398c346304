"""The daily refresh: snapshots, the last two months, reports."""

import dagster as dg

from b2b_platform.defs.operations import jobs
from b2b_platform.defs.operations.default_status import schedule_status
from b2b_platform.defs.partitions import MONTHLY
from b2b_platform.lib.stage_launchers import PARTITION_RANGE_END, PARTITION_RANGE_START, RUN_TAG


def months_to_refresh(current_time: object | None = None) -> tuple[str, str]:
    """The previous and the current month: late changes to orders (a status updated, a
    line corrected) land in them. Older months are closed; a backfill reruns them."""
    keys = MONTHLY.get_partition_keys(current_time=current_time)  # type: ignore[arg-type]
    return keys[max(len(keys) - 2, 0)], keys[-1]


@dg.schedule(
    job=jobs.daily_refresh_job,
    cron_schedule="0 3 * * *",
    execution_timezone="America/Argentina/Buenos_Aires",
    default_status=schedule_status(),
    description="Every night: platform snapshots and lead workbooks, the current and the "
    "previous month of orders and web logs, then every core table and report.",
)
def daily_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    first, last = months_to_refresh(context.scheduled_execution_time)
    return dg.RunRequest(
        run_key=f"daily-{context.scheduled_execution_time:%Y-%m-%d}",
        tags={
            PARTITION_RANGE_START: first,
            PARTITION_RANGE_END: last,
            RUN_TAG: "schedule daily_refresh",
        },
    )
