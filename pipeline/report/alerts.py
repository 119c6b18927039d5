"""Alerts that reach people: failed checks that matter, once per check and partition, to SNS and/or Slack.

The sensor (`pipeline.defs.alerts`) hands this module the check evaluations it has not seen yet; `process` keeps
the latest outcome per check and partition and decides what to send:

* a failure is sent once per destination; the same failure again (a rerun that does not change the outcome, i.e.
  the same severity and the same one-line summary) sends nothing;
* a failure whose summary changed (the bill was restated, another cost center went over) is sent again; a summary
  whose table could not be read (or held nothing) is not a change: the case stays as it was sent;
* a pass closes the case, so a later failure of the same check and partition is news again;
* a destination that could not be reached is retried on the next tick, without repeating the ones that were, and
  without holding back the other destinations or the other alerts; at most `MAX_SENDS` are sent per tick, the rest
  on the next ones (every open case is kept until each destination has it).

A delivery error names the destination and where it is configured, never the Slack webhook URL itself (a secret:
whoever has it can post to the channel), so nothing stored by Dagster — tick history, logs — ever holds it.
Strings from the data (cost centers, model ids, a check's description) are plain text in SNS and escaped for Slack's
mrkdwn, so a cost center named `<https://…|approve>` can't become a link or a mention.

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
from pipeline.text import escape_for, usd

SNS = "sns"
SLACK = "slack"
MAX_SENDS = 100
"""Messages sent per sensor tick at most (a backfill of 230 failing days drains over a few ticks, within the tick's
time limit); the rest stay open and go out on the next ticks."""


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
    tentative: bool = False
    """The summary's table could not be read or held nothing: the check's own description stands in, and an open
    case is not "changed" by it."""


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


def _plain(value: object) -> str:
    """A string from the data, as one line of plain text (control characters removed, length capped)."""
    return escape_for(value, "plain").replace("\n", " ").replace("\r", " ")


def _budget_summary(wh: str, day: str) -> str | None:
    status = warehouse.read_partition(wh, "budget_status", day)
    bad = status.filter(pl.col("status").is_in(["over_budget", "warning"])).sort("pct_used", descending=True)
    if bad.is_empty():
        return None
    return "; ".join(
        f"{_plain(r['cost_center'])} is at {r['pct_used']:.0f}% of its {usd(r['budget_usd'])} monthly budget "
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
        f"{n} reconciliation rows over tolerance, {usd(float(gaps['gap'].abs().sum()))} of gaps; largest: "
        f"{top['status'].replace('_', ' ')} {_plain(top['base_model_id'] or 'unmapped')} {_plain(top['usage_kind'])} "
        f"{usd(top['gap'])}"
    )


DETAILED = {"budget_status:within_budget", "cost_reconciliation:within_tolerance"}
"""Checks whose summary is read from the day's table (the numbers a person acts on)."""


def summarize(outcome: CheckOutcome, wh: str) -> tuple[str, bool]:
    """One line a person can act on, for a failed check, and whether it is tentative: a detailed summary whose
    table could not be read or held nothing, so the check's own description stands in."""
    name = f"{outcome.asset}:{outcome.check}"
    if name in DETAILED and outcome.partition:
        found: str | None = None
        try:
            if name == "budget_status:within_budget":
                found = _budget_summary(wh, outcome.partition)
            else:
                found = _reconciliation_summary(wh, outcome.partition, outcome)
        except Exception:  # the summary is a nicety: an unreadable table must not swallow the alert itself
            found = None
        if found:
            return found, False
        return _described(outcome), True
    return _described(outcome), False


def _described(outcome: CheckOutcome) -> str:
    """The check's own one-line reason: its description (a failed result carries the reason the CLI prints), else
    the same sentence built from its figures (`pipeline.check_reasons`, for evaluations recorded without one)."""
    from pipeline.check_reasons import reason

    first = (outcome.description or "").strip().splitlines()
    return _plain(first[0] if first else reason(outcome.asset, outcome.check, None, outcome.metadata))


def alert_for(outcome: CheckOutcome, cfg: Alerts, wh: str) -> Alert:
    """The message for one failed check and partition, with a link to that day's report."""
    summary, tentative = summarize(outcome, wh)
    where = outcome.partition or "latest"
    link = ""
    if outcome.partition:
        link = report_link(report_uri(wh, outcome.partition, "daily"), cfg.report_base_url, wh)
    subject = f"bedrock-ledger {where}: {outcome.asset}:{outcome.check} failed"[:100]
    text = f"bedrock-ledger {where} [{outcome.severity}] {outcome.asset}:{outcome.check}: {summary}"
    if link:
        text += f" | report: {link}"
    fingerprint = hashlib.sha256(f"{outcome.severity}|{summary}".encode()).hexdigest()[:16]
    return Alert(key=outcome.key, subject=subject, text=text, fingerprint=fingerprint, tentative=tentative)


def send_sns(topic_arn: str, alert: Alert) -> None:
    """Publish to an SNS topic (its region from the ARN; endpoint and credentials from the standard chain)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pipeline.aws import client

    region = topic_arn.split(":")[3] if topic_arn.count(":") >= 5 else None
    try:
        client("sns", region or None).publish(TopicArn=topic_arn, Subject=alert.subject, Message=alert.text)
    except (BotoCoreError, ClientError, ValueError) as exc:
        raise AlertDeliveryError(f"SNS topic {topic_arn} (alerts.sns_topic_arn): {exc}") from exc


def _slack_failure(exc: BaseException) -> str:
    """Why a webhook POST failed, in words that cannot hold the URL (no exception text is quoted, only codes)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"unreachable: it answered HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, OSError) and exc.reason.strerror:
        return f"unreachable: {exc.reason.strerror}"
    if isinstance(exc, TimeoutError | urllib.error.URLError | OSError):
        return f"unreachable ({type(exc).__name__})"
    return f"malformed ({type(exc).__name__}): expected https://hooks.slack.com/services/…"


def send_slack(url: str, alert: Alert, where: str = "alerts.slack_webhook_url", timeout: float = 10.0) -> None:
    """POST the one-line message to a Slack incoming webhook (`{"text": ...}`, escaped for Slack's mrkdwn).

    A failure raises `AlertDeliveryError` naming `where` the URL is configured, never the URL (a secret), and
    without the original exception attached (its text, or its cause's, can quote the URL).
    """
    body = json.dumps({"text": escape_for(alert.text, "slack_mrkdwn")}).encode()
    problem: str | None = None
    try:
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the URL is configured
            if response.status >= 300:
                problem = f"unreachable: it answered HTTP {response.status}"
    except Exception as exc:  # any error: ValueError for a malformed URL, InvalidURL, URLError, timeouts …
        problem = _slack_failure(exc)
    if problem:
        raise AlertDeliveryError(f"Slack webhook (configured in {where}) is {problem}; check the URL there") from None


Sender = Callable[[Alert], None]


def senders(cfg: Alerts) -> dict[str, Sender]:
    """The configured destinations by name (the Slack URL is read from the environment at send time)."""
    out: dict[str, Sender] = {}
    if cfg.sns_topic_arn:
        topic = cfg.sns_topic_arn
        out[SNS] = lambda alert: send_sns(topic, alert)
    where = "alerts.slack_webhook_url"
    url = cfg.slack_webhook_url
    if not url and cfg.slack_webhook_url_env:
        where = f"the environment variable {cfg.slack_webhook_url_env} (alerts.slack_webhook_url_env)"
        url = os.environ.get(cfg.slack_webhook_url_env)
    if url:
        out[SLACK] = lambda alert: send_slack(url, alert, where)
    return out


@dataclass
class TickResult:
    """What one sensor tick did."""

    state: AlertState
    sent: list[tuple[str, Alert]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _deliver(alert: Alert, name: str, send: Sender) -> str | None:
    """Send one alert to one destination; the error in words when it failed (never raised: one destination or one
    alert failing must not hold back the others)."""
    try:
        send(alert)
    except AlertDeliveryError as exc:
        return str(exc)
    except Exception as exc:  # a sender's unexpected error: its type only (its text could hold a secret)
        return f"{name}: could not send ({type(exc).__name__})"
    return None


def _open(case: dict[str, Any] | None, alert: Alert) -> dict[str, Any] | None:
    """The case for a failing outcome: a new one when it is news, else None (the open case stands)."""
    fresh: dict[str, Any] = {"fp": alert.fingerprint, "sent": [], "subject": alert.subject, "text": alert.text}
    if alert.tentative:
        fresh["tentative"] = True
    if case is None:
        return fresh
    if alert.tentative or case.get("fp") == alert.fingerprint:
        return None  # a summary that could not be read is not a change
    if case.get("tentative"):  # the detail is readable now: same outcome, better words; not sent again
        return {**fresh, "sent": list(case["sent"])}
    return fresh


def process(
    outcomes: Iterable[CheckOutcome],
    state: AlertState,
    cfg: Alerts,
    wh: str,
    destinations: dict[str, Sender],
    max_sends: int = MAX_SENDS,
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
        case = _open(open_cases.get(key), alert_for(o, cfg, wh))
        if case is not None:
            open_cases[key] = case
    failed: set[str] = set()
    for key, case in sorted(open_cases.items()):
        alert = Alert(key=key, subject=case["subject"], text=case["text"], fingerprint=case["fp"])
        for name, send in destinations.items():
            if name in case["sent"] or name in failed or len(result.sent) >= max_sends:
                continue
            error = _deliver(alert, name, send)
            if error is not None:
                failed.add(name)  # tried once this tick; the next tick tries it again
                result.errors.append(error)
                continue
            case["sent"].append(name)
            result.sent.append((name, alert))
    return result
