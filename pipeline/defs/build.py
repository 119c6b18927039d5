"""Assemble the Dagster `Definitions` from a config: partitions, assets, checks, jobs, schedules, resources."""

from typing import Any

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

from pipeline.config import LedgerConfig
from pipeline.defs.alerts import alert_sensor
from pipeline.defs.batch import build_batch_assets
from pipeline.defs.billing import billing_export_sensor, build_billing_assets
from pipeline.defs.completeness import build_completeness_assets
from pipeline.defs.contract import present, preview_allowed
from pipeline.defs.foresight import build_foresight_assets
from pipeline.defs.ingest import build_ingest_assets
from pipeline.defs.operability import FRESHNESS_KEY, build_operability_checks, freshness_schedule
from pipeline.defs.outputs import build_output_assets
from pipeline.defs.partitions import daily_partitions
from pipeline.defs.price_sync import price_sync_definitions
from pipeline.defs.pricing import build_pricing_assets
from pipeline.defs.report import build_report_assets
from pipeline.defs.resources import LedgerResource
from pipeline.defs.schedules import billing_refresh_schedule, daily_schedule
from pipeline.defs.usage import build_usage_assets

ALL_JOB = "ledger_daily_job"
BILLING_JOB = "billing_refresh_job"
BILLING_ASSETS = (
    "billing_line_items",
    "bill_list_rates",
    "cost_reconciliation",
    "chargeback",
    "focus_chargeback",
    "batch_jobs",
    "batch_job_rejects",
)
"""What the billing refresh job re-runs: the bill and everything judged against it (batch jobs are reconciled
against their window's bill, which changes after the fact too)."""
EXECUTOR = in_process_executor
"""Every step of a run in the run's own process, one after another. A day's steps mostly wait on each other, and
the multiprocess executor paid a fresh Python + Dagster + definitions start (about 5 s here) for each of them:
a UI run of a demo day took 1 min 44 s for about 4 s of work. Parallelism across days comes from runs (the run
queue and the run launchers in deploy/), and a large day's parsing already uses every core."""


def build_assets(cfg: LedgerConfig) -> list:
    """Every asset of the pipeline with its day checks, for the config's partitioning.

    The freshness check is about *now*, not about a run's day, so it is registered on its own schedule in
    `build_definitions` and left out here (and out of the daily job). Every asset gets its contract column schema
    and day-partitioned checks (`pipeline.defs.contract.present`).
    """
    partitions_def = daily_partitions(cfg.start_date)
    with preview_allowed():
        return present(_day_assets(partitions_def, cfg))


def _day_assets(partitions_def: Any, cfg: LedgerConfig) -> list[Any]:
    return [
        *build_ingest_assets(partitions_def),
        *build_pricing_assets(partitions_def),
        *build_usage_assets(partitions_def),
        *build_billing_assets(partitions_def),
        *build_batch_assets(partitions_def),
        *build_output_assets(partitions_def, cfg),
        *build_operability_checks(partitions_def, include_freshness=False),
        *build_completeness_assets(partitions_def),
        *build_foresight_assets(partitions_def),
        *build_report_assets(partitions_def),
    ]


def build_definitions(cfg: LedgerConfig, config_path: str = "") -> Definitions:
    """The code location: assets, their checks, the daily and billing jobs, schedules, sensor, and resource."""
    partitions_def = daily_partitions(cfg.start_date)
    daily_job = define_asset_job(
        ALL_JOB,
        selection=AssetSelection.all() - AssetSelection.checks(FRESHNESS_KEY),
        description="Everything for one UTC day: ingest, price, aggregate, read the bill, reconcile.",
        executor_def=EXECUTOR,
    )
    billing_job = define_asset_job(
        BILLING_JOB,
        selection=AssetSelection.assets(*BILLING_ASSETS),
        description="The billing side only: re-read the bill and reconcile again (bills change after the fact).",
        executor_def=EXECUTOR,
    )
    with preview_allowed():
        freshness = [c for c in build_operability_checks(partitions_def) if FRESHNESS_KEY in c.check_keys]
    sync_jobs, sync_schedules = price_sync_definitions(cfg)
    return Definitions(
        assets=build_assets(cfg),
        asset_checks=freshness,
        jobs=[daily_job, billing_job, *sync_jobs],
        schedules=[
            daily_schedule(daily_job, cfg),
            billing_refresh_schedule(billing_job, cfg),
            freshness_schedule(cfg.schedules.daily_hour_utc),
            *sync_schedules,
        ],
        sensors=[billing_export_sensor(billing_job, cfg), alert_sensor(cfg)],
        resources={"ledger": LedgerResource(config_path=config_path)},
        executor=EXECUTOR,  # also for materializations started from an asset page
    )
