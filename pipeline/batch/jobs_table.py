"""`batch_jobs`: one row per batch inference job × UTC day it ran, priced at batch rates, owned and reconciled.

* **Days.** A job runs over [submit, end]; its records and tokens are spread over the days of that window in
  proportion to the time it ran on each (cumulative rounding, so a job's days always sum to its totals). When the
  processing happened within the window is not published, so a day's share is an estimate; the job is reconciled
  over the whole window, where it is not.
* **Tokens.** From `manifest.json.out` (`token_source = manifest`), else summed from the records' outputs
  (`records`); 0 for a job without output whose API answer says no record was processed (`api`); else unknown:
  the row is `priced = false` with the reason, never $0.
* **Price.** The catalog's `batch` row for the model and Region, else the standard row × 0.5 (the catalog's tier
  rule; `price_origin = derived`).
* **Owner** (`attribution_reason`): the job's tags, then `attribution.batch_job_rules` on the job name, then the
  bill's IAM principal for the job's rows and its `iamPrincipal/` tags, else `unallocated` / `batch_job_untagged`.
  Tags are read with the request-metadata key lists. Never the job's `roleArn` (Bedrock's service role).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import math
from typing import Any

import polars as pl

from pipeline import schemas
from pipeline.attribution.bill_tags import owner_of_principal, principal_tags, tag_values
from pipeline.attribution.rules import _first_key
from pipeline.batch.bill import KEY, allocate, batch_bill_rows, judge, principal_of, sharing_groups
from pipeline.config import LedgerConfig
from pipeline.normalize.model_ids import resolve_model_id
from pipeline.pricing.catalog import PriceCatalog
from pipeline.pricing.match import price_invocations, profile_models_from_config
from pipeline.sources.batch_jobs import BatchJob, BatchRead, JobOutput

DIMENSIONS: tuple[str, ...] = ("user", "application", "cost_center", "environment")
COUNTS: tuple[str, ...] = (
    "records_total",
    "records_processed",
    "records_succeeded",
    "records_failed",
    "input_tokens",
    "output_tokens",
)
_DAY = dt.timedelta(days=1)


def _start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def window_days(job: BatchJob, until: dt.date) -> list[dt.date]:
    """The UTC days of a job's [submit, end] window; a running job's window runs to `until`."""
    first = job.submit_time.date()
    last = job.end_time.date() if job.end_time else max(until, first)
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _elapsed(job: BatchJob, t: dt.datetime) -> float:
    """The share of the job's window elapsed at `t` (0 before submit, 1 at and after its end)."""
    assert job.end_time is not None
    span = (job.end_time - job.submit_time).total_seconds()
    if span <= 0:
        return 1.0 if t > job.submit_time else 0.0
    return min(max((t - job.submit_time).total_seconds() / span, 0.0), 1.0)


def day_part(total: int | None, job: BatchJob, day: dt.date) -> int | None:
    """The day's part of a job total: floor(total × elapsed at day end) − floor(total × elapsed at day start), so
    the parts are whole and add up to the total exactly, whichever days are computed."""
    if total is None or job.end_time is None:
        return None
    return math.floor(total * _elapsed(job, _start(day) + _DAY) + 1e-9) - math.floor(
        total * _elapsed(job, _start(day)) + 1e-9
    )


def job_counts(job: BatchJob, out: JobOutput | None) -> tuple[dict[str, int | None], str, str | None]:
    """A job's record and token totals, where the tokens come from, and why they are unknown (None if known)."""
    counts: dict[str, int | None] = dict.fromkeys(COUNTS)
    for name, value in job.api_counts.items():
        counts[name] = value
    if not job.ended:
        return counts, "none", "job_running"
    if out is None:
        if counts["records_processed"] == 0:  # the API says nothing was processed (a job failed in validation)
            counts["input_tokens"] = counts["output_tokens"] = 0
            return counts, "api", None
        return counts, "none", "output_not_found"
    man = out.manifest or {}
    for name in COUNTS[:4]:
        if man.get(name) is not None:
            counts[name] = man[name]
    if man.get("input_tokens") is not None and man.get("output_tokens") is not None:
        counts["input_tokens"], counts["output_tokens"] = man["input_tokens"], man["output_tokens"]
        return counts, "manifest", None
    tally = out.records
    if tally is not None and tally.records > 0 and tally.without_usage == 0:
        counts["input_tokens"], counts["output_tokens"] = tally.input_tokens, tally.output_tokens
        fill = {
            "records_total": tally.records,
            "records_processed": tally.records,
            "records_succeeded": tally.succeeded,
            "records_failed": tally.failed,
        }
        for name, value in fill.items():
            counts[name] = value if counts[name] is None else counts[name]
        return counts, "records", None
    if out.manifest is None:
        return counts, "none", "manifest_unreadable"
    return counts, "none", "token_counts_unknown"


def _dims(tags: dict[str, str], cfg: LedgerConfig) -> dict[str, str | None]:
    keys: dict[str, list[str]] = {str(k): v for k, v in cfg.attribution.request_metadata_keys.items()}
    return {d: _first_key(tags, keys.get(d, [])) for d in DIMENSIONS}


def job_owner(
    job: BatchJob, principal: str | None, bill_tags: dict[str, str], cfg: LedgerConfig
) -> tuple[dict[str, str], str]:
    """The owner of a job per dimension, first level that names it: job tags > name rule > bill principal."""
    levels: list[tuple[str, dict[str, str | None]]] = [("job_tags", _dims(job.tags, cfg))]
    rule = next((r for r in cfg.attribution.batch_job_rules if fnmatch.fnmatchcase(job.job_name, r.match)), None)
    if rule is not None:
        levels.append(("name_rule", _dims(dict(rule.tags), cfg)))
    if principal:
        values = tag_values(principal_tags(bill_tags), cfg.attribution)
        owner = owner_of_principal(principal, [principal], values, cfg.attribution)
        levels.append(("bill_principal", {d: v for d, v in owner.items() if v != schemas.UNATTRIBUTED}))
    out: dict[str, str] = {}
    reason = None
    for level, values in levels:
        for d in DIMENSIONS:
            v = values.get(d)
            if v and d not in out:
                out[d] = v
                reason = reason or level
    if reason is None:
        return dict.fromkeys(DIMENSIONS, schemas.UNALLOCATED), "batch_job_untagged"
    return {d: out.get(d, schemas.UNATTRIBUTED) for d in DIMENSIONS}, reason


def _job_days(read: BatchRead, until: dt.date) -> pl.DataFrame:
    rows = []
    for job in read.jobs:
        out = read.outputs.get(job.job_id)
        counts, token_source, reason = job_counts(job, out)
        resolved = resolve_model_id(job.model_id)
        for d in window_days(job, until):
            start = max(job.submit_time, _start(d))
            stop = min(job.end_time, _start(d) + _DAY) if job.end_time else _start(d) + _DAY
            span = (job.end_time - job.submit_time).total_seconds() if job.end_time else 0
            share = (max((stop - start).total_seconds(), 0.0) / span if span > 0 else 1.0) if job.end_time else None
            rows.append(
                {
                    "date": d,
                    "job_arn": job.job_arn,
                    "job_id": job.job_id,
                    "job_name": job.job_name,
                    "account_id": job.account_id,
                    "region": job.region,
                    "model_id": job.model_id,
                    "base_model_id": resolved.base_model_id,
                    "routing": resolved.routing,
                    "inference_profile": resolved.inference_profile,
                    "status": job.status,
                    "submit_time": job.submit_time,
                    "end_time": job.end_time,
                    **{c: day_part(counts[c], job, d) for c in COUNTS},
                    "day_share": share,
                    "token_source": token_source,
                    "_reason": reason,
                    "model_invocation_type": job.invocation_type,
                    "output_uri": out.folder if out else None,
                }
            )
    schema = {
        **{c: schemas.BATCH_JOBS[c] for c in schemas.BATCH_JOBS if c in rows[0]},
        "job_id": pl.String,
        "inference_profile": pl.String,
        "_reason": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def _priced(days: pl.DataFrame, catalog: PriceCatalog, cfg: LedgerConfig) -> pl.DataFrame:
    """Job-days priced at batch rates; a day without known tokens is unpriced with its reason, never $0."""
    work = days.with_columns(
        pl.lit("batch").alias("service_tier"),
        pl.col("input_tokens").fill_null(0).alias("_in"),
        pl.col("output_tokens").fill_null(0).alias("_out"),
    )
    frame = work.select(
        "model_id",
        "base_model_id",
        "routing",
        "inference_profile",
        "region",
        "date",
        "service_tier",
        pl.col("_in").alias("input_tokens"),
        pl.col("_out").alias("output_tokens"),
        pl.lit(0, pl.Int64).alias("cache_read_input_tokens"),
        pl.lit(0, pl.Int64).alias("cache_write_input_tokens"),
        pl.lit(0, pl.Int64).alias("image_count"),
    )
    priced = price_invocations(frame, catalog, "batch", profile_models_from_config(cfg.attribution))
    known = pl.col("_reason").is_null()
    out = days.with_columns(
        priced["input_cost_usd"],
        priced["output_cost_usd"],
        priced["total_cost_usd"],
        priced["price_source"],
        priced["price_origin"],
        priced["unpriced_reason"].alias("_price_reason"),
    ).with_columns(
        (known & pl.col("_price_reason").is_null()).alias("priced"),
        pl.coalesce("_reason", "_price_reason").alias("unpriced_reason"),
    )
    unpriced = ~pl.col("priced")
    return out.with_columns(
        *[
            pl.when(unpriced).then(None).otherwise(pl.col(c)).alias(c)
            for c in ("input_cost_usd", "output_cost_usd", "total_cost_usd", "price_source", "price_origin")
        ]
    )


def bill_days_needed(read: BatchRead, day: dt.date, until: dt.date) -> list[dt.date]:
    """The bill days a day's jobs are reconciled over: every day of the windows of the jobs that ran on `day`, and
    of the jobs they share bill days with (`sharing_groups`)."""
    windows = {j.job_arn: window_days(j, until) for j in read.jobs}
    keys = {j.job_arn: (j.account_id, j.region, resolve_model_id(j.model_id).base_model_id) for j in read.jobs}
    groups = sharing_groups({arn: (keys[arn], windows[arn]) for arn in windows})
    days: set[dt.date] = set()
    for arn, window in windows.items():
        if day in window:
            for member in groups[arn]:
                days.update(windows[member])
    return sorted(days)


def batch_jobs_table(
    read: BatchRead,
    day: dt.date,
    billing: pl.DataFrame,
    billed_days: set[dt.date],
    catalog: PriceCatalog,
    cfg: LedgerConfig,
    as_of: dt.date,
    *,
    bill_configured: bool = True,
) -> pl.DataFrame:
    """`batch_jobs` for `day` (see the module docstring), conformed to the contract.

    `billing` holds `billing_line_items` rows of the days `bill_days_needed` names; `billed_days` the days
    whose bill partitions were there to read (a window day missing from it leaves the job `pending`).
    """
    if not read.jobs:
        return schemas.empty(schemas.BATCH_JOBS)
    until = max(day, read.observed_at.date() if read.observed_at else as_of)
    days = _job_days(read, until)
    if not any(d == day for d in days["date"].to_list()):
        return schemas.empty(schemas.BATCH_JOBS)
    bill = batch_bill_rows(billing)
    priced = allocate(_priced(days, catalog, cfg), bill)
    by_job = {
        r["job_arn"]: r
        for r in priced.group_by("job_arn")
        .agg(
            pl.col("total_cost_usd").sum().alias("_est"),
            pl.col("priced").all().alias("_all_priced"),
            (pl.col("input_tokens").fill_null(0) + pl.col("output_tokens").fill_null(0)).sum().alias("_tokens"),
            pl.col("billed_cost_usd").fill_null(0.0).sum().alias("_billed"),
            pl.col("date").alias("_days"),
            pl.col("unpriced_reason").drop_nulls().first().alias("_why"),
        )
        .iter_rows(named=True)
    }
    jobs = {j.job_arn: j for j in read.jobs}
    keys = {
        arn: (jobs[arn].account_id, jobs[arn].region, resolve_model_id(jobs[arn].model_id).base_model_id)
        for arn in by_job
    }
    group_of = sharing_groups({arn: (keys[arn], r["_days"]) for arn, r in by_job.items()})
    extra: dict[str, list[Any]] = {
        c: []
        for c in (
            "job_arn",
            *DIMENSIONS,
            "attribution_reason",
            "iam_principal",
            "tags",
            "job_estimated_cost_usd",
            "job_billed_cost_usd",
            "reconciliation_status",
            "reconciliation_note",
        )
    }
    for arn, r in by_job.items():
        job = jobs[arn]
        if day not in r["_days"]:
            continue
        principal, bill_tags = principal_of(bill, keys[arn], r["_days"])
        owner, reason = job_owner(job, principal, bill_tags, cfg)
        members = [by_job[m] for m in group_of[arn]]
        status, note, billed = _judge_group(job, r, members, [jobs[m] for m in group_of[arn]], billed_days, cfg, as_of)
        if not bill_configured:
            status, note = "pending", "no bill is configured (sources.billing): the job is not reconciled"
        extra["job_arn"].append(job.job_arn)
        for d in DIMENSIONS:
            extra[d].append(owner[d])
        extra["attribution_reason"].append(reason)
        extra["iam_principal"].append(principal)
        extra["tags"].append(schemas.dict_to_map(job.tags))
        extra["job_estimated_cost_usd"].append(r["_est"] if r["_all_priced"] else None)
        extra["job_billed_cost_usd"].append(billed)
        extra["reconciliation_status"].append(status)
        extra["reconciliation_note"].append(note)
    owners = pl.DataFrame(
        extra,
        schema={c: schemas.BATCH_JOBS.get(c, pl.String) for c in extra},
    )
    table = priced.filter(pl.col("date") == day).join(owners, on="job_arn", how="left")
    return schemas.conform(table.sort("submit_time", "job_arn"), schemas.BATCH_JOBS)


def _judge_group(
    job: BatchJob,
    row: dict[str, Any],
    members: list[dict[str, Any]],
    member_jobs: list[BatchJob],
    billed_days: set[dt.date],
    cfg: LedgerConfig,
    as_of: dt.date,
) -> tuple[str, str, float]:
    """Status, note and the job's billed cost, judged over the windows of the jobs it shares bill days with.

    The bill cannot tell jobs of one model apart on a shared day, so such jobs are judged together: their summed
    estimate against their summed share of the bill; each job's billed cost is the group's, by estimated cost
    (else tokens, else evenly)."""
    priced = all(m["_all_priced"] for m in members)
    est = sum(m["_est"] or 0.0 for m in members) if priced else None
    billed = sum(m["_billed"] for m in members)
    days = sorted({d for m in members for d in m["_days"]})
    tokens = sum(m["_tokens"] for m in members)
    if est:
        share = (row["_est"] or 0.0) / est
    elif tokens:
        share = row["_tokens"] / tokens
    else:
        share = 1.0 / len(members)
    ended = all(j.ended for j in member_jobs)
    others = len(members) - 1
    name = job.job_name + (f" (with {others} other job(s) of its model sharing bill days)" if others else "")
    facts = {
        "job_name": name,
        "status": next((j.status for j in member_jobs if not j.ended), job.status),
        "ended": ended,
        "end_time": max(j.end_time for j in member_jobs if j.end_time) if ended else None,
        "unpriced_reason": row["_why"] or next((m["_why"] for m in members if m["_why"]), None),
    }
    unbilled = [d for d in days if d not in billed_days]
    status, note = judge(facts, est, billed, unbilled, cfg.reconciliation, as_of)
    return status, note, billed * share


def rejects_frame(read: BatchRead) -> pl.DataFrame:
    """The read's rejects as `batch_job_rejects` rows."""
    if not read.rejects:
        return schemas.empty(schemas.BATCH_JOB_REJECTS)
    return schemas.conform(pl.DataFrame(read.rejects, infer_schema_length=None), schemas.BATCH_JOB_REJECTS)


__all__ = ["KEY", "batch_jobs_table", "bill_days_needed", "rejects_frame"]
