"""Assemble the Dagster `Definitions` from a config: partitions, assets, checks, jobs, schedules, resources."""

from __future__ import annotations

from dagster import Definitions, define_asset_job

from pipeline.config import LedgerConfig
from pipeline.defs.ingest import build_ingest_assets
from pipeline.defs.partitions import daily_partitions
from pipeline.defs.pricing import build_pricing_assets
from pipeline.defs.resources import LedgerResource
from pipeline.defs.usage import build_usage_assets

ALL_JOB = "ledger_daily_job"


def build_assets(cfg: LedgerConfig) -> list:
    """Every asset of the pipeline for the config's partitioning."""
    partitions_def = daily_partitions(cfg.start_date)
    assets: list = []
    assets += build_ingest_assets(partitions_def)
    assets += build_pricing_assets(partitions_def)
    assets += build_usage_assets(partitions_def)
    return assets


def build_definitions(cfg: LedgerConfig, config_path: str = "") -> Definitions:
    """The code location: assets, their checks, the daily job and schedules, and the config resource."""
    partitions_def = daily_partitions(cfg.start_date)
    assets = build_assets(cfg)
    daily_job = define_asset_job(ALL_JOB, selection="*", partitions_def=partitions_def)
    return Definitions(
        assets=assets,
        jobs=[daily_job],
        resources={"ledger": LedgerResource(config_path=config_path)},
    )
