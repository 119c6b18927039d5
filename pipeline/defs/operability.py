"""Checks that tell an operator the ledger is behind or has holes, before a FinOps analyst finds out.

- `invocations_fresh` (not partitioned): yesterday's `invocations` partition is in the warehouse once the daily
  schedule's deadline has passed (`schedules.daily_hour_utc` plus `FRESHNESS_GRACE_HOURS`). It looks at the
  warehouse itself, not at Dagster's run history, so a day written by another deployment counts and a day
  whose files were deleted does not. Execute it from the asset's Checks tab or on a schedule
  (`freshness_schedule`).
- `log_delivery_complete` (per day): an hour with no invocations for an account and region whose neighbouring
  hours both have traffic usually means a log delivery went missing (a delivery role lost permission, a
  bucket policy changed, objects were deleted), not that everyone stopped working for an hour.
- `log_objects_all_read` (per day): every listed log object was read. An object that S3 would not serve after
  every retry is quarantined in `rejected_records` as `unreadable_object`; its records are missing from the
  day, so this check fails until the day is run again.

The logic is plain functions in `pipeline.completeness.freshness` (`find_delivery_gaps` and its parts,
`expected_fresh_day`); the checks are thin wrappers over them.
"""

import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    MetadataValue,
    PartitionsDefinition,
    ScheduleDefinition,
    TimeWindowPartitionsDefinition,
    asset_check,
)

from pipeline import warehouse
from pipeline.completeness.freshness import (
    DEFAULT_MIN_NEIGHBOUR_CALLS,
    FRESHNESS_GRACE_HOURS,
    expected_fresh_day,
    gaps_in_hourly_calls,
    hourly_calls,
)
from pipeline.defs.contract import preview_allowed
from pipeline.defs.figures import judged, markdown_table
from pipeline.defs.partitions import partition_day
from pipeline.defs.resources import LedgerResource

FRESHNESS_CHECK = "invocations_fresh"
GAPS_CHECK = "log_delivery_complete"
UNREADABLE_CHECK = "log_objects_all_read"
FRESHNESS_KEY = AssetCheckKey(AssetKey("invocations"), FRESHNESS_CHECK)
"""Leave this check out of the partitioned daily job (it is about now, not about the run's day)."""
UNREADABLE_REASON = "unreadable_object"


FRESHNESS_DESCRIPTION = (
    "Yesterday's (UTC) invocations partition is in the warehouse once the daily schedule's deadline has "
    f"passed (schedules.daily_hour_utc + {FRESHNESS_GRACE_HOURS} h)."
)
UNREADABLE_DESCRIPTION = (
    "Every delivered log object of the day was read; objects S3 would not serve after every retry are "
    "quarantined in rejected_records (unreadable_object) and their records are missing until a rerun."
)


def gaps_description(min_neighbour_calls: int) -> str:
    """The delivery-gap check's description, with the neighbour threshold it uses."""
    return (
        "No account × region has an hour without invocations while both neighbouring hours have at least "
        f"{min_neighbour_calls} (a log delivery likely went missing)."
    )


def invocations_fresh(
    context: AssetCheckExecutionContext, ledger: LedgerResource, current: dt.datetime, start: dt.date | None
) -> AssetCheckResult:
    """Is the day the schedule should have written by `current` in the warehouse (days before `start` pass)?"""
    cfg = ledger.config
    day = expected_fresh_day(current, cfg.schedules.daily_hour_utc)
    meta: dict[str, Any] = {
        "expected_day": day.isoformat(),
        "checked_at_utc": current.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "warehouse": MetadataValue.path(cfg.warehouse),
    }
    if start is not None and day < start:
        return AssetCheckResult(passed=True, metadata={**meta, "note": "before the partitions' start date"})
    present = warehouse.partition_exists(cfg.warehouse, "invocations", day)
    if present:
        return AssetCheckResult(passed=True, metadata=meta)
    context.log.warning("invocations for %s are not in %s", day, cfg.warehouse)
    return AssetCheckResult(
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"invocations for {day} is missing from the warehouse although the deadline has passed: check the "
            f"daily schedule's last run (ledger_daily_schedule) and materialize partition {day}"
        ),
        metadata=meta,
    )


def log_delivery_complete(
    context: AssetCheckExecutionContext, ledger: LedgerResource, min_neighbour_calls: int
) -> AssetCheckResult:
    """Hours of the day with no invocations between two busy hours, per account and region."""
    cfg = ledger.config
    day = partition_day(context.partition_key)
    hourly = hourly_calls(warehouse.scan_partitions(cfg.warehouse, "invocations", [day]))
    gaps = gaps_in_hourly_calls(hourly, min_neighbour_calls)
    shown = gaps.with_columns(pl.format("{}:00-{}:59 UTC", pl.col("hour"), pl.col("hour")).alias("hours"))
    return AssetCheckResult(
        passed=gaps.is_empty(),
        severity=AssetCheckSeverity.WARN,
        description=None
        if gaps.is_empty()
        else f"{gaps.height} hour(s) of {day} have no invocations between busy hours: check log delivery",
        metadata={
            "gaps": gaps.height,
            "min_neighbour_calls": min_neighbour_calls,
            "invocations": int(hourly["calls"].sum()),
            "gap_hours": MetadataValue.md(
                markdown_table(shown.select("account_id", "region", "hours", "calls_before", "calls_after"), 50)
            ),
        },
    )


def log_objects_all_read(context: AssetCheckExecutionContext, ledger: LedgerResource) -> AssetCheckResult:
    """Log objects of the day quarantined as unreadable (their records are missing until a rerun)."""
    cfg = ledger.config
    day = partition_day(context.partition_key)
    rejects = warehouse.read_partition(cfg.warehouse, "rejected_records", day, columns=["source_uri", "reason"])
    unreadable = rejects.filter(pl.col("reason").str.starts_with(UNREADABLE_REASON))
    return AssetCheckResult(
        passed=unreadable.is_empty(),
        severity=AssetCheckSeverity.ERROR,
        description=None
        if unreadable.is_empty()
        else f"{unreadable.height} log object(s) of {day} could not be read: materialize the day again",
        metadata={
            "unreadable_objects": unreadable.height,
            "objects": MetadataValue.md(markdown_table(unreadable.select("source_uri", "reason"), 50)),
        },
    )


@preview_allowed()  # its day checks are partitioned, a Dagster preview
def build_operability_checks(
    partitions_def: PartitionsDefinition,
    min_neighbour_calls: int = DEFAULT_MIN_NEIGHBOUR_CALLS,
    now: Callable[[], dt.datetime] | None = None,
    include_freshness: bool = True,
) -> list[AssetChecksDefinition]:
    """The freshness, delivery-gap and unreadable-object checks on `invocations` (see the module docstring).

    The partitioned checks share the assets' `partitions_def` and run with every day's `invocations`. The
    freshness check is about now, not about a run's day: leave it out of day runs (`include_freshness=False`
    where the day's assets are listed, or `AssetSelection.all() - AssetSelection.checks(FRESHNESS_KEY)` for a
    job) and run it from `freshness_schedule`. `now` is for tests (a fixed clock).
    """
    clock = now or (lambda: dt.datetime.now(dt.UTC))
    start = _start_day(partitions_def)

    def fresh(context: AssetCheckExecutionContext, ledger: LedgerResource) -> AssetCheckResult:
        return invocations_fresh(context, ledger, clock(), start)

    def gaps(context: AssetCheckExecutionContext, ledger: LedgerResource) -> AssetCheckResult:
        return log_delivery_complete(context, ledger, min_neighbour_calls)

    day_checks = [
        asset_check(
            asset="invocations",
            name=GAPS_CHECK,
            partitions_def=partitions_def,
            description=gaps_description(min_neighbour_calls),
        )(judged(gaps)),
        asset_check(
            asset="invocations",
            name=UNREADABLE_CHECK,
            partitions_def=partitions_def,
            description=UNREADABLE_DESCRIPTION,
        )(judged(log_objects_all_read)),
    ]
    if not include_freshness:
        return day_checks
    freshness = asset_check(asset="invocations", name=FRESHNESS_CHECK, description=FRESHNESS_DESCRIPTION)(fresh)
    return [freshness, *day_checks]


def freshness_schedule(daily_hour_utc: int, name: str = "invocations_freshness_schedule") -> ScheduleDefinition:
    """Runs the freshness check every day at the deadline it enforces (stopped until turned on in the UI)."""
    hour = (daily_hour_utc + FRESHNESS_GRACE_HOURS) % 24
    return ScheduleDefinition(
        name=name,
        cron_schedule=f"5 {hour} * * *",
        execution_timezone="UTC",
        target=AssetSelection.checks(FRESHNESS_KEY),
        default_status=DefaultScheduleStatus.STOPPED,
        description="Every day after the daily run's deadline: is yesterday's invocations partition there?",
    )


def _start_day(partitions_def: PartitionsDefinition) -> dt.date | None:
    if isinstance(partitions_def, TimeWindowPartitionsDefinition):
        return partitions_def.start.date()
    return None
