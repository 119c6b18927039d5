"""`chargeback`: the billed Bedrock usage cost, allocated to the cost centers, applications and users who caused it.

Teams are charged what AWS actually billed, not the catalog estimate, so the chargeback always adds up to the
invoice's usage lines. Allocation happens per ``date × account_id × region × base_model_id`` (the finest grain the
bill and the logs share for every model; routing, tier and token kind are folded in because they are prices of the
same caller's traffic):

* Weights, per bucket: the callers' estimated cost when every call in the bucket is priced and that cost is > 0 (a
  caller of expensive output tokens pays for them); else their token count (unpriced or provisioned calls have no
  cost to go by, and tokens are what the bill counts); else their invocation count (calls with no tokens at all).
* Billed cost with no logged caller — models billed but never logged, unmapped bill rows — goes to one row per
  day and account whose ``cost_center``, ``application`` and ``user`` are ``unallocated``, so it stays visible.
* Logged cost with nothing billed (``missing_in_bill``) appears with its estimate and ``billed_cost_usd`` 0.
* ``estimated_cost_usd`` sums priced calls only (unpriced calls contribute 0, as in the daily tables).
* ``share`` = billed_cost_usd / the day-and-account billed total (null when that total is 0).

No rounding is applied: amounts stay float64 at full precision, so per day and account ``billed_cost_usd`` sums to
the billed usage cost up to float error (≪ 1e-9 USD), whereas rounding each row to cents would make the sum drift by
up to half a cent per row. Round for presentation only.
"""

from __future__ import annotations

import polars as pl

from pipeline import config, schemas
from pipeline.reconciliation import bill_owners
from pipeline.reconciliation.principals import bill_has_principals
from pipeline.reconciliation.reconcile import TOKEN_KINDS, as_lazy, logged_model_key, usage_rows

Frame = pl.DataFrame | pl.LazyFrame

ALLOCATION_BUCKET: tuple[str, ...] = ("date", "account_id", "region", "base_model_id")
PARTIES: tuple[str, ...] = ("cost_center", "application", "user")
KEYS: tuple[str, ...] = ("date", "account_id", *PARTIES)


def _callers(priced: Frame) -> pl.LazyFrame:
    """Logged callers per allocation bucket with their weight (share of the bucket, summing to 1)."""
    priced_flag = pl.col("priced").fill_null(False)
    tokens = pl.sum_horizontal([pl.col(tok).fill_null(0) for tok, _ in TOKEN_KINDS.values()])
    bucket = list(ALLOCATION_BUCKET)
    est_total = pl.col("estimated_cost_usd").sum().over(bucket)
    tok_total = pl.col("_tokens").sum().over(bucket)
    calls_total = pl.col("_calls").sum().over(bucket)
    all_priced = pl.col("_unpriced_calls").sum().over(bucket) == 0
    return (
        as_lazy(priced)
        .with_columns(
            logged_model_key().alias("base_model_id"),
            *[pl.col(p).fill_null(schemas.UNATTRIBUTED).alias(p) for p in PARTIES],
        )
        .group_by(*ALLOCATION_BUCKET, *PARTIES)
        .agg(
            pl.col("total_cost_usd")
            .filter(priced_flag)
            .fill_null(0.0)
            .sum()
            .cast(pl.Float64)
            .alias("estimated_cost_usd"),
            tokens.sum().cast(pl.Float64).alias("_tokens"),
            pl.len().cast(pl.Float64).alias("_calls"),
            (~priced_flag).sum().alias("_unpriced_calls"),
        )
        .with_columns(
            pl.when(all_priced & (est_total > 0))
            .then(pl.col("estimated_cost_usd") / est_total)
            .when(tok_total > 0)
            .then(pl.col("_tokens") / tok_total)
            .otherwise(pl.col("_calls") / calls_total)
            .alias("_weight")
        )
    )


def chargeback(priced: Frame, billing: Frame, attribution: config.Attribution | None = None) -> pl.DataFrame:
    """Build ``chargeback`` (see the module docstring for the allocation rule and its fallbacks).

    Bill rows that name their IAM principal are charged to that principal's owners (`bill_owners`, using
    `attribution` for the bill's `iamPrincipal/` tags); the estimate allocates only the rest.
    """
    bucket = list(ALLOCATION_BUCKET)
    by_principal: list[pl.LazyFrame] = []
    if bill_has_principals(billing):  # CUR 2.0 with IAM principal data: the bill decides for its named rows
        billing, named = bill_owners.split_bill(billing)
        by_principal.append(bill_owners.principal_chargeback(priced, named, attribution or config.Attribution()).lazy())
    bills = (
        usage_rows(billing)
        .group_by(bucket)
        .agg(pl.col("unblended_cost_usd").fill_null(0.0).sum().cast(pl.Float64).alias("_billed"))
    )
    callers = _callers(priced)
    allocated = (
        callers.join(bills, on=bucket, how="left", nulls_equal=True)
        .with_columns((pl.col("_weight") * pl.col("_billed").fill_null(0.0)).alias("billed_cost_usd"))
        .select(*KEYS, "estimated_cost_usd", "billed_cost_usd")
    )
    unallocated = bills.join(callers.select(bucket).unique(), on=bucket, how="anti", nulls_equal=True).select(
        "date",
        "account_id",
        *[pl.lit(schemas.UNALLOCATED).alias(p) for p in PARTIES],
        pl.lit(0.0).alias("estimated_cost_usd"),
        pl.col("_billed").alias("billed_cost_usd"),
    )
    day_account = ["date", "account_id"]
    billed_total = pl.col("billed_cost_usd").sum().over(day_account)
    out = (
        pl.concat([allocated, unallocated, *by_principal], how="vertical_relaxed")
        .group_by(list(KEYS))
        .agg(pl.col("estimated_cost_usd").sum(), pl.col("billed_cost_usd").sum())
        .with_columns(pl.when(billed_total != 0).then(pl.col("billed_cost_usd") / billed_total).alias("share"))
        .sort(list(KEYS), nulls_last=True)
        .collect(engine="streaming")
    )
    return schemas.conform(out, schemas.CHARGEBACK)
