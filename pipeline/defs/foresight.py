"""Dagster wiring for foresight: `cost_anomalies`, `spend_forecast` and `savings_opportunities`.

The logic is in `pipeline.foresight`; each asset below reads its window of the warehouse (up to 56 days before
its partition, declared with `TimeWindowPartitionMapping(start_offset=-56)` so the lineage shows it), calls one
function, writes the day, and reports numbers Dagster plots across partitions. The anomaly check fails on
anomalies at or above `foresight.alert_severity`, and the alert sensor sends it like any other check.
"""

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    MetadataValue,
    PartitionsDefinition,
    TimeWindowPartitionMapping,
    asset,
)

from pipeline import schemas, warehouse
from pipeline.defs.figures import flat_numbers, for_people, markdown_table
from pipeline.defs.partitions import partition_day
from pipeline.defs.publish import described, publish
from pipeline.defs.resources import LedgerResource
from pipeline.foresight import anomalies, forecast, savings
from pipeline.foresight.anomalies import HISTORY_WINDOW_DAYS
from pipeline.text import escape_for
from pipeline.vocabulary import ANOMALY_KINDS, ANOMALY_SEVERITIES

GROUP = "foresight"
ANOMALY_CHECK = "anomalies_below_severity"
TOP = 10
HISTORY_TABLES = ("daily_usage_by_cost_center", "daily_usage_by_user", "daily_usage_by_model")
ANOMALY_CHECKS = [
    AssetCheckSpec(
        ANOMALY_CHECK,
        asset="cost_anomalies",
        description="Fails on spend anomalies at or above foresight.alert_severity (spikes, drops, new spenders, "
        "stops); keys with too little history are never alerted.",
    )
]


def _day_readers(root: str) -> dict[str, anomalies.DayReader]:
    """Per dimension, one day of its daily table at a time (the anomaly detector folds the window day by day)."""

    def reader(table: str, key: str) -> anomalies.DayReader:
        return lambda d: anomalies.spend_rows(warehouse.scan_partitions(root, table, [d]), key).select(
            "key", "cost_usd", "tokens"
        )

    return {dimension: reader(table, key) for dimension, table, key in anomalies.SOURCES}


def _history(*upstreams: str) -> list[AssetDep]:
    """The upstream days a partition reads: itself and the 56 before (those before the start date do not exist,
    which is allowed: the first weeks simply have less history, and their keys are not judged)."""
    with warnings.catch_warnings():  # the parameter is beta in Dagster 1.13; its behaviour is what we rely on
        warnings.filterwarnings("ignore", message=r".*allow_nonexistent_upstream_partitions")
        mapping = TimeWindowPartitionMapping(
            start_offset=-HISTORY_WINDOW_DAYS, allow_nonexistent_upstream_partitions=True
        )
    return [AssetDep(name, partition_mapping=mapping) for name in upstreams]


def _md(df: pl.DataFrame, rows: int = TOP) -> str:
    """A markdown table with data strings escaped (a cost center named `[x](…)` stays text)."""
    strings = [c for c, t in df.schema.items() if t == pl.String]
    safe = df.with_columns(
        pl.col(c).map_elements(lambda v: escape_for(v, "dagster_markdown"), return_dtype=pl.String) for c in strings
    )
    return markdown_table(safe, rows)


@for_people
def cost_anomalies(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
    """Per day × dimension (cost center, application, user, model) × key: today's spend against a robust weekly
    baseline, for the anomalies and the keys not judged yet. Upstream: the three daily usage tables, 56 days."""
    cfg = ledger.config
    day = partition_day(context.partition_key)
    readers = _day_readers(cfg.warehouse)
    f = cfg.foresight
    settings = anomalies.AnomalySettings(
        min_history_days=f.min_history_days,
        min_user_cost_usd=f.min_user_cost_usd,
        top_users=f.top_users,
        band_sigmas=f.band_sigmas,
        min_change_usd=f.min_change_usd,
    )
    found = anomalies.cost_anomalies_by_day(readers, day, settings)
    judged = found.filter(pl.col("kind") != "insufficient_history")
    counts = {s: judged.filter(pl.col("severity") == s).height for s in ANOMALY_SEVERITIES}
    by_kind = {k: judged.filter(pl.col("kind") == k).height for k in ANOMALY_KINDS if k != "insufficient_history"}
    title = anomalies.headline(found)
    yield publish(
        found,
        cfg.warehouse,
        "cost_anomalies",
        day,
        {
            "finding": MetadataValue.text(title),
            "anomalies": judged.height,
            **flat_numbers("severity", counts),
            **flat_numbers("kind", by_kind),
            "not_judged_yet": found.height - judged.height,
            "history_days": len(anomalies.ledger_days(readers, day)),
            "anomaly_cost_usd": float(judged["cost_usd"].sum() or 0.0),
            "expected_cost_usd": float(judged["expected_usd"].sum() or 0.0),
            "anomalies_table": MetadataValue.md(
                _md(judged.select("dimension", "key", "kind", "severity", "cost_usd", "expected_usd", "score"))
            ),
        },
    )
    alerting = anomalies.alerting(found, f.alert_severity)
    ranked = alerting.sort(  # the organisation's view first: cost centers, then applications, models, users
        pl.col("dimension").replace_strict({"cost_center": 0, "application": 1, "model": 2}, default=3),
        maintain_order=True,
    )
    description = (
        f"{alerting.height} anomal{'y' if alerting.height == 1 else 'ies'} at {f.alert_severity} severity or "
        f"above: " + " ".join(ranked["sentence"].head(6).to_list())
        if not alerting.is_empty()
        else f"No anomalies at {f.alert_severity} severity or above. {title}."
    )
    yield AssetCheckResult(
        asset_key="cost_anomalies",
        check_name=ANOMALY_CHECK,
        passed=alerting.is_empty(),
        severity=AssetCheckSeverity.ERROR if "high" in alerting["severity"].to_list() else AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "anomalies": alerting.height,
            "alert_severity": f.alert_severity,
            "anomalies_table": MetadataValue.md(
                _md(alerting.select("dimension", "key", "kind", "severity", "sentence"))
            ),
        },
    )


@for_people
def spend_forecast(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
    """Per day × scope (cost center, total) × key: where the month ends, with an interval and the probability of
    going over budget. Upstream: daily_usage_by_cost_center, 56 days."""
    cfg = ledger.config
    day = partition_day(context.partition_key)
    daily = warehouse.scan_partitions(cfg.warehouse, "daily_usage_by_cost_center", anomalies.window(day))
    budgets = {b.cost_center: float(b.monthly_usd) for b in cfg.budgets}
    out = forecast.spend_forecast(daily, day, budgets, interval=cfg.foresight.interval)
    total = out.filter(pl.col("scope") == "total")
    t = total.row(0, named=True) if total.height else {}
    per_cc = out.filter(pl.col("scope") == "cost_center").sort("forecast_usd", descending=True)
    over = per_cc.filter(pl.col("p_over_budget") >= 0.5)
    yield publish(
        out,
        cfg.warehouse,
        "spend_forecast",
        day,
        {
            "finding": MetadataValue.text(forecast.headline(out)),
            "forecast_usd": float(t.get("forecast_usd") or 0.0),
            "low_usd": float(t.get("low_usd") or 0.0),
            "high_usd": float(t.get("high_usd") or 0.0),
            "spend_to_date_usd": float(t.get("spend_to_date_usd") or 0.0),
            "run_rate_usd": float(t.get("run_rate_usd") or 0.0),
            "likely_over_budget": over.height,
            **flat_numbers("forecast_usd", dict(per_cc.head(TOP).select("key", "forecast_usd").iter_rows())),
            "forecasts": MetadataValue.md(
                _md(
                    per_cc.select(
                        "key", "spend_to_date_usd", "forecast_usd", "low_usd", "high_usd", "budget_usd", "p_over_budget"
                    )
                )  # fmt: skip
            ),
        },
    )


@dataclass
class _SavingsTally:
    """What the metadata shows of savings rows written frame by frame: how many, the total and cost center rows,
    and the largest application row (rows come in the table's order, so it is the first one)."""

    rows: int = 0
    kept: list[pl.DataFrame] = field(default_factory=list)
    best_application: bool = False

    def passing(self, frames: Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        applications = pl.col("dimension") == "application"
        for frame in frames:
            self.rows += frame.height
            self.kept.append(frame.filter(~applications))
            if not self.best_application and not (best := frame.filter(applications).head(1)).is_empty():
                self.kept.append(best)
                self.best_application = True
            yield frame

    def shown(self) -> pl.DataFrame:
        return pl.concat(self.kept) if self.kept else schemas.empty(schemas.SAVINGS_OPPORTUNITIES)


@for_people
def savings_opportunities(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
    """Per day × scenario × dimension (total, cost center, application) × key: the day's calls repriced under
    another routing, tier, model or caching, with the savings and the assumptions. Upstream: priced_invocations
    and the price catalog."""
    from pipeline.pricing import load_catalog, profile_models_from_config

    cfg = ledger.config
    day = partition_day(context.partition_key)
    priced = warehouse.scan_partitions(cfg.warehouse, "priced_invocations", [day])
    settings = savings.SavingsSettings(
        long_output_tokens=cfg.foresight.long_output_tokens,
        batch_min_input_tokens=cfg.foresight.batch_min_input_tokens,
        default_tier=cfg.pricing.default_tier,
    )
    frames = savings.savings_in_order(
        priced,
        load_catalog(cfg.pricing.overrides),
        day,
        settings=settings,
        profile_models=profile_models_from_config(cfg.attribution),
    )
    tally = _SavingsTally()
    path = warehouse.write_partition(tally.passing(frames), cfg.warehouse, "savings_opportunities", day)
    out = tally.shown()
    totals = out.filter(pl.col("dimension") == "total").sort("savings_usd", descending=True)
    per_scenario = dict(totals.select("scenario", "savings_usd").iter_rows())
    yield described(
        "savings_opportunities",
        tally.rows,
        path,
        {
            "finding": MetadataValue.text(savings.headline(out)),
            "best_savings_usd": max(totals["savings_usd"].to_list(), default=0.0),
            **flat_numbers("savings_usd", per_scenario),
            "scenarios": MetadataValue.md(
                _md(
                    totals.select(
                        "scenario",
                        "share_of_traffic",
                        "current_cost_usd",
                        "savings_usd",
                        "monthly_savings_usd",
                        "assumed_share_async",
                    )
                )  # fmt: skip
            ),
        },
    )


def build_foresight_assets(partitions_def: PartitionsDefinition) -> list[Any]:
    """The three foresight assets (and the anomaly check) for the given partitioning."""

    def daily(name: str, deps: list[Any], checks: list[AssetCheckSpec] | None = None) -> Any:
        return asset(
            name=name,
            group_name=GROUP,
            partitions_def=partitions_def,
            deps=deps,
            kinds={"parquet"},
            check_specs=checks,
        )

    return [
        daily("cost_anomalies", _history(*HISTORY_TABLES), ANOMALY_CHECKS)(cost_anomalies),
        daily("spend_forecast", _history("daily_usage_by_cost_center"))(spend_forecast),
        daily("savings_opportunities", ["priced_invocations"])(savings_opportunities),
    ]
