"""What a report reads from the warehouse, for one partition day: small daily tables only, never invocations.

A day's report and its month-to-date report share one read: the last 31 days of the daily usage tables (the
30-day trend and the week-on-week movers), the month's reconciliation and bill adjustments, the day's budget
status, the rejects, and — when those tables are in the warehouse — `log_completeness`, `daily_cache_economics`
and `bill_coverage` (read only if present, so the report works before and after they exist). Prompt and response
text lives only in `invocations`/`priced_invocations` and `rejected_records.raw_excerpt`, none of which
is read here except the rejects' count.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from pipeline import warehouse
from pipeline.reconciliation import non_usage_summary
from pipeline.report.store import ReportKind

TREND_DAYS = 30
MOVER_DAYS = 7
USAGE_COLUMNS = [
    "date",
    "invocations",
    "client_errors",
    "server_errors",
    "throttles",
    "total_cost_usd",
    "unpriced_invocations",
    "latency_ms_p50",
    "latency_ms_p95",
    "latency_ms_p99",
]


@dataclass(frozen=True)
class ReportInputs:
    """The frames one report (a day or a month to date) is drawn from."""

    day: dt.date
    kind: ReportKind
    window: list[dt.date]
    """The days the report's totals, bridge and model health cover."""
    trend: list[dt.date]
    """The days on the cost charts' x axis."""
    by_cost_center: pl.DataFrame
    by_model: pl.DataFrame
    recon: pl.DataFrame
    non_usage: pl.DataFrame
    budgets: pl.DataFrame
    month_by_cost_center: pl.DataFrame
    rejects: int
    completeness: pl.DataFrame | None
    cache: pl.DataFrame | None
    bill_coverage: pl.DataFrame | None = None
    """`bill_coverage` of the window (per day, account and spend kind), when the table exists."""
    bill_configured: bool = True
    """False for a ledger without `sources.billing`: the report says "no bill configured" instead of $0 billed."""


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every day from `first` to `last`, inclusive."""
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame | None:
    frames = [f for f in frames if f.height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else None


def _read_days(wh: str, table: str, days: list[dt.date], columns: list[str] | None = None) -> pl.DataFrame:
    frames = [warehouse.read_partition(wh, table, d, columns=columns) for d in days]
    combined = _concat(frames)  # None when no day has rows: then the first (empty, typed) frame
    if combined is not None:
        return combined
    return frames[0] if frames else pl.DataFrame()


def _optional(wh: str, table: str, days: list[dt.date]) -> pl.DataFrame | None:
    """A table another stage may or may not write: None when no day of the window has it."""
    present = [d for d in days if warehouse.partition_exists(wh, table, d)]
    if not present:
        return None
    return _concat([warehouse.read_partition(wh, table, d) for d in present])


CACHE_SAVING = "net_saving_usd"


def _cache_savings(wh: str, days: list[dt.date]) -> pl.DataFrame | None:
    """`daily_cache_economics` of `days` as the report uses it: net saving per day and application (the table
    is per account and model too, and a day can have millions of applications: only these columns are read)."""
    present = [d for d in days if warehouse.partition_exists(wh, "daily_cache_economics", d)]
    if not present:
        return None
    scan = warehouse.scan_partitions(wh, "daily_cache_economics", present)
    if CACHE_SAVING not in scan.collect_schema().names():  # a table from before the column: read as it is
        return _optional(wh, "daily_cache_economics", days)
    return (
        scan.group_by("date", "application")
        .agg(pl.col(CACHE_SAVING).sum())
        .sort("date", "application", nulls_last=True)
        .collect(engine="streaming")
    )


def load_inputs(
    wh: str, day: dt.date, start: dt.date | None = None, bill_configured: bool = True
) -> dict[ReportKind, ReportInputs]:
    """Both reports of `day` (daily and month to date) from one read of the warehouse.

    `start` is the partitions' first day: nothing before it is read. `bill_configured`: the ledger reads a bill.
    """
    first = max(day - dt.timedelta(days=TREND_DAYS), start or dt.date.min)
    recent = days_between(first, day)
    month = days_between(max(day.replace(day=1), start or dt.date.min), day)
    cc = _read_days(wh, "daily_usage_by_cost_center", recent, ["cost_center", *USAGE_COLUMNS])
    model = _read_days(wh, "daily_usage_by_model", recent, ["base_model_id", *USAGE_COLUMNS])
    recon = _read_days(wh, "cost_reconciliation", month)
    billing = _read_days(
        wh, "billing_line_items", month, ["date", "account_id", "line_item_type", "unblended_cost_usd"]
    )
    budgets = warehouse.read_partition(wh, "budget_status", day)
    rejects = {d: warehouse.read_partition(wh, "rejected_records", d, columns=["reason"]).height for d in month}
    completeness = _optional(wh, "log_completeness", month)
    cache = _cache_savings(wh, month)
    coverage = _optional(wh, "bill_coverage", month)
    month_cc = cc.filter(pl.col("date").is_in(month)) if cc.height else cc
    out: dict[ReportKind, ReportInputs] = {}
    windows: tuple[tuple[ReportKind, list[dt.date], list[dt.date]], ...] = (
        ("daily", [day], days_between(max(day - dt.timedelta(days=TREND_DAYS - 1), first), day)),
        ("month_to_date", month, month),
    )
    for kind, window, trend in windows:

        def within(df: pl.DataFrame | None, days: list[dt.date] = window) -> pl.DataFrame | None:
            if df is None or "date" not in df.columns:
                return df
            return df.filter(pl.col("date").is_in(days))

        out[kind] = ReportInputs(
            day=day,
            kind=kind,
            window=window,
            trend=trend,
            by_cost_center=cc,
            by_model=model,
            recon=within(recon),  # type: ignore[arg-type]
            non_usage=non_usage_summary(within(billing)) if billing.height else pl.DataFrame(),  # type: ignore[arg-type]
            budgets=budgets,
            month_by_cost_center=month_cc,
            rejects=sum(rejects.get(d, 0) for d in window),
            completeness=within(completeness),
            cache=within(cache),
            bill_coverage=within(coverage),
            bill_configured=bill_configured,
        )
    return out
