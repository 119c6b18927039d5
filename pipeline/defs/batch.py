"""Dagster wiring for Bedrock batch inference jobs: `batch_jobs` (and its quarantine, `batch_job_rejects`).

The logic is in `pipeline.sources.batch_jobs` (read the Bedrock API and the output folders) and `pipeline.batch`
(days, batch prices, owners, the bill's `-batch` rows). The asset reads, builds, writes both tables and states
three checks: rejects, unpriced jobs, and jobs whose cost does not reconcile with the bill over their window.
"""

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSpec,
    MetadataValue,
    PartitionsDefinition,
    multi_asset,
)

from pipeline import schemas, warehouse
from pipeline.config import BatchJobSource, LedgerConfig
from pipeline.defs.figures import for_people, markdown_table
from pipeline.defs.partitions import partition_day
from pipeline.defs.publish import publish
from pipeline.defs.resources import LedgerResource
from pipeline.pricing.layers import catalog_for
from pipeline.text import usd

if TYPE_CHECKING:
    from pipeline.sources.aws_accounts import AwsAccess

GROUP = "batch"
REJECTS_TABLE = "batch_job_rejects"
MISMATCHED = ("under_logged", "over_logged", "missing_in_bill")
DESCRIPTION = (
    "Per batch inference job × UTC day it ran (grain; key date, job_arn): records and tokens from the job's "
    "manifest.json.out (else its records) spread over its [submit, end] window, priced at batch rates, owned by "
    "job tags > attribution.batch_job_rules > the bill's principal, and reconciled over the window against the "
    "bill's -batch rows. Upstream: the Bedrock API (ListModelInvocationJobs, GetModelInvocationJob, "
    "ListTagsForResource), the output folders under sources.batch_jobs, billing_line_items. Rejects: "
    "batch_job_rejects."
)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _access(source: BatchJobSource, day: dt.date) -> "AwsAccess":
    from pipeline.sources.aws_accounts import access_for  # step-only: loading the definitions stays off boto3

    return access_for(source.snapshot, day)


def batch_checks(table: pl.DataFrame, rejects: pl.DataFrame, note: str | None) -> list[AssetCheckResult]:
    """The three checks of a day's `batch_jobs` (all pass with the note when no source is configured)."""
    if note:
        return [
            AssetCheckResult(asset_key="batch_jobs", check_name=c, passed=True, metadata={"note": note})
            for c in (spec.name for spec in BATCH_CHECKS)
        ]
    reasons = rejects.group_by("reason").len().sort("len", descending=True) if rejects.height else rejects
    unpriced = table.filter(~pl.col("priced") & (pl.col("unpriced_reason") != "job_running"))
    bad = table.filter(pl.col("reconciliation_status").is_in(MISMATCHED)).unique("job_arn")
    return [
        AssetCheckResult(
            asset_key="batch_jobs",
            check_name="rejects_none",
            passed=rejects.is_empty(),
            severity=AssetCheckSeverity.WARN,
            metadata={"rejects": rejects.height, "reasons": MetadataValue.md(markdown_table(reasons))},
        ),
        AssetCheckResult(
            asset_key="batch_jobs",
            check_name="jobs_priced",
            passed=unpriced.is_empty(),
            metadata={
                "unpriced_jobs": unpriced.height,
                "jobs": MetadataValue.md(markdown_table(unpriced.select("job_name", "model_id", "unpriced_reason"))),
            },
        ),
        AssetCheckResult(
            asset_key="batch_jobs",
            check_name="reconciles_within_tolerance",
            passed=bad.is_empty(),
            severity=AssetCheckSeverity.WARN,
            metadata={
                "mismatched_jobs": bad.height,
                "jobs": MetadataValue.md(
                    markdown_table(bad.select("job_name", "reconciliation_status", "reconciliation_note"))
                ),
            },
        ),
    ]


def batch_figures(table: pl.DataFrame, rejects: pl.DataFrame, note: str | None) -> dict[str, Any]:
    """What a day's `batch_jobs` shows at a glance: jobs, estimated and billed cost, unpriced jobs, the jobs."""
    priced = table.filter(pl.col("priced"))
    top = (
        table.group_by("job_name", "cost_center", "attribution_reason", "reconciliation_status")
        .agg(pl.col("total_cost_usd").sum(), pl.col("billed_cost_usd").sum())
        .sort("total_cost_usd", descending=True, nulls_last=True)
        .with_columns(
            pl.col("total_cost_usd").map_elements(usd, return_dtype=pl.String),
            pl.col("billed_cost_usd").map_elements(usd, return_dtype=pl.String),
        )
    )
    figures: dict[str, Any] = {
        "jobs": table["job_arn"].n_unique(),
        "total_cost_usd": float(priced["total_cost_usd"].sum() or 0.0),
        "billed_cost_usd": float(table["billed_cost_usd"].fill_null(0.0).sum() or 0.0),
        "unpriced_jobs": table.filter(~pl.col("priced"))["job_arn"].n_unique(),
        "rejects": rejects.height,
        "jobs_by_cost": MetadataValue.md(markdown_table(top)),
    }
    if note:
        figures["note"] = note
    return figures


def _read_and_build(cfg: LedgerConfig, day: dt.date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The day's `batch_jobs` and `batch_job_rejects` frames from the sources and the warehouse's bill."""
    # Step-only imports: loading the definitions must not pay for boto3 and fsspec.
    from pipeline.batch.jobs_table import batch_jobs_table, bill_days_needed, rejects_frame
    from pipeline.sources.batch_jobs import read_batch_jobs

    catalog = catalog_for(cfg)  # bundled < synced < overrides; fails before any write on a bad file
    read = read_batch_jobs(
        cfg.sources.batch_jobs,
        day,
        _access,
        max_line_bytes=cfg.quality.max_line_bytes,
        max_rejects=cfg.quality.max_rejects_per_object,
    )
    as_of = _today()
    needed = bill_days_needed(read, day, max(day, read.observed_at.date() if read.observed_at else as_of))
    billed_days = {d for d in needed if warehouse.partition_exists(cfg.warehouse, "billing_line_items", d)}
    frames = [warehouse.read_partition(cfg.warehouse, "billing_line_items", d) for d in sorted(billed_days)]
    billing = pl.concat(frames, how="vertical_relaxed") if frames else schemas.empty(schemas.BILLING_LINE_ITEMS)
    table = batch_jobs_table(
        read, day, billing, billed_days, catalog, cfg, as_of, bill_configured=bool(cfg.sources.billing)
    )
    return table, rejects_frame(read)


@for_people
def batch_jobs(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
    """Per batch inference job × UTC day it ran (grain; key `date, job_arn`), and the day's rejects. Upstream: the
    Bedrock API, the jobs' output folders (`sources.batch_jobs`) and `billing_line_items` of the jobs' windows."""
    cfg = ledger.config
    day = partition_day(context.partition_key)
    note = None if cfg.sources.batch_jobs else "no batch job sources configured (sources.batch_jobs)"
    if note:
        table, rejects = schemas.empty(schemas.BATCH_JOBS), schemas.empty(schemas.BATCH_JOB_REJECTS)
    else:
        table, rejects = _read_and_build(cfg, day)
    yield publish(table, cfg.warehouse, "batch_jobs", day, batch_figures(table, rejects, note))
    reasons = rejects.group_by("reason").len().sort("len", descending=True)
    yield publish(rejects, cfg.warehouse, REJECTS_TABLE, day, {"reasons": MetadataValue.md(markdown_table(reasons))})
    yield from batch_checks(table, rejects, note)


def batch_specs(partitions_def: PartitionsDefinition) -> list[AssetSpec]:
    """`batch_jobs` and `batch_job_rejects`, partitioned by `partitions_def` (one step writes both)."""
    return [
        AssetSpec(
            "batch_jobs",
            group_name=GROUP,
            partitions_def=partitions_def,
            deps=["billing_line_items"],
            kinds={"parquet", "s3"},
            description=DESCRIPTION,
        ),
        AssetSpec(
            REJECTS_TABLE,
            group_name=GROUP,
            partitions_def=partitions_def,
            kinds={"parquet"},
            description="Per day: batch job objects that could not be read (manifests, record lines, folders no "
            "job claims, jobs whose details or tags could not be read), each with its reason; the jobs keep "
            "their rows in batch_jobs.",
        ),
    ]


BATCH_CHECKS = [
    AssetCheckSpec(
        "rejects_none",
        asset="batch_jobs",
        description="Batch job objects that could not be read are quarantined in batch_job_rejects (WARN).",
    ),
    AssetCheckSpec(
        "jobs_priced",
        asset="batch_jobs",
        description="Every ended job has tokens and a batch price (an unpriced job is never $0).",
    ),
    AssetCheckSpec(
        "reconciles_within_tolerance",
        asset="batch_jobs",
        description="Each ended job's estimate matches the bill's -batch rows over its [submit, end] window "
        "(tolerances under reconciliation:; WARN).",
    ),
]


def build_batch_assets(partitions_def: PartitionsDefinition) -> list[Any]:
    """The batch multi-asset for the given partitioning."""
    step = multi_asset(
        specs=batch_specs(partitions_def), check_specs=BATCH_CHECKS, can_subset=False, pool="aws_billing"
    )
    return [step(batch_jobs)]
