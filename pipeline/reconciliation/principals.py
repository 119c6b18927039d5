"""Who called, as the bill says it: IAM principal keys for reconciling per principal (CUR 2.0 with IAM data).

A CUR 2.0 export with `INCLUDE_IAM_PRINCIPAL_DATA` carries `line_item_iam_principal` on each Bedrock row
(docs/formats/billing-exports.md §4.10): an IAM user ARN (`arn:aws:iam::<acct>:user/alice`; Bedrock API keys are
IAM users too), or a role session
in the `…:assumed-role/<Role>/<session>` form (federated people as `assumed-role/<Role>/user@corp.example`). The
invocation logs name the same caller in `identity.arn`, an STS ARN for sessions. Both sides are turned into one
key (`principal_key`) so they meet:

* assumed-role sessions: ``arn:<partition>:sts::<account>:assumed-role/<Role>/<session>``, whichever service the
  ARN names (the bill's spelling of the service part is [UNVERIFIED], so `iam` and `sts` are both accepted) and
  with the row's account filled in when the bill writes the bare `assumed-role/<Role>/<session>` form;
* IAM users (API-key users included): ``arn:<partition>:iam::<account>:user/<name>``, the IAM path dropped (a user
  name is unique in its account whatever its path, and one side may print the path while the other does not);
* anything else (`federated-user/…`, `root`, a role ARN) keeps its resource part, service as IAM writes it.

Where the bill decides (`split_by_principal`): a bucket of the reconciliation (day × account × Region × model) is
reconciled per principal when its billed usage rows name principals, and a bucket nothing was billed for is split
when the bill names principals for that day and account, so logged calls nobody billed show per principal too.
Elsewhere (legacy CUR, FOCUS, Marketplace rows without a principal, Provisioned Throughput hours) the key stays
null and the reconciliation is exactly what it is without principal data.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import polars as pl

from pipeline.reconciliation.reconcile import (
    MODEL_BUCKET,
    PROVISIONED,
    _n,
    _usd,
    _what,
    logged_model_key,
)
from pipeline.vocabulary import USAGE_LINE_TYPES, Frame, as_lazy

COLUMN = "iam_principal"
_ACTIVITY_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "latency_ms",
)


@lru_cache(maxsize=65536)
def principal_key(arn: str | None, account_id: str | None = None) -> str | None:
    """The key under which the bill's principal and the logs' identity ARN meet (see the module docstring).

    `account_id` fills in the account when the value has none (the bare `assumed-role/<Role>/<session>` form).
    Returns None for a missing value; a value that is not an ARN of a known shape is kept as written (trimmed),
    so it still meets an identical string on the other side.
    """
    if arn is None:
        return None
    text = arn.strip()
    if not text:
        return None
    partition, account, resource = "aws", account_id or "", text
    if text.startswith("arn:"):
        parts = text.split(":", 5)
        if len(parts) < 6:
            return text
        partition, account, resource = parts[1] or "aws", parts[4] or account, parts[5]
    kind, _, rest = resource.partition("/")
    if kind == "assumed-role":
        role, _, session = rest.partition("/")
        if not role or not session:
            return text
        return f"arn:{partition}:sts::{account}:assumed-role/{role}/{session}"
    if kind == "user":
        name = rest.rsplit("/", 1)[-1]
        return f"arn:{partition}:iam::{account}:user/{name}" if name else text
    if kind == "federated-user" and rest:
        return f"arn:{partition}:sts::{account}:federated-user/{rest}"
    if kind in ("role", "root") or resource == "root":
        return f"arn:{partition}:iam::{account}:{resource}"
    return text


def _keys_of(frame: pl.DataFrame, value: str, account: str) -> pl.DataFrame:
    """Distinct (value, account) pairs with their key: ARNs repeat, so normalize each once in Python."""
    pairs = frame.select(value, account).unique().drop_nulls(value)
    keys = [principal_key(v, a) for v, a in pairs.iter_rows()]
    return pairs.with_columns(pl.Series("_key", keys, dtype=pl.String))


def with_principal_key(frame: Frame, value: str, account: str = "account_id", alias: str = COLUMN) -> pl.LazyFrame:
    """`frame` plus `alias`: the `principal_key` of column `value` (null where it is null)."""
    lazy = as_lazy(frame)
    pairs = _keys_of(lazy.select(value, account).unique().collect(), value, account)
    return (
        lazy.join(pairs.lazy(), on=[value, account], how="left", nulls_equal=True)
        .with_columns(pl.col("_key").alias(alias))
        .drop("_key")
    )


def bill_has_principals(billing: Frame) -> bool:
    """Does any usage row of the bill name its principal? Only then does anything here apply."""
    lazy = as_lazy(billing)
    if COLUMN not in lazy.collect_schema().names():
        return False
    found = (
        lazy.filter(pl.col("line_item_type").is_in(list(USAGE_LINE_TYPES)) & pl.col(COLUMN).is_not_null())
        .select(pl.len())
        .collect()
        .item()
    )
    return bool(found)


def split_by_principal(priced: Frame, billing: Frame) -> tuple[pl.LazyFrame, pl.DataFrame]:
    """Both sides with an `iam_principal` key column where the bill decides per principal, null elsewhere.

    Billed rows keep their own principal (normalized). A logged call gets its identity's key when its bucket
    (day × account × Region × model) is split: the bill names principals on that bucket's usage rows, or bills
    nothing for the bucket while naming principals elsewhere that day in that account. Calls on Provisioned
    Throughput are never split: the bill charges hours, not callers.
    """
    bill = with_principal_key(billing, COLUMN).collect()
    usage = bill.filter(pl.col("line_item_type").is_in(list(USAGE_LINE_TYPES)))
    bucket = list(MODEL_BUCKET)
    billed_buckets = usage.group_by(bucket).agg(pl.col(COLUMN).is_not_null().any().alias("_bill_split"))
    day_accounts = (
        usage.filter(pl.col(COLUMN).is_not_null())
        .select("date", "account_id")
        .unique()
        .with_columns(pl.lit(True).alias("_day_split"))
    )
    is_pt = ((pl.col("routing") == PROVISIONED) | (pl.col("pricing_routing") == PROVISIONED)).fill_null(False)
    logged = (
        with_principal_key(as_lazy(priced), "identity_arn", alias="_identity_key")
        .with_columns(logged_model_key().alias("_model_key"))
        .join(
            billed_buckets.lazy().rename({"base_model_id": "_model_key"}),
            on=["date", "account_id", "region", "_model_key"],
            how="left",
            nulls_equal=True,
        )
        .join(day_accounts.lazy(), on=["date", "account_id"], how="left", nulls_equal=True)
        .with_columns(
            pl.when(~is_pt & pl.coalesce(pl.col("_bill_split"), pl.col("_day_split"), pl.lit(False)))
            .then(pl.col("_identity_key"))
            .otherwise(None)
            .alias(COLUMN)
        )
        .drop("_identity_key", "_model_key", "_bill_split", "_day_split")
    )
    return logged, bill


# --- wording -------------------------------------------------------------------------------------------------------


def explain(row: dict[str, Any], status: str, explanation: str, lag_pending: bool) -> str:
    """The sentence for a bucket reconciled per principal: it names the principal and, for a one-sided bucket,
    the likely cause. Rows without a principal keep the reconciler's sentence unchanged.

    `lag_pending` is true when the day is still within the billing lag (a one-sided bucket is then expected).
    """
    principal = row.get(COLUMN)
    if principal is None:
        return explanation
    kind = row["usage_kind"]
    where = f"account {row['account_id']} in {row['region']}"
    if status == "missing_in_logs" and kind != PROVISIONED:
        cause = (
            f"invocation logging may be off for {where}, or the principal calls through a path the logs do not "
            "cover (a Region or account whose logging is not configured, a batch job, an agent)"
        )
        if row.get("_model_logged"):
            cause = f"its calls may be logged with another {row['routing']}/{row['tier']} routing or tier, or {cause}"
        return (
            f"principal {principal} is billed {_n(row['_billed_qty'])} {_what(kind)} of {row['base_model_id']} "
            f"({_usd(row['billed_cost_usd'])}) but none of its calls is logged for this bucket: {cause}"
        )
    if status == "missing_in_bill" and not lag_pending:
        est = row["estimated_cost_usd"]
        est_txt = f" ({_usd(est)} estimated)" if est is not None else ""
        return (
            f"principal {principal} logged {_n(row['_logged_qty'])} {_what(kind)} of {row['base_model_id']}{est_txt} "
            f"in {where} but the bill charges this principal nothing for them: look for an unmapped bill row of "
            "this principal; else AWS bills these calls to another principal (the role that was chained from, or "
            "the IAM user behind an API key) or the bill's principal data is incomplete for this day"
        )
    return f"principal {principal}: {explanation}"


def principal_summary(recon: pl.DataFrame, priced: Frame | None = None, top: int = 10) -> pl.DataFrame:
    """Per principal (largest gap first): billed and estimated cost, the gap and its non-matched statuses, and
    with `priced` its logged calls, tokens and latency: one principal's bill beside what its calls should have
    cost. For the materialization's metadata; empty when the bill names no principal."""
    if COLUMN not in recon.columns:
        return pl.DataFrame()
    rows = recon.filter(pl.col(COLUMN).is_not_null())
    if rows.is_empty():
        return pl.DataFrame()
    summary = (
        rows.group_by(COLUMN)
        .agg(
            pl.col("billed_cost_usd").fill_null(0.0).sum().alias("billed_cost_usd"),
            pl.col("estimated_cost_usd").fill_null(0.0).sum().alias("estimated_cost_usd"),
            pl.col("status").filter(pl.col("status") != "matched").unique().sort().str.join(", ").alias("gaps"),
        )
        .with_columns((pl.col("billed_cost_usd") - pl.col("estimated_cost_usd")).alias("cost_delta_usd"))
        .sort(pl.col("cost_delta_usd").abs(), COLUMN, descending=[True, False])
        .head(top)
    )
    if priced is None:
        return summary
    tokens = pl.sum_horizontal(
        pl.col(c).fill_null(0)
        for c in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens")
    )
    activity = (
        with_principal_key(as_lazy(priced).select("identity_arn", "account_id", *_ACTIVITY_COLUMNS), "identity_arn")
        .filter(pl.col(COLUMN).is_in(summary[COLUMN].implode()))
        .group_by(COLUMN)
        .agg(
            pl.len().cast(pl.Int64).alias("calls"),
            tokens.sum().cast(pl.Int64).alias("tokens"),
            pl.col("latency_ms").median().alias("latency_ms_p50"),
            pl.col("latency_ms").quantile(0.95).alias("latency_ms_p95"),
        )
        .collect()
    )
    return summary.join(activity, on=COLUMN, how="left", maintain_order="left")
