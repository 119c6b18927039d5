"""The alert sensor: reads new asset check evaluations from the Dagster event log and sends the failures that
matter (`alerts.checks` in ledger.yaml) to SNS and/or Slack, once per check and partition (`pipeline.report.alerts`).

Off by default (`alerts.enabled`); when enabled it starts running with the daemon. On its first tick it looks back
one day only, so turning alerts on does not replay a year of history into a chat channel. Each tick reads every
evaluation newer than its mark, page by page (a backfill of hundreds of failing days is read whole, never cut at a
page), so every failing partition alerts eventually.
"""

import time
from typing import Any

from dagster import (
    AssetCheckKey,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.tags import PARTITION_NAME_TAG

from pipeline.config import LedgerConfig
from pipeline.report.alerts import AlertState, CheckOutcome, matters, process, senders

SENSOR_NAME = "ledger_alert_sensor"
FIRST_LOOKBACK_SECONDS = 24 * 3600
PAGE = 200
"""Evaluations read per query; a check's new evaluations are read page by page until the last one handled."""
DONE = (AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED)


def _plain(value: Any) -> Any:
    inner = getattr(value, "value", value)
    return inner if isinstance(inner, int | float | str | bool) or inner is None else str(inner)


def fresh_records(instance: Any, key: AssetCheckKey, last: int | None, since: float, page: int = PAGE) -> list[Any]:
    """Every execution record of `key` newer than `last` (or, without a mark, created since `since`), newest first,
    read in pages of `page` until the first one already handled."""
    out: list[Any] = []
    cursor: int | None = None
    while True:
        records = instance.event_log_storage.get_asset_check_execution_history(key, limit=page, cursor=cursor)
        fresh = [r for r in records if (r.id > last if last is not None else r.create_timestamp >= since)]
        out.extend(fresh)
        if len(records) < page or len(fresh) < len(records):
            return out
        cursor = records[-1].id


def _outcome(instance: Any, record: Any, run_partitions: dict[str, str | None]) -> CheckOutcome:
    evaluation = record.event.dagster_event.event_specific_data
    partition = record.partition or evaluation.partition
    if partition is None:  # a check declared without partitions_def: its day is the run's partition
        if record.run_id not in run_partitions:
            run = instance.get_run_by_id(record.run_id)
            run_partitions[record.run_id] = run.tags.get(PARTITION_NAME_TAG) if run else None
        partition = run_partitions[record.run_id]
    severity = getattr(evaluation.severity, "value", str(evaluation.severity))
    return CheckOutcome(
        asset=evaluation.asset_key.to_user_string(),
        check=evaluation.check_name,
        partition=partition,
        passed=bool(evaluation.passed),
        severity=str(severity),
        description=evaluation.description,
        metadata={k: _plain(v) for k, v in (evaluation.metadata or {}).items()},
        storage_id=record.id,
    )


def check_outcomes(
    instance: Any, check_keys: list[AssetCheckKey], after: dict[str, int], limit: int = PAGE
) -> tuple[list[CheckOutcome], dict[str, int]]:
    """Completed evaluations of `check_keys` newer than `after` (per check: the last execution id handled), and the
    next `after`.

    Reads each check's execution history (the asset-check table every Dagster storage keeps, run-sharded SQLite
    included), `limit` records a page, every page newer than the mark. A check still running holds its check's
    mark below itself, so it is picked up once it completes; evaluations read twice are harmless (the same outcome
    sends nothing). Without a mark, only the last day is read.
    """
    outcomes: list[CheckOutcome] = []
    marks = dict(after)
    run_partitions: dict[str, str | None] = {}
    since = time.time() - FIRST_LOOKBACK_SECONDS
    for key in check_keys:
        name = key.to_user_string()
        fresh = fresh_records(instance, key, after.get(name), since, limit)
        running = [r.id for r in fresh if r.status not in DONE]
        done = [r for r in fresh if r.status in DONE and r.event is not None]
        if running:
            marks[name] = min(running) - 1
        elif fresh:
            marks[name] = max(r.id for r in fresh)
        outcomes += [_outcome(instance, record, run_partitions) for record in sorted(done, key=lambda r: r.id)]
    return outcomes, marks


def alert_check_keys(cfg: LedgerConfig) -> list[AssetCheckKey]:
    """The checks of this config's assets that `alerts.checks` names."""
    from pipeline.defs.build import build_assets  # at call time: build imports this module

    keys = {k for a in build_assets(cfg) for k in a.check_keys}
    return sorted(
        (k for k in keys if matters(k.asset_key.to_user_string(), k.name, cfg.alerts.checks)),
        key=lambda k: k.to_user_string(),
    )


def alert_sensor(cfg: LedgerConfig) -> Any:
    """The sensor for this config (stopped and inert unless `alerts.enabled`)."""
    alerts = cfg.alerts
    keys: list[AssetCheckKey] = []

    @sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=alerts.minimum_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING if alerts.enabled else DefaultSensorStatus.STOPPED,
        description="Sends failed checks that matter (alerts.checks) to SNS and/or Slack, once per check and "
        "partition, with a one-line summary and a link to the day's cost report.",
    )
    def _sensor(context: SensorEvaluationContext):
        if not alerts.enabled:
            return SkipReason("alerts are off (alerts.enabled in ledger.yaml)")
        if not keys:
            keys.extend(alert_check_keys(cfg))
        state = AlertState.parse(context.cursor)
        outcomes, marks = check_outcomes(context.instance, keys, state.after)
        result = process(outcomes, state, alerts, cfg.warehouse, senders(alerts))
        result.state.after = marks
        for error in result.errors:
            context.log.warning("alert not delivered (will retry): %s", error)
        for destination, alert in result.sent:
            context.log.info("alert sent to %s: %s", destination, alert.text)
        cursor = result.state.dump()
        if not result.sent:
            context.update_cursor(cursor)
            return SkipReason(f"no new failures to send ({len(outcomes)} check evaluations read)")
        return SensorResult(cursor=cursor)

    return _sensor
