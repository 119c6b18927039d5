"""`cost_anomalies`: which cost centers, applications, users and models spent unusually today.

Method (robust seasonal baseline on a log scale, `pipeline.foresight.baseline`): a key's expected spend today is
the median of its last seven days (each with its weekday's effect removed) with today's weekday effect put back,
the effects being same-weekday medians over up to eight weeks. The band is `band_sigmas` robust standard
deviations (1.4826 × MAD of up to 56 deseasonalised days) either side, on the log scale, so it is a range of
multiples: with 25 % day-to-day noise and the default 4.5 sigmas, about 0.26× to 3.8× the usual day. Why this and not a
fitted model: daily spend per key is short (weeks), multiplicative and heavy-tailed (one long prompt is a spike)
and full of level shifts; medians and MAD ignore the very outliers we look for, need no fitting, and a FinOps
reader can recompute every number. A day is an anomaly when it is outside the band *and* at least
`min_change_usd` away from the expected value, so noisy small keys do not page anyone over cents.

Kinds:
* `spike` / `drop`: outside the band, above or below.
* `new`: a cost center, application or model with no spend in the whole history window, spending today.
* `stopped`: one that spent on at least six of the last seven days and nothing today.
* `insufficient_history`: fewer than `min_history_days` days since the key first appeared (or the ledger has less
  history than that): listed, not judged, never alerted.

Users are judged only when they matter: today's or their median day's cost reaches `min_user_cost_usd`, or they
are among the `top_users` by spend over the last 28 days; `new` and `stopped` are not used for users (people come
and go every day).

Severity: a spike is `high` at ≥ 3× the expected value, `medium` at ≥ 2×, else `low`; a drop `high` at ≤ ⅓,
`medium` at ≤ ½. `new` and `stopped` are `medium`, `high` when the amount is at least 5 % of the dimension's day.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import polars as pl

from pipeline import schemas
from pipeline.foresight.baseline import LEVEL_DAYS, baseline
from pipeline.text import escape_for, usd
from pipeline.vocabulary import ANOMALY_SEVERITIES, Frame, as_lazy

HISTORY_WINDOW_DAYS = 56
"""Eight weeks of days before the judged day: eight of each weekday."""
TOP_USER_DAYS = 28
STOPPED_ACTIVE_DAYS = 6
"""A key is `stopped` when it spent on at least this many of the last seven days and nothing today."""
LARGE_SHARE = 0.05
NO_NEW_OR_STOPPED = ("user",)
_TOKENS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class AnomalySettings:
    """The `foresight:` keys the detector reads (defaults as in config)."""

    min_history_days: int = 14
    min_user_cost_usd: float = 5.0
    top_users: int = 1000
    band_sigmas: float = 4.5
    min_change_usd: float = 1.0


def dimension_series(by_cost_center: Frame, by_user: Frame, by_model: Frame) -> pl.DataFrame:
    """The daily tables as one long frame: `date, dimension, key, cost_usd, tokens` (one row per day and key)."""

    def one(frame: Frame, dimension: str, key: str) -> pl.LazyFrame:
        lazy = as_lazy(frame)
        names = lazy.collect_schema().names()
        tokens = pl.sum_horizontal([pl.col(c).fill_null(0) for c in _TOKENS if c in names] or [pl.lit(0)])
        return (
            lazy.group_by("date", pl.col(key).fill_null(schemas.UNATTRIBUTED).alias("key"))
            .agg(
                pl.col("total_cost_usd").fill_null(0.0).sum().cast(pl.Float64).alias("cost_usd"),
                tokens.sum().cast(pl.Int64).alias("tokens"),
            )
            .with_columns(pl.lit(dimension).alias("dimension"))
        )

    parts = [
        one(by_cost_center, "cost_center", "cost_center"),
        one(by_user, "application", "application"),
        one(by_user, "user", "user"),
        one(by_model, "model", "base_model_id"),
    ]
    return (
        pl.concat(parts)
        .select(
            pl.col("date").cast(pl.Date),
            "dimension",
            pl.col("key").cast(pl.String),
            pl.col("cost_usd").cast(pl.Float64),
            pl.col("tokens").cast(pl.Int64),
        )
        .collect()
    )


def _label(dimension: str, key: str) -> str:
    words = {"cost_center": "cost center", "application": "application", "user": "user", "model": "model"}
    return f"{words.get(dimension, dimension)} {escape_for(key, 'plain')}"


def _sentence(kind: str, dimension: str, key: str, day: dt.date, cost: float, expected: float, history: int) -> str:
    who = _label(dimension, key)
    weekday = _WEEKDAYS[day.weekday()]
    if kind == "new":
        return f"New spender: {who} spent {usd(cost)} today, nothing in the previous {history} days."
    if kind == "stopped":
        return f"{who.capitalize()} stopped: nothing today, against a usual {weekday} of {usd(expected)}."
    if kind == "insufficient_history":
        return f"{who.capitalize()} spent {usd(cost)}; {history} days of history, too few to judge yet."
    ratio = cost / expected if expected > 0 else float("inf")
    times = f"{ratio:.1f}×" if ratio != float("inf") else "far above"
    return f"{who.capitalize()}'s spend is {usd(cost)}, {times} its usual {weekday} ({usd(expected)})."


def _severity(kind: str, cost: float, expected: float, day_total: float) -> str:
    low, medium, high = ANOMALY_SEVERITIES
    if kind in ("new", "stopped"):
        amount = cost if kind == "new" else expected
        return high if day_total > 0 and amount >= LARGE_SHARE * day_total else medium
    ratio = cost / expected if expected > 0 else float("inf")
    if kind == "spike":
        return high if ratio >= 3 else medium if ratio >= 2 else low
    return high if ratio <= 1 / 3 else medium if ratio <= 1 / 2 else low


def cost_anomalies(series: pl.DataFrame, day: dt.date, settings: AnomalySettings | None = None) -> pl.DataFrame:
    """One row per anomaly (and per key not judged yet) on `day`, from `series` (`dimension_series` of the days up
    to `day`; days older than the 56-day window are ignored). Empty when `day` has no data at all."""
    s = settings or AnomalySettings()
    window_start = day - dt.timedelta(days=HISTORY_WINDOW_DAYS)
    series = series.filter(pl.col("date").is_between(window_start, day))
    if series.filter(pl.col("date") == day).is_empty():
        return schemas.empty(schemas.COST_ANOMALIES)
    ledger_days = sorted(d for d in series["date"].unique().to_list() if d < day)
    judged_users = _users_to_judge(series, ledger_days, day, s)
    series = series.filter((pl.col("dimension") != "user") | pl.col("key").is_in(list(judged_users)))
    values: dict[tuple[str, str], dict[dt.date, float]] = defaultdict(dict)
    today_tokens: dict[tuple[str, str], int] = {}
    for dim, key, date, cost, tokens in series.select("dimension", "key", "date", "cost_usd", "tokens").iter_rows():
        values[(dim, key)][date] = values[(dim, key)].get(date, 0.0) + (cost or 0.0)
        if date == day:
            today_tokens[(dim, key)] = today_tokens.get((dim, key), 0) + (tokens or 0)
    day_totals: dict[str, float] = defaultdict(float)
    for (dim, _key), by_day in values.items():
        day_totals[dim] += by_day.get(day, 0.0)
    rows: list[dict[str, Any]] = []
    for (dim, key), by_day in sorted(values.items()):
        cost = by_day.get(day, 0.0)
        seen = [d for d in ledger_days if d in by_day]
        history = [d for d in ledger_days if seen and d >= seen[0]]
        row = {"date": day, "dimension": dim, "key": key, "cost_usd": cost, "tokens": today_tokens.get((dim, key), 0)}
        row["history_days"] = len(history)
        if not history:
            if cost <= 0:
                continue
            first_kind = (
                "new"
                if len(ledger_days) >= s.min_history_days and dim not in NO_NEW_OR_STOPPED and cost >= s.min_change_usd
                else "insufficient_history"
            )
            rows.append({**row, "expected_usd": 0.0, "kind": first_kind})
            continue
        if len(history) < s.min_history_days:
            if cost > 0:
                rows.append({**row, "kind": "insufficient_history"})
            continue
        base = baseline(history, [by_day.get(d, 0.0) for d in history], offset=max(s.min_change_usd, 0.01))
        expected = base.expected(day)
        low, high = base.band(day, s.band_sigmas)
        score = base.score(day, cost)
        measured = {"expected_usd": expected, "low_usd": low, "high_usd": high, "score": score}
        active = sum(1 for d in history[-LEVEL_DAYS:] if by_day.get(d, 0.0) > 0)
        kind: str | None = None
        if cost <= 0 and dim in NO_NEW_OR_STOPPED:
            continue
        if cost <= 0 and active >= STOPPED_ACTIVE_DAYS and expected >= s.min_change_usd:
            kind = "stopped"
        elif score >= s.band_sigmas and cost - expected >= s.min_change_usd:
            kind = "spike"
        elif score <= -s.band_sigmas and expected - cost >= s.min_change_usd:
            kind = "drop"
        if kind:
            rows.append({**row, **measured, "kind": kind})
    out = []
    for r in rows:
        r = {"severity": None, "ratio": None, "expected_usd": None, **r}
        kind, expected = r["kind"], r["expected_usd"] or 0.0
        if kind != "insufficient_history":
            r["severity"] = _severity(kind, r["cost_usd"], expected, day_totals[r["dimension"]])
        if expected > 0:
            r["ratio"] = r["cost_usd"] / expected
        days = len(ledger_days) if kind == "new" else r["history_days"]
        r["sentence"] = _sentence(kind, r["dimension"], r["key"], day, r["cost_usd"], expected, days)
        out.append(r)
    if not out:
        return schemas.empty(schemas.COST_ANOMALIES)
    frame = schemas.conform(pl.DataFrame(out, infer_schema_length=None), schemas.COST_ANOMALIES)
    rank = pl.col("severity").replace_strict(
        {v: i for i, v in enumerate(ANOMALY_SEVERITIES)}, default=-1, return_dtype=pl.Int64
    )
    change = (pl.col("cost_usd") - pl.col("expected_usd").fill_null(0.0)).abs()
    frame = frame.sort([rank, change, "dimension", "key"], descending=[True, True, False, False])
    return schemas.conform(frame, schemas.COST_ANOMALIES)


def _users_to_judge(series: pl.DataFrame, ledger_days: list[dt.date], day: dt.date, s: AnomalySettings) -> set[str]:
    """Users at `min_user_cost_usd` or more today or on their median day with spend, or in the top `top_users` by
    spend over the last 28 days of data (computed in polars: a large organisation has many thousands of users)."""
    users = series.filter(pl.col("dimension") == "user")
    recent = ledger_days[-TOP_USER_DAYS:]
    top = (
        users.filter(pl.col("date").is_in(recent))
        .group_by("key")
        .agg(pl.col("cost_usd").sum())
        .sort(["cost_usd", "key"], descending=[True, False])
        .head(s.top_users)["key"]
    )
    big = (
        users.group_by("key")
        .agg(
            pl.col("cost_usd").filter(pl.col("date") == day).sum().alias("today"),
            pl.col("cost_usd").filter(pl.col("date") < day).median().alias("usual"),
        )
        .filter((pl.col("today") >= s.min_user_cost_usd) | (pl.col("usual").fill_null(0.0) >= s.min_user_cost_usd))[
            "key"
        ]
    )
    return set(top.to_list()) | set(big.to_list())


def alerting(anomalies: pl.DataFrame, at_least: str) -> pl.DataFrame:
    """The anomalies of severity `at_least` or above (never `insufficient_history`), most severe first."""
    levels = ANOMALY_SEVERITIES[ANOMALY_SEVERITIES.index(at_least) :]
    return anomalies.filter(pl.col("severity").is_in(list(levels)) & (pl.col("kind") != "insufficient_history"))


def headline(anomalies: pl.DataFrame) -> str:
    """The finding as a title: "3 anomalies today; the largest: …" (or that there are none)."""
    judged = anomalies.filter(pl.col("kind") != "insufficient_history")
    if judged.is_empty():
        waiting = anomalies.height
        tail = f" ({waiting} keys still building their history)" if waiting else ""
        return f"No anomalies today{tail}"
    first = judged.row(0, named=True)
    noun = "anomaly" if judged.height == 1 else "anomalies"
    return f"{judged.height} {noun} today; the largest: {first['sentence']}"
