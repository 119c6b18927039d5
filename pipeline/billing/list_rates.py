"""`bill_list_rates`: the public on-demand rate the bill states for each model, Region, token kind, tier and routing.

Every CUR / CUR 2.0 row carries `pricing_public_on_demand_rate` and every FOCUS row `ListUnitPrice`: AWS's own list
price for that usage type. That is the second opinion on the price catalog (`catalog_matches_bill`), and the price
of a call whose model the catalog does not know yet, when an earlier bill has priced that model (`price_origin =
bill`). A rate of 0 or null is never a rate.
"""

from __future__ import annotations

import polars as pl

from pipeline.billing.line_items import token_scale
from pipeline.schemas import BILL_LIST_RATES, conform
from pipeline.vocabulary import TOKEN_KINDS, USAGE_LINE_TYPES

KEY: tuple[str, ...] = ("base_model_id", "region", "usage_kind", "tier", "routing", "context_tier")


def bill_list_rates(line_items: pl.DataFrame) -> pl.DataFrame:
    """One row per day and key with the bill's list rate (per pricing unit and per 1K tokens).

    Only usage rows of a mapped model, a token kind and a token pricing unit, with a rate above 0, not served by
    bedrock-mantle. Where a key
    shows several rates on one day (tiered usage types), the highest is kept, as CUR's column states it.
    """
    if "list_unit_price_usd" not in line_items.columns or line_items.is_empty():
        return conform(pl.DataFrame(), BILL_LIST_RATES).clear()
    scale = token_scale(pl.col("pricing_unit"))
    rows = line_items.filter(
        pl.col("base_model_id").is_not_null()
        & pl.col("usage_kind").is_in(list(TOKEN_KINDS))
        & pl.col("line_item_type").is_in(list(USAGE_LINE_TYPES))
        & (pl.col("list_unit_price_usd") > 0)
        & scale.is_not_null()
        & (pl.col("tier") != "reserved")
        # bedrock-mantle rows price another endpoint, never a logged (bedrock-runtime) call.
        & ~pl.col("usage_type").str.contains("-mantle-").fill_null(False)
    ).with_columns((pl.col("list_unit_price_usd") / scale * 1000.0).alias("rate_per_1k_usd"))
    out = (
        rows.sort("list_unit_price_usd", descending=True)
        .group_by("date", *KEY, maintain_order=True)
        .agg(
            pl.col("usage_type").first(),
            pl.col("pricing_unit").first(),
            pl.col("list_unit_price_usd").first(),
            pl.col("rate_per_1k_usd").first(),
            pl.col("source_format").first(),
        )
        .with_columns(pl.col("date").alias("first_bill_day"))
        .sort("date", *KEY, nulls_last=True)
    )
    return conform(out, BILL_LIST_RATES)


def first_seen(rates: pl.DataFrame, before: object, include_day: bool = False) -> pl.DataFrame:
    """The rates usable on day `before`: first seen before it (or on it, for a rerun), one per key: the latest
    rate seen, with the day it was first billed at that rate. A restated bill never re-prices a day: only days
    before (or on) `before` are read."""
    if rates.is_empty():
        return rates
    keep = (pl.col("date") <= pl.lit(before)) if include_day else (pl.col("date") < pl.lit(before))
    usable = rates.filter(keep & (pl.col("rate_per_1k_usd") > 0))
    latest = usable.sort("date").group_by(*KEY, maintain_order=True).agg(pl.all().last())
    firsts = usable.group_by(*KEY, "rate_per_1k_usd").agg(pl.col("date").min().alias("_first"))
    return (
        latest.join(firsts, on=[*KEY, "rate_per_1k_usd"], how="left", nulls_equal=True)
        .with_columns(pl.col("_first").alias("first_bill_day"))
        .drop("_first")
        .select(rates.columns)
    )
