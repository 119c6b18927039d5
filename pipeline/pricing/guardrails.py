"""Guardrail prices and `priced_invocations.guardrail_cost_usd`: the guardrail units a call's trace shows, priced.

Guardrails bill per policy and text unit (1,000 characters), not per token, so their prices are rows of their own:
`model_id = guardrail:<policy>` with a `unit` and a `per_unit_usd` (`data/guardrail_prices.csv`, the same columns
the catalog uses for non-token prices; docs/formats/billing-exports.md §4.2.1). The cost is kept outside
`total_cost_usd`: the trace is logged only when the caller enabled it, so the guardrail cost of the logs is a lower
bound, and the model's token cost must stay comparable with the bill's token rows. A call with units of a policy
that has no price gets a null cost (never $0); a call without units costs 0.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

import polars as pl

from pipeline.vocabulary import GUARDRAIL_POLICIES

PRICES_CSV = Path(__file__).parent / "data" / "guardrail_prices.csv"
PREFIX = "guardrail:"
PRICE_SCHEMA = {
    "model_id": pl.String,
    "region": pl.String,
    "effective_from": pl.Date,
    "effective_to": pl.Date,
    "unit": pl.String,
    "per_unit_usd": pl.Float64,
    "source": pl.String,
}


def unit_column(policy: str) -> str:
    """The `invocations` column counting a policy's units."""
    return f"guardrail_{policy}_units"


@lru_cache(maxsize=4)
def load_guardrail_prices(path: Path = PRICES_CSV) -> pl.DataFrame:
    """The guardrail price rows (`PRICE_SCHEMA`); a row whose model id is not `guardrail:<known policy>` is an
    error naming the file, since a typo there would leave a policy silently unpriced."""
    rows = pl.read_csv(path, schema_overrides=PRICE_SCHEMA)
    bad = [m for m in rows["model_id"].to_list() if m.removeprefix(PREFIX) not in GUARDRAIL_POLICIES]
    if bad:
        raise ValueError(
            f"{path}: model_id {bad[0]!r} is not guardrail:<policy>; policies are {', '.join(GUARDRAIL_POLICIES)}"
        )
    return rows


def price_of(policy: str, day: dt.date, region: str | None, prices: pl.DataFrame) -> float | None:
    """$ per unit of a policy on a day in a region (a region's own row before `*`), None when unpriced."""
    valid = prices.filter(
        (pl.col("model_id") == PREFIX + policy)
        & (pl.col("effective_from") <= day)
        & (pl.col("effective_to").is_null() | (pl.col("effective_to") >= day))
        & pl.col("region").is_in([region or "*", "*"])
    ).sort(pl.col("region") == "*", "effective_from", descending=[False, True])
    return None if valid.is_empty() else float(valid["per_unit_usd"][0])


def with_guardrail_cost(priced: pl.DataFrame, prices: pl.DataFrame | None = None) -> pl.DataFrame:
    """`priced` with `guardrail_cost_usd` (see the module docstring); unit columns absent count as 0."""
    prices = load_guardrail_prices() if prices is None else prices
    present = [p for p in GUARDRAIL_POLICIES if unit_column(p) in priced.columns]
    if not present or priced.is_empty():
        return priced.with_columns(pl.lit(0.0).alias("guardrail_cost_usd"))
    if "date" not in priced.columns:  # a frame without days (unit tests of token pricing): no price can apply
        priced = priced.with_columns(pl.lit(None, dtype=pl.Date).alias("date"), pl.lit(True).alias("_undated"))
    keys = priced.select("date", "region").unique()
    rates = [
        {"date": d, "region": r, **{f"_g_{p}": price_of(p, d, r, prices) for p in present}}
        for d, r in keys.iter_rows()
        if d is not None
    ]
    schema = {"date": pl.Date, "region": pl.String, **{f"_g_{p}": pl.Float64 for p in present}}
    work = priced.join(pl.DataFrame(rates, schema=schema), on=["date", "region"], how="left", nulls_equal=True)
    parts = []
    for p in present:
        units = pl.col(unit_column(p)).fill_null(0)
        parts.append(pl.when(units == 0).then(0.0).otherwise(units.cast(pl.Float64) * pl.col(f"_g_{p}")))
    # sum_horizontal skips nulls; a null part (units of an unpriced policy) must make the total null instead.
    any_unpriced = pl.any_horizontal([part.is_null() for part in parts])
    cost = pl.when(any_unpriced).then(None).otherwise(pl.sum_horizontal(parts))
    out = work.with_columns(cost.alias("guardrail_cost_usd")).drop([f"_g_{p}" for p in present])
    return out.drop("date", "_undated") if "_undated" in out.columns else out
