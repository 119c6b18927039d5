"""The bill's list rates against the catalog: where they disagree, and pricing a model only the bill knows.

`bill_list_rates` (written by the billing side) holds AWS's public on-demand rate for each model, Region, token
kind, tier and routing the bill has seen. Two uses here:

- `catalog_disagreements`: every catalog rate further than `reconciliation.rate_tolerance_pct` from the bill's list
  rate, with both rates and the catalog row, for the `catalog_matches_bill` check (a stale or wrong catalog row
  shows the day the bill arrives, not when someone notices a variance);
- `price_from_bill`: a call the catalog cannot price (`no_price`) whose model an earlier bill priced gets that
  list rate, `price_origin = bill` and `price_source = bill:<usage_type>|<region>|<first bill day>`. Never $0:
  a bucket the bill has no rate for leaves the call unpriced.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipeline.pricing.catalog import PriceCatalog
from pipeline.pricing.match import REASON_NO_PRICE, catalog_rates, profile_id_for
from pipeline.schemas import BILL_LIST_RATES

KIND_RATE: dict[str, str] = {
    "input": "input_per_1k_usd",
    "output": "output_per_1k_usd",
    "cache_read": "cache_read_per_1k_usd",
    "cache_write": "cache_write_per_1k_usd",
    "cache_write_1h": "cache_write_1h_per_1k_usd",
}
DISAGREEMENT_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "base_model_id": pl.String,
    "region": pl.String,
    "usage_kind": pl.String,
    "tier": pl.String,
    "routing": pl.String,
    "context_tier": pl.String,
    "usage_type": pl.String,
    "bill_rate_per_1k_usd": pl.Float64,
    "catalog_rate_per_1k_usd": pl.Float64,
    "delta_pct": pl.Float64,
    "price_source": pl.String,
}


def _keys(rates: pl.DataFrame, day: object) -> pl.DataFrame:
    """The matcher's key for each bill rate: the base model as called in-region, through the Region's geo
    profile, or through `global.`."""
    profiles = [profile_id_for(m, r, g) for m, r, g in rates.select("base_model_id", "routing", "region").iter_rows()]
    return rates.with_columns(
        pl.Series("inference_profile", profiles, dtype=pl.String),
        pl.lit(day).cast(pl.Date).alias("_day"),
    ).select(
        pl.coalesce("inference_profile", "base_model_id").alias("model_id"),
        "base_model_id",
        "routing",
        "inference_profile",
        "region",
        pl.col("_day").alias("date"),
        "tier",
        *[c for c in rates.columns if c not in ("base_model_id", "routing", "region", "tier", "date")],
    )


def catalog_disagreements(rates: pl.DataFrame, catalog: PriceCatalog, day: object, tolerance: float) -> pl.DataFrame:
    """Bill list rates (one day of `bill_list_rates`) the catalog disagrees with by more than `tolerance` (a
    fraction), or has no rate for. A key the catalog does not know at all is listed with a null catalog rate."""
    if rates.is_empty():
        return pl.DataFrame(schema=DISAGREEMENT_SCHEMA)
    keyed = _keys(rates, day)
    cat = catalog_rates(
        keyed.select("model_id", "base_model_id", "routing", "inference_profile", "region", "date", "tier"), catalog
    )
    joined = keyed.join(
        cat,
        on=["model_id", "base_model_id", "routing", "inference_profile", "region", "date", "tier"],
        how="left",
        nulls_equal=True,
    )
    std = pl.coalesce([pl.when(pl.col("usage_kind") == k).then(pl.col(c)) for k, c in KIND_RATE.items()])
    long = pl.coalesce([pl.when(pl.col("usage_kind") == k).then(pl.col(f"long_{c}")) for k, c in KIND_RATE.items()])
    is_long = pl.col("context_tier") == "long"
    catalog_rate = pl.when(is_long).then(long).otherwise(std)
    out = joined.with_columns(
        catalog_rate.alias("catalog_rate_per_1k_usd"),
        pl.when(is_long).then(pl.col("long_price_source")).otherwise(pl.col("price_source")).alias("price_source"),
    ).with_columns(
        ((pl.col("catalog_rate_per_1k_usd") - pl.col("rate_per_1k_usd")) / pl.col("rate_per_1k_usd")).alias(
            "delta_pct"
        ),
    )
    bad = out.filter(pl.col("catalog_rate_per_1k_usd").is_null() | (pl.col("delta_pct").abs() > tolerance))
    return bad.select(
        "base_model_id",
        "region",
        "usage_kind",
        "tier",
        "routing",
        "context_tier",
        "usage_type",
        pl.col("rate_per_1k_usd").alias("bill_rate_per_1k_usd"),
        "catalog_rate_per_1k_usd",
        "delta_pct",
        "price_source",
    ).sort("base_model_id", "region", "usage_kind", "routing", "tier")


_BUCKETS: tuple[tuple[str, str, str], ...] = (
    ("input", "input_tokens", "input_cost_usd"),
    ("output", "output_tokens", "output_cost_usd"),
    ("cache_read", "cache_read_input_tokens", "cache_read_cost_usd"),
    ("cache_write", "_cw_5m", "_cw_5m_cost"),
    ("cache_write_1h", "_cw_1h", "cache_write_1h_cost_usd"),
)


def price_from_bill(priced: pl.DataFrame, usable: pl.DataFrame) -> pl.DataFrame:
    """Price the `no_price` calls of `priced` whose model, Region, routing and tier `usable` (bill list rates
    first seen before the day, `billing.list_rates.first_seen`) has a standard-context rate for every bucket the
    call used. Other calls pass through unchanged."""
    if usable.is_empty() or priced.is_empty() or "unpriced_reason" not in priced.columns:
        return priced
    std = usable.filter(pl.col("context_tier").fill_null("standard") == "standard")
    wide = std.pivot(
        on="usage_kind",
        index=["base_model_id", "region", "routing", "tier"],
        values=["rate_per_1k_usd", "usage_type", "first_bill_day"],
        aggregate_function="first",
    )
    for kind, _, _ in _BUCKETS:
        for v in ("rate_per_1k_usd", "usage_type", "first_bill_day"):
            name = f"{v}_{kind}"
            if name not in wide.columns:
                wide = wide.with_columns(pl.lit(None).alias(name))
    wide = wide.rename({"routing": "pricing_routing", "tier": "pricing_tier"}).with_columns(pl.lit(True).alias("_bill"))
    cols = priced.columns
    h1 = "cache_write_1h_input_tokens"
    # Only `no_price` calls whose key the bill priced can change, and most days there are none: then the batch is
    # returned as it is, without a copy.
    keys = ["base_model_id", "region", "pricing_routing", "pricing_tier"]
    todo = (pl.col("unpriced_reason") == REASON_NO_PRICE).fill_null(False)
    if priced.filter(todo).select(keys).unique().join(wide.select(keys), on=keys, nulls_equal=True).is_empty():
        return priced
    candidates = priced.with_row_index("_row").filter(todo)
    work = candidates.join(
        wide, on=["base_model_id", "region", "pricing_routing", "pricing_tier"], how="left", nulls_equal=True
    )
    cw = pl.col("cache_write_input_tokens").fill_null(0)
    one_h = pl.min_horizontal(pl.col(h1).fill_null(0), cw) if h1 in cols else pl.lit(0, pl.Int64)
    work = work.with_columns(one_h.alias("_cw_1h")).with_columns((cw - pl.col("_cw_1h")).alias("_cw_5m"))
    lacks = pl.lit(False)
    for kind, tok, _ in _BUCKETS:
        lacks = lacks | ((pl.col(tok).fill_null(0) > 0) & pl.col(f"rate_per_1k_usd_{kind}").is_null())
    eligible = (
        (pl.col("unpriced_reason") == REASON_NO_PRICE)
        & pl.col("_bill").fill_null(False)
        & ~lacks
        & (pl.col("image_count").fill_null(0) == 0)
    )
    costs = {
        cost: pl.col(tok).fill_null(0).cast(pl.Float64) * pl.col(f"rate_per_1k_usd_{kind}").fill_null(0.0) / 1000.0
        for kind, tok, cost in _BUCKETS
    }
    first_kind = pl.coalesce(
        [pl.when(pl.col(tok).fill_null(0) > 0).then(pl.lit(kind)) for kind, tok, _ in _BUCKETS] + [pl.lit("input")]
    )
    ut = pl.coalesce([pl.when(first_kind == k).then(pl.col(f"usage_type_{k}")) for k, _, _ in _BUCKETS])
    day = pl.coalesce([pl.when(first_kind == k).then(pl.col(f"first_bill_day_{k}")) for k, _, _ in _BUCKETS])
    source = pl.format("bill:{}|{}|{}", ut, pl.col("region"), day.cast(pl.String))
    total = (
        costs["input_cost_usd"]
        + costs["output_cost_usd"]
        + costs["cache_read_cost_usd"]
        + costs["_cw_5m_cost"]
        + costs["cache_write_1h_cost_usd"]
    )
    updates = {
        "input_cost_usd": costs["input_cost_usd"],
        "output_cost_usd": costs["output_cost_usd"],
        "cache_read_cost_usd": costs["cache_read_cost_usd"],
        "cache_write_cost_usd": costs["_cw_5m_cost"] + costs["cache_write_1h_cost_usd"],
        "cache_write_1h_cost_usd": costs["cache_write_1h_cost_usd"],
        "image_cost_usd": pl.lit(0.0),
        "total_cost_usd": total,
        "priced": pl.lit(True),
        "price_source": source,
        "price_origin": pl.lit("bill"),
        "unpriced_reason": pl.lit(None, pl.String),
        "context_tier": pl.lit("standard"),
    }
    work = work.with_columns(
        [pl.when(eligible).then(expr).otherwise(pl.col(c)).alias(c) for c, expr in updates.items() if c in cols]
    )
    # Write the few changed rows back in place (a sort of the whole batch would cost more than the pricing).
    at = work["_row"]
    changed = [c for c in updates if c in cols]
    return priced.with_columns([priced[c].clone().scatter(at, work[c].cast(priced.schema[c])) for c in changed])


def usable_bill_rates(warehouse_uri: str, day: dt.date, rerun: bool = False) -> pl.DataFrame:
    """The bill list rates a day's pricing may use: first seen before `day` (or on it, when the day is being
    priced again), read from the warehouse's `bill_list_rates` partitions. Empty when no bill has been read."""
    from pipeline import warehouse
    from pipeline.billing.list_rates import first_seen

    days = [d for d in warehouse.partition_days(warehouse_uri, "bill_list_rates") if d <= day]
    if not days:
        return pl.DataFrame(schema=BILL_LIST_RATES)
    rates = warehouse.scan_partitions(warehouse_uri, "bill_list_rates", days).collect()
    return first_seen(rates, day, include_day=rerun)
