"""Dagster wiring for ingestion: `invocations` and `rejected_records`, one UTC day per partition.

Thin on purpose: the work is `pipeline.normalize.day.normalize_day`; this module writes its output to the
warehouse, reports what a person wants to see, and states the checks (rejects under the threshold, unique
`request_id`, no negative tokens).
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

from pipeline import warehouse
from pipeline.config import LedgerConfig
from pipeline.defs.figures import for_people, markdown_table
from pipeline.defs.partitions import partition_day
from pipeline.defs.publish import described
from pipeline.defs.resources import LedgerResource

if TYPE_CHECKING:
    from pipeline.normalize.summary import InvocationSummary

GROUP = "ingest"
SOURCES_CHECK = "log_objects_found"


def ingest_specs(partitions_def: PartitionsDefinition) -> list[AssetSpec]:
    """`invocations` and `rejected_records`, partitioned by `partitions_def`."""
    return [
        AssetSpec(
            "invocations",
            group_name=GROUP,
            partitions_def=partitions_def,
            kinds={"parquet", "s3"},
            deps=["logging_configuration"],
            description=(
                "One row per Bedrock invocation (grain), key `request_id`, deduplicated across S3 and "
                "CloudWatch Logs. Upstream: model invocation logs. Prompts and responses are not stored."
            ),
        ),
        AssetSpec(
            "rejected_records",
            group_name=GROUP,
            partitions_def=partitions_def,
            kinds={"parquet"},
            description=(
                "What could not be parsed, one row per bad line or object (grain): source, line, reason, "
                "a short excerpt. Upstream: the same log deliveries as `invocations`."
            ),
        ),
    ]


INGEST_CHECKS = [
    AssetCheckSpec(
        "rejects_within_threshold",
        asset="invocations",
        description="Share of rejected records stays under quality.max_reject_share.",
    ),
    AssetCheckSpec("request_id_unique", asset="invocations", description="No request_id appears twice."),
    AssetCheckSpec("no_negative_tokens", asset="invocations", description="No token count is negative."),
    AssetCheckSpec(
        SOURCES_CHECK,
        asset="invocations",
        description="The day's sources delivered something: at least one log object or CloudWatch event "
        "(a day with none usually means logging is off or a path is wrong, not a quiet day).",
    ),
    AssetCheckSpec(
        "records_all_placed",
        asset="invocations",
        description=(
            "Every record seen is a row or reject of this day, or owned by a day whose reading window "
            "holds it (sources.invocation_logs.late_hours/early_hours)."
        ),
    ),
    AssetCheckSpec(
        "request_id_consistent",
        asset="invocations",
        description="Deliveries of one request_id agree (model, time, status, tokens); the first is kept.",
    ),
]


@for_people
def invocations(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
    """Normalize one day of invocation logs into `invocations` and `rejected_records`, with their checks."""
    from pipeline.defs.completeness import with_discovered_sources  # step-only, like the imports below
    from pipeline.normalize.day import normalize_day  # step-only: keeps loading the definitions fast
    from pipeline.normalize.summary import SummaryAccumulator
    from pipeline.privacy import redact_body

    day = partition_day(context.partition_key)
    cfg = with_discovered_sources(ledger.config, day)  # + destinations Bedrock's logging configuration names
    batches, rejects, stats, cleanup = normalize_day(day, cfg, redact=redact_body)
    # The day is parsed while the writer takes its batches, and the metadata and checks come from the batches
    # on their way: no second pass over the day.
    summary = SummaryAccumulator()
    try:
        path = warehouse.write_partition(summary.tee(batches), cfg.warehouse, "invocations", day)
        reject_path = warehouse.write_partition(
            rejects().collect_batches(chunk_size=65_536), cfg.warehouse, "rejected_records", day
        )
    finally:
        cleanup()
    # The rejects are few (capped per object): read back from their partition, their spill is gone.
    written_rejects = warehouse.scan_partitions(cfg.warehouse, "rejected_records", [day])
    yield from ingest_results(
        summary.result(), written_rejects, stats.as_metadata(), cfg.quality.max_reject_share, path, reject_path
    )
    yield from placement_results(stats.as_metadata(), stats.unplaced(), stats.conflict_examples)
    yield sources_result(stats.as_metadata(), cfg, day)


def build_ingest_assets(partitions_def: PartitionsDefinition) -> list[Any]:
    """The ingestion multi-asset (step `ingest`) for the given partitioning."""
    ingest = multi_asset(
        name="ingest",
        specs=ingest_specs(partitions_def),
        check_specs=INGEST_CHECKS,
        can_subset=False,
        pool="aws_logs",
    )(invocations)
    return [ingest]


def placement_results(counts: dict[str, int], unplaced: int, conflict_examples: list[str]) -> Iterator[Any]:
    """The checks that every record found a place and that duplicate deliveries agree."""
    keys = (
        "records_seen",
        "rows_parsed",
        "records_rejected",
        "records_of_other_days",
        "records_rejected_elsewhere",
        "records_unplaced",
    )
    yield AssetCheckResult(
        asset_key="invocations",
        check_name="records_all_placed",
        passed=unplaced == 0,
        severity=AssetCheckSeverity.ERROR,
        description=None
        if unplaced == 0
        else f"{unplaced} record(s) seen in this day's deliveries belong to no partition (a day before start_date)",
        metadata={"unplaced": unplaced, **{k: counts.get(k, 0) for k in keys}},
    )
    conflicts = counts.get("conflicting_duplicates", 0)
    yield AssetCheckResult(
        asset_key="invocations",
        check_name="request_id_consistent",
        passed=conflicts == 0,
        severity=AssetCheckSeverity.WARN,
        description=None
        if conflicts == 0
        else f"{conflicts} later delivery(ies) of a request_id differ from the first (kept): see examples",
        metadata={
            "conflicting_duplicates": conflicts,
            "duplicates_removed": counts.get("duplicates_removed", 0),
            "examples": MetadataValue.md("\n".join(f"- `{r}`" for r in conflict_examples) or "_none_"),
        },
    )


def ingest_results(
    inv: "InvocationSummary | pl.LazyFrame",
    rejects: pl.LazyFrame | pl.DataFrame,
    counts: dict[str, int],
    max_reject_share: float,
    path: str,
    reject_path: str,
) -> Iterator[Any]:
    """Materialization metadata and check results for one ingested day (`inv`: its summary, or the written day)."""
    from pipeline.normalize.summary import day_checks, summarize

    summary = summarize(inv) if isinstance(inv, pl.LazyFrame) else inv
    checks = day_checks(summary, rejects, counts.get("rejects_not_kept", 0), max_reject_share)
    n = summary.rows
    errors = summary.errors
    rejected, reject_share, reasons = checks.rejected, checks.reject_share, checks.reasons
    yield described(
        "invocations",
        n,
        path,
        {
            "invocations": n,
            "error_rate": errors / n if n else 0.0,
            "accounts": summary.accounts,
            "regions": summary.regions,
            "input_tokens": summary.input_tokens,
            "output_tokens": summary.output_tokens,
            "rejected": rejected,
            **{k: v for k, v in counts.items() if k not in ("invocations", "rejected")},
            "by_status": MetadataValue.md(markdown_table(summary.by_status)),
            "top_models": MetadataValue.md(markdown_table(summary.top_models)),
        },
    )
    yield described(
        "rejected_records",
        checks.reject_rows,
        reject_path,
        {"reject_share": reject_share, "by_reason": MetadataValue.md(markdown_table(reasons))},
    )
    yield AssetCheckResult(
        asset_key="invocations",
        check_name="rejects_within_threshold",
        passed=checks.passed["rejects_within_threshold"],
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "rejected": rejected,
            "reject_share": reject_share,
            "threshold": max_reject_share,
            "by_reason": MetadataValue.md(markdown_table(reasons)),
        },
    )
    yield AssetCheckResult(
        asset_key="invocations",
        check_name="request_id_unique",
        passed=checks.passed["request_id_unique"],
        metadata={"duplicates": checks.duplicates},
    )
    yield AssetCheckResult(
        asset_key="invocations",
        check_name="no_negative_tokens",
        passed=checks.passed["no_negative_tokens"],
        metadata={"rows_with_negative_tokens": checks.negative},
    )


def sources_result(counts: dict[str, int], cfg: LedgerConfig, day: dt.date) -> AssetCheckResult:
    """Fails when the day's sources listed no log object and no CloudWatch event, naming every source."""
    inv = cfg.sources.invocation_logs
    named = [*inv.s3, *(f"CloudWatch log group {g.log_group} ({g.region or 'default region'})" for g in inv.cloudwatch)]
    objects = int(counts.get("objects_listed", 0))
    events = int(counts.get("cloudwatch_events", 0))
    found = objects + events > 0
    if found:
        description = None
    elif not named:
        description = "no invocation-log sources are configured (sources.invocation_logs in the config)"
    else:
        description = (
            f"no log objects or events for {day} in {', '.join(named)}: check that model invocation logging is on "
            "for these accounts and regions and that the paths are right"
        )
    return AssetCheckResult(
        asset_key="invocations",
        check_name=SOURCES_CHECK,
        passed=found,
        severity=AssetCheckSeverity.ERROR,
        description=description,
        metadata={"objects_listed": objects, "cloudwatch_events": events, "sources": len(named)},
    )
