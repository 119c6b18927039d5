"""`savings_opportunities`: the day's real calls repriced as if they had been bought another way.

Every figure is a repricing: the candidate calls of a scenario are copied, the one thing the scenario changes is
set (the model id and routing, the service tier, or cache writes turned into reads), and the copy goes through
the same `price_invocations` and catalog that priced the day. A candidate whose alternative the catalog cannot
price (no `global.` row for its model, no rate for the smaller model's cache reads) is left out, never guessed.
Savings = `assumed_share_async` × (current − repriced cost); the assumptions are columns, not prose:

* `global_routing`: in-region and geo calls of models with a `global.` row, as `global.` calls (for Claude Sonnet
  4.5 and later the regional endpoints carry a 10 % premium). All of them (share 1).
* `regional_routing`: `global.` calls as in-region calls, where that is cheaper (rarely; listed when it is).
* `batch`: calls that look asynchronous — not streaming, a success, and either large (≥ `batch_min_input_tokens`
  input tokens) or made off-hours (00:00–06:00 UTC) — at the batch tier. Share 1: the filter is the assumption.
* `flex`: the same asynchronous-looking calls at the flex tier (share 1), for work that can wait but not a day.
* `smaller_model`: short calls (≤ `long_output_tokens` output and ≤ 2,000 input tokens) to a model with a cheaper
  sibling of the same family (`SMALLER_SIBLING`), same routing prefix, at the sibling's rates. Share 0.5: half of
  short calls are assumed to keep their quality on the smaller model.
* `more_caching`: only applications that already read from the cache; their calls that wrote the cache without
  reading it, repriced with those writes read instead. Share 0.5: half of the writes become hits.

A day with many calls is repriced in parts of whole applications (`CALLS_PER_PART`, a fixed hash of the name) and
its application rows are written in bands of savings (`savings_in_order`), so neither the day's calls nor its
million application rows are held whole; a small day is one part, as before.

Tier prices the catalog lacks are derived by the pricing engine (batch and flex at 0.5 × standard) and
`rate_source` says so. No Provisioned Throughput scenario: the logs give no per-unit capacity to reason from.
"""

from __future__ import annotations

import calendar
import datetime as dt
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline import schemas
from pipeline.aggregates.parts import in_part
from pipeline.pricing import PriceCatalog, price_invocations
from pipeline.pricing.match import GEO_PREFIX
from pipeline.text import escape_for, usd
from pipeline.vocabulary import Frame, as_lazy

STREAMING_OPERATIONS = ("InvokeModelWithResponseStream", "ConverseStream")
OFF_HOURS_UTC = range(0, 6)
SHORT_INPUT_TOKENS = 2000
SMALLER_MODEL_SHARE = 0.5
MORE_CACHING_SHARE = 0.5
SMALLER_SIBLING: dict[str, str] = {
    "anthropic.claude-sonnet-4-5-20250929-v1:0": "anthropic.claude-haiku-4-5-20251001-v1:0",
    "anthropic.claude-sonnet-4-20250514-v1:0": "anthropic.claude-haiku-4-5-20251001-v1:0",
    "anthropic.claude-3-7-sonnet-20250219-v1:0": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "anthropic.claude-3-5-sonnet-20241022-v2:0": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "anthropic.claude-3-5-sonnet-20240620-v1:0": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "anthropic.claude-opus-4-5-20251101-v1:0": "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "amazon.nova-pro-v1:0": "amazon.nova-lite-v1:0",
    "amazon.nova-lite-v1:0": "amazon.nova-micro-v1:0",
    "meta.llama3-1-405b-instruct-v1:0": "meta.llama3-1-70b-instruct-v1:0",
    "meta.llama3-1-70b-instruct-v1:0": "meta.llama3-1-8b-instruct-v1:0",
}
"""A cheaper model of the same family and generation (or the next smaller one) that takes the same requests."""

_NEEDED = (
    "date",
    "timestamp",
    "account_id",
    "region",
    "operation",
    "model_id",
    "base_model_id",
    "routing",
    "inference_profile",
    "status",
    "service_tier",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "cache_write_1h_input_tokens",
    "image_count",
    "cost_center",
    "application",
    "total_cost_usd",
    "priced",
    "pricing_routing",
    "pricing_tier",
)


@dataclass(frozen=True)
class SavingsSettings:
    """The `foresight:` keys the scenarios read (defaults as in config)."""

    long_output_tokens: int = 300
    batch_min_input_tokens: int = 2000
    default_tier: str = "standard"


@dataclass(frozen=True)
class _Scenario:
    name: str
    candidates: pl.Expr
    change: list[pl.Expr]
    share: float
    words: str
    target_model: pl.Expr | None = None
    """The catalog id the alternative must be priced by (checked in `price_source`); None: any row."""


def _scenarios(s: SavingsSettings) -> list[_Scenario]:
    asynchronous = (
        ~pl.col("operation").is_in(STREAMING_OPERATIONS)
        & (pl.col("status") == "success")
        & (pl.col("pricing_tier") == "standard")
        & (
            (pl.col("input_tokens").fill_null(0) >= s.batch_min_input_tokens)
            | pl.col("timestamp").dt.hour().is_in(list(OFF_HOURS_UTC))
        )
    )
    global_id = pl.lit("global.") + pl.col("base_model_id")
    prefix = pl.col("model_id").str.extract(f"^({GEO_PREFIX.pattern[1:]})", 1).fill_null("")
    sibling = pl.col("base_model_id").replace_strict(SMALLER_SIBLING, default=None)
    same_route_sibling = (
        pl.when(pl.col("pricing_routing").is_in(["geo", "global"])).then(prefix).otherwise(pl.lit("")) + sibling
    )
    short = (
        (pl.col("output_tokens").fill_null(0) <= s.long_output_tokens)
        & (pl.col("input_tokens").fill_null(0) <= SHORT_INPUT_TOKENS)
        & (pl.col("status") == "success")
        & sibling.is_not_null()
        & (pl.col("routing") != "application_profile")
    )
    cache_writer = (
        pl.col("_app_caches")
        & (pl.col("cache_write_input_tokens").fill_null(0) > 0)
        & (pl.col("cache_read_input_tokens").fill_null(0) == 0)
    )
    return [
        _Scenario(
            "global_routing",
            pl.col("pricing_routing").is_in(["in_region", "geo"]) & pl.col("base_model_id").is_not_null(),
            [
                global_id.alias("model_id"),
                pl.lit("global").alias("routing"),
                pl.lit(None, pl.String).alias("inference_profile"),
            ],
            1.0,
            "in-region and geo calls of models with a global. price, sent through global.",
            target_model=global_id,
        ),
        _Scenario(
            "regional_routing",
            (pl.col("pricing_routing") == "global") & pl.col("base_model_id").is_not_null(),
            [
                pl.col("base_model_id").alias("model_id"),
                pl.lit("in_region").alias("routing"),
                pl.lit(None, pl.String).alias("inference_profile"),
            ],
            1.0,
            "global. calls sent to the Region's own endpoint",
        ),
        _Scenario(
            "batch",
            asynchronous,
            [pl.lit("batch").alias("service_tier")],
            1.0,
            f"successful non-streaming calls with ≥ {s.batch_min_input_tokens:,} input tokens or made 00–06 UTC",
        ),
        _Scenario(
            "flex",
            asynchronous,
            [pl.lit("flex").alias("service_tier")],
            1.0,
            f"successful non-streaming calls with ≥ {s.batch_min_input_tokens:,} input tokens or made 00–06 UTC",
        ),
        _Scenario(
            "smaller_model",
            short,
            [
                same_route_sibling.alias("model_id"),
                sibling.alias("base_model_id"),
                pl.lit(None, pl.String).alias("inference_profile"),
            ],
            SMALLER_MODEL_SHARE,
            f"successful calls with ≤ {s.long_output_tokens:,} output and ≤ {SHORT_INPUT_TOKENS:,} input tokens",
            target_model=same_route_sibling,
        ),
        _Scenario(
            "more_caching",
            cache_writer,
            [
                pl.col("cache_write_input_tokens").alias("cache_read_input_tokens"),
                pl.lit(0, pl.Int64).alias("cache_write_input_tokens"),
                pl.lit(0, pl.Int64).alias("cache_write_1h_input_tokens"),
            ],
            MORE_CACHING_SHARE,
            "calls that wrote the cache without reading it, in applications that already read from it",
        ),
    ]


def _priced_calls(priced: Frame) -> pl.LazyFrame:
    """The day's priced calls with a cost, with the columns the scenarios read (absent ones as nulls)."""
    lazy = as_lazy(priced)
    names = lazy.collect_schema().names()
    cols = [pl.col(c) if c in names else pl.lit(None).alias(c) for c in _NEEDED]
    return (
        lazy.select(cols)
        .filter(pl.col("priced").fill_null(False) & (pl.col("total_cost_usd") > 0))
        .with_columns(
            pl.col("cost_center").fill_null(schemas.UNATTRIBUTED),
            pl.col("application").fill_null(schemas.UNATTRIBUTED),
            pl.col("cache_write_1h_input_tokens").cast(pl.Int64).fill_null(0),
        )
    )


def _repriced(
    cand: pl.DataFrame,
    sc: _Scenario,
    catalog: PriceCatalog,
    s: SavingsSettings,
    profile_models: Mapping[str, str] | None,
) -> pl.DataFrame:
    """The scenario's candidate calls, each with its cost now (`_now`) and repriced under the alternative (`_alt`),
    kept only where the catalog prices the alternative (by the target model's own row when the scenario names one)."""
    alt = cand.with_columns(sc.change)
    target = cand.select(sc.target_model.alias("_target")) if sc.target_model is not None else None
    repriced = price_invocations(
        alt.drop("total_cost_usd", "priced", "pricing_routing", "pricing_tier"),
        catalog,
        s.default_tier,
        profile_models=profile_models,
    )
    both = cand.select("cost_center", "application", pl.col("total_cost_usd").alias("_now")).with_columns(
        repriced.select(
            pl.col("total_cost_usd").alias("_alt"),
            "priced",
            "price_source",
            pl.col("model_id").alias("_model"),
            pl.col("pricing_routing").alias("_routing"),
            pl.col("pricing_tier").alias("_tier"),
        )
    )
    ok = pl.col("priced")
    if target is not None:
        both = both.with_columns(target)
        ok = ok & pl.col("price_source").str.contains(pl.lit(":") + pl.col("_target") + pl.lit("|"), literal=True)
    return both.filter(ok)


_TARGET = ("_model", "_routing", "_tier", "price_source")


def _cells(both: pl.DataFrame, by: str) -> pl.DataFrame:
    """Repriced calls summed per key of `by` and alternative (model, routing, tier, rate row): what a key's row is
    made of, small enough to keep across parts and add up (calls, cost now, cost repriced)."""
    return both.group_by(by, *_TARGET).agg(
        pl.len().cast(pl.Int64).alias("calls"), pl.col("_now").sum(), pl.col("_alt").sum()
    )


def _grouped(cells: pl.DataFrame, sc: _Scenario, dimension: str, totals: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """One scenario's savings per key of `dimension` (only where positive), with its share of the key's traffic,
    from `_cells` (by `dimension`; several parts' cells of one key add up). The target model, routing and tier
    are those of most of the key's calls; `totals` holds each key's cost today (`key`, `_key_total`)."""
    days_in_month = calendar.monthrange(day.year, day.month)[1]
    key = pl.col(dimension).alias("key")
    sums = cells.group_by(key).agg(
        pl.col("calls").sum(),
        pl.col("_now").sum(),
        pl.col("_alt").sum(),
        pl.col("price_source").unique().sort().head(3).str.join("; ").alias("rate_source"),
    )
    for column, name in (("_model", "target_model_id"), ("_routing", "target_routing"), ("_tier", "target_tier")):
        sums = sums.join(_most_calls(cells, key, column, name), on="key", how="left")
    return (
        sums.with_columns(
            pl.lit(dimension).alias("dimension"),
            # Sums in another order differ in their last bits: to a ten-billionth of a dollar, two scenarios that
            # save the same (batch and flex, both at half the standard rate) save exactly the same, and sort by
            # name every time.
            (pl.lit(sc.share) * (pl.col("_now") - pl.col("_alt"))).round(SUM_DECIMALS).alias("savings_usd"),
        )
        .filter(pl.col("savings_usd") > 0)
        .join(totals, on="key", how="left")
        .with_columns(
            pl.col("_now").alias("current_cost_usd"),
            (pl.col("_now") - pl.col("savings_usd")).alias("alternative_cost_usd"),
            (pl.col("savings_usd") * days_in_month).alias("monthly_savings_usd"),
            (pl.col("_now") / pl.col("_key_total")).alias("share_of_traffic"),
            pl.lit(day).alias("date"),
            pl.lit(sc.name).alias("scenario"),
            pl.lit(sc.share).alias("assumed_share_async"),
            pl.lit(1, pl.Int64).alias("history_days"),
            pl.lit(sc.words).alias("candidates"),
        )
    )


def _most_calls(cells: pl.DataFrame, key: pl.Expr, column: str, name: str) -> pl.DataFrame:
    """Per key, the value of `column` the most calls share (ties: the first in sort order)."""
    return (
        cells.group_by(key, pl.col(column).alias(name))
        .agg(pl.col("calls").sum())
        .sort(["calls", name], descending=[True, False], nulls_last=True)
        .group_by("key", maintain_order=True)
        .agg(pl.col(name).first())
    )


def _own_strings(rows: pl.DataFrame) -> pl.DataFrame:
    """`rows` with their key and target strings copied out of the part they were grouped from: a polars string
    picked from a large column keeps that column's whole buffer alive, which would hold every part until the end."""
    copied = ("key", "target_model_id", "target_routing", "target_tier")
    return rows.with_columns((pl.col(c) + pl.lit("")).alias(c) for c in copied)


CALLS_PER_PART = 100_000
"""Priced calls repriced at a time. A day with more is split by a fixed hash of the application, so each part
holds whole applications (their rows are complete in one part) and a day of millions of calls is never copied
and repriced whole; a smaller day is one part."""


def savings_opportunities(
    priced: Frame,
    catalog: PriceCatalog,
    day: dt.date,
    *,
    settings: SavingsSettings | None = None,
    profile_models: Mapping[str, str] | None = None,
    calls_per_part: int = CALLS_PER_PART,
) -> pl.DataFrame:
    """Per scenario, in total and per cost center and application: today's candidate calls, their cost now and
    repriced, and the savings (only where positive). `priced` is the day's `priced_invocations`. Whole; the
    asset writes `savings_in_order`'s frames one after another instead."""
    frames = list(
        savings_in_order(
            priced, catalog, day, settings=settings, profile_models=profile_models, calls_per_part=calls_per_part
        )
    )
    return pl.concat(frames) if frames else schemas.empty(schemas.SAVINGS_OPPORTUNITIES)


ROWS_PER_BAND = 100_000
"""Application rows sorted at a time when a large day's rows are put in order (`_in_order`)."""


def savings_in_order(
    priced: Frame,
    catalog: PriceCatalog,
    day: dt.date,
    *,
    settings: SavingsSettings | None = None,
    profile_models: Mapping[str, str] | None = None,
    calls_per_part: int = CALLS_PER_PART,
) -> Iterator[pl.DataFrame]:
    """`savings_opportunities` as frames in the table's order (total, cost center, application rows; each by
    savings, largest first, then scenario and key), so a day with a million applications is never held whole.

    The day's calls are read in parts of whole applications (`CALLS_PER_PART`); each part's candidates are
    repriced per scenario and summed into small cells, from which its application rows are made at once and the
    cost center and total rows at the end. With one part the rows are sorted in memory; with several, each
    part's application rows go to a temporary Parquet file and come back in bands of savings (`_in_order`)."""
    s = settings or SavingsSettings()
    calls = _priced_calls(priced)
    by_cc = calls.group_by("cost_center").agg(pl.col("total_cost_usd").sum()).collect(engine="streaming")
    totals = {
        "total": pl.DataFrame({"key": ["total"], "_key_total": [float(by_cc["total_cost_usd"].sum() or 0.0)]}),
        "cost_center": by_cc.select(pl.col("cost_center").alias("key"), pl.col("total_cost_usd").alias("_key_total")),
    }
    n = int(calls.select(pl.len()).collect(engine="streaming").item())
    parts = max(1, -(-n // max(1, calls_per_part)))
    scenarios = _scenarios(s)
    by_cost_center: dict[str, list[pl.DataFrame]] = {sc.name: [] for sc in scenarios}
    with tempfile.TemporaryDirectory(prefix="savings-") as spill:
        apps: list[pl.DataFrame] = []
        spilled: list[str] = []
        for part in range(parts):
            chunk = (calls.filter(in_part(["application"], parts, part)) if parts > 1 else calls).collect(
                engine="streaming"
            )
            rows = _part_rows(chunk, scenarios, catalog, s, profile_models, day, by_cost_center)
            del chunk
            if rows.is_empty():
                continue
            if parts == 1:
                apps.append(rows)
            else:
                spilled.append(str(Path(spill) / f"part-{part}.parquet"))
                rows.write_parquet(spilled[-1])
        small = [
            schemas.conform(_grouped(cells, sc, dimension, totals[dimension], day), schemas.SAVINGS_OPPORTUNITIES)
            for sc in scenarios
            if (cells := _all_cells(by_cost_center[sc.name])) is not None
            for dimension in ("total", "cost_center")
        ]
        if small:
            yield _sorted(pl.concat(small))
        if apps:
            yield _sorted(pl.concat(apps))
        if spilled:
            yield from _in_order(pl.scan_parquet(spilled))


def _all_cells(cells: list[pl.DataFrame]) -> pl.DataFrame | None:
    return pl.concat(cells).with_columns(pl.lit("total").alias("total")) if cells else None


def _part_rows(
    chunk: pl.DataFrame,
    scenarios: list[_Scenario],
    catalog: PriceCatalog,
    s: SavingsSettings,
    profile_models: Mapping[str, str] | None,
    day: dt.date,
    by_cost_center: dict[str, list[pl.DataFrame]],
) -> pl.DataFrame:
    """One part's application rows (conformed), every scenario; its cost center cells are added to
    `by_cost_center` (per scenario) for the cost center and total rows made at the end."""
    by_app = chunk.group_by("application").agg(
        pl.col("total_cost_usd").sum().alias("_key_total"),
        (pl.col("cache_read_input_tokens").fill_null(0).sum() > 0).alias("_app_caches"),
    )
    chunk = chunk.join(by_app.select("application", "_app_caches"), on="application", how="left")
    app_totals = by_app.select(pl.col("application").alias("key"), "_key_total")
    out: list[pl.DataFrame] = []
    for sc in scenarios:
        cand = chunk.filter(sc.candidates)
        if cand.is_empty():
            continue
        both = _repriced(cand, sc, catalog, s, profile_models)
        if both.is_empty():
            continue
        rows = _grouped(_cells(both, "application"), sc, "application", app_totals, day)
        out.append(_own_strings(schemas.conform(rows, schemas.SAVINGS_OPPORTUNITIES)))
        by_cost_center[sc.name].append(_cells(both, "cost_center"))
    return pl.concat(out) if out else schemas.empty(schemas.SAVINGS_OPPORTUNITIES)


_ORDER = (["savings_usd", "scenario", "key"], [True, False, False])
SUM_DECIMALS = 10
"""Decimals savings are kept to: far below a cent, above the rounding noise of a sum."""


def _sorted(rows: pl.DataFrame) -> pl.DataFrame:
    order = pl.col("dimension").replace_strict({"total": 0, "cost_center": 1, "application": 2}, default=3)
    return rows.sort([order, *_ORDER[0]], descending=[False, *_ORDER[1]])


def _in_order(rows: pl.LazyFrame) -> Iterator[pl.DataFrame]:
    """Rows of one dimension in the table's order, a band of savings at a time: the bands' bounds are every
    `ROWS_PER_BAND`-th value of the sorted savings (one float a row in memory), so each band holds about that many
    rows (more only where that many rows have the very same savings) and equal savings share a band."""
    values = rows.select("savings_usd").collect(engine="streaming").to_series().sort(descending=True)
    cuts = sorted({values[i] for i in range(ROWS_PER_BAND, values.len(), ROWS_PER_BAND)}, reverse=True)
    del values
    upper: float | None = None
    for cut in [*cuts, None]:
        band = rows
        if upper is not None:
            band = band.filter(pl.col("savings_usd") <= upper)
        if cut is not None:
            band = band.filter(pl.col("savings_usd") > cut)
        frame = band.collect(engine="streaming")
        if not frame.is_empty():
            yield frame.sort(*_ORDER[0:1], descending=_ORDER[1])
        upper = cut


_VERBS = {
    "global_routing": "Routing {who}traffic through `global.`",
    "regional_routing": "Routing {who}`global.` traffic in-Region",
    "batch": "Sending {who}asynchronous-looking calls to batch",
    "flex": "Moving {who}asynchronous-looking calls to the flex tier",
    "smaller_model": "Moving half of {who}short calls to a smaller model of the same family",
    "more_caching": "Turning half of {who}cache writes into cache reads",
}


def finding(row: Mapping[str, object]) -> str:
    """One row as a title: "Routing research's traffic through `global.` saves $1,210 a month"."""
    key = str(row["key"])
    who = "" if row["dimension"] == "total" else f"{escape_for(key, 'plain')}'s "
    verb = _VERBS.get(str(row["scenario"]), str(row["scenario"])).format(who=who)
    return f"{verb} saves {usd(float(row['monthly_savings_usd']))} a month ({usd(float(row['savings_usd']))} today)"  # type: ignore[arg-type]


def headline(savings: pl.DataFrame) -> str:
    """The largest opportunity below the total, as a title (or that the catalog found none)."""
    per_key = savings.filter(pl.col("dimension") == "cost_center")
    pool = per_key if not per_key.is_empty() else savings
    if pool.is_empty():
        return "No savings found: every alternative the catalog can price costs the same or more"
    best = pool.sort("savings_usd", descending=True).row(0, named=True)
    return finding(best)
