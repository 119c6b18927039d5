"""The parts of the bill that are not model tokens matched against invocation logs, reconciled in their own buckets.

`reconcile` matches the bill's model-token rows against the logs. Two kinds of bill rows must never enter that
match, because the logs cannot hold them or hold them differently:

* **bedrock-mantle** (`endpoint = mantle`): the OpenAI-compatible endpoint. Invocation logging covers
  bedrock-runtime only (its OpenAI-compatible paths included), so mantle tokens would otherwise show as a model
  billed and never logged, or worse, meet the same model's runtime calls and look like under-logging. Their rows
  get status `not_logged_by_design` with that sentence; completeness compares them with `AWS/BedrockMantle`.
* **Guardrails** (`spend_kind = guardrail`): billed per policy and text unit. A call's log carries the units only
  when the caller enabled the guardrail trace, so logged units are a lower bound; standalone `ApplyGuardrail`
  calls never reach the logs. Each policy is its own bucket (`usage_kind` = the policy, per day, account and
  Region): logged units and their estimate at `guardrail:<policy>` prices against billed units and cost.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from pipeline import schemas
from pipeline.config import Tolerances
from pipeline.pricing.guardrails import load_guardrail_prices, price_of, unit_column
from pipeline.text import usd
from pipeline.vocabulary import GUARDRAIL_POLICIES, USAGE_LINE_TYPES, Frame, as_lazy, with_spend_kind

NOT_LOGGED_BY_DESIGN = "not_logged_by_design"
MANTLE_SENTENCE = (
    "invocation logging covers bedrock-runtime only (its OpenAI-compatible paths included), not the bedrock-mantle "
    "endpoint: compare with the AWS/BedrockMantle metrics, and own it by principal, tags or project"
)
GUARDRAIL = "guardrail"
MANTLE = "mantle"
BUCKET: tuple[str, ...] = ("date", "account_id", "region")


def split_whole_bill(billing: Frame) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
    """The bill as (rows for the token match, mantle rows, guardrail rows); spend kind derived where missing."""
    rows = with_spend_kind(billing)
    mantle = (pl.col("endpoint") == MANTLE).fill_null(False)
    guardrail = (pl.col("spend_kind") == GUARDRAIL).fill_null(False) & ~mantle
    return rows.filter(~mantle & ~guardrail), rows.filter(mantle), rows.filter(guardrail)


def _usage(rows: pl.LazyFrame) -> pl.LazyFrame:
    return rows.filter(pl.col("line_item_type").is_in(list(USAGE_LINE_TYPES)))


def mantle_reconciliation(mantle: Frame) -> pl.DataFrame:
    """`cost_reconciliation` rows for mantle usage: billed, `not_logged_by_design`, one per bucket and kind."""
    rows = _usage(as_lazy(mantle))
    names = rows.collect_schema().names()
    if "context_tier" not in names:
        rows = rows.with_columns(pl.lit(None, dtype=pl.String).alias("context_tier"))
    keys = ["date", "account_id", "region", "base_model_id", "usage_kind", "routing", "tier", "context_tier"]
    out = (
        rows.with_columns(pl.coalesce(pl.col("context_tier"), pl.lit("standard")).alias("context_tier"))
        .group_by(keys)
        .agg(
            pl.when(pl.col("tokens").is_not_null().any()).then(pl.col("tokens").sum()).alias("billed_tokens"),
            pl.col("unblended_cost_usd").fill_null(0.0).sum().cast(pl.Float64).alias("billed_cost_usd"),
            pl.col("usage_type").drop_nulls().unique().sort().str.join(", ").alias("_types"),
            pl.col("spend_kind").drop_nulls().first().alias("spend_kind"),
        )
        .collect()
    )
    if out.is_empty():
        return schemas.empty(schemas.COST_RECONCILIATION)
    explanation = pl.format(
        "{} billed through bedrock-mantle ({}): " + MANTLE_SENTENCE,
        pl.col("billed_cost_usd").map_elements(usd, return_dtype=pl.String),
        pl.col("_types"),
    )
    out = out.with_columns(
        pl.lit(0, dtype=pl.Int64).alias("logged_tokens"),
        pl.lit(0.0).alias("estimated_cost_usd"),
        pl.col("billed_cost_usd").alias("cost_delta_usd"),
        pl.when(pl.col("billed_cost_usd") != 0).then(pl.lit(1.0)).alias("cost_delta_pct"),
        # All volume: billed usage the logs cannot hold, at the billed price.
        pl.col("billed_cost_usd").alias("volume_variance_usd"),
        pl.lit(0.0).alias("price_variance_usd"),
        pl.lit(NOT_LOGGED_BY_DESIGN).alias("status"),
        explanation.alias("explanation"),
        pl.lit(MANTLE).alias("endpoint"),
    )
    return schemas.conform(out, schemas.COST_RECONCILIATION)


def _logged_units(priced: Frame) -> pl.DataFrame:
    """Guardrail units of the logged calls per bucket and policy (rows with units only)."""
    lazy = as_lazy(priced)
    names = lazy.collect_schema().names()
    present = [p for p in GUARDRAIL_POLICIES if unit_column(p) in names]
    schema = {"date": pl.Date, "account_id": pl.String, "region": pl.String, "usage_kind": pl.String}
    if not present:
        return pl.DataFrame(schema={**schema, "logged_units": pl.Float64, "_calls": pl.Int64})
    grouped = (
        lazy.group_by(BUCKET)
        .agg(
            *[pl.col(unit_column(p)).fill_null(0).sum().alias(p) for p in present],
            pl.col("guardrail_trace_present").fill_null(False).sum().alias("_calls")
            if "guardrail_trace_present" in names
            else pl.lit(0).alias("_calls"),
        )
        .collect()
    )
    long = grouped.unpivot(index=[*BUCKET, "_calls"], on=present, variable_name="usage_kind", value_name="logged_units")
    return long.filter(pl.col("logged_units") > 0).with_columns(
        pl.col("logged_units").cast(pl.Float64), pl.col("_calls").cast(pl.Int64)
    )


def guardrail_reconciliation(
    priced: Frame, guardrail_rows: Frame, tolerances: Tolerances, as_of: dt.date, prices: pl.DataFrame | None = None
) -> pl.DataFrame:
    """`cost_reconciliation` rows per guardrail policy bucket (see the module docstring)."""
    prices = load_guardrail_prices() if prices is None else prices
    billed = (
        _usage(as_lazy(guardrail_rows))
        .group_by(*BUCKET, "usage_kind")
        .agg(
            pl.col("usage_amount").fill_null(0.0).sum().cast(pl.Float64).alias("billed_units"),
            pl.col("unblended_cost_usd").fill_null(0.0).sum().cast(pl.Float64).alias("billed_cost_usd"),
            pl.col("usage_type").drop_nulls().unique().sort().str.join(", ").alias("_types"),
        )
        .with_columns(pl.lit(True).alias("_in_bill"))
        .collect()
    )
    logged = _logged_units(priced).with_columns(pl.lit(True).alias("_in_log"))
    if billed.is_empty() and logged.is_empty():
        return schemas.empty(schemas.COST_RECONCILIATION)
    joined = logged.join(billed, on=[*BUCKET, "usage_kind"], how="full", coalesce=True, nulls_equal=True).with_columns(
        pl.col("_in_log").fill_null(False),
        pl.col("_in_bill").fill_null(False),
        pl.col("logged_units").fill_null(0.0),
        pl.col("billed_units").fill_null(0.0),
        pl.col("billed_cost_usd").fill_null(0.0),
        pl.col("_calls").fill_null(0),
    )
    estimates = [
        None if rate is None else r["logged_units"] * rate
        for r in joined.iter_rows(named=True)
        for rate in [price_of(r["usage_kind"], r["date"], r["region"], prices)]
    ]
    joined = joined.with_columns(pl.Series("estimated_cost_usd", estimates, dtype=pl.Float64))
    statuses, texts = zip(*(_classify(r, tolerances, as_of) for r in joined.iter_rows(named=True)), strict=True)
    out = joined.with_columns(
        (pl.col("billed_cost_usd") - pl.col("estimated_cost_usd").fill_null(0.0)).alias("cost_delta_usd"),
        pl.Series("status", statuses, dtype=pl.String),
        pl.Series("explanation", texts, dtype=pl.String),
        pl.lit(GUARDRAIL).alias("spend_kind"),
        pl.lit("runtime").alias("endpoint"),
    ).with_columns(
        pl.when(pl.col("billed_cost_usd") != 0)
        .then(pl.col("cost_delta_usd") / pl.col("billed_cost_usd"))
        .alias("cost_delta_pct"),
        *_variances(),
    )
    return schemas.conform(out, schemas.COST_RECONCILIATION)


def _variances() -> list[pl.Expr]:
    """Volume variance (unit gap × billed unit price) and price variance (unit-price gap × logged units), which add
    up to the delta; a side without units or price leaves the whole delta to volume."""
    billed_unit = pl.when(pl.col("billed_units") > 0).then(pl.col("billed_cost_usd") / pl.col("billed_units"))
    est_unit = pl.when(pl.col("logged_units") > 0).then(pl.col("estimated_cost_usd") / pl.col("logged_units"))
    price = (
        pl.when(billed_unit.is_not_null() & est_unit.is_not_null())
        .then((billed_unit - est_unit) * pl.col("logged_units"))
        .otherwise(0.0)
    )
    return [(pl.col("cost_delta_usd") - price).alias("volume_variance_usd"), price.alias("price_variance_usd")]


def _classify(r: dict[str, Any], tol: Tolerances, as_of: dt.date) -> tuple[str, str]:
    policy = r["usage_kind"].replace("_", " ")
    logged, billed = r["logged_units"], r["billed_units"]
    where = f"{r['account_id']} {r['region']} on {r['date']}"
    lower_bound = (
        "the log shows guardrail units only for calls that enabled the guardrail trace, and standalone "
        "ApplyGuardrail calls never"
    )
    if r["_in_log"] and not r["_in_bill"]:
        lag = r["date"] > as_of - dt.timedelta(days=tol.billing_lag_days)
        why = "the bill may not be final yet" if lag else "check that the billing export includes this account"
        return "missing_in_bill", f"{logged:,.0f} {policy} policy units logged in {where} but none billed: {why}"
    if not r["_in_log"]:
        return "missing_in_logs", (
            f"{billed:,.0f} {policy} policy units billed ({usd(r['billed_cost_usd'])}) in {where} and none in the "
            f"logs: {lower_bound}; enable the trace (or count ApplyGuardrail calls) to explain them"
        )
    gap = billed - logged
    if abs(gap) <= tol.tokens_pct * max(billed, 1.0) + 1e-9:
        return "matched", f"{logged:,.0f} {policy} policy units logged vs {billed:,.0f} billed in {where}"
    if gap > 0:
        return "under_logged", (
            f"{billed:,.0f} {policy} policy units billed vs {logged:,.0f} in the logs' guardrail traces in {where}: "
            f"{lower_bound}, so {gap:,.0f} units are unexplained"
        )
    return "over_logged", (
        f"{logged:,.0f} {policy} policy units in the logs' guardrail traces vs {billed:,.0f} billed in {where}: "
        "more than billed; check free units and the billing export"
    )


def by_design(recon: pl.DataFrame) -> pl.Expr:
    """Rows whose gap is expected by design, never a failed check: mantle rows, and guardrail buckets the logs
    explain only in part (a lower bound)."""
    names = recon.columns
    spend = pl.col("spend_kind") if "spend_kind" in names else pl.lit(None, dtype=pl.String)
    guardrail_part = (spend == GUARDRAIL) & pl.col("status").is_in(["under_logged", "missing_in_logs"])
    return ((pl.col("status") == NOT_LOGGED_BY_DESIGN) | guardrail_part).fill_null(False)
