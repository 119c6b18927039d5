"""The alert sensor: reads new asset check evaluations from the Dagster event log and sends the failures that
matter (`alerts.checks` in ledger.yaml) to SNS and/or Slack, once per check and partition (`pipeline.report.alerts`).

Off by default (`alerts.enabled`); when enabled it starts running with the daemon. On its first tick it looks back
one day only, so turning alerts on does not replay a year of history into a chat channel.
"""

import time
from typing import Any

from dagster import (
    DagsterEventType,
    DefaultSensorStatus,
    EventRecordsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from pipeline.config import LedgerConfig
from pipeline.report.alerts import AlertState, CheckOutcome, process, senders

SENSOR_NAME = "ledger_alert_sensor"
FIRST_LOOKBACK_SECONDS = 24 * 3600
BATCH = 1000


def _plain(value: Any) -> Any:
    inner = getattr(value, "value", value)
    return inner if isinstance(inner, int | float | str | bool) or inner is None else str(inner)


def check_outcomes(instance: Any, after: int | None, limit: int = BATCH) -> list[CheckOutcome]:
    """Asset check evaluations stored after `after` (oldest first), as plain `CheckOutcome`s."""
    records_filter = EventRecordsFilter(
        event_type=DagsterEventType.ASSET_CHECK_EVALUATION,
        after_cursor=after,
        after_timestamp=None if after is not None else time.time() - FIRST_LOOKBACK_SECONDS,
    )
    records = instance.event_log_storage.get_event_records(records_filter, limit=limit, ascending=True)
    out = []
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        severity = getattr(evaluation.severity, "value", str(evaluation.severity))
        out.append(
            CheckOutcome(
                asset=evaluation.asset_key.to_user_string(),
                check=evaluation.check_name,
                partition=evaluation.partition,
                passed=bool(evaluation.passed),
                severity=str(severity),
                description=evaluation.description,
                metadata={k: _plain(v) for k, v in (evaluation.metadata or {}).items()},
                storage_id=record.storage_id,
            )
        )
    return out


def alert_sensor(cfg: LedgerConfig) -> Any:
    """The sensor for this config (stopped and inert unless `alerts.enabled`)."""
    alerts = cfg.alerts

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
        state = AlertState.parse(context.cursor)
        outcomes = check_outcomes(context.instance, state.after)
        result = process(outcomes, state, alerts, cfg.warehouse, senders(alerts))
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
