"""Schedules: yesterday's partition of the whole graph every day, and a trailing-days refresh of the billing side.

Bills change after the fact (usage posts late, credits and refunds land, the month is final only after close),
so the billing assets are recomputed for the last `schedules.billing_refresh_days` days every day; the window
crosses the month boundary, so the first days of a month still refresh the end of the previous one.
"""

import datetime as dt
from typing import Any

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    build_schedule_from_partitioned_job,
    schedule,
)

from pipeline.config import LedgerConfig


def daily_schedule(job: Any, cfg: LedgerConfig) -> ScheduleDefinition:
    """Materialize yesterday's partition (the last complete UTC day) at `schedules.daily_hour_utc`."""
    return build_schedule_from_partitioned_job(
        job,
        name="ledger_daily_schedule",
        hour_of_day=cfg.schedules.daily_hour_utc,
        minute_of_hour=0,
        description="Every day: ingest, price, aggregate and reconcile yesterday (UTC).",
        default_status=DefaultScheduleStatus.STOPPED,
    )


def refresh_days(today: dt.date, days: int, start: dt.date) -> list[dt.date]:
    """The trailing days (ending yesterday) whose bill may still change, not before the partitions start."""
    first = max(start, today - dt.timedelta(days=days))
    return [first + dt.timedelta(days=i) for i in range((today - first).days)]


def billing_refresh_schedule(job: Any, cfg: LedgerConfig) -> ScheduleDefinition:
    """One run per trailing day, re-reading the bill and re-reconciling (see module docstring)."""

    @schedule(
        name="billing_refresh_schedule",
        job=job,
        cron_schedule=f"30 {cfg.schedules.billing_refresh_hour_utc} * * *",
        execution_timezone="UTC",
        description=f"Every day: re-read the bill for the last {cfg.schedules.billing_refresh_days} days "
        "and reconcile again (bills change after the fact).",
        default_status=DefaultScheduleStatus.STOPPED,
    )
    def _refresh(context: ScheduleEvaluationContext):
        today = context.scheduled_execution_time.astimezone(dt.UTC).date()
        for day in refresh_days(today, cfg.schedules.billing_refresh_days, cfg.start_date):
            key = day.isoformat()
            yield RunRequest(run_key=f"billing-refresh-{today}-{key}", partition_key=key)

    return _refresh
