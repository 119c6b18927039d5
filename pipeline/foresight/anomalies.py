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
and go every day). Applications are judged the same way once the window has more of them than `top_users`: an
`applicationId` is set by callers, and a consumer product that puts one per end user has millions. This is an
assumption: below that many, every application is an organisation's own and all are judged (and listed while
they are too young); above it, an application that matters to no one's bill (under the floor today and on its
median day, outside the top) is neither judged nor listed, like a user. `new` and `stopped` still apply to the
applications that are judged.

Memory: the window is read one day at a time into one row per key (`_key_summary`), so 56 days of a million users
are never held together; only the judged keys' daily series are read back for the baseline.

Severity: a spike is `high` at ≥ 3× the expected value, `medium` at ≥ 2×, else `low`; a drop `high` at ≤ ⅓,
`medium` at ≤ ½. `new` and `stopped` are `medium`, `high` when the amount is at least 5 % of the dimension's day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
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
SELECTED = ("user",)
"""Dimensions whose keys are judged only when they matter (`_chosen`): people come and go by the thousand."""
SELECTED_WHEN_MANY = ("application",)
"""Dimensions judged like users once they have more keys than `top_users` (caller-set ids: one per end user)."""
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


SOURCES: tuple[tuple[str, str, str], ...] = (
    ("cost_center", "daily_usage_by_cost_center", "cost_center"),
    ("application", "daily_usage_by_user", "application"),
    ("user", "daily_usage_by_user", "user"),
    ("model", "daily_usage_by_model", "base_model_id"),
)
"""Each dimension, the daily table it is read from and that table's key column."""

DayReader = Callable[[dt.date], pl.LazyFrame]
"""One day of one dimension: `key, cost_usd, tokens` rows, any number per key (they are summed)."""


def spend_rows(frame: Frame, key: str) -> pl.LazyFrame:
    """A daily table's rows as `date, key, cost_usd, tokens` (null key: `unattributed`; null money or tokens: 0)."""
    lazy = as_lazy(frame)
    names = lazy.collect_schema().names()
    tokens = pl.sum_horizontal([pl.col(c).fill_null(0) for c in _TOKENS if c in names] or [pl.lit(0)])
    return lazy.select(
        pl.col("date").cast(pl.Date),
        pl.col(key).fill_null(schemas.UNATTRIBUTED).cast(pl.String).alias("key"),
        pl.col("total_cost_usd").fill_null(0.0).cast(pl.Float64).alias("cost_usd"),
        tokens.cast(pl.Int64).alias("tokens"),
    )


def dimension_series(by_cost_center: Frame, by_user: Frame, by_model: Frame) -> pl.DataFrame:
    """The daily tables as one long frame: `date, dimension, key, cost_usd, tokens` (one row per day and key).
    Whole, so for small windows; the asset reads a large window day by day (`cost_anomalies_by_day`)."""
    tables = {"daily_usage_by_cost_center": by_cost_center, "daily_usage_by_user": by_user}
    tables["daily_usage_by_model"] = by_model
    parts = [
        spend_rows(tables[table], key)
        .group_by("date", "key")
        .agg(pl.col("cost_usd").sum(), pl.col("tokens").sum())
        .select("date", pl.lit(dimension).alias("dimension"), "key", "cost_usd", "tokens")
        for dimension, table, key in SOURCES
    ]
    return pl.concat(parts).collect(engine="streaming")


def readers_from_series(series: Frame) -> dict[str, DayReader]:
    """A day reader per dimension over a long frame such as `dimension_series`'."""
    lazy = as_lazy(series).select(
        pl.col("date").cast(pl.Date), "dimension", pl.col("key").cast(pl.String), "cost_usd", "tokens"
    )

    def reader(dimension: str) -> DayReader:
        return lambda d: lazy.filter((pl.col("date") == d) & (pl.col("dimension") == dimension)).select(
            "key", pl.col("cost_usd").fill_null(0.0), pl.col("tokens").fill_null(0)
        )

    return {dimension: reader(dimension) for dimension, _table, _key in SOURCES}


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


def cost_anomalies(series: Frame, day: dt.date, settings: AnomalySettings | None = None) -> pl.DataFrame:
    """One row per anomaly (and per key not judged yet) on `day`, from `series` (`dimension_series` of the days up
    to `day`; days older than the 56-day window are ignored). Empty when `day` has no data at all."""
    return cost_anomalies_by_day(readers_from_series(series), day, settings)


def window(day: dt.date) -> list[dt.date]:
    """The days a judgement reads, oldest first: the 56 before `day`, and `day`."""
    return [day - dt.timedelta(days=i) for i in range(HISTORY_WINDOW_DAYS, -1, -1)]


def _rows_by_day(reader: DayReader, day: dt.date) -> dict[dt.date, int]:
    """The days of `day`'s window on which the reader has rows, with how many."""
    counts = {d: int(reader(d).select(pl.len()).collect().item()) for d in window(day)}
    return {d: n for d, n in counts.items() if n > 0}


def ledger_days(readers: Mapping[str, DayReader], day: dt.date) -> list[dt.date]:
    """The days before `day` in its window on which any dimension has spend rows (the ledger's history)."""
    return sorted({d for reader in readers.values() for d in _rows_by_day(reader, day) if d < day})


def cost_anomalies_by_day(
    readers: Mapping[str, DayReader], day: dt.date, settings: AnomalySettings | None = None
) -> pl.DataFrame:
    """`cost_anomalies` over day readers, one per dimension (`DayReader`), so a long window of a large organisation
    is never held whole: each dimension is summed day by day into one row per key (`_key_summary`), the keys to
    list are chosen and classified from those rows, and only the judged keys' series are read back for the
    baseline. Memory holds one day and one row per key, not 57 days of rows."""
    s = settings or AnomalySettings()
    present = {dimension: _rows_by_day(reader, day) for dimension, reader in readers.items()}
    if not any(day in days for days in present.values()):
        return schemas.empty(schemas.COST_ANOMALIES)
    ledger = sorted({d for days in present.values() for d in days if d < day})
    found = [_dimension_anomalies(dim, readers[dim], present[dim], ledger, day, s) for dim in readers]
    frame = pl.concat([f for f in found if not f.is_empty()] or [schemas.empty(schemas.COST_ANOMALIES)])
    if frame.is_empty():
        return schemas.empty(schemas.COST_ANOMALIES)
    rank = pl.col("severity").replace_strict(
        {v: i for i, v in enumerate(ANOMALY_SEVERITIES)}, default=-1, return_dtype=pl.Int64
    )
    change = (pl.col("cost_usd") - pl.col("expected_usd").fill_null(0.0)).abs()
    frame = frame.sort([rank, change, "dimension", "key"], descending=[True, True, False, False])
    return schemas.conform(frame, schemas.COST_ANOMALIES)


KEYS_PER_BUCKET = 250_000
"""Keys folded together: a dimension with a million keys a day is folded in buckets of about this many (a fixed
hash of the key), so adding a day regroups a quarter of a million keys at a time, not two million rows."""


def _key_summary(
    reader: DayReader, days: list[dt.date], ledger: list[dt.date], day: dt.date, s: AnomalySettings, buckets: int = 1
) -> pl.DataFrame:
    """One row per key of a dimension over the window, folded one day at a time: `first_seen` (its first day
    before `day`), `today_usd`, `today_tokens`, `recent_usd` and `recent_days` (over the last 28 ledger days),
    `days_before` (days with rows before `day`) and `days_at_floor` (of those, days at `min_user_cost_usd` or
    more, which decide whether the median day reaches it without holding every day)."""
    recent = set(ledger[-TOP_USER_DAYS:])
    summaries: dict[int, pl.DataFrame] = {}
    for d in days:
        before, is_recent = d < day, d in recent
        part = (
            reader(d)
            .group_by("key")
            .agg(pl.col("cost_usd").sum(), pl.col("tokens").sum())
            .select(
                "key",
                pl.lit(d if before else None, pl.Date).alias("first_seen"),
                (pl.lit(0.0) if before else pl.col("cost_usd")).alias("today_usd"),
                (pl.lit(0, pl.Int64) if before else pl.col("tokens").cast(pl.Int64)).alias("today_tokens"),
                (pl.col("cost_usd") if is_recent else pl.lit(0.0)).alias("recent_usd"),
                pl.lit(int(is_recent), pl.Int64).alias("recent_days"),
                pl.lit(int(before), pl.Int64).alias("days_before"),
                ((pl.col("cost_usd") >= s.min_user_cost_usd) & before).cast(pl.Int64).alias("days_at_floor"),
            )
            .collect(engine="streaming")
        )
        pieces = {0: part} if buckets == 1 else _buckets(part, buckets)
        del part
        for b, piece in pieces.items():
            summaries[b] = _fold(pl.concat([summaries[b], piece])) if b in summaries else piece
    if not summaries:
        return pl.DataFrame()
    summary = pl.concat(list(summaries.values()))
    history = pl.DataFrame(
        {"first_seen": ledger, "history_days": list(range(len(ledger), 0, -1))},
        schema={"first_seen": pl.Date, "history_days": pl.Int64},
    )
    return summary.join(history, on="first_seen", how="left").with_columns(pl.col("history_days").fill_null(0))


def _buckets(part: pl.DataFrame, buckets: int) -> dict[int, pl.DataFrame]:
    bucket = (pl.col("key").hash(seed=0) % buckets).alias("_bucket")
    split = part.with_columns(bucket).partition_by("_bucket", as_dict=True, include_key=False)
    return {int(str(k[0])): v for k, v in split.items()}


def _fold(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.group_by("key").agg(
        pl.col("first_seen").min(),
        pl.col("today_usd", "today_tokens", "recent_usd", "recent_days", "days_before", "days_at_floor").sum(),
    )


def _chosen(
    summary: pl.DataFrame, reader: DayReader, days: list[dt.date], day: dt.date, s: AnomalySettings
) -> pl.DataFrame:
    """The keys that matter among many caller-set ones (users; applications when there are many): today's cost or
    the median day before it at `min_user_cost_usd` or more, or in the top `top_users` by spend over the last 28
    days of data. The median is decided by counting days at the floor; only a key whose count sits exactly at half
    its days needs its days read back to compute it."""
    floor = s.min_user_cost_usd
    top = (
        summary.filter(pl.col("recent_days") > 0)
        .sort(["recent_usd", "key"], descending=[True, False])
        .head(s.top_users)
        .select("key")
    )
    n, k = pl.col("days_before"), pl.col("days_at_floor")
    usual = pl.when(n == 0).then(pl.lit(floor <= 0.0)).otherwise(2 * k > n)
    sure = summary.filter((pl.col("today_usd") >= floor) | usual).select("key")
    unsure = summary.filter((n > 0) & (2 * k == n) & (pl.col("today_usd") < floor)).select("key")
    if not unsure.is_empty():
        by_day = _series_of(unsure, reader, [d for d in days if d < day])
        medians = by_day.group_by("key").agg(pl.col("cost_usd").median())
        sure = pl.concat([sure, medians.filter(pl.col("cost_usd") >= floor).select("key")])
    keys = pl.concat([top, sure]).unique()
    return summary.join(keys, on="key", how="semi")


def _series_of(keys: pl.DataFrame, reader: DayReader, days: list[dt.date]) -> pl.DataFrame:
    """The daily spend (`key, date, cost_usd`) of the keys in `keys` alone, read one day at a time (a query over
    all days at once may read them all at once)."""
    wanted = keys.select("key").lazy()
    return pl.concat(
        [
            reader(d)
            .join(wanted, on="key", how="semi")
            .group_by("key")
            .agg(pl.col("cost_usd").sum())
            .with_columns(pl.lit(d, pl.Date).alias("date"))
            .collect(engine="streaming")
            for d in days
        ]
        or [pl.DataFrame(schema={"key": pl.String, "cost_usd": pl.Float64, "date": pl.Date})]
    )


def _dimension_anomalies(
    dim: str, reader: DayReader, counts: dict[dt.date, int], ledger: list[dt.date], day: dt.date, s: AnomalySettings
) -> pl.DataFrame:
    """One dimension's rows: keys new today or too young to judge classified from their summary row, and the
    judged keys' spikes, drops and stops from the baseline of their series."""
    days = sorted(counts)
    buckets = 1 + max(counts.values(), default=0) // KEYS_PER_BUCKET
    summary = _key_summary(reader, days, ledger, day, s, buckets)
    if summary.is_empty():
        return summary
    day_total = float(summary["today_usd"].sum() or 0.0)
    if dim in SELECTED or (dim in SELECTED_WHEN_MANY and summary.height > s.top_users):
        summary = _chosen(summary, reader, days, day, s)
    cost, hist = pl.col("today_usd"), pl.col("history_days")
    is_new = pl.lit(len(ledger) >= s.min_history_days and dim not in NO_NEW_OR_STOPPED) & (cost >= s.min_change_usd)
    young = summary.filter((hist < s.min_history_days) & (cost > 0)).select(
        "key",
        cost.alias("cost_usd"),
        pl.col("today_tokens").alias("tokens"),
        "history_days",
        pl.when(hist == 0).then(pl.lit(0.0)).alias("expected_usd"),
        pl.when((hist == 0) & is_new).then(pl.lit("new")).otherwise(pl.lit("insufficient_history")).alias("kind"),
    )
    judged = summary.filter((hist >= s.min_history_days) & ((cost > 0) | pl.lit(dim not in NO_NEW_OR_STOPPED)))
    rows = [*young.iter_rows(named=True), *_judged_rows(dim, judged, reader, days, ledger, day, s)]
    out = [_finished(r, dim, day, len(ledger), day_total) for r in rows]
    if not out:
        return pl.DataFrame()
    return schemas.conform(pl.DataFrame(out, infer_schema_length=None), schemas.COST_ANOMALIES)


def _judged_rows(
    dim: str,
    judged: pl.DataFrame,
    reader: DayReader,
    days: list[dt.date],
    ledger: list[dt.date],
    day: dt.date,
    s: AnomalySettings,
) -> Iterator[dict[str, Any]]:
    """Spikes, drops and stops of keys with enough history, from their daily series read back for them alone."""
    if judged.is_empty():
        return
    per_key = _series_of(judged, reader, days).group_by("key").agg("date", "cost_usd")
    facts = judged.select("key", "today_tokens", "history_days").join(per_key, on="key", how="left")
    for key, tokens, history_days, dates, costs in facts.sort("key").iter_rows():
        by_day = dict(zip(dates or [], costs or [], strict=True))
        history = ledger[len(ledger) - history_days :]
        cost = by_day.get(day, 0.0)
        base = baseline(history, [by_day.get(d, 0.0) for d in history], offset=max(s.min_change_usd, 0.01))
        expected = base.expected(day)
        low, high = base.band(day, s.band_sigmas)
        score = base.score(day, cost)
        active = sum(1 for d in history[-LEVEL_DAYS:] if by_day.get(d, 0.0) > 0)
        kind: str | None = None
        if cost <= 0 and active >= STOPPED_ACTIVE_DAYS and expected >= s.min_change_usd:
            kind = "stopped"
        elif score >= s.band_sigmas and cost - expected >= s.min_change_usd:
            kind = "spike"
        elif score <= -s.band_sigmas and expected - cost >= s.min_change_usd:
            kind = "drop"
        if kind:
            yield {
                "key": key,
                "cost_usd": cost,
                "tokens": tokens,
                "history_days": history_days,
                "expected_usd": expected,
                "low_usd": low,
                "high_usd": high,
                "score": score,
                "kind": kind,
            }


def _finished(r: dict[str, Any], dim: str, day: dt.date, ledger_days: int, day_total: float) -> dict[str, Any]:
    """A classified key as a table row: severity, ratio and the sentence."""
    r = {"date": day, "dimension": dim, "severity": None, "ratio": None, "expected_usd": None, **r}
    kind, expected = r["kind"], r["expected_usd"] or 0.0
    if kind != "insufficient_history":
        r["severity"] = _severity(kind, r["cost_usd"], expected, day_total)
    if expected > 0:
        r["ratio"] = r["cost_usd"] / expected
    days = ledger_days if kind == "new" else r["history_days"]
    r["sentence"] = _sentence(kind, dim, r["key"], day, r["cost_usd"], expected, days)
    return r


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
