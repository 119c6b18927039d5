"""Dagster wiring for ingestion: `invocations` and `rejected_records`, one UTC day per partition.

Thin on purpose: the work is `pipeline.normalize.day.normalize_day`; this module writes its output to the
warehouse, reports what a person wants to see, and states the checks (rejects under the threshold, unique
`request_id`, no negative tokens).
"""

from collections.abc import Iterator
from typing import Any

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    multi_asset,
)

from pipeline import warehouse
from pipeline.defs.partitions import partition_day
from pipeline.defs.resources import LedgerResource
from pipeline.normalize.day import normalize_day
from pipeline.privacy import redact_body

GROUP = "ingest"


def markdown_table(df: pl.DataFrame, max_rows: int = 10) -> str:
    """A small markdown table for asset metadata."""
    if df.is_empty():
        return "_none_"
    df = df.head(max_rows)
    header = "| " + " | ".join(df.columns) + " |"
    sep = "| " + " | ".join("---" for _ in df.columns) + " |"
    rows = []
    for row in df.iter_rows():
        cells = [f"{v:,.4f}" if isinstance(v, float) else str(v) for v in row]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join([header, sep, *rows])


def build_ingest_assets(partitions_def: PartitionsDefinition) -> list[Any]:
    """The ingestion multi-asset for the given partitioning."""

    @multi_asset(
        specs=[
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
        ],
        check_specs=[
            AssetCheckSpec(
                "rejects_within_threshold",
                asset="invocations",
                description="Share of rejected records stays under quality.max_reject_share.",
            ),
            AssetCheckSpec("request_id_unique", asset="invocations", description="No request_id appears twice."),
            AssetCheckSpec("no_negative_tokens", asset="invocations", description="No token count is negative."),
        ],
        can_subset=False,
        pool="aws_logs",
    )
    def ingest(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
        from pipeline.defs.completeness import with_discovered_sources  # late: completeness imports this module

        day = partition_day(context.partition_key)
        cfg = with_discovered_sources(ledger.config, day)  # + destinations Bedrock's logging configuration names
        batches, rejects, stats, cleanup = normalize_day(day, cfg, redact=redact_body)
        try:
            path = warehouse.write_partition(batches, cfg.warehouse, "invocations", day)
        finally:
            cleanup()
        reject_path = warehouse.write_partition(rejects, cfg.warehouse, "rejected_records", day)
        written = warehouse.scan_partitions(cfg.warehouse, "invocations", [day])
        yield from ingest_results(
            written, rejects, stats.as_metadata(), cfg.quality.max_reject_share, path, reject_path
        )

    return [ingest]


def ingest_results(
    inv: pl.LazyFrame,
    rejects: pl.DataFrame,
    counts: dict[str, int],
    max_reject_share: float,
    path: str,
    reject_path: str,
) -> Iterator[Any]:
    """Materialization metadata and check results for one ingested day."""
    token_cols = ["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens"]
    summary = (
        inv.select(
            pl.len().alias("n"),
            # 64-bit hashes: a third of the memory of the ids themselves at 4M rows (a collision is ~1e-6 likely)
            pl.col("request_id").hash().n_unique().alias("unique_ids"),
            pl.col("status").is_in(["client_error", "server_error", "throttled"]).sum().alias("errors"),
            pl.col("account_id").n_unique().alias("accounts"),
            pl.col("region").n_unique().alias("regions"),
            pl.col("input_tokens").sum().alias("input_tokens"),
            pl.col("output_tokens").sum().alias("output_tokens"),
            pl.any_horizontal([pl.col(c) < 0 for c in token_cols]).sum().alias("negative"),
        )
        .collect()
        .row(0, named=True)
    )
    n = summary["n"]
    by_status = inv.group_by("status").len().sort("len", descending=True).collect()
    top_models = (
        inv.group_by("base_model_id").agg(pl.len().alias("invocations")).sort("invocations", descending=True)
    ).collect()
    errors = summary["errors"]
    seen = n + rejects.height
    reject_share = rejects.height / seen if seen else 0.0
    reasons = (
        rejects.group_by(pl.col("reason").str.split(":").list.first().alias("reason"))
        .len()
        .sort("len", descending=True)
    )
    yield MaterializeResult(
        asset_key="invocations",
        metadata={
            "dagster/row_count": n,
            "path": MetadataValue.path(path),
            "invocations": n,
            "error_rate": errors / n if n else 0.0,
            "accounts": summary["accounts"],
            "regions": summary["regions"],
            "input_tokens": int(summary["input_tokens"] or 0),
            "output_tokens": int(summary["output_tokens"] or 0),
            "rejected": rejects.height,
            **{k: v for k, v in counts.items() if k not in ("invocations", "rejected")},
            "by_status": MetadataValue.md(markdown_table(by_status)),
            "top_models": MetadataValue.md(markdown_table(top_models)),
        },
    )
    yield MaterializeResult(
        asset_key="rejected_records",
        metadata={
            "dagster/row_count": rejects.height,
            "path": MetadataValue.path(reject_path),
            "reject_share": reject_share,
            "by_reason": MetadataValue.md(markdown_table(reasons)),
        },
    )
    yield AssetCheckResult(
        asset_key="invocations",
        check_name="rejects_within_threshold",
        passed=reject_share <= max_reject_share,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "rejected": rejects.height,
            "reject_share": reject_share,
            "threshold": max_reject_share,
            "by_reason": MetadataValue.md(markdown_table(reasons)),
        },
    )
    dupes = n - summary["unique_ids"]
    yield AssetCheckResult(
        asset_key="invocations", check_name="request_id_unique", passed=dupes == 0, metadata={"duplicates": dupes}
    )
    negative = summary["negative"]
    yield AssetCheckResult(
        asset_key="invocations",
        check_name="no_negative_tokens",
        passed=negative == 0,
        metadata={"rows_with_negative_tokens": negative},
    )
