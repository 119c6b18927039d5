"""Dagster wiring for the cost report: the daily `cost_report` asset and the budget forecast check.

The logic is in `pipeline.report` (imported when a run needs it: plotly is heavy and definitions must load fast);
the asset reads the day's small tables, writes `<warehouse>/reports/date=<day>/{daily,month_to_date}.html`
and links both from its materialization. `forecast_within_budget` states the early warning the report draws
(a cost center whose run rate ends the month over budget) as a check, so the alert sensor can send it.
"""

import warnings
from typing import Any

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    PreviewWarning,
    asset,
    asset_check,
)

from pipeline import schemas, warehouse
from pipeline.aggregates.budgets import forecasts_over_budget
from pipeline.defs.figures import judged, markdown_table
from pipeline.defs.partitions import partition_day
from pipeline.defs.resources import LedgerResource

GROUP = "report"
FORECAST_CHECK = "forecast_within_budget"
REPORT_UPSTREAMS = [
    "daily_usage_by_cost_center",
    "daily_usage_by_model",
    "budget_status",
    "cost_reconciliation",
    "billing_line_items",
    "rejected_records",
]
OPTIONAL_UPSTREAMS = [
    "log_completeness",
    "daily_cache_economics",
    "cost_anomalies",
    "spend_forecast",
    "savings_opportunities",
]
"""Read only where their partitions exist; a dependency once the data contract (`schemas.TABLES`) has them."""


def cost_report(context: AssetExecutionContext, ledger: LedgerResource) -> MaterializeResult:
    """Two self-contained HTML reports per day (grain): the day, and the month to date, under
    `<warehouse>/reports/date=YYYY-MM-DD/`. Cost by cost center and model, the bill bridge, budget burn-down,
    model latency and errors, log coverage and cache savings, each chart titled with its finding. Upstream: the
    daily usage tables, budget_status, cost_reconciliation, billing_line_items (and log_completeness,
    daily_cache_economics when present)."""
    from pipeline.report.build import build_reports
    from pipeline.report.store import report_link

    cfg = ledger.config
    day = partition_day(context.partition_key)
    files = build_reports(cfg.warehouse, day, cfg.start_date, bill_configured=bool(cfg.sources.billing))
    base = cfg.alerts.report_base_url
    findings = files.findings.get("daily", {})
    return MaterializeResult(
        metadata={
            "daily_report": MetadataValue.path(files.daily),
            "month_to_date_report": MetadataValue.path(files.month_to_date),
            "daily_report_url": MetadataValue.url(report_link(files.daily, base, cfg.warehouse)),
            "month_to_date_report_url": MetadataValue.url(report_link(files.month_to_date, base, cfg.warehouse)),
            "findings": MetadataValue.md("\n".join(f"- **{k}**: {v}" for k, v in findings.items())),
            "month_to_date_findings": MetadataValue.md(
                "\n".join(f"- **{k}**: {v}" for k, v in files.findings.get("month_to_date", {}).items())
            ),
        }
    )


def forecast_within_budget(context: AssetCheckExecutionContext, ledger: LedgerResource) -> AssetCheckResult:
    """The day's `budget_status` judged by its month-end forecasts (`forecast_result`)."""
    cfg = ledger.config
    day = partition_day(context.partition_key)
    status = warehouse.read_partition(cfg.warehouse, "budget_status", day)
    return forecast_result(status)


def build_report_assets(partitions_def: PartitionsDefinition) -> list[Any]:
    """The `cost_report` asset and the `forecast_within_budget` check on `budget_status`."""
    report = asset(
        name="cost_report",
        group_name=GROUP,
        partitions_def=partitions_def,
        deps=[*REPORT_UPSTREAMS, *(t for t in OPTIONAL_UPSTREAMS if t in schemas.TABLES)],
        kinds={"html"},
    )(cost_report)
    with warnings.catch_warnings():  # partitioned checks are a Dagster preview (accepted)
        warnings.simplefilter("ignore", PreviewWarning)
        forecast_check = asset_check(
            asset="budget_status",
            name=FORECAST_CHECK,
            partitions_def=partitions_def,
            description="No budgeted cost center's run-rate forecast ends the month over its budget (warns; "
            "within_budget fails once spend itself crosses the line).",
        )(judged(forecast_within_budget))
    return [report, forecast_check]


def forecast_result(status: pl.DataFrame) -> AssetCheckResult:
    """The forecast check for one day's budget status: fails (warn) when any forecast exceeds its budget."""
    over, words = forecasts_over_budget(status)
    return AssetCheckResult(
        passed=over.is_empty(),
        severity=AssetCheckSeverity.WARN,
        description=None if over.is_empty() else f"month-end forecast over budget: {words}",
        metadata={
            "forecast_over": over.height,
            "cost_centers": MetadataValue.md(
                markdown_table(over.select("cost_center", "budget_usd", "forecast_month_end_usd", "pct_used"))
            ),
        },
    )
