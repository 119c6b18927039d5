"""Is the ledger behind, or does a day have holes? The plain functions behind the operability checks.

`expected_fresh_day` says which day's `invocations` must exist by now (the daily schedule's deadline), and
`find_delivery_gaps` finds hours without calls between two busy ones: usually a log delivery that went missing
(a delivery role lost permission, a bucket policy changed, objects were deleted), not an hour nobody worked.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

FRESHNESS_GRACE_HOURS = 3
"""How long after the daily schedule fires yesterday's partition may still be missing (a long day, a retry)."""
DEFAULT_MIN_NEIGHBOUR_CALLS = 20
"""An hour counts as a gap only if the hours on both sides have at least this many calls."""


def expected_fresh_day(now: dt.datetime, daily_hour_utc: int, grace_hours: int = FRESHNESS_GRACE_HOURS) -> dt.date:
    """The newest UTC day whose `invocations` partition must exist at `now`.

    Day P is due at P + 1 day + `daily_hour_utc` + `grace_hours` (the schedule runs P the next day at its
    hour), so the newest due day is the date `daily_hour_utc + grace_hours` hours ago, minus one.
    """
    shifted = now.astimezone(dt.UTC) - dt.timedelta(hours=daily_hour_utc + grace_hours)
    return shifted.date() - dt.timedelta(days=1)


def hourly_calls(inv: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Calls per account × region × UTC hour (`account_id, region, hour, calls`), from rows with `timestamp`,
    `account_id` and `region`.

    Streamed when `inv` is a scan of a written partition: a 4M-row day is read column by column into 24 counts
    per account and region, never held whole (reading those three columns eagerly cost ~500 MB at that size).
    """
    return (
        inv.lazy()
        .select(
            pl.col("account_id").fill_null("unknown"),
            pl.col("region").fill_null("unknown"),
            pl.col("timestamp").dt.hour().cast(pl.Int32).alias("hour"),
        )
        .group_by("account_id", "region", "hour")
        .agg(pl.len().cast(pl.UInt32).alias("calls"))
        .collect(engine="streaming")
    )


def find_delivery_gaps(
    inv: pl.DataFrame | pl.LazyFrame, min_neighbour_calls: int = DEFAULT_MIN_NEIGHBOUR_CALLS
) -> pl.DataFrame:
    """Hours with zero calls for an account × region whose previous and next hour both have enough calls.

    `inv` needs `timestamp`, `account_id`, `region`. Returns `account_id, region, hour, calls_before,
    calls_after`, one row per suspicious hour (hours 1-22 of the day: hour 0 and 23 have a neighbour in
    another partition, and a day's edge is no evidence of a gap).
    """
    return gaps_in_hourly_calls(hourly_calls(inv), min_neighbour_calls)


def gaps_in_hourly_calls(counts: pl.DataFrame, min_neighbour_calls: int = DEFAULT_MIN_NEIGHBOUR_CALLS) -> pl.DataFrame:
    """`find_delivery_gaps` from counts already made by `hourly_calls` (a caller that also needs the total)."""
    schema = {
        "account_id": pl.String,
        "region": pl.String,
        "hour": pl.Int32,
        "calls_before": pl.UInt32,
        "calls_after": pl.UInt32,
    }
    if counts.is_empty():
        return pl.DataFrame(schema=schema)
    hours = pl.DataFrame({"hour": pl.int_range(0, 24, eager=True).cast(pl.Int32)})
    grid = counts.select("account_id", "region").unique().join(hours, how="cross")
    full = (
        grid.join(counts, on=["account_id", "region", "hour"], how="left")
        .with_columns(pl.col("calls").fill_null(0).cast(pl.UInt32))
        .sort("account_id", "region", "hour")
        .with_columns(
            pl.col("calls").shift(1).over("account_id", "region").alias("calls_before"),
            pl.col("calls").shift(-1).over("account_id", "region").alias("calls_after"),
        )
    )
    gaps = full.filter(
        (pl.col("calls") == 0)
        & (pl.col("calls_before") >= min_neighbour_calls)
        & (pl.col("calls_after") >= min_neighbour_calls)
    )
    return gaps.select(list(schema)).cast(schema)  # type: ignore[arg-type]
