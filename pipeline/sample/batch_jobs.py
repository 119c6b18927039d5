"""The sample world's Bedrock batch inference jobs: output folders, recorded job metadata, and their bill rows.

Four jobs, one per way a batch job gets (or fails to get) an owner:

* `claims-summaries` carries tags (`ListTagsForResource`): Claude 3 Haiku, InvokeModel shape, Marketplace bill rows;
* `nightly-catalog-enrich` has no tags but matches the config rule `nightly-*`: Nova Lite, Converse shape, and it
  runs over midnight (so the first day's run still sees it `InProgress`);
* `adhoc-eval` has neither; the CUR 2.0 bill names its caller (a `research-*` role a principal rule owns): Llama 3.1
  8B, InvokeModel shape;
* `backfill-embeddings-v2` has no owner anywhere (no tags, no rule, no principal on its bill rows): Nova Pro.

Output folders sit at different depths under one prefix (`batch/<team>/…/<job id>/`), as people organise them;
the pipeline finds them by their `manifest.json.out`. Each holds the manifest and one `.jsonl.out` with a few
failed records. The bill books a job's tokens over the last 60 % of its window (a job queues first), so its
days differ from the pipeline's even spread while its window total matches.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.normalize.model_ids import resolve_model_id
from pipeline.pricing import load_catalog, price_invocations

BUCKET = "demo-batch-output"
PREFIX = "batch"
NAME_RULE = {"match": "nightly-*", "tags": {"costCenter": "catalog", "applicationId": "catalog-enrichment"}}
SERVICE_ROLE = "arn:aws:iam::{account}:role/service-role/BedrockBatchInferenceRole"
QUEUED_SHARE = 0.4
"""The first 40 % of a job's window is spent queued: the sample bill books no tokens then."""


@dataclass(frozen=True)
class SampleJob:
    """One batch job of the sample world and everything needed to render it."""

    job_id: str
    name: str
    account: str
    region: str
    model_id: str
    submit: dt.datetime
    end: dt.datetime
    records: int
    failed: int
    invocation_type: str  # InvokeModel | Converse
    shape: str  # anthropic | converse | llama
    folder: str  # under the prefix, the job id appended
    tags: dict[str, str] = field(default_factory=dict)
    principal: str | None = None
    seed: int = 7

    @property
    def arn(self) -> str:
        return f"arn:aws:bedrock:{self.region}:{self.account}:model-invocation-job/{self.job_id}"

    @property
    def output_uri(self) -> str:
        return f"s3://{BUCKET}/{PREFIX}/{self.folder}/"


def sample_jobs(start: dt.date, days: int, seed: int = 7, scale: float = 1.0) -> list[SampleJob]:
    """The four jobs of the world (see the module docstring), placed in the sample's days; `scale` multiplies
    their record counts (tests use small jobs)."""
    t0 = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
    last = t0 + dt.timedelta(days=days)
    overnight_end = min(t0 + dt.timedelta(days=1, hours=3), last - dt.timedelta(minutes=30))
    jobs = [
        SampleJob(
            "k3q9x2m4p7ab",
            "claims-summaries-20261101",
            "111122223333",
            "us-east-1",
            "anthropic.claude-3-haiku-20240307-v1:0",
            t0 + dt.timedelta(hours=2),
            t0 + dt.timedelta(hours=6, minutes=40),
            2400,
            12,
            "InvokeModel",
            "anthropic",
            "claims",
            tags={"costCenter": "claims", "applicationId": "claims-triage", "environment": "production"},
            seed=seed,
        ),
        SampleJob(
            "n7w2c5r8t1yz",
            "nightly-catalog-enrich",
            "444455556666",
            "us-west-2",
            "amazon.nova-lite-v1:0",
            t0 + dt.timedelta(hours=21),
            overnight_end,
            3200,
            9,
            "Converse",
            "converse",
            "catalog/nightly",
            seed=seed,
        ),
        SampleJob(
            "e5v1b8d3h6ga",
            "adhoc-eval",
            "111122223333",
            "us-east-1",
            "meta.llama3-1-8b-instruct-v1:0",
            t0 + dt.timedelta(hours=9),
            t0 + dt.timedelta(hours=13, minutes=15),
            1500,
            4,
            "InvokeModel",
            "llama",
            "research/evals/2026",
            principal="arn:aws:sts::111122223333:assumed-role/research-notebooks/maria",
            seed=seed,
        ),
        SampleJob(
            "b2f6j9l4q8sc",
            "backfill-embeddings-v2",
            "777788889999",
            "eu-central-1",
            "amazon.nova-pro-v1:0",
            t0 + dt.timedelta(hours=14),
            t0 + dt.timedelta(hours=17, minutes=30),
            900,
            0,
            "Converse",
            "converse",
            "misc",
            seed=seed,
        ),
    ]
    return [
        replace(j, records=max(int(j.records * scale), 10), failed=min(j.failed, int(j.records * scale) // 4))
        for j in jobs
    ]


def _model_output(shape: str, tokens_in: int, tokens_out: int) -> dict[str, Any]:
    text = "Summary: the record was processed."
    if shape == "anthropic":
        return {
            "id": "msg_bdrk_01",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
        }
    if shape == "llama":
        return {
            "generation": text,
            "prompt_token_count": tokens_in,
            "generation_token_count": tokens_out,
            "stop_reason": "stop",
        }
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": tokens_in, "outputTokens": tokens_out, "totalTokens": tokens_in + tokens_out},
        "metrics": {"latencyMs": 900},
    }


def _model_input(shape: str, i: int) -> dict[str, Any]:
    prompt = f"Summarise document {i}."
    if shape == "anthropic":
        return {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 512,
            "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
        }
    if shape == "llama":
        return {"prompt": prompt, "max_gen_len": 512}
    return {"messages": [{"role": "user", "content": [{"text": prompt}]}], "inferenceConfig": {"maxTokens": 512}}


def records(job: SampleJob) -> list[dict[str, Any]]:
    """The job's output records: successes with their usage, and `job.failed` errors (cached per job: callers
    must not modify them)."""
    return list(_records(job.job_id, job.seed, job.records, job.failed, job.shape))


@lru_cache(maxsize=32)
def _records(job_id: str, seed: int, n: int, failed: int, shape: str) -> tuple[dict[str, Any], ...]:
    rng = random.Random(f"{seed}:{job_id}")
    out: list[dict[str, Any]] = []
    every = max(n // max(failed, 1), 1)
    errors = 0
    for i in range(n):
        rid = f"{job_id[:4].upper()}{i:07d}"
        if failed and i % every == min(7, every - 1) and errors < failed:
            errors += 1
            error = {"errorCode": 400, "errorMessage": "Input is too long for requested model."}
            out.append({"recordId": rid, "modelInput": _model_input(shape, i), "error": error})
            continue
        t_in, t_out = rng.randint(600, 2400), rng.randint(80, 420)
        output = _model_output(shape, t_in, t_out)
        out.append({"recordId": rid, "modelInput": _model_input(shape, i), "modelOutput": output})
    return tuple(out)


def totals(recs: list[dict[str, Any]]) -> dict[str, int]:
    """The manifest's counts for these records."""
    from pipeline.sources.batch_jobs import usage_of

    ok = [r for r in recs if "modelOutput" in r]
    tin = tout = 0
    for r in ok:
        i, o = usage_of(r["modelOutput"])
        tin, tout = tin + (i or 0), tout + (o or 0)
    return {
        "totalRecordCount": len(recs),
        "processedRecordCount": len(recs),
        "successRecordCount": len(ok),
        "errorRecordCount": len(recs) - len(ok),
        "inputTokenCount": tin,
        "outputTokenCount": tout,
    }


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def job_answer(job: SampleJob, counts: dict[str, int]) -> dict[str, Any]:
    """The job's `GetModelInvocationJob` answer once it has completed (times as ISO 8601, as JSON has them)."""
    return {
        "jobArn": job.arn,
        "jobName": job.name,
        "modelId": job.model_id,
        "roleArn": SERVICE_ROLE.format(account=job.account),
        "status": "Completed",
        "submitTime": _iso(job.submit),
        "lastModifiedTime": _iso(job.end),
        "endTime": _iso(job.end),
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": f"s3://{BUCKET}/input/{job.folder}/records.jsonl"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": job.output_uri}},
        "timeoutDurationInHours": 24,
        "jobExpirationTime": _iso(job.submit + dt.timedelta(hours=24)),
        "modelInvocationType": job.invocation_type,
        **{k: v for k, v in counts.items() if k.endswith("RecordCount")},
    }


def write_job_output(root: Path, job: SampleJob, recs: list[dict[str, Any]]) -> dict[str, int]:
    """`<root>/<folder>/<job id>/manifest.json.out` and `records.jsonl.out`; returns the manifest's counts."""
    folder = root / job.folder / job.job_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "records.jsonl.out").write_text("".join(json.dumps(r) + "\n" for r in recs))
    counts = totals(recs)
    (folder / "manifest.json.out").write_text(json.dumps(counts) + "\n")
    return counts


def write_batch_jobs(aws_root: Path, output_root: Path, jobs: list[SampleJob]) -> None:
    """Write each job's output folder under `output_root` (the bucket's prefix folder) and its recorded metadata
    under the AWS recording `aws_root` (`bedrock/<account>/<region>/model-invocation-jobs/<id>.json`), and map the
    bucket to its folder in the recording's manifest."""
    for job in jobs:
        counts = write_job_output(output_root / PREFIX, job, records(job))
        folder = aws_root / "bedrock" / job.account / job.region / "model-invocation-jobs"
        folder.mkdir(parents=True, exist_ok=True)
        tags = [{"key": k, "value": v} for k, v in sorted(job.tags.items())]
        (folder / f"{job.job_id}.json").write_text(json.dumps({"job": job_answer(job, counts), "tags": tags}) + "\n")
    manifest_path = aws_root / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.setdefault("buckets", {})[BUCKET] = Path(
        os.path.relpath(output_root.resolve(), aws_root.resolve())
    ).as_posix()
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


def _billed_part(total: int, job: SampleJob, day: dt.date) -> int:
    """The day's part of a job total as the sample bill books it: evenly over the last 60 % of the window."""
    busy = job.submit + (job.end - job.submit) * QUEUED_SHARE
    span = (job.end - busy).total_seconds()

    def done(t: dt.datetime) -> float:
        return min(max((t - busy).total_seconds() / span, 0.0), 1.0) if span > 0 else float(t > busy)

    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return math.floor(total * done(start + dt.timedelta(days=1)) + 1e-9) - math.floor(total * done(start) + 1e-9)


def batch_usage(jobs: list[SampleJob], overrides_path: str | None = None) -> pl.DataFrame:
    """The jobs' billed usage in `pipeline.sample.bill.USAGE_SCHEMA` plus `iam_principal`: tier `batch`, priced
    at the catalog's batch rates (as the pipeline prices them), per day the bill books."""
    rows = []
    for job in jobs:
        counts = totals(records(job))
        base = resolve_model_id(job.model_id)
        days = [job.submit.date() + dt.timedelta(days=i) for i in range((job.end.date() - job.submit.date()).days + 1)]
        for day in days:
            for kind, total in (("input", counts["inputTokenCount"]), ("output", counts["outputTokenCount"])):
                n = _billed_part(total, job, day)
                if n > 0:
                    rows.append(
                        {
                            "date": day,
                            "account_id": job.account,
                            "region": job.region,
                            "base_model_id": base.base_model_id,
                            "model_id": job.model_id,
                            "usage_kind": kind,
                            "routing": "in_region",
                            "tier": "batch",
                            "tokens": n,
                            "profile_id": None,
                            "context_tier": "standard",
                            "iam_principal": job.principal,
                        }
                    )
    frame = pl.DataFrame(rows)
    priced = price_invocations(
        frame.select(
            "model_id",
            "base_model_id",
            pl.col("routing"),
            pl.lit(None, pl.String).alias("inference_profile"),
            "region",
            "date",
            pl.lit("batch").alias("service_tier"),
            pl.when(pl.col("usage_kind") == "input").then(pl.col("tokens")).otherwise(0).alias("input_tokens"),
            pl.when(pl.col("usage_kind") == "output").then(pl.col("tokens")).otherwise(0).alias("output_tokens"),
            pl.lit(0).alias("cache_read_input_tokens"),
            pl.lit(0).alias("cache_write_input_tokens"),
            pl.lit(0).alias("image_count"),
        ),
        load_catalog(overrides_path),
        "batch",
    )
    return frame.with_columns(priced["total_cost_usd"].alias("cost_usd")).drop("model_id")


def batch_sources(jobs: list[SampleJob], snapshot: str) -> list[dict[str, Any]]:
    """The `sources.batch_jobs` entries that read the recording: one per Region, every account of the world."""
    accounts = sorted({j.account for j in jobs})
    regions = sorted({j.region for j in jobs})
    return [
        {
            "output_s3": f"s3://{BUCKET}/{PREFIX}",
            "region": region,
            "accounts": [{"account_id": a} for a in accounts],
            "snapshot": snapshot,
        }
        for region in regions
    ]
