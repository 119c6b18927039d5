"""Assemble the Dagster `Definitions` from a config: partitions, assets, checks, jobs, schedules, resources."""

from dagster import AssetSelection, Definitions, define_asset_job

from pipeline.config import LedgerConfig
from pipeline.defs.alerts import alert_sensor
from pipeline.defs.billing import billing_export_sensor, build_billing_assets
from pipeline.defs.completeness import build_completeness_assets
from pipeline.defs.ingest import build_ingest_assets
from pipeline.defs.operability import FRESHNESS_KEY, build_operability_checks, freshness_schedule
from pipeline.defs.outputs import build_output_assets
from pipeline.defs.partitions import daily_partitions
from pipeline.defs.pricing import build_pricing_assets
from pipeline.defs.report import build_report_assets
from pipeline.defs.resources import LedgerResource
from pipeline.defs.schedules import billing_refresh_schedule, daily_schedule
from pipeline.defs.usage import build_usage_assets

ALL_JOB = "ledger_daily_job"
BILLING_JOB = "billing_refresh_job"
BILLING_ASSETS = ("billing_line_items", "cost_reconciliation", "chargeback", "focus_chargeback")


def build_assets(cfg: LedgerConfig) -> list:
    """Every asset of the pipeline with its day checks, for the config's partitioning.

    The freshness check is about *now*, not about a run's day, so it is registered on its own schedule in
    `build_definitions` and left out here (and out of the daily job).
    """
    partitions_def = daily_partitions(cfg.start_date)
    return [
        *build_ingest_assets(partitions_def),
        *build_pricing_assets(partitions_def),
        *build_usage_assets(partitions_def),
        *build_billing_assets(partitions_def),
        *build_output_assets(partitions_def, cfg),
        *build_operability_checks(partitions_def, include_freshness=False),
        *build_completeness_assets(partitions_def),
        *build_report_assets(partitions_def),
    ]


def build_definitions(cfg: LedgerConfig, config_path: str = "") -> Definitions:
    """The code location: assets, their checks, the daily and billing jobs, schedules, sensor, and resource."""
    partitions_def = daily_partitions(cfg.start_date)
    daily_job = define_asset_job(
        ALL_JOB,
        selection=AssetSelection.all() - AssetSelection.checks(FRESHNESS_KEY),
        partitions_def=partitions_def,
        description="Everything for one UTC day: ingest, price, aggregate, read the bill, reconcile.",
    )
    billing_job = define_asset_job(
        BILLING_JOB,
        selection=AssetSelection.assets(*BILLING_ASSETS),
        partitions_def=partitions_def,
        description="The billing side only: re-read the bill and reconcile again (bills change after the fact).",
    )
    freshness = [c for c in build_operability_checks(partitions_def) if FRESHNESS_KEY in c.check_keys]
    return Definitions(
        assets=build_assets(cfg),
        asset_checks=freshness,
        jobs=[daily_job, billing_job],
        schedules=[
            daily_schedule(daily_job, cfg),
            billing_refresh_schedule(billing_job, cfg),
            freshness_schedule(cfg.schedules.daily_hour_utc),
        ],
        sensors=[billing_export_sensor(billing_job, cfg), alert_sensor(cfg)],
        resources={"ledger": LedgerResource(config_path=config_path)},
    )
