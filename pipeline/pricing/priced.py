"""`priced_invocations` as plain functions: a batch of invocations priced and attributed, with the live facts
about application inference profiles the day needs.

Pricing and attribution are row-local, so the asset applies `price_and_attribute` to one batch at a time and
memory stays flat as a day grows; the same function prices a frame outside Dagster (tests, notebooks, benchmark).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from pipeline.attribution import attribute
from pipeline.config import LedgerConfig
from pipeline.normalize.model_ids import split_geo
from pipeline.pricing.bill_rates import price_from_bill
from pipeline.pricing.catalog import PriceCatalog
from pipeline.pricing.match import price_invocations, profile_models_from_config, unprice_implausible


def live_profiles(cfg: LedgerConfig, invocation_files: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Application profiles called in `invocation_files` that the config does not describe, looked up live
    (model and tags) when `attribution.lookup_inference_profiles` is on; empty otherwise."""
    if not cfg.attribution.lookup_inference_profiles or not invocation_files:
        return {}
    from pipeline.attribution.profiles import lookup_inference_profiles  # boto3: only when the lookup is on

    seen = (
        pl.scan_parquet(list(invocation_files))
        .filter(pl.col("routing") == "application_profile")
        .select(pl.col("inference_profile").unique())
        .collect()["inference_profile"]
        .drop_nulls()
        .to_list()
    )
    unknown = [a for a in seen if a not in cfg.attribution.inference_profiles]
    return {arn: dict(info) for arn, info in lookup_inference_profiles(unknown).items()} if unknown else {}


def price_and_attribute(
    batch: pl.DataFrame,
    cfg: LedgerConfig,
    catalog: PriceCatalog,
    live: dict[str, dict[str, Any]],
    bill_rates: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One batch of invocations, priced and attributed. A profile found only by the live lookup also gives its
    calls their base model, so they are priced like calls of a configured profile. `bill_rates` (list rates an
    earlier bill stated, `bill_rates.usable_bill_rates`) price the calls whose model the catalog lacks."""
    profile_models = {a: i["model_id"] for a, i in live.items() if i.get("model_id")}
    profile_models.update(profile_models_from_config(cfg.attribution))
    if live:
        base_for = {a: split_geo(m.split("/")[-1])[1] for a, m in profile_models.items()}
        batch = batch.with_columns(
            pl.coalesce(
                pl.col("base_model_id"), pl.col("inference_profile").replace_strict(base_for, default=None)
            ).alias("base_model_id")
        )
    limit = cfg.quality.max_cost_per_call_usd
    priced = price_invocations(
        batch, catalog, cfg.pricing.default_tier, profile_models=profile_models, max_cost_per_call_usd=limit
    )
    if bill_rates is not None and not bill_rates.is_empty():
        priced = unprice_implausible(price_from_bill(priced, bill_rates), limit)
    live_tags = {a: i.get("tags") or {} for a, i in live.items()}
    return attribute(priced, cfg.attribution, live_profile_tags=live_tags)
