"""`spend_forecast`: where the month ends, per cost center and in total, with an interval.

Method: the month to date is known; each day left is the series' baseline (`pipeline.foresight.baseline`: a
recent level times the weekday's factor, so a month with five weekends left ends lower than a straight run rate
says). The interval comes from a residual bootstrap on the baseline's log scale: 1,000 simulated rests of the
month, each drawing

* a level: the median of a resample of the last seven deseasonalised days (how sure we are of the level), and
* each remaining day: that level, the weekday's effect and a residual drawn from up to 56 days' deseasonalised
  residuals (so a day can be a multiple of the usual, never below zero).

The forecast is the median of the simulated month ends and the interval their central `interval` (80 % by
default); `p_over_budget` is the share of simulations above the budget. The generator is seeded from the day
and the key, so a rerun writes the same numbers. Limits: it assumes the next weeks look like the last ones (a launch
planned for next week is invisible); with under two weeks of data the spread is not measured but assumed (at least
±30 % a day, normal on the log scale), and there is no weekday pattern before two of each weekday; residuals are
drawn independently, so a sustained shift inside the month is covered only through the level's resampling.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import math
import random
from collections.abc import Mapping
from statistics import median

import polars as pl

from pipeline import schemas
from pipeline.foresight.baseline import Baseline, baseline
from pipeline.text import usd
from pipeline.vocabulary import Frame, as_lazy

SIMULATIONS = 1000
"""Enough for the 10th and 90th percentiles to within about one percentile point."""
BOOTSTRAP_DAYS = 14
"""Below this many days of history the spread is not bootstrapped but drawn from a normal (see `_simulate`)."""
SHORT_SIGMA = 0.3
"""The least day-to-day spread (log scale, about ±30 %) assumed while the history is too short to measure it."""
TOTAL = "total"


def _seed(day: dt.date, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{day.isoformat()}|{key}".encode()).digest()[:8], "little")


def month_end(
    days: list[dt.date],
    values: list[float],
    as_of: dt.date,
    *,
    interval: float = 0.8,
    budget: float | None = None,
    key: str = TOTAL,
) -> dict[str, float | int | None]:
    """The month-end forecast of one series (days oldest first, zero-spend days included, none after `as_of`)."""
    month_start = as_of.replace(day=1)
    days_in_month = calendar.monthrange(as_of.year, as_of.month)[1]
    left = [as_of + dt.timedelta(days=i) for i in range(1, days_in_month - as_of.day + 1)]
    to_date = float(sum(v for d, v in zip(days, values, strict=True) if month_start <= d <= as_of))
    month_days = [d for d in days if month_start <= d <= as_of]
    run_rate = to_date + (to_date / len(month_days) * len(left) if month_days else 0.0)
    base = baseline(days, values, offset=_offset(values))
    point = to_date + sum(base.expected(d) for d in left)
    low = high = point
    p_over: float | None = None
    if left and days:
        totals = sorted(to_date + t for t in _simulate(base, left, _seed(as_of, key)))
        tail = (1 - interval) / 2
        point = median(totals)  # a day's spend is skewed: the sum of usual days (medians) would sit too low
        low = totals[int(tail * (len(totals) - 1))]
        high = totals[int(round((1 - tail) * (len(totals) - 1)))]
        if budget is not None:
            p_over = sum(1 for t in totals if t > budget) / len(totals)
    elif budget is not None:
        p_over = 1.0 if point > budget else 0.0
    return {
        "spend_to_date_usd": to_date,
        "forecast_usd": point,
        "low_usd": low,
        "high_usd": high,
        "p_over_budget": p_over,
        "history_days": len(days),
        "days_left": len(left),
        "run_rate_usd": run_rate,
    }


def _offset(values: list[float]) -> float:
    """A cent, or 1 % of the median day: small enough not to bend the pattern, large enough for zero days."""
    return max(0.01, 0.01 * median(values)) if values else 0.01


def _simulate(base: Baseline, left: list[dt.date], seed: int) -> list[float]:
    """Simulated spend of the days `left`, one total per simulation (log scale, see `baseline`): each day is
    exp(level + weekday effect + residual) − offset, computed as a product of precomputed exponentials.

    With fewer than `BOOTSTRAP_DAYS` days the residuals and the level's resample say too little about the
    spread (three days can agree by chance), so both are drawn from a normal with at least `SHORT_SIGMA`."""
    rng = random.Random(seed)
    recent = list(base.recent) or [base.level]
    weekday = [math.exp(base.effects[d.weekday()]) for d in left]
    offset = base.offset
    short = len(base.residuals) < BOOTSTRAP_DAYS
    sigma = max(base.spread, SHORT_SIGMA)
    if short:  # a pool of normal residuals, drawn from like the measured ones
        growth = [math.exp(rng.gauss(0.0, sigma)) for _ in range(SIMULATIONS)]
    else:
        growth = [math.exp(r) for r in base.residuals] or [1.0]
    totals = []
    for _ in range(SIMULATIONS):
        if short:
            level = math.exp(median(recent) + rng.gauss(0.0, sigma * 1.25 / math.sqrt(len(recent))))
        else:
            level = math.exp(median(rng.choices(recent, k=len(recent))))
        draws = rng.choices(growth, k=len(left))
        totals.append(sum(max(level * w * g - offset, 0.0) for g, w in zip(draws, weekday, strict=True)))
    return totals


def spend_forecast(
    daily_cost_center: Frame,
    as_of: dt.date,
    budgets: Mapping[str, float],
    *,
    interval: float = 0.8,
    history_days: int = 56,
) -> pl.DataFrame:
    """Per cost center and in total, the month-end forecast as of `as_of` from `daily_usage_by_cost_center` (the
    days up to `as_of`; at most `history_days` before it are read). Zero-spend days of a key count from its first
    day with spend; days the ledger has no data for at all are not counted as zero."""
    start = as_of - dt.timedelta(days=history_days)
    daily = (
        as_lazy(daily_cost_center)
        .filter(pl.col("date").is_between(start, as_of))
        .group_by("date", pl.col("cost_center").fill_null(schemas.UNATTRIBUTED))
        .agg(pl.col("total_cost_usd").fill_null(0.0).sum())
        .collect()
    )
    ledger_days = sorted(daily["date"].unique().to_list())
    if not ledger_days or ledger_days[-1] != as_of:
        return schemas.empty(schemas.SPEND_FORECAST)
    by_key: dict[str, dict[dt.date, float]] = {}
    for date, cc, cost in daily.iter_rows():
        by_key.setdefault(cc, {})[date] = cost
    by_key[TOTAL] = {}
    for date, _cc, cost in daily.iter_rows():
        by_key[TOTAL][date] = by_key[TOTAL].get(date, 0.0) + cost
    for cc in budgets:
        by_key.setdefault(cc, {})
    rows = []
    for key, by_day in sorted(by_key.items()):
        first = min(by_day) if by_day else as_of
        days = [d for d in ledger_days if d >= first]
        values = [by_day.get(d, 0.0) for d in days]
        scope = "total" if key == TOTAL else "cost_center"
        budget = sum(budgets.values()) if key == TOTAL and budgets else budgets.get(key)
        if key == TOTAL and not budgets:
            budget = None
        figures = month_end(days, values, as_of, interval=interval, budget=budget, key=f"{scope}:{key}")
        rows.append(
            {
                "date": as_of,
                "scope": scope,
                "key": key,
                "month": as_of.strftime("%Y-%m"),
                "interval": interval,
                "budget_usd": budget,
                **figures,
            }
        )
    return schemas.conform(pl.DataFrame(rows, infer_schema_length=None), schemas.SPEND_FORECAST)


def headline(forecast: pl.DataFrame) -> str:
    """ "Month ends at $41.2K (80 %: $38.9K–$43.8K), 3 % over budget" for the total row."""
    total = forecast.filter(pl.col("scope") == "total")
    if total.is_empty():
        return "No forecast: no spend recorded for this day"
    r = total.row(0, named=True)
    pct = round(r["interval"] * 100)
    text = (
        f"Month ends at {usd(r['forecast_usd'])} ({pct} %: {usd(r['low_usd'])}–{usd(r['high_usd'])})"
        f", {usd(r['spend_to_date_usd'])} spent so far"
    )
    if r["budget_usd"]:
        gap = (r["forecast_usd"] - r["budget_usd"]) / r["budget_usd"] * 100
        side = "over" if gap > 0 else "under"
        text += f"; {abs(gap):.0f} % {side} the summed budgets ({r['p_over_budget'] * 100:.0f} % chance of going over)"
    return text
