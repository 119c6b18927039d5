"""`budget_status`: month-to-date spend per cost center against its configured monthly budget.

Spend is the estimated (priced) cost from ``daily_usage_by_cost_center``, available the day after usage, so the
budget can warn weeks before the bill closes. Definitions:

* ``spend_to_date_usd`` = sum of ``total_cost_usd`` from the 1st of ``as_of``'s month through ``as_of``
  inclusive. Rows after ``as_of`` are ignored, so re-running an old partition reproduces that day's answer.
* ``days_elapsed`` = ``as_of.day``: ``as_of`` is the last complete day of data (the partition day), so it counts.
* ``first_data_date`` = the first day of the month with any row in ``daily_usage_by_cost_center`` (any cost
  center); ``days_with_data`` = days from it to ``as_of``, both counted. A month whose data starts mid-month
  (logging switched on, a ``start_date`` on the 15th) is not diluted by the days before.
* ``forecast_month_end_usd``: from ``spend_forecast`` when it is given (the weekly pattern and a recent level,
  ``pipeline.foresight.forecast``), with ``forecast_low_usd`` / ``forecast_high_usd`` (its interval, 80 % by
  default) and ``p_over_budget`` (the share of its simulated month ends above the budget). Without it (or for a
  cost center it has no row for) a straight run rate: spend_to_date + spend_to_date / days_with_data × days left
  after ``as_of`` (days before the first data count as no spend), with no interval; the run rate over-forecasts
  after a spike and ignores weekends. Null in a month with no data at all.
* ``unpriced_invocations`` / ``invocations`` / ``unpriced_share``: calls of the month to date that carry no price
  (an unknown model, a missing rate). Their cost is in neither the spend nor the forecast, so a share above zero
  means both are understated by an amount the ledger cannot know.
* ``pct_used`` = spend_to_date / budget × 100 (null without a budget).
* ``status``, first match wins: ``no_data`` (no cost center has any row this month up to ``as_of``: the logs are
  missing or not yet ingested, which is not the same as zero spend), ``no_budget`` (the cost center has spend
  or usage this month but no budget), ``over_budget`` (pct_used ≥ 100), ``warning`` (pct_used ≥
  ``warning_pct``, 80 by default), ``forecast_over``
  (still under the warning line, but the run rate ends the month above budget — the early warning that matters
  most on day 5), else ``ok``.

Every configured budget gets a row, with 0 spend when the cost center has not spent anything yet; every cost center
that appears in the month's daily rows (``unattributed`` included) gets a row, budgeted or not.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence

import polars as pl

from pipeline import schemas
from pipeline.config import Budget
from pipeline.text import usd

WARNING_PCT = 80.0


def budget_status(
    daily_cost_center: pl.DataFrame | pl.LazyFrame,
    budgets: Sequence[Budget],
    as_of: dt.date,
    *,
    warning_pct: float = WARNING_PCT,
    forecast: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Budget status per cost center for the month of ``as_of`` (see module docstring for each definition).

    ``daily_cost_center`` holds many days of ``daily_usage_by_cost_center``; only ``date``, ``cost_center``,
    ``total_cost_usd`` and (when present) ``invocations`` and ``unpriced_invocations`` are read. ``forecast`` is
    ``as_of``'s ``spend_forecast``; its cost-center rows replace the run rate.
    """
    month_start = as_of.replace(day=1)
    days_in_month = calendar.monthrange(as_of.year, as_of.month)[1]
    days_elapsed = as_of.day

    lazy = daily_cost_center.lazy()
    names = lazy.collect_schema().names()

    def count(col: str) -> pl.Expr:
        return (pl.col(col).fill_null(0) if col in names else pl.lit(0)).sum().cast(pl.Int64).alias(col)

    month = lazy.filter(pl.col("date").is_between(month_start, as_of, closed="both"))
    spend = (
        month.group_by(pl.col("cost_center").fill_null(schemas.UNATTRIBUTED))
        .agg(
            pl.col("total_cost_usd").fill_null(0.0).sum().cast(pl.Float64).alias("spend_to_date_usd"),
            count("invocations"),
            count("unpriced_invocations"),
            pl.col("date").min().alias("_first"),
        )
        .collect()
    )
    first_data: dt.date | None = spend["_first"].min() if spend.height else None  # type: ignore[assignment]
    days_with_data = (as_of - first_data).days + 1 if first_data is not None else 0
    days_left = days_in_month - days_elapsed
    if days_with_data:
        run_rate = pl.col("spend_to_date_usd") + pl.col("spend_to_date_usd") / days_with_data * days_left
    else:
        run_rate = pl.lit(None, dtype=pl.Float64)
    budget_frame = pl.DataFrame(
        {"cost_center": [b.cost_center for b in budgets], "budget_usd": [float(b.monthly_usd) for b in budgets]},
        schema={"cost_center": pl.String, "budget_usd": pl.Float64},
    )
    pct = pl.col("spend_to_date_usd") * 100.0 / pl.col("budget_usd")  # multiply first: 80 of 100 is exactly 80.0
    foresight = _forecast_columns(forecast, as_of)
    out = (
        spend.drop("_first")
        .join(budget_frame, on="cost_center", how="full", coalesce=True)
        .with_columns(
            pl.col("spend_to_date_usd").fill_null(0.0),
            pl.col("invocations").fill_null(0),
            pl.col("unpriced_invocations").fill_null(0),
        )
        .with_columns(
            pl.lit(as_of.strftime("%Y-%m")).alias("month"),
            pl.lit(as_of).alias("date"),
            pl.lit(days_elapsed, dtype=pl.Int64).alias("days_elapsed"),
            pl.lit(days_in_month, dtype=pl.Int64).alias("days_in_month"),
            run_rate.alias("_run_rate"),
            pct.alias("pct_used"),
            pl.lit(first_data, dtype=pl.Date).alias("first_data_date"),
            pl.lit(days_with_data, dtype=pl.Int64).alias("days_with_data"),
            pl.when(pl.col("invocations") > 0)
            .then(pl.col("unpriced_invocations") / pl.col("invocations"))
            .otherwise(pl.lit(0.0))
            .alias("unpriced_share"),
        )
        .join(foresight, on="cost_center", how="left")
        .with_columns(
            pl.when(pl.lit(days_with_data == 0))
            .then(pl.lit(None, pl.Float64))
            .otherwise(pl.coalesce("_forecast", "_run_rate"))
            .alias("forecast_month_end_usd")
        )
        .with_columns(
            pl.when(pl.lit(days_with_data == 0))
            .then(pl.lit("no_data"))
            .when(pl.col("budget_usd").is_null())
            .then(pl.lit("no_budget"))
            .when(pl.col("pct_used") >= 100.0)
            .then(pl.lit("over_budget"))
            .when(pl.col("pct_used") >= warning_pct)
            .then(pl.lit("warning"))
            .when(pl.col("forecast_month_end_usd") > pl.col("budget_usd"))
            .then(pl.lit("forecast_over"))
            .otherwise(pl.lit("ok"))
            .alias("status")
        )
        .sort("cost_center")
    )
    return schemas.conform(out, schemas.BUDGET_STATUS)


def _forecast_columns(forecast: pl.DataFrame | None, as_of: dt.date) -> pl.DataFrame:
    """`spend_forecast`'s cost-center rows for `as_of` as the columns budget_status takes from it."""
    schema = {
        "cost_center": pl.String,
        "_forecast": pl.Float64,
        "forecast_low_usd": pl.Float64,
        "forecast_high_usd": pl.Float64,
        "p_over_budget": pl.Float64,
    }
    if forecast is None or forecast.is_empty():
        return pl.DataFrame(schema=schema)
    rows = forecast.filter((pl.col("scope") == "cost_center") & (pl.col("date") == as_of))
    return rows.select(
        pl.col("key").alias("cost_center"),
        pl.col("forecast_usd").alias("_forecast"),
        pl.col("low_usd").alias("forecast_low_usd"),
        pl.col("high_usd").alias("forecast_high_usd"),
        pl.col("p_over_budget"),
    ).cast(schema)  # type: ignore[arg-type]


NAMED_IN_WORDS = 20
"""Cost centers a sentence names before it says how many more (a check description and an alert stay one line)."""


def forecasts_over_budget(status: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """The cost centers of one day's `budget_status` whose month-end forecast exceeds their budget, largest first,
    and one sentence naming the first `NAMED_IN_WORDS` (empty when none): what the forecast check and its alert say.
    Amounts through `usd`, so a $0.42 budget reads "$0.42", not "$0"."""
    over = status.filter(
        pl.col("budget_usd").is_not_null() & (pl.col("forecast_month_end_usd") > pl.col("budget_usd"))
    ).sort("forecast_month_end_usd", descending=True)
    words = "; ".join(
        f"{r['cost_center']} forecast {usd(r['forecast_month_end_usd'])} = "
        f"{r['forecast_month_end_usd'] / r['budget_usd'] * 100:.0f}% of its {usd(r['budget_usd'])} budget"
        for r in over.head(NAMED_IN_WORDS).iter_rows(named=True)
    )
    if over.height > NAMED_IN_WORDS:
        words += f"; and {over.height - NAMED_IN_WORDS:,} more cost centers"
    return over, words
