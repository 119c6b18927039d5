"""The Dagster code location: every asset, check, job, schedule and sensor resolves; schedules ask for the right
partitions; and the real webserver serves the asset graph and the schedules over GraphQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, build_schedule_context

from pipeline import schemas
from pipeline.config import parse_config
from pipeline.defs.build import ALL_JOB, BILLING_JOB, build_definitions
from pipeline.defs.schedules import refresh_days

ROOT = Path(__file__).resolve().parents[1]
ASSETS = set(schemas.TABLES) | {"cost_report"}  # one asset per table of the data contract, and the report
CHECKS = {
    ("invocations", "rejects_within_threshold"),
    ("invocations", "request_id_unique"),
    ("invocations", "no_negative_tokens"),
    ("priced_invocations", "unpriced_share"),
    ("priced_invocations", "unattributed_share"),
    ("daily_usage_by_cost_center", "totals_match_priced_invocations"),
    ("budget_status", "within_budget"),
    ("billing_line_items", "bill_rows_mapped"),
    ("cost_reconciliation", "within_tolerance"),
    ("chargeback", "sums_to_bill"),
    ("focus_chargeback", "focus_valid"),
    ("focus_chargeback", "sums_to_chargeback"),
    ("invocations", "invocations_fresh"),
    ("invocations", "log_delivery_complete"),
    ("invocations", "log_objects_all_read"),
    ("budget_status", "forecast_within_budget"),
    ("logging_configuration", "logging_unchanged_since_previous_day"),
    ("logging_configuration", "logging_on_in_every_region"),
    ("log_completeness", "logs_cover_metrics"),
}


def test_definitions_smoke() -> None:
    from pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == ASSETS
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks >= CHECKS
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.partitions_def is not None, key
        assert node.group_name in {"ingest", "pricing", "usage", "billing", "outputs", "completeness", "report"}, key
        assert (node.description or "").strip(), key
    for job in (ALL_JOB, BILLING_JOB):
        assert defs.resolve_job_def(job).partitions_def is not None
    assert {s.name for s in defs.schedules} == {
        "ledger_daily_schedule",
        "billing_refresh_schedule",
        "invocations_freshness_schedule",
    }
    assert {s.name for s in defs.sensors} == {"billing_export_sensor", "ledger_alert_sensor"}


def test_daily_schedule_asks_for_yesterday() -> None:
    cfg = parse_config({"start_date": "2026-01-01", "schedules": {"daily_hour_utc": 5}})
    defs = build_definitions(cfg)
    schedule = defs.resolve_schedule_def("ledger_daily_schedule")
    assert schedule.cron_schedule == "0 5 * * *"
    with DagsterInstance.ephemeral() as instance:
        ctx = build_schedule_context(
            instance=instance, scheduled_execution_time=dt.datetime(2026, 3, 10, 5, tzinfo=dt.UTC)
        )
        requests = schedule.evaluate_tick(ctx).run_requests
    assert [r.partition_key for r in requests] == ["2026-03-09"]


def test_billing_refresh_schedule_covers_the_trailing_days_across_the_month() -> None:
    cfg = parse_config({"start_date": "2026-01-01", "schedules": {"billing_refresh_days": 4}})
    defs = build_definitions(cfg)
    schedule = defs.resolve_schedule_def("billing_refresh_schedule")
    with DagsterInstance.ephemeral() as instance:
        ctx = build_schedule_context(
            instance=instance,
            scheduled_execution_time=dt.datetime(2026, 3, 2, 8, 30, tzinfo=dt.UTC),
            repository_def=defs.get_repository_def(),
        )
        requests = schedule.evaluate_tick(ctx).run_requests
    # February has no invoice id in the (empty) warehouse and closed 1 day ago (≤ 2 lag days): all 28 days are
    # re-read, plus the open month's 1st.
    feb = [f"2026-02-{d:02d}" for d in range(1, 29)]
    assert [r.partition_key for r in requests] == [*feb, "2026-03-01"]
    assert all(r.job_name in (None, BILLING_JOB) for r in requests)


def test_refresh_days_never_before_start() -> None:
    assert refresh_days(dt.date(2026, 1, 3), 7, dt.date(2026, 1, 1)) == [dt.date(2026, 1, 1), dt.date(2026, 1, 2)]


def test_refresh_rereads_the_open_month_and_last_month_until_invoiced() -> None:
    start = dt.date(2026, 1, 1)
    today = dt.date(2026, 3, 18)  # a Wednesday
    march = [dt.date(2026, 3, d) for d in range(1, 18)]
    feb = [dt.date(2026, 2, d) for d in range(1, 29)]
    # the whole open month (Mar 1..17), not only the trailing 7 days
    assert refresh_days(today, 7, start) == march
    assert refresh_days(today, 7, start, lambda p: "open") == feb + march
    assert refresh_days(today, 7, start, lambda p: "invoiced") == march
    # Monday after close: an invoiced month is still re-read weekly for late refunds and credits
    assert refresh_days(dt.date(2026, 3, 16), 7, start, lambda p: "invoiced") == feb + march[:15]


def test_finality_from_invoice_ids_in_the_warehouse(tmp_path: Path) -> None:
    from pipeline import warehouse
    from pipeline.billing.finality import finality

    root = str(tmp_path)
    row = {c: None for c in schemas.BILLING_LINE_ITEMS}
    row.update(date=dt.date(2026, 2, 3), line_item_type="Usage", unblended_cost_usd=1.0)
    warehouse.write_partition(
        pl.DataFrame([row], schema=schemas.BILLING_LINE_ITEMS), root, "billing_line_items", "2026-02-03"
    )
    assert finality(root, "2026-02", dt.date(2026, 2, 20), 2) == "open"  # month not over
    assert finality(root, "2026-02", dt.date(2026, 3, 2), 2) == "open"  # no invoice id, within the lag
    assert finality(root, "2026-02", dt.date(2026, 3, 3), 2) == "closed_without_invoice_id"  # FOCUS 1.0 rule
    row["invoice_id"] = "EUINGB26-123456"
    warehouse.write_partition(
        pl.DataFrame([row], schema=schemas.BILLING_LINE_ITEMS), root, "billing_line_items", "2026-02-03"
    )
    assert finality(root, "2026-02", dt.date(2026, 3, 2), 2) == "invoiced"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(url: str, query: str) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_webserver_serves_asset_graph_and_schedules(tmp_path: Path) -> None:
    """The real `dagster-webserver` on a free loopback port, against a temporary DAGSTER_HOME."""
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    env.pop("LEDGER_CONFIG", None)
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster_webserver",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(ROOT / "workspace.yaml"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + 120
        assets: list = []
        while time.monotonic() < deadline:
            try:
                data = _graphql(url, "{ assetNodes { assetKey { path } groupName } }")
                assets = data.get("data", {}).get("assetNodes") or []
                if assets:
                    break
            except OSError:
                pass
            if proc.poll() is not None:
                pytest.fail("dagster-webserver exited early")
            time.sleep(1)
        assert {"/".join(a["assetKey"]["path"]) for a in assets} == ASSETS
        schedules = _graphql(
            url,
            '{ schedulesOrError(repositorySelector: {repositoryLocationName: "bedrock-ledger", '
            'repositoryName: "__repository__"}) { ... on Schedules { results { name cronSchedule } } } }',
        )
        names = {s["name"] for s in schedules["data"]["schedulesOrError"]["results"]}
        assert names == {"ledger_daily_schedule", "billing_refresh_schedule", "invocations_freshness_schedule"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_glue_catalog_asset_only_with_glue_config() -> None:
    plain = build_definitions(parse_config({"start_date": "2026-01-01"}))
    assert "glue_catalog" not in {k.to_user_string() for k in plain.resolve_asset_graph().get_all_asset_keys()}
    cfg = parse_config({"start_date": "2026-01-01", "glue": {"database": "bedrock_ledger", "location": "s3://b/w"}})
    defs = build_definitions(cfg)
    job = defs.resolve_job_def(ALL_JOB)
    assert "glue_catalog" in {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
