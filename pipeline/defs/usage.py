"""Dagster wiring for the numbers people look at: the three daily usage tables and `budget_status`.

The logic lives in `pipeline.aggregates`; these assets read `priced_invocations` for the day from the warehouse,
write their tables, and carry metadata (cost, error rate, top models and cost centers) worth a glance in the UI.
"""

import datetime as dt
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
    asset,
    multi_asset,
)

from pipeline import warehouse
from pipeline.aggregates import budget_status, totals_agree, usage_by_cost_center, usage_by_model, usage_by_user
from pipeline.defs.completeness import metric_throttles
from pipeline.defs.figures import for_people
from pipeline.defs.ingest import markdown_table
from pipeline.defs.partitions import partition_day
from pipeline.defs.resources import LedgerResource

GROUP = "usage"


def _usage_metadata(df: pl.DataFrame, path: str, top_key: str) -> dict[str, Any]:
    invocations = int(df["invocations"].sum() or 0)
    errors = int((df["client_errors"] + df["server_errors"] + df["throttles"]).sum() or 0)
    top = (
        df.group_by(top_key)
        .agg(pl.col("invocations").sum(), pl.col("total_cost_usd").sum().round(4))
        .sort("total_cost_usd", descending=True)
    )
    return {
        "dagster/row_count": df.height,
        "path": MetadataValue.path(path),
        "invocations": invocations,
        "total_cost_usd": float(df["total_cost_usd"].sum() or 0.0),
        "error_rate": errors / invocations if invocations else 0.0,
        "unpriced_invocations": int(df["unpriced_invocations"].sum() or 0),
        f"top_{top_key}": MetadataValue.md(markdown_table(top)),
    }


def build_usage_assets(partitions_def: PartitionsDefinition) -> list[Any]:
    """The daily usage multi-asset and `budget_status` for the given partitioning."""

    @multi_asset(
        specs=[
            AssetSpec(
                "daily_usage_by_model",
                group_name=GROUP,
                partitions_def=partitions_def,
                deps=["priced_invocations", "bedrock_metrics"],
                kinds={"parquet"},
                description="Per day × account × region × base model (grain and key): calls, status counts, "
                "error rate, tokens and cost per kind, latency p50/p95/p99. Upstream: priced_invocations; `throttles` "
                "from the AWS/Bedrock InvocationThrottles metric where metrics are read (bedrock_metrics).",
            ),
            AssetSpec(
                "daily_usage_by_user",
                group_name=GROUP,
                partitions_def=partitions_def,
                deps=["priced_invocations"],
                kinds={"parquet"},
                description="Per day × user × cost center × application (grain and key), same metrics. "
                "Missing attribution is `unattributed`. Upstream: priced_invocations.",
            ),
            AssetSpec(
                "daily_usage_by_cost_center",
                group_name=GROUP,
                partitions_def=partitions_def,
                deps=["priced_invocations"],
                kinds={"parquet"},
                description="Per day × cost center (grain and key), same metrics plus average cost per user. "
                "Upstream: priced_invocations.",
            ),
        ],
        check_specs=[
            AssetCheckSpec(
                "totals_match_priced_invocations",
                asset="daily_usage_by_cost_center",
                description="Invocations, tokens and cost agree across the three tables and priced_invocations.",
            )
        ],
        can_subset=False,
    )
    @for_people
    def daily_usage(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
        cfg = ledger.config
        day = partition_day(context.partition_key)
        priced = warehouse.scan_partitions(cfg.warehouse, "priced_invocations", [day])
        tables = {
            "daily_usage_by_model": (metric_throttles(cfg, day, usage_by_model(priced)), "base_model_id"),
            "daily_usage_by_user": (usage_by_user(priced), "user"),
            "daily_usage_by_cost_center": (usage_by_cost_center(priced), "cost_center"),
        }
        for name, (df, top_key) in tables.items():
            path = warehouse.write_partition(df, cfg.warehouse, name, day)
            yield MaterializeResult(asset_key=name, metadata=_usage_metadata(df, path, top_key))
        ok, details = totals_agree(
            priced,
            tables["daily_usage_by_model"][0],
            tables["daily_usage_by_user"][0],
            tables["daily_usage_by_cost_center"][0],
        )
        mismatches = details.get("mismatches", [])
        yield AssetCheckResult(
            asset_key="daily_usage_by_cost_center",
            check_name="totals_match_priced_invocations",
            passed=ok,
            metadata={"mismatches": MetadataValue.md("\n".join(f"- {m}" for m in mismatches) or "_none_")},
        )

    @asset(
        name="budget_status",
        group_name=GROUP,
        partitions_def=partitions_def,
        deps=["daily_usage_by_cost_center"],
        kinds={"parquet"},
        check_specs=[
            AssetCheckSpec(
                "within_budget",
                asset="budget_status",
                description="Warns when a cost center has used 80% of its monthly budget, fails at 100%.",
            )
        ],
    )
    @for_people
    def budget_status_asset(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
        """Per month × cost center (grain and key), as of this day: budget, spend to date, a run-rate month-end
        forecast (spend + spend ÷ days with data × days left), the share used and the unpriced share of calls.
        Upstream: daily_usage_by_cost_center for the month to date."""
        cfg = ledger.config
        day = partition_day(context.partition_key)
        month_days = [day.replace(day=d) for d in range(1, day.day + 1)]
        daily = warehouse.scan_partitions(cfg.warehouse, "daily_usage_by_cost_center", month_days)
        status = budget_status(daily, cfg.budgets, day)
        path = warehouse.write_partition(status, cfg.warehouse, "budget_status", day)
        yield from budget_results(status, path, day)

    return [daily_usage, budget_status_asset]


def budget_results(status: pl.DataFrame, path: str, day: dt.date) -> Iterator[Any]:
    """Metadata and the budget check for one day's `budget_status`."""
    over = status.filter(pl.col("status") == "over_budget")
    warning = status.filter(pl.col("status") == "warning")
    table = status.select(
        "cost_center", "budget_usd", "spend_to_date_usd", "forecast_month_end_usd", "pct_used", "status"
    )
    yield MaterializeResult(
        asset_key="budget_status",
        metadata={
            "dagster/row_count": status.height,
            "path": MetadataValue.path(path),
            "over_budget": over.height,
            "warning": warning.height,
            "spend_to_date_usd": float(status["spend_to_date_usd"].sum() or 0.0),
            "budgets": MetadataValue.md(markdown_table(table.sort("pct_used", descending=True, nulls_last=True), 20)),
        },
    )
    passed = over.is_empty() and warning.is_empty()
    severity = AssetCheckSeverity.ERROR if not over.is_empty() else AssetCheckSeverity.WARN
    yield AssetCheckResult(
        asset_key="budget_status",
        check_name="within_budget",
        passed=passed,
        severity=severity,
        metadata={
            "as_of": day.isoformat(),
            "over_budget": MetadataValue.md(markdown_table(over.select("cost_center", "pct_used"))),
            "warning": MetadataValue.md(markdown_table(warning.select("cost_center", "pct_used"))),
        },
    )
