"""Alerts: failed checks that matter reach SNS (moto over HTTP, read back through a subscribed SQS queue) and a
Slack-style webhook (a local HTTP server on 127.0.0.1), once per check and partition, and not again on reruns
that do not change the outcome."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pytest
from dagster import DagsterInstance, build_sensor_context, materialize

from pipeline import warehouse
from pipeline.config import ConfigError, LedgerConfig, load_config, parse_config
from pipeline.defs.alerts import alert_check_keys, alert_sensor, check_outcomes
from pipeline.defs.build import build_assets
from pipeline.defs.resources import LedgerResource
from pipeline.report.alerts import Alert, AlertDeliveryError, AlertState, CheckOutcome, matters, process
from tests.helpers import write_config

DAY = "2026-11-10"


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in for a Slack incoming webhook on a free loopback port; stopped after the test."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/x", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def topic_and_queue(aws: str) -> tuple[str, Any, str]:
    """An SNS topic with an SQS queue subscribed to it, on moto."""
    sns = boto3.client("sns", endpoint_url=aws, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=aws, region_name="us-east-1")
    topic = sns.create_topic(Name=f"ledger-alerts-{id(sns)}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"alerts-{id(sqs)}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return topic, sqs, queue_url


def _drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def _spend(wh: str, day: str, spend: dict[str, float]) -> None:
    """One day of `daily_usage_by_cost_center` with the given spend per cost center (and the 1st of the month with
    calls but no cost, so the run rate counts every day of the month so far)."""
    first = dt.date.fromisoformat(day).replace(day=1)
    warehouse.write_partition(
        pl.DataFrame({"date": [first], "cost_center": ["support"], "invocations": [1], "total_cost_usd": [0.0]}),
        wh,
        "daily_usage_by_cost_center",
        first,
    )
    df = pl.DataFrame(
        {
            "date": [dt.date.fromisoformat(day)] * len(spend),
            "cost_center": list(spend),
            "total_cost_usd": list(spend.values()),
        }
    )
    warehouse.write_partition(df, wh, "daily_usage_by_cost_center", day)


class Tick:
    """Evaluates the alert sensor against an instance, carrying its cursor from tick to tick."""

    def __init__(self, cfg: LedgerConfig, instance: DagsterInstance) -> None:
        self.sensor = alert_sensor(cfg)
        self.instance = instance
        self.cursor: str | None = None

    def __call__(self) -> None:
        data = self.sensor.evaluate_tick(build_sensor_context(instance=self.instance, cursor=self.cursor))
        self.cursor = data.cursor


@pytest.mark.slow
def test_one_message_per_failed_check_and_partition_none_on_reruns(
    tmp_path: Path, topic_and_queue: tuple[str, Any, str], webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    topic, sqs, queue_url = topic_and_queue
    hook_url, posts = webhook
    path = write_config(
        tmp_path,
        budgets=[{"cost_center": "support", "monthly_usd": 100}, {"cost_center": "sales", "monthly_usd": 1000}],
        alerts={"enabled": True, "sns_topic_arn": topic, "slack_webhook_url": hook_url},
    )
    cfg = load_config(path)
    wh = cfg.warehouse
    # Day 10 of 30: support is over budget; sales has used 50%, and its run rate ends the month at 150%.
    _spend(wh, DAY, {"support": 134.0, "sales": 500.0})

    def run_budget() -> None:
        result = materialize(
            build_assets(cfg),
            partition_key=DAY,
            resources={"ledger": LedgerResource(config_path=str(path))},
            selection=["budget_status"],
            instance=instance,
        )
        assert result.success

    with DagsterInstance.ephemeral() as instance:
        tick = Tick(cfg, instance)
        run_budget()
        tick()
        sns_messages = _drain(sqs, queue_url)
        assert sorted(m["Subject"] for m in sns_messages) == [
            f"bedrock-ledger {DAY}: budget_status:forecast_within_budget failed",
            f"bedrock-ledger {DAY}: budget_status:within_budget failed",
        ]
        texts = {m["Subject"].split()[2]: m["Message"] for m in sns_messages}
        assert "support is at 134% of its $100 monthly budget (over budget)" in texts["budget_status:within_budget"]
        assert "sales forecast $1,500 = 150% of its $1,000 budget" in texts["budget_status:forecast_within_budget"]
        assert "sales" not in texts["budget_status:within_budget"]
        report = f"reports/date={DAY}/daily.html"
        assert all(report in m["Message"] and "\n" not in m["Message"] for m in sns_messages)
        assert sorted(p["text"] for p in posts) == sorted(m["Message"] for m in sns_messages)

        tick()  # nothing new
        run_budget()  # a rerun with the same outcome
        tick()
        assert _drain(sqs, queue_url) == [] and len(posts) == 2

        _spend(wh, DAY, {"support": 134.0, "sales": 10.0})  # sales' forecast falls back under its budget
        run_budget()
        tick()
        changed = _drain(sqs, queue_url)
        assert [m["Subject"].split()[2] for m in changed] == ["budget_status:forecast_within_budget"]
        assert "sales" not in changed[0]["Message"] and len(posts) == 3

        _spend(wh, DAY, {"support": 1.0, "sales": 10.0})  # passes: the case closes ...
        run_budget()
        tick()
        _spend(wh, DAY, {"support": 140.0, "sales": 10.0})  # ... so failing again is news again
        run_budget()
        tick()
        again = sorted(m["Subject"].split()[2] for m in _drain(sqs, queue_url))
        assert again == ["budget_status:forecast_within_budget", "budget_status:within_budget"]
        assert len(posts) == 5


def test_the_demo_run_sends_each_failed_check_once(
    demo: Path, topic_and_queue: tuple[str, Any, str], webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    topic, sqs, queue_url = topic_and_queue
    hook_url, posts = webhook
    base = load_config(demo / "demo" / "ledger.yaml")
    cfg = base.model_copy(
        update={
            "alerts": base.alerts.model_copy(
                update={"enabled": True, "sns_topic_arn": topic, "slack_webhook_url": hook_url}
            )
        }
    )
    with DagsterInstance.from_config(str(demo / "dagster_home")) as instance:
        outcomes, _ = check_outcomes(instance, alert_check_keys(cfg), {}, limit=10_000)
        failing = {
            o.key for o in outcomes if not o.passed and matters(o.asset, o.check, cfg.alerts.checks)
        }  # the demo has no reruns, so every evaluation is the latest of its check and partition
        assert {k.split("@")[0] for k in failing} >= {
            "budget_status:within_budget",
            "cost_reconciliation:within_tolerance",
        }
        tick = Tick(cfg, instance)
        tick()
        messages = _drain(sqs, queue_url)
        assert sorted(m["Subject"] for m in messages) == sorted(
            f"bedrock-ledger {k.split('@')[1]}: {k.split('@')[0]} failed" for k in failing
        )
        assert len(posts) == len(failing)
        tick()
        assert _drain(sqs, queue_url) == [] and len(posts) == len(failing)


def _outcome(passed: bool, storage_id: int, description: str = "x over", partition: str = DAY) -> CheckOutcome:
    return CheckOutcome(
        "log_completeness", "coverage_above_threshold", partition, passed, "ERROR", description, {}, storage_id
    )


def test_a_destination_that_fails_is_retried_alone() -> None:
    cfg = parse_config({"alerts": {"enabled": True, "sns_topic_arn": "arn:aws:sns:us-east-1:111122223333:t"}}).alerts
    delivered: dict[str, list[str]] = {"a": [], "b": []}
    broken = {"b": True}

    def sender(name: str):
        def send(alert: Alert) -> None:
            if broken.get(name):
                raise AlertDeliveryError(f"{name} is down")
            delivered[name].append(alert.text)

        return send

    dests = {"a": sender("a"), "b": sender("b")}
    state = AlertState()
    first = process([_outcome(False, 1), _outcome(True, 2, partition="2026-11-11")], state, cfg, "/wh", dests)
    assert len(delivered["a"]) == 1 and delivered["b"] == [] and first.errors == ["b is down"]
    broken["b"] = False
    second = process([], AlertState.parse(first.state.dump()), cfg, "/wh", dests)
    assert len(delivered["a"]) == 1 and len(delivered["b"]) == 1 and second.errors == []
    third = process([_outcome(False, 3)], AlertState.parse(second.state.dump()), cfg, "/wh", dests)
    assert third.sent == []  # the same failure again (a rerun): nothing new
    assert "coverage_above_threshold" in delivered["a"][0] and "report: file://" in delivered["a"][0]


def test_alerts_are_off_by_default_and_need_a_destination() -> None:
    assert LedgerConfig().alerts.enabled is False
    with pytest.raises(ConfigError, match="no destination"):
        parse_config({"alerts": {"enabled": True}})
    with pytest.raises(ConfigError, match="asset:check"):
        parse_config({"alerts": {"checks": ["within_budget"]}})
    assert matters("log_completeness", "anything", ["log_completeness:*"])
    assert not matters("chargeback", "sums_to_bill", LedgerConfig().alerts.checks)


SECRET_HOOK = "https://hooks.slack.com:443x/services/T0SECRET/B0SECRET/SECRETSECRET"
"""A malformed webhook (its port is not a number): urllib's error message would quote it."""


@pytest.mark.slow
def test_a_malformed_slack_webhook_leaks_nothing_and_sns_still_gets_each_alert_once(
    tmp_path: Path,
    topic_and_queue: tuple[str, Any, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic, sqs, queue_url = topic_and_queue
    monkeypatch.setenv("LEDGER_TEST_HOOK", SECRET_HOOK)
    path = write_config(
        tmp_path,
        budgets=[{"cost_center": "support", "monthly_usd": 100}],
        alerts={"enabled": True, "sns_topic_arn": topic, "slack_webhook_url_env": "LEDGER_TEST_HOOK"},
    )
    cfg = load_config(path)
    _spend(cfg.warehouse, DAY, {"support": 134.0})
    sensor = alert_sensor(cfg)
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            build_assets(cfg),
            partition_key=DAY,
            resources={"ledger": LedgerResource(config_path=str(path))},
            selection=["budget_status"],
            instance=instance,
        )
        assert result.success
        cursor: str | None = None
        stored: list[str] = []
        for _ in range(3):
            data = sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor))
            cursor = data.cursor
            stored += [str(data.cursor), str(data.skip_message), repr(data)]
        messages = _drain(sqs, queue_url)
    subjects = sorted(m["Subject"].split()[2] for m in messages)  # each once, not every tick
    assert subjects == ["budget_status:forecast_within_budget", "budget_status:within_budget"]
    printed = capsys.readouterr()
    everything = "\n".join([*stored, caplog.text, printed.out, printed.err])
    assert "SECRET" not in everything
    assert "Slack webhook (configured in the environment variable LEDGER_TEST_HOOK" in everything


def test_every_new_evaluation_is_read_page_by_page(demo: Path) -> None:
    """Pages of one read exactly what one large read does: no evaluation is cut off at a page's end."""
    cfg = load_config(demo / "demo" / "ledger.yaml")
    with DagsterInstance.from_config(str(demo / "dagster_home")) as instance:
        keys = alert_check_keys(cfg)
        whole, marks = check_outcomes(instance, keys, {}, limit=10_000)
        paged, paged_marks = check_outcomes(instance, keys, {}, limit=1)
    assert len(whole) > len(keys)  # some checks have more evaluations than one page holds
    assert [o.storage_id for o in paged] == [o.storage_id for o in whole] and paged_marks == marks
