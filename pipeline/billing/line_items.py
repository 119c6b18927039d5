"""`billing_line_items`: one day of a bill's Bedrock rows, classified, scaled to tokens and mapped to models.

The reconciler compares these rows with the logs at day × account × region × model × token kind × routing ×
tier, so every row gets those keys here, whatever export it came from. Three rules shape this module:

- Token counts come from each row's own `pricing_unit` (`1K tokens`, `1M tokens`, Marketplace `Units` =
  million tokens; docs/formats/billing-exports.md §4.3), never from a hard-coded scale: one bill mixes all three. A
  token row with a unit we do not know stops the run, because guessing would be off by 1000× and look like a finding.
- `rate × amount = cost` is checked on every row and a mismatch is reported, not raised: it is a fact about
  the bill (rounding, a restated row) that the person reconciling needs to see.
- Rows that cannot be classified or mapped are kept (`usage_kind` `other`, `base_model_id` null), so the
  bill's total stays whole and the unmapped spend is visible.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pipeline.billing.model_names import BillingNameMap, load_billing_name_map
from pipeline.billing.readers import MARKETPLACE_ENTITY, BillingFormatError, BillingRead, read_bedrock_rows
from pipeline.billing.spread import NONE, History, granularity, spread_rows
from pipeline.billing.usage_types import parse_usage_types
from pipeline.config import BillingSource
from pipeline.schemas import BILLING_LINE_ITEMS, conform
from pipeline.vocabulary import (  # USAGE_LINE_TYPES: consumption line types (§1.4)
    GUARDRAIL_POLICIES,
    TOKEN_KINDS,
    USAGE_LINE_TYPES,
    with_spend_kind,
)

TOKENS_PER_UNIT: dict[str, int] = {"1k tokens": 1_000, "1m tokens": 1_000_000, "units": 1_000_000}
"""Tokens per unit of `usage_amount`, by lower-cased `pricing_unit` (§4.3; `Units` per CUDOS)."""


# $ per token outside this band is almost surely a unit error (the cheapest listed rate is ~$0.00002/1K,
# the dearest ~$0.075/1K); a uniform 1000x offset lands outside it.
PLAUSIBLE_USD_PER_TOKEN = (1e-10, 1e-3)
RATE_TOLERANCE_USD = 0.01
RATE_TOLERANCE_REL = 1e-4


@dataclass
class BillingDay:
    """A day of bill rows in the contract's columns, the rows that failed a check, and counts for the UI."""

    line_items: pl.DataFrame
    checks: pl.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)


def tokens_per_unit(pricing_unit: str | None) -> int | None:
    """Tokens per unit of `usage_amount` for this pricing unit; None when it is not a token unit."""
    if pricing_unit is None:
        return None
    return TOKENS_PER_UNIT.get(pricing_unit.strip().lower())


def token_scale(pricing_unit: pl.Expr) -> pl.Expr:
    """Vectorised `tokens_per_unit` (Int64, null for non-token units)."""
    return (
        pricing_unit.str.strip_chars()
        .str.to_lowercase()
        .replace_strict(TOKENS_PER_UNIT, default=None, return_dtype=pl.Int64)
    )


def _check_units(df: pl.DataFrame, read: BillingRead) -> None:
    bad = df.filter(pl.col("_token_row") & pl.col("_scale").is_null())
    if bad.height:
        row = bad.row(0, named=True)
        column = read.column_name(row["source_uri"], "pricing_unit")
        units = sorted({str(u) for u in bad["pricing_unit"].unique().to_list()})
        raise BillingFormatError(
            f"{row['source_uri']}: column {column!r} has unit {row['pricing_unit']!r} on token usage "
            f"{row['usage_type']!r} ({bad.height} rows; units {', '.join(units)}); known token units: "
            "1K tokens, 1M tokens, Units (Marketplace, million tokens)"
        )


def _with_models(df: pl.DataFrame, name_map: BillingNameMap) -> pl.DataFrame:
    """Map billing names to `base_model_id` by exact name: product name for Marketplace rows, else the
    billing name from the usage type (mantle rows carry a model id, looked up as its own kind)."""
    marketplace = (pl.col("grammar") == "marketplace") | (pl.col("billing_entity") == MARKETPLACE_ENTITY)
    keyed = df.with_columns(
        pl.when(marketplace)
        .then(pl.lit("marketplace_product"))
        .when(pl.col("grammar") == "mantle")
        .then(pl.lit("mantle_model"))
        .otherwise(pl.lit("usage_type_model"))
        .alias("_name_kind"),
        pl.when(marketplace).then(pl.col("product_name")).otherwise(pl.col("model_name")).alias("_billing_name"),
    )
    names = name_map.frame().rename({"name_kind": "_name_kind", "billing_name": "_billing_name"})
    return keyed.join(names, on=["_name_kind", "_billing_name"], how="left")


DISCOUNT_LINE_TYPE = "Discount"
"""Line type of the rows split off FOCUS usage whose BilledCost is below its list-equivalent cost."""


def split_discounts(rows: pl.DataFrame) -> pl.DataFrame:
    """FOCUS usage at list-equivalent cost, with what was taken off it as its own `Discount` row.

    The catalog estimate is a list price, so the usage row it is compared with must be too: `ListCost` when it
    is above 0, else `BilledCost` plus the row's `x_Discounts` (Marketplace rows carry `ListCost = 0`,
    §3.4). The difference to `BilledCost` (EDP, private pricing, negotiated rates) becomes a `Discount` row on
    the same usage type, so usage + discounts still equals what is billed, and a negotiated rate is reported as a
    discount, never as a price mismatch on every bucket. Other formats already carry discounts as their own
    line types (`EdpDiscount`, `PrivateRateDiscount`, …) and pass through unchanged.
    """
    if "list_cost" not in rows.columns or rows.is_empty():
        return rows
    usage = pl.col("line_item_type").is_in(USAGE_LINE_TYPES).fill_null(False)
    billed = pl.col("unblended_cost").fill_null(0.0)
    from_list = pl.when(pl.col("list_cost") > 0).then(pl.col("list_cost"))
    from_discounts = billed + pl.col("discounts").fill_null(0.0).abs()
    gross = pl.max_horizontal(billed, pl.coalesce(from_list, from_discounts))
    rows = rows.with_columns(
        pl.when(usage & (pl.col("source_format") == "focus")).then(gross - billed).otherwise(0.0).alias("_discount")
    )
    has = pl.col("_discount") > 1e-12
    discounts = rows.filter(has).with_columns(
        pl.lit(DISCOUNT_LINE_TYPE).alias("line_item_type"),
        (-pl.col("_discount")).alias("unblended_cost"),
        (-pl.col("_discount")).alias("net_cost"),
        pl.lit(None, dtype=pl.Float64).alias("usage_amount"),
        pl.lit(None, dtype=pl.Float64).alias("rate"),
        pl.lit(None, dtype=pl.Float64).alias("list_cost"),
        pl.lit(None, dtype=pl.Float64).alias("public_rate"),
        pl.format("list-equivalent cost minus BilledCost of {}", pl.col("usage_type")).alias("description"),
    )
    list_equivalent = billed + pl.col("_discount")
    adjusted = rows.with_columns(
        pl.when(has).then(list_equivalent).otherwise(pl.col("unblended_cost")).alias("unblended_cost"),
        pl.when(has & (pl.col("usage_amount") > 0))
        .then(list_equivalent / pl.col("usage_amount"))
        .otherwise(pl.col("rate"))
        .alias("rate"),
    )
    return pl.concat([adjusted, discounts], how="vertical").drop("_discount")


def classify(
    read: BillingRead,
    name_map: BillingNameMap | None = None,
    day: dt.date | None = None,
    logged: pl.DataFrame | History | None = None,
    last_day_with_data: dt.date | None = None,
) -> BillingDay:
    """Turn raw bill rows (readers.RAW_SCHEMA) into `billing_line_items`, with checks and metrics.

    With `day`, the rows are those of that day: rows longer than a day contribute their part of it
    (`billing.spread`, weighted by `logged`); without, every row is kept whole on its start day.
    """
    name_map = name_map or load_billing_name_map()
    df = parse_usage_types(split_discounts(read.rows), "usage_type", "resource_id")
    no_usage_type = pl.col("usage_type").is_null()  # tax and some credit rows: nothing to route or tier
    df = df.with_columns(
        pl.when(no_usage_type).then(None).otherwise(pl.col("routing")).alias("routing"),
        pl.when(no_usage_type).then(None).otherwise(pl.col("tier")).alias("tier"),
        pl.when(no_usage_type).then(None).otherwise(pl.col("context_tier")).alias("context_tier"),
    )
    df = _with_models(df, name_map)
    # Marketplace `Units` are million tokens only on Marketplace token dimensions; anywhere else the unit is not a
    # token unit, so a token row carrying it stops the run rather than being scaled by a guess.
    marketplace_units = (pl.col("grammar") == "marketplace") | (pl.col("billing_entity") == MARKETPLACE_ENTITY)
    units = pl.col("pricing_unit").str.strip_chars().str.to_lowercase() == "units"
    df = df.with_columns(
        pl.when(units.fill_null(False) & ~marketplace_units.fill_null(False))
        .then(None)
        .otherwise(token_scale(pl.col("pricing_unit")))
        .alias("_scale"),
        (
            pl.col("usage_kind").is_in(list(TOKEN_KINDS))
            & (pl.col("tier") != "reserved")
            & pl.col("line_item_type").is_in(USAGE_LINE_TYPES)
        ).alias("_token_row"),
    )
    _check_units(df, read)
    is_discount = pl.col("line_item_type") == DISCOUNT_LINE_TYPE
    df = df.with_columns(
        pl.when(is_discount).then(pl.lit("other")).otherwise(pl.col("usage_kind")).alias("usage_kind"),
        pl.when(is_discount)
        .then(pl.lit("FOCUS BilledCost below list-equivalent cost (EDP, private or negotiated pricing): the discount"))
        .otherwise(pl.col("classification_note"))
        .alias("classification_note"),
    )
    is_token_kind = pl.col("usage_kind").is_in(list(TOKEN_KINDS))
    df = df.with_columns(
        pl.when(is_token_kind & pl.col("_scale").is_not_null() & pl.col("usage_amount").is_not_null())
        .then((pl.col("usage_amount") * pl.col("_scale")).round(0).cast(pl.Int64))
        .alias("tokens"),
        pl.coalesce(pl.col("product_region"), pl.col("usage_type_region")).alias("region"),
        pl.col("usage_start").dt.date().alias("date"),
        pl.coalesce(pl.col("billing_period_start").dt.strftime("%Y-%m"), pl.col("billing_period")).alias(
            "billing_period"
        ),
    ).rename({"unblended_cost": "unblended_cost_usd", "net_cost": "net_cost_usd"})
    if "public_rate" in df.columns:
        df = df.rename({"public_rate": "list_unit_price_usd"})

    if day is not None:
        df = spread_rows(df, day, logged, last_day_with_data)
    else:
        df = df.with_columns(granularity().alias("granularity"), pl.lit(NONE).alias("spread_basis"))
    df = with_spend_kind(df.drop("spend_kind", strict=False)).collect()
    checks = _checks(df)
    out = df.sort("date", "account_id", "region", "usage_type", "resource_id", "line_item_type", nulls_last=True)
    line_items = conform(out, BILLING_LINE_ITEMS)
    return BillingDay(line_items=line_items, checks=checks, metrics=_metrics(df, checks, read))


def _checks(df: pl.DataFrame) -> pl.DataFrame:
    """Rows whose cost disagrees with rate × amount, whose $/token is implausible, or whose usage-type prefix
    names another region than the product region."""
    expected = pl.col("rate") * pl.col("usage_amount")
    tol = pl.max_horizontal(pl.lit(RATE_TOLERANCE_USD), pl.col("unblended_cost_usd").abs() * RATE_TOLERANCE_REL)
    per_token = pl.col("unblended_cost_usd") / pl.col("tokens")
    lo, hi = PLAUSIBLE_USD_PER_TOKEN
    flagged = df.with_columns(
        expected.alias("expected_cost_usd"),
        pl.when(
            pl.col("rate").is_not_null()
            & pl.col("usage_amount").is_not_null()
            & ((expected - pl.col("unblended_cost_usd")).abs() > tol)
        )
        .then(pl.lit("rate_times_amount_mismatch"))
        .when((pl.col("tokens") > 0) & (pl.col("unblended_cost_usd") > 0) & ~per_token.is_between(lo, hi))
        .then(pl.lit("implausible_unit_price"))
        .when(
            pl.col("product_region").is_not_null()
            & pl.col("usage_type_region").is_not_null()
            & (pl.col("product_region") != pl.col("usage_type_region"))
        )
        .then(pl.lit("region_prefix_mismatch"))
        .alias("check"),
    )
    return flagged.filter(pl.col("check").is_not_null()).select(
        "check",
        "date",
        "account_id",
        "usage_type",
        "resource_id",
        "line_item_type",
        "usage_amount",
        "pricing_unit",
        "rate",
        "expected_cost_usd",
        "unblended_cost_usd",
        "tokens",
        "source_uri",
    )


def _metrics(df: pl.DataFrame, checks: pl.DataFrame, read: BillingRead) -> dict[str, Any]:
    usage = df.filter(pl.col("line_item_type").is_in(USAGE_LINE_TYPES))
    unmapped = usage.filter(
        pl.col("base_model_id").is_null() & pl.col("usage_kind").is_in([*TOKEN_KINDS, "image", "provisioned"])
    )
    by_check = dict(checks.group_by("check").len().iter_rows()) if checks.height else {}
    return {
        "format": read.format,
        "files_read": len(read.files),
        "rows": df.height,
        "usage_rows": usage.height,
        "billed_tokens": int(usage["tokens"].sum() or 0),
        "unblended_cost_usd": float(df["unblended_cost_usd"].sum() or 0.0),
        "usage_cost_usd": float(usage["unblended_cost_usd"].sum() or 0.0),
        "non_usage_cost_usd": float(df["unblended_cost_usd"].sum() or 0.0)
        - float(usage["unblended_cost_usd"].sum() or 0.0),
        "unmapped_rows": unmapped.height,
        "unmapped_usage_types": sorted(set(unmapped["usage_type"].drop_nulls().to_list()))[:20],
        "unclassified_rows": usage.filter(pl.col("usage_kind") == "other").height,
        "rate_mismatch_rows": by_check.get("rate_times_amount_mismatch", 0),
        "implausible_unit_price_rows": by_check.get("implausible_unit_price", 0),
        "region_prefix_mismatch_rows": by_check.get("region_prefix_mismatch", 0),
    }


def billing_day(
    source: BillingSource,
    day: dt.date,
    storage_options: dict[str, Any] | None = None,
    name_map: BillingNameMap | None = None,
    logged: pl.DataFrame | History | None = None,
    last_day_with_data: dt.date | None = None,
) -> BillingDay:
    """One UTC day of a bill's Bedrock rows with their checks and metrics (for asset metadata and checks).

    A row of an hour or a day belongs to the day its usage starts on. A row longer than a day (monthly
    granularity, a monthly charge) is spread over the days from its usage start to the earlier of its usage end and
    `last_day_with_data` (default: this day), weighted by `logged` (`billing.spread.LOGGED_SCHEMA`: the logged
    estimated cost per day and bucket), evenly where that has nothing; this day gets its part.
    """
    read = read_bedrock_rows(source, day, day + dt.timedelta(days=1), storage_options, long_from=day.replace(day=1))
    result = classify(read, name_map, day=day, logged=logged, last_day_with_data=last_day_with_data)
    result.metrics["quarantined"] = read.quarantined  # rows with NaN/inf/absurd numbers (billing.validate)
    result.metrics["marketplace_excluded"] = read.marketplace_excluded  # Marketplace, not Bedrock (listed)
    return result


def billing_line_items_for_day(
    source: BillingSource, day: dt.date, storage_options: dict[str, Any] | None = None
) -> pl.DataFrame:
    """The `billing_line_items` rows of one UTC day from one billing source (schemas.BILLING_LINE_ITEMS)."""
    return billing_day(source, day, storage_options).line_items


def unmapped_usage_rows(items: pl.DataFrame) -> pl.DataFrame:
    """The bill's usage rows with no model: what the `bill_rows_mapped` check lists. `other` rows are deliberately
    unmatched (their `classification_note` says why); provisioned rows may get their model from
    `attribution.provisioned_models`."""
    usage = items.filter(pl.col("line_item_type").is_in(USAGE_LINE_TYPES))
    not_a_model = ["provisioned", "other", *GUARDRAIL_POLICIES]  # guardrail rows name a policy, never a model
    return usage.filter(pl.col("base_model_id").is_null() & ~pl.col("usage_kind").is_in(not_a_model))
