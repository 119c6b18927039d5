"""Schedules: yesterday's partition of the whole graph every day, and a refresh of the billing side.

Bills change after the fact (usage posts late, restatements rewrite earlier days of the month, credits and refunds
land, the month is final only once invoiced), so every day the billing assets are recomputed for:

- every day of the open month so far (a restatement can touch any of them, not only the last week);
- every day of the previous month until it is invoiced (its `bill_invoice_id` / `InvoiceId` is set; FOCUS 1.0
  has none: until month close + `reconciliation.billing_lag_days`), then weekly (Mondays) for the rest of the
  month after close, for late refunds and credits;
- the trailing `schedules.billing_refresh_days` days (kept for short windows across the month boundary).
"""

import calendar
import datetime as dt
from collections.abc import Callable
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


def daily_schedule(job: Any, cfg: LedgerConfig) -> Any:
    """Materialize yesterday's partition (the last complete UTC day) at `schedules.daily_hour_utc`. For an asset job
    Dagster returns its unresolved schedule kind (resolved with the definitions), not a `ScheduleDefinition`."""
    return build_schedule_from_partitioned_job(
        job,
        name="ledger_daily_schedule",
        hour_of_day=cfg.schedules.daily_hour_utc,
        minute_of_hour=0,
        description="Every day: ingest, price, aggregate and reconcile yesterday (UTC).",
        default_status=DefaultScheduleStatus.STOPPED,
    )


def _month_days(period: str) -> list[dt.date]:
    year, month = (int(x) for x in period.split("-"))
    return [dt.date(year, month, d) for d in range(1, calendar.monthrange(year, month)[1] + 1)]


def refresh_days(
    today: dt.date, days: int, start: dt.date, previous_month_final: Callable[[str], str] | None = None
) -> list[dt.date]:
    """The days (ending yesterday) whose bill may still change, not before the partitions start.

    `previous_month_final` says whether last month is invoiced yet (see the module docstring); without it only
    the open month and the trailing days are refreshed.
    """
    yesterday = today - dt.timedelta(days=1)
    first = max(start, today - dt.timedelta(days=days))
    wanted = {first + dt.timedelta(days=i) for i in range((today - first).days)}
    open_first = yesterday.replace(day=1)
    wanted |= {open_first + dt.timedelta(days=i) for i in range((yesterday - open_first).days + 1)}
    if previous_month_final is not None:
        prev_period = f"{open_first - dt.timedelta(days=1):%Y-%m}"
        state = previous_month_final(prev_period)
        if state == "open" or today.weekday() == 0:
            wanted |= set(_month_days(prev_period))
    return sorted(d for d in wanted if start <= d <= yesterday)


def billing_refresh_schedule(job: Any, cfg: LedgerConfig) -> ScheduleDefinition:
    """One run per trailing day, re-reading the bill and re-reconciling (see module docstring)."""

    @schedule(
        name="billing_refresh_schedule",
        job=job,
        cron_schedule=f"30 {cfg.schedules.billing_refresh_hour_utc} * * *",
        execution_timezone="UTC",
        description="Every day: re-read the bill for the open month, last month until it is invoiced, and the "
        f"last {cfg.schedules.billing_refresh_days} days, and reconcile again (bills change after the fact).",
        default_status=DefaultScheduleStatus.STOPPED,
    )
    def _refresh(context: ScheduleEvaluationContext):
        today = context.scheduled_execution_time.astimezone(dt.UTC).date()

        def previous_month_final(period: str) -> str:
            # tick-only import: the warehouse and the bill reader stay out of loading the definitions
            from pipeline.billing.finality import finality

            return finality(cfg.warehouse, period, today, cfg.reconciliation.billing_lag_days)

        for day in refresh_days(today, cfg.schedules.billing_refresh_days, cfg.start_date, previous_month_final):
            key = day.isoformat()
            yield RunRequest(run_key=f"billing-refresh-{today}-{key}", partition_key=key)

    return _refresh
