"""Bill rows longer than a day, spread over the days they cover.

A CUR or Data Export at monthly granularity (or a monthly charge in an hourly one) gives one row per month, with
its usage starting on the 1st. Put on its start day it charges the whole month to day 1 and nothing to the rest
(a team's chargeback on the 1st several times its share, then $0). Instead each day of the row's usage period, from
its usage start to the earlier of its usage end and the last day with data, gets a part of it:

* weighted by the logged estimated cost of the row's bucket (account × region × model, as chargeback allocates) on
  each of those days, so the bill follows the traffic that caused it (`spread_basis = logged`);
* evenly over the days where the bucket has no logged cost on any of them (`spread_basis = even`).

Rows of an hour or a day are kept as they are (`spread_basis = none`). `granularity` says which kind a row was:
`hourly` (at most an hour), `daily` (at most a day), `monthly` (longer). The parts of a spread row over its days
add up to the row: cost, net cost, usage amount and tokens are all scaled by the same weight.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import polars as pl

HOURLY, DAILY, MONTHLY = "hourly", "daily", "monthly"
LOGGED, EVEN, NONE = "logged", "even", "none"
BUCKET: tuple[str, ...] = ("account_id", "region", "base_model_id")
"""The bucket a long row's days are weighed in: chargeback's allocation bucket without its date."""
SCALED: tuple[str, ...] = ("unblended_cost_usd", "net_cost_usd", "usage_amount")
LOGGED_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "account_id": pl.String(),
    "region": pl.String(),
    "base_model_id": pl.String(),
    "estimated_cost_usd": pl.Float64(),
}
"""Logged estimated cost per day and bucket: what `spread_rows` weighs a long row's days by."""


def granularity() -> pl.Expr:
    """A row's granularity from its usage period (`usage_start`, `usage_end`); a row without an end is daily."""
    length = pl.col("usage_end") - pl.col("usage_start")
    return (
        pl.when(length.is_null())
        .then(pl.lit(DAILY))
        .when(length <= dt.timedelta(hours=1))
        .then(pl.lit(HOURLY))
        .when(length <= dt.timedelta(days=1))
        .then(pl.lit(DAILY))
        .otherwise(pl.lit(MONTHLY))
    )


def _end_day() -> pl.Expr:
    """The first day a row does not cover: its usage end's day, or the day after when the end is past midnight."""
    end = pl.col("usage_end")
    return pl.when(end == end.dt.truncate("1d")).then(end.dt.date()).otherwise(end.dt.date() + dt.timedelta(days=1))


History = Callable[[], tuple[pl.DataFrame | None, dt.date | None]]
"""What a long row's days are weighed with, fetched only when the day has a long row: (logged cost per day and
bucket, `LOGGED_SCHEMA`; the last day with data)."""


def spread_rows(
    rows: pl.DataFrame,
    day: dt.date,
    logged: pl.DataFrame | History | None,
    last_day_with_data: dt.date | None = None,
) -> pl.DataFrame:
    """`rows` (classified bill rows with `usage_start`, `usage_end`, `date`, the bucket and the scaled columns) as
    the rows of `day`: rows of at most a day that start on it as they are, and this day's part of every longer row
    whose period covers it, with `granularity` and `spread_basis` added.

    `logged` holds the bucket's estimated cost per day (`LOGGED_SCHEMA`) for the days the long rows cover; None or
    empty spreads them evenly. `last_day_with_data` (default `day`) ends a row's days early: a month still running
    is spread over the days that have happened, not over its future. `logged` may instead be a `History`, called
    only when there is a long row to spread (reading a month of logs is then paid only by such bills).
    """
    rows = rows.with_columns(granularity().alias("granularity"))
    short = rows.filter((pl.col("granularity") != MONTHLY) & (pl.col("date") == day)).with_columns(
        pl.lit(NONE).alias("spread_basis")
    )
    long = rows.filter(pl.col("granularity") == MONTHLY).with_row_index("_row")
    if long.is_empty():
        return short
    if callable(logged):
        logged, last_day_with_data = logged()
    last = max(last_day_with_data or day, day)
    long = long.with_columns(
        pl.col("usage_start").dt.date().alias("_first"),
        pl.min_horizontal(_end_day(), pl.lit(last + dt.timedelta(days=1))).alias("_stop"),
    ).filter((pl.col("_first") <= day) & (pl.col("_stop") > day))
    if long.is_empty():
        return short
    days = long.select(
        "_row", *BUCKET, pl.date_ranges("_first", "_stop", interval="1d", closed="left").alias("_day")
    ).explode("_day")
    costs = (
        logged.select(list(LOGGED_SCHEMA))
        .cast(pl.Schema(LOGGED_SCHEMA))
        .rename({"date": "_day"})
        .group_by("_day", *BUCKET)
        .agg(pl.col("estimated_cost_usd").sum())
        if logged is not None and not logged.is_empty()
        else pl.DataFrame(schema={"_day": pl.Date, **{b: pl.String for b in BUCKET}, "estimated_cost_usd": pl.Float64})
    )
    weights = (
        days.join(costs, on=["_day", *BUCKET], how="left", nulls_equal=True)
        .with_columns(pl.col("estimated_cost_usd").fill_null(0.0).clip(lower_bound=0.0))
        .group_by("_row")
        .agg(
            pl.col("estimated_cost_usd").filter(pl.col("_day") == day).sum().alias("_mine"),
            pl.col("estimated_cost_usd").sum().alias("_all"),
            pl.len().alias("_days"),
        )
        .with_columns(
            pl.when(pl.col("_all") > 0)
            .then(pl.col("_mine") / pl.col("_all"))
            .otherwise(1.0 / pl.col("_days"))
            .alias("_weight"),
            pl.when(pl.col("_all") > 0).then(pl.lit(LOGGED)).otherwise(pl.lit(EVEN)).alias("spread_basis"),
        )
    )
    parts = (
        long.join(weights.select("_row", "_weight", "spread_basis"), on="_row", how="left")
        .with_columns(
            *[(pl.col(c) * pl.col("_weight")).alias(c) for c in SCALED if c in long.columns],
            (pl.col("tokens").cast(pl.Float64) * pl.col("_weight")).round(0).cast(pl.Int64).alias("tokens"),
            pl.lit(day).alias("date"),
        )
        .drop("_row", "_first", "_stop", "_weight")
    )
    return pl.concat([short, parts.select(short.columns)], how="vertical_relaxed")
