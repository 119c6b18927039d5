"""The scheduled Price List sync (`pricing.sync.enabled`): refresh the synced catalog under the warehouse.

Off by default. When on, a job reads the AWS Price List an hour before the daily run and merges it into
`<warehouse>/_catalog/prices.csv` (bundled < synced < overrides), so the day's pricing uses what AWS published.
A failed read fails the job with the one-line reason and leaves the last synced catalog in place.
"""

from typing import Any

from dagster import DefaultScheduleStatus, OpExecutionContext, ScheduleDefinition, job, op

from pipeline.config import LedgerConfig
from pipeline.defs.resources import LedgerResource

SYNC_JOB = "price_list_sync_job"


@op
def price_list_sync(context: OpExecutionContext, ledger: LedgerResource) -> None:
    """Merge the AWS Price List into the warehouse's synced catalog; logs what opened, changed, did not map."""
    from pipeline.pricing.layers import fetch_synced, publish_synced, synced_catalog_uri
    from pipeline.pricing.price_list import sync_catalog

    cfg = ledger.config
    target = fetch_synced(cfg.warehouse)
    if target is None:
        import tempfile
        from pathlib import Path

        target = str(Path(tempfile.mkdtemp(prefix="ledger-sync-")) / "prices.csv")
    report = sync_catalog(target, endpoint_region=cfg.pricing.endpoint_region)
    uri = publish_synced(target, cfg.warehouse) if report.merge.touched else synced_catalog_uri(cfg.warehouse)
    m = report.merge
    context.log.info(
        f"Price List: {report.offers} prices read; {len(m.opened)} rows opened, {len(m.changed)} changed, "
        f"{m.unchanged} unchanged, {len(report.unmapped)} not mapped; catalog {uri}"
    )
    for u in report.unmapped[:50]:
        context.log.info(f"not mapped: {u.service_code} {u.usage_type}: {u.reason}")


@job(name=SYNC_JOB, description="Refresh the synced price catalog from the AWS Price List (pricing.sync).")
def price_list_sync_job() -> None:
    price_list_sync()


def price_sync_definitions(cfg: LedgerConfig) -> tuple[list[Any], list[Any]]:
    """(jobs, schedules) for the sync: none unless `pricing.sync.enabled`."""
    if not cfg.pricing.sync.enabled:
        return [], []
    hour = (cfg.schedules.daily_hour_utc - 1) % 24
    schedule = ScheduleDefinition(
        name="price_list_sync_schedule",
        cron_schedule=f"30 {hour} * * *",
        execution_timezone="UTC",
        job=price_list_sync_job,
        default_status=DefaultScheduleStatus.RUNNING,
        description="Every day before the daily run: merge the AWS Price List into the synced catalog.",
    )
    return [price_list_sync_job], [schedule]
