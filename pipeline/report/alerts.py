"""Alerts that reach people: failed checks that matter, once per check and partition, to SNS and/or Slack.

The sensor (`pipeline.defs.alerts`) hands this module the check evaluations it has not seen yet; `process` keeps
the latest outcome per check and partition and decides what to send:

* a failure is sent once per destination; the same failure again (a rerun that does not change the outcome, i.e.
  the same severity and the same one-line summary) sends nothing;
* a failure whose summary changed (the bill was restated, another cost center went over) is sent again;
* a pass closes the case, so a later failure of the same check and partition is news again;
* a destination that could not be reached is retried on the next tick, without repeating the ones that were.

The state is a small JSON cursor: the last event seen and the checks that are failing now (bounded by what is
failing, not by history). Summaries read the day's small tables (budget status, reconciliation) for numbers a
person can act on; when that read fails the check's own description stands in, so an alert is never lost to it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pipeline import warehouse
from pipeline.config import Alerts
from pipeline.report.store import report_link, report_uri

SNS = "sns"
SLACK = "slack"


class AlertDeliveryError(RuntimeError):
    """An alert could not be delivered to one destination (one line, naming it)."""


@dataclass(frozen=True)
class CheckOutcome:
    """One asset check evaluation, as plain values."""

    asset: str
    check: str
    partition: str | None
    passed: bool
    severity: str
    description: str | None
    metadata: dict[str, Any]
    storage_id: int

    @property
    def key(self) -> str:
        return f"{self.asset}:{self.check}@{self.partition or '-'}"


@dataclass(frozen=True)
class Alert:
    """What is sent for one failed check and partition."""

    key: str
    subject: str
    text: str
    fingerprint: str


@dataclass
class AlertState:
    """The sensor's cursor: per check, the last execution handled; and the open (failing) cases."""

    after: dict[str, int] = field(default_factory=dict)
    open: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, cursor: str | None) -> AlertState:
        if not cursor:
            return cls()
        data = json.loads(cursor)
        after = data.get("after")
        return cls(after=dict(after) if isinstance(after, dict) else {}, open=dict(data.get("open") or {}))

    def dump(self) -> str:
        return json.dumps({"after": self.after, "open": self.open}, sort_keys=True, separators=(",", ":"))


def matters(asset: str, check: str, patterns: Iterable[str]) -> bool:
    """Whether `asset:check` is one of the configured names (`asset:*` covers every check of an asset)."""
    name = f"{asset}:{check}"
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _usd(x: float) -> str:
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:,.2f}"


def _budget_summary(wh: str, day: str) -> str | None:
    status = warehouse.read_partition(wh, "budget_status", day)
    bad = status.filter(pl.col("status").is_in(["over_budget", "warning"])).sort("pct_used", descending=True)
    if bad.is_empty():
        return None
    return "; ".join(
        f"{r['cost_center']} is at {r['pct_used']:.0f}% of its {_usd(r['budget_usd'])} monthly budget "
        f"({r['status'].replace('_', ' ')})"
        for r in bad.iter_rows(named=True)
    )


def _reconciliation_summary(wh: str, day: str, outcome: CheckOutcome) -> str | None:
    recon = warehouse.read_partition(wh, "cost_reconciliation", day)
    gaps = recon.filter(pl.col("status") != "matched").with_columns(
        (pl.col("billed_cost_usd").fill_null(0.0) - pl.col("estimated_cost_usd").fill_null(0.0)).alias("gap")
    )
    if gaps.is_empty():
        return None
    n = int(outcome.metadata.get("gaps_over_tolerance") or gaps.height)
    top = gaps.sort(pl.col("gap").abs(), descending=True).row(0, named=True)
    return (
        f"{n} reconciliation rows over tolerance, {_usd(float(gaps['gap'].abs().sum()))} of gaps; largest: "
        f"{top['status'].replace('_', ' ')} {top['base_model_id'] or 'unmapped'} {top['usage_kind']} "
        f"{_usd(top['gap'])}"
    )


def summarize(outcome: CheckOutcome, wh: str) -> str:
    """One line a person can act on, for a failed check."""
    name = f"{outcome.asset}:{outcome.check}"
    try:
        if name == "budget_status:within_budget" and outcome.partition:
            found = _budget_summary(wh, outcome.partition)
            if found:
                return found
        if name == "cost_reconciliation:within_tolerance" and outcome.partition:
            found = _reconciliation_summary(wh, outcome.partition, outcome)
            if found:
                return found
    except Exception:  # the summary is a nicety: an unreadable table must not swallow the alert itself
        pass
    if name == "invocations:rejects_within_threshold":
        share = outcome.metadata.get("reject_share")
        threshold = outcome.metadata.get("threshold")
        if share is not None and threshold is not None:
            return (
                f"{int(outcome.metadata.get('rejected') or 0):,} log records rejected, {share * 100:.2f}% of the day "
                f"(threshold {threshold * 100:.2f}%)"
            )
    return (outcome.description or f"{name} did not pass").strip().splitlines()[0]


def alert_for(outcome: CheckOutcome, cfg: Alerts, wh: str) -> Alert:
    """The message for one failed check and partition, with a link to that day's report."""
    summary = summarize(outcome, wh)
    where = outcome.partition or "latest"
    link = ""
    if outcome.partition:
        link = report_link(report_uri(wh, outcome.partition, "daily"), cfg.report_base_url, wh)
    subject = f"bedrock-ledger {where}: {outcome.asset}:{outcome.check} failed"[:100]
    text = f"bedrock-ledger {where} [{outcome.severity}] {outcome.asset}:{outcome.check}: {summary}"
    if link:
        text += f" | report: {link}"
    fingerprint = hashlib.sha256(f"{outcome.severity}|{summary}".encode()).hexdigest()[:16]
    return Alert(key=outcome.key, subject=subject, text=text, fingerprint=fingerprint)


def send_sns(topic_arn: str, alert: Alert) -> None:
    """Publish to an SNS topic (its region from the ARN; endpoint and credentials from the standard chain)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pipeline.aws import client

    region = topic_arn.split(":")[3] if topic_arn.count(":") >= 5 else None
    try:
        client("sns", region or None).publish(TopicArn=topic_arn, Subject=alert.subject, Message=alert.text)
    except (BotoCoreError, ClientError) as exc:
        raise AlertDeliveryError(f"SNS topic {topic_arn}: {exc}") from exc


def send_slack(url: str, alert: Alert, timeout: float = 10.0) -> None:
    """POST the one-line message to a Slack incoming webhook (`{"text": ...}`)."""
    body = json.dumps({"text": alert.text}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the URL is configured
            if response.status >= 300:
                raise AlertDeliveryError(f"Slack webhook answered HTTP {response.status}")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise AlertDeliveryError(f"Slack webhook: {exc}") from exc


Sender = Callable[[Alert], None]


def senders(cfg: Alerts) -> dict[str, Sender]:
    """The configured destinations by name (the Slack URL is read from the environment at send time)."""
    out: dict[str, Sender] = {}
    if cfg.sns_topic_arn:
        topic = cfg.sns_topic_arn
        out[SNS] = lambda alert: send_sns(topic, alert)
    url = cfg.slack_webhook_url or (os.environ.get(cfg.slack_webhook_url_env) if cfg.slack_webhook_url_env else None)
    if url:
        out[SLACK] = lambda alert: send_slack(url, alert)
    return out


@dataclass
class TickResult:
    """What one sensor tick did."""

    state: AlertState
    sent: list[tuple[str, Alert]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def process(
    outcomes: Iterable[CheckOutcome], state: AlertState, cfg: Alerts, wh: str, destinations: dict[str, Sender]
) -> TickResult:
    """Send what the new outcomes call for (see the module docstring) and return the next state."""
    latest: dict[str, CheckOutcome] = {}
    for o in outcomes:
        if not matters(o.asset, o.check, cfg.checks):
            continue
        if o.key not in latest or o.storage_id > latest[o.key].storage_id:
            latest[o.key] = o
    result = TickResult(state=AlertState(after=dict(state.after), open=dict(state.open)))
    open_cases = result.state.open
    for key, o in latest.items():
        if o.passed:
            open_cases.pop(key, None)
            continue
        alert = alert_for(o, cfg, wh)
        case = open_cases.get(key)
        if case is None or case.get("fp") != alert.fingerprint:
            open_cases[key] = {"fp": alert.fingerprint, "sent": [], "subject": alert.subject, "text": alert.text}
    for key, case in sorted(open_cases.items()):
        alert = Alert(key=key, subject=case["subject"], text=case["text"], fingerprint=case["fp"])
        for name, send in destinations.items():
            if name in case["sent"]:
                continue
            try:
                send(alert)
            except AlertDeliveryError as exc:
                result.errors.append(str(exc))
                continue
            case["sent"].append(name)
            result.sent.append((name, alert))
    return result
