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
    MetadataValue,
    PartitionsDefinition,
    asset,
    multi_asset,
)

from pipeline import aggregates, warehouse
from pipeline.aggregates import totals_agree, usage_by_cost_center, usage_by_model, usage_by_user
from pipeline.aggregates.daily import add_totals, table_totals
from pipeline.aggregates.parts import by_parts
from pipeline.defs.completeness import metric_throttles
from pipeline.defs.figures import TopTally, for_people, markdown_table
from pipeline.defs.partitions import partition_day
from pipeline.defs.publish import described, publish
from pipeline.defs.resources import LedgerResource
from pipeline.text import usd

GROUP = "usage"


def _usage_figures(df: pl.DataFrame, top_key: str) -> dict[str, Any]:
    """A whole daily usage table's figures: the same tally as a table written in parts (`UsageTally`), in one."""
    tally = UsageTally(top_key)
    tally.add(df)
    return tally.figures()


def daily_usage_specs(partitions_def: PartitionsDefinition) -> list[AssetSpec]:
    """The three daily usage tables, partitioned by `partitions_def`."""
    return [
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
    ]


DAILY_USAGE_CHECKS = [
    AssetCheckSpec(
        "totals_match_priced_invocations",
        asset="daily_usage_by_cost_center",
        description="Invocations, tokens and cost agree across the three tables and priced_invocations.",
    )
]
BUDGET_CHECKS = [
    AssetCheckSpec(
        "within_budget",
        asset="budget_status",
        description="Warns when a cost center has used 80% of its monthly budget, fails at 100%.",
    )
]


@for_people
def daily_usage(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
    """The day's usage by model, by user and by cost center, and the check that their totals agree. The per-user
    table is computed and written a share of the users at a time (`aggregates.parts`): users are caller-set,
    and a day can have millions."""
    cfg = ledger.config
    day = partition_day(context.partition_key)
    priced = warehouse.scan_partitions(cfg.warehouse, "priced_invocations", [day])
    by_model = metric_throttles(cfg, day, usage_by_model(priced))
    yield publish(by_model, cfg.warehouse, "daily_usage_by_model", day, _usage_figures(by_model, "base_model_id"))
    users = UsageTally("user")
    parts = by_parts(priced, ["user"], lambda part: users.add(usage_by_user(part)))
    path = warehouse.write_partition(parts, cfg.warehouse, "daily_usage_by_user", day)
    yield described("daily_usage_by_user", users.rows, path, users.figures())
    by_cc = usage_by_cost_center(priced)
    yield publish(by_cc, cfg.warehouse, "daily_usage_by_cost_center", day, _usage_figures(by_cc, "cost_center"))
    ok, details = totals_agree(priced, by_model, users.totals, by_cc)
    mismatches = details.get("mismatches", [])
    yield AssetCheckResult(
        asset_key="daily_usage_by_cost_center",
        check_name="totals_match_priced_invocations",
        passed=ok,
        metadata={"mismatches": MetadataValue.md("\n".join(f"- {m}" for m in mismatches) or "_none_")},
    )


class UsageTally:
    """A daily usage table written in parts, tallied as the parts go by: its row count, the totals the agreement
    check compares, and the figures `_usage_figures` gives a whole table (the top keys with one "others" row)."""

    def __init__(self, top_key: str) -> None:
        self.top_key = top_key
        self.rows = 0
        self.totals: dict[str, Any] = {}
        self._errors = 0
        self._top = TopTally(top_key, ("invocations", "total_cost_usd"), by="total_cost_usd")

    def add(self, part: pl.DataFrame) -> pl.DataFrame:
        """Count one part and hand it on unchanged."""
        self.rows += part.height
        self.totals = add_totals(self.totals, table_totals(part))
        self._errors += int((part["client_errors"] + part["server_errors"] + part["throttles"]).sum() or 0)
        self._top.add(part)
        return part

    def figures(self) -> dict[str, Any]:
        """Calls, cost, error rate, unpriced calls, and the top keys with one "others" row."""
        invocations = int(self.totals.get("invocations") or 0)
        return {
            "invocations": invocations,
            "total_cost_usd": float(self.totals.get("total_cost_usd") or 0.0),
            "error_rate": self._errors / invocations if invocations else 0.0,
            "unpriced_invocations": int(self.totals.get("unpriced_invocations") or 0),
            f"top_{self.top_key}": MetadataValue.md(self._top.markdown()),
        }


@for_people
def budget_status(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
    """Per month × cost center (grain and key), as of this day: budget, spend to date, the month-end forecast
    with its interval and probability of going over (from spend_forecast; a run rate where it has no row), the
    share used and the unpriced share of calls. Upstream: daily_usage_by_cost_center for the month to date,
    spend_forecast."""
    cfg = ledger.config
    day = partition_day(context.partition_key)
    month_days = [day.replace(day=d) for d in range(1, day.day + 1)]
    daily = warehouse.scan_partitions(cfg.warehouse, "daily_usage_by_cost_center", month_days)
    forecast = warehouse.read_partition(cfg.warehouse, "spend_forecast", day)
    status = aggregates.budget_status(daily, cfg.budgets, day, forecast=forecast)
    yield publish(status, cfg.warehouse, "budget_status", day, budget_figures(status))
    yield budget_check(status, day)


def build_usage_assets(partitions_def: PartitionsDefinition) -> list[Any]:
    """The daily usage multi-asset and `budget_status` for the given partitioning."""
    usage = multi_asset(specs=daily_usage_specs(partitions_def), check_specs=DAILY_USAGE_CHECKS, can_subset=False)
    budgets = asset(
        name="budget_status",
        group_name=GROUP,
        partitions_def=partitions_def,
        deps=["daily_usage_by_cost_center", "spend_forecast"],
        kinds={"parquet"},
        check_specs=BUDGET_CHECKS,
    )
    return [usage(daily_usage), budgets(budget_status)]


def budget_figures(status: pl.DataFrame) -> dict[str, Any]:
    """What one day's `budget_status` shows at a glance: how many are over or near, spend, the table."""
    table = status.select(
        "cost_center",
        "budget_usd",
        "spend_to_date_usd",
        "forecast_month_end_usd",
        "p_over_budget",
        "pct_used",
        "status",
    )
    return {
        "over_budget": status.filter(pl.col("status") == "over_budget").height,
        "warning": status.filter(pl.col("status") == "warning").height,
        "spend_to_date_usd": float(status["spend_to_date_usd"].sum() or 0.0),
        "budgets": MetadataValue.md(markdown_table(table.sort("pct_used", descending=True, nulls_last=True), 20)),
    }


def budget_words(rows: pl.DataFrame) -> str:
    """`support is at 120% of its $0.42 monthly budget (over budget); …`, the fullest first, money as `usd()`."""
    ordered = rows.sort("pct_used", descending=True, nulls_last=True)
    return "; ".join(
        f"{r['cost_center']} is at {r['pct_used']:.0f}% of its {usd(r['budget_usd'])} monthly budget "
        f"({str(r['status']).replace('_', ' ')})"
        for r in ordered.iter_rows(named=True)
    )


def budget_check(status: pl.DataFrame, day: dt.date) -> AssetCheckResult:
    """The `within_budget` check for one day's `budget_status`."""
    over = status.filter(pl.col("status") == "over_budget")
    warning = status.filter(pl.col("status") == "warning")
    passed = over.is_empty() and warning.is_empty()
    severity = AssetCheckSeverity.ERROR if not over.is_empty() else AssetCheckSeverity.WARN
    return AssetCheckResult(
        asset_key="budget_status",
        check_name="within_budget",
        passed=passed,
        severity=severity,
        description=None if passed else budget_words(pl.concat([over, warning])),
        metadata={
            "as_of": day.isoformat(),
            "over_budget": MetadataValue.md(markdown_table(over.select("cost_center", "pct_used"))),
            "warning": MetadataValue.md(markdown_table(warning.select("cost_center", "pct_used"))),
        },
    )
