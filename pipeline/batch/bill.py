"""The bill side of batch jobs: the `-batch` usage rows, shared out to the jobs that ran, and judged per job.

The bill has no job id: a `-batch` row says day (or hour) × account × Region × model × token kind. So each bill
day's `-batch` cost for a model goes to the jobs of that model running that day, weighted by their estimated cost
(else tokens, else evenly), and a job is reconciled over its whole [submit, end] window — the bill books tokens
when they were processed, which the job's outputs do not say, so a single day of a long job is not comparable,
but the window is.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from pipeline.config import Tolerances
from pipeline.text import usd
from pipeline.vocabulary import USAGE_LINE_TYPES

KEY: tuple[str, ...] = ("date", "account_id", "region", "base_model_id")
BATCH_TIER = "batch"
EPS = 1e-9


def batch_bill_rows(billing: pl.DataFrame) -> pl.DataFrame:
    """The bill's batch-tier token usage rows (`billing_line_items` with `tier = batch`, input or output, usage
    line types, a mapped model): what batch jobs are reconciled against."""
    if billing.is_empty() or "tier" not in billing.columns:
        return billing.head(0)
    return billing.filter(
        (pl.col("tier") == BATCH_TIER)
        & pl.col("usage_kind").is_in(["input", "output"])
        & pl.col("line_item_type").is_in(list(USAGE_LINE_TYPES))
        & pl.col("base_model_id").is_not_null()
    )


def allocate(job_days: pl.DataFrame, bill: pl.DataFrame) -> pl.DataFrame:
    """`job_days` plus `billed_cost_usd` and `billed_tokens`: each bill day × key's `-batch` cost and tokens
    shared out to the job-days of that key, by estimated cost, else tokens, else evenly. A key-day with no job
    keeps its cost on the bill (it is not explained by any job)."""
    billed = bill.group_by(list(KEY)).agg(
        pl.col("unblended_cost_usd").fill_null(0.0).sum().alias("_bill_cost"),
        pl.col("tokens").fill_null(0).sum().alias("_bill_tokens"),
    )
    over = list(KEY)
    est = pl.col("total_cost_usd").fill_null(0.0)
    tok = (pl.col("input_tokens").fill_null(0) + pl.col("output_tokens").fill_null(0)).cast(pl.Float64)
    weight = (
        pl.when(est.sum().over(over) > 0)
        .then(est / est.sum().over(over))
        .when(tok.sum().over(over) > 0)
        .then(tok / tok.sum().over(over))
        .otherwise(1.0 / pl.len().over(over))
    )
    out = (
        job_days.join(billed, on=over, how="left", nulls_equal=True)
        .with_columns(weight.alias("_w"))
        .with_columns(
            (pl.col("_bill_cost") * pl.col("_w")).alias("billed_cost_usd"),
            (pl.col("_bill_tokens").cast(pl.Float64) * pl.col("_w")).round().cast(pl.Int64).alias("billed_tokens"),
        )
    )
    return out.drop("_bill_cost", "_bill_tokens", "_w")


def sharing_groups(jobs: dict[str, tuple[tuple[str, str, str | None], list[dt.date]]]) -> dict[str, list[str]]:
    """Job ARN -> the jobs (itself included) linked to it through shared bill days: same account, Region and model
    on a common day, directly or through a chain of such jobs. The bill cannot tell them apart."""
    parent = {arn: arn for arn in jobs}

    def root(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    seen: dict[tuple[Any, ...], str] = {}
    for arn, (key, days) in sorted(jobs.items()):
        for d in days:
            other = seen.setdefault((*key, d), arn)
            parent[root(arn)] = root(other)
    members: dict[str, list[str]] = {}
    for arn in sorted(jobs):
        members.setdefault(root(arn), []).append(arn)
    return {arn: members[root(arn)] for arn in jobs}


def principal_of(bill: pl.DataFrame, key: tuple[str, str, str | None], days: list[dt.date]) -> tuple[str | None, dict]:
    """The one IAM principal the bill names on a job's key over its window days, with that principal's bill
    tags; (None, {}) when the bill names none or several (several jobs of different people share the rows)."""
    if bill.is_empty() or "iam_principal" not in bill.columns or key[2] is None:
        return None, {}
    rows = bill.filter(
        (pl.col("account_id") == key[0])
        & (pl.col("region") == key[1])
        & (pl.col("base_model_id") == key[2])
        & pl.col("date").is_in(days)
        & pl.col("iam_principal").is_not_null()
    )
    principals = rows["iam_principal"].unique().to_list()
    if len(principals) != 1:
        return None, {}
    tags: dict[str, str] = {}
    for entries in rows["tags"].to_list() if "tags" in rows.columns else []:
        for e in entries or []:
            tags.setdefault(e["key"], e["value"])
    return principals[0], tags


def judge(
    job: dict[str, Any],
    estimated: float | None,
    billed: float,
    unbilled_days: list[dt.date],
    tol: Tolerances,
    as_of: dt.date,
) -> tuple[str, str]:
    """A job's reconciliation status over its window, with a sentence a FinOps analyst can act on."""
    name = job["job_name"]
    if not job["ended"]:
        return "pending", f"job {name} is still {job['status']}: it is reconciled once it has ended"
    if unbilled_days:
        days = ", ".join(d.isoformat() for d in unbilled_days[:3]) + ("…" if len(unbilled_days) > 3 else "")
        return "pending", f"the bill of {days} (in the job's window) has not been read yet"
    last_day = job["end_time"].date()
    lagging = (as_of - last_day).days <= tol.billing_lag_days
    if estimated is None:
        return "unpriced", (
            f"job {name} has no estimate ({job['unpriced_reason']}); {usd(billed)} is billed at batch rates for "
            "its model over its window"
        )
    if billed <= EPS:
        if lagging:
            return "pending", f"nothing billed yet for job {name}; the bill can lag {tol.billing_lag_days} days"
        return "missing_in_bill", (
            f"job {name} ({usd(estimated)} estimated at batch rates) has no `-batch` bill rows for its model over "
            "its window: check the account and Region of the bill export, and whether the job ran at batch rates"
        )
    delta = billed - estimated
    allowed = max(tol.cost_usd, tol.cost_pct * max(abs(billed), abs(estimated))) + EPS
    if abs(delta) <= allowed:
        return "matched", f"job {name}: {usd(estimated)} estimated, {usd(billed)} billed over its window"
    if lagging:
        return "pending", (
            f"job {name}: {usd(estimated)} estimated, {usd(billed)} billed so far; the bill can lag "
            f"{tol.billing_lag_days} days"
        )
    if delta > 0:
        return "under_logged", (
            f"job {name}: the bill's `-batch` rows for its model show {usd(delta)} more than its outputs explain "
            f"({usd(billed)} billed, {usd(estimated)} estimated): another job of the same model may be missing "
            "from the configured sources, or its manifest undercounts"
        )
    return "over_logged", (
        f"job {name}: its outputs explain {usd(-delta)} more than the bill's `-batch` rows for its model "
        f"({usd(estimated)} estimated, {usd(billed)} billed): check the batch price of its model"
    )
