"""Assemble the Dagster `Definitions` from a config: partitions, assets, checks, jobs, schedules, resources."""

from dagster import AssetSelection, Definitions, define_asset_job

from pipeline.config import LedgerConfig
from pipeline.defs.billing import billing_export_sensor, build_billing_assets
from pipeline.defs.ingest import build_ingest_assets
from pipeline.defs.partitions import daily_partitions
from pipeline.defs.pricing import build_pricing_assets
from pipeline.defs.resources import LedgerResource
from pipeline.defs.schedules import billing_refresh_schedule, daily_schedule
from pipeline.defs.usage import build_usage_assets

ALL_JOB = "ledger_daily_job"
BILLING_JOB = "billing_refresh_job"
BILLING_ASSETS = ("billing_line_items", "cost_reconciliation", "chargeback")


def build_assets(cfg: LedgerConfig) -> list:
    """Every asset of the pipeline (with its checks) for the config's partitioning."""
    partitions_def = daily_partitions(cfg.start_date)
    return [
        *build_ingest_assets(partitions_def),
        *build_pricing_assets(partitions_def),
        *build_usage_assets(partitions_def),
        *build_billing_assets(partitions_def),
    ]


def build_definitions(cfg: LedgerConfig, config_path: str = "") -> Definitions:
    """The code location: assets, their checks, the daily and billing jobs, schedules, sensor, and resource."""
    partitions_def = daily_partitions(cfg.start_date)
    daily_job = define_asset_job(
        ALL_JOB,
        selection=AssetSelection.all(),
        partitions_def=partitions_def,
        description="Everything for one UTC day: ingest, price, aggregate, read the bill, reconcile.",
    )
    billing_job = define_asset_job(
        BILLING_JOB,
        selection=AssetSelection.assets(*BILLING_ASSETS),
        partitions_def=partitions_def,
        description="The billing side only: re-read the bill and reconcile again (bills change after the fact).",
    )
    return Definitions(
        assets=build_assets(cfg),
        jobs=[daily_job, billing_job],
        schedules=[daily_schedule(daily_job, cfg), billing_refresh_schedule(billing_job, cfg)],
        sensors=[billing_export_sensor(billing_job, cfg)],
        resources={"ledger": LedgerResource(config_path=config_path)},
    )
