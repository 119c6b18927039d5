"""The Dagster code location: every asset, check, job, schedule and sensor resolves; schedules ask for the right
partitions; and the real webserver serves the asset graph and the schedules over GraphQL."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance, build_schedule_context

from pipeline import schemas
from pipeline.config import parse_config
from pipeline.defs.build import ALL_JOB, BILLING_JOB, build_definitions
from pipeline.defs.schedules import refresh_days
from pipeline.sample.expected import EXPECTED_CHECK_FAILURES
from tests.helpers import free_port, write_config

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
    ("invocations", "log_objects_found"),
    ("budget_status", "forecast_within_budget"),
    ("logging_configuration", "logging_unchanged_since_previous_day"),
    ("logging_configuration", "logging_on_in_every_region"),
    ("log_completeness", "logs_cover_metrics"),
    ("cost_anomalies", "anomalies_below_severity"),
    ("batch_jobs", "rejects_none"),
    ("batch_jobs", "jobs_priced"),
    ("batch_jobs", "reconciles_within_tolerance"),
}


@pytest.fixture
def config_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The code location loads only with a config: a small one, passed through LEDGER_CONFIG."""
    config = write_config(tmp_path)
    monkeypatch.setenv("LEDGER_CONFIG", str(config))
    return config


def _load_defs() -> Any:
    import pipeline.definitions

    return importlib.reload(pipeline.definitions).defs


def test_definitions_smoke(config_env: Path) -> None:
    defs = _load_defs()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == ASSETS
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks >= CHECKS
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.partitions_def is not None, key
        assert node.group_name in {
            "ingest",
            "pricing",
            "usage",
            "billing",
            "outputs",
            "completeness",
            "foresight",
            "batch",
            "report",
        }, key
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


def _graphql(url: str, query: str) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.mark.slow
def test_webserver_serves_asset_graph_and_schedules(tmp_path: Path, config_env: Path) -> None:
    """The real `dagster-webserver` on a free loopback port, against a temporary DAGSTER_HOME."""
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
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


@pytest.mark.slow
def test_location_refuses_to_load_without_a_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEDGER_CONFIG", raising=False)
    env = {k: v for k, v in os.environ.items() if k != "LEDGER_CONFIG"}
    proc = subprocess.run(
        [sys.executable, "-c", "import pipeline.definitions"], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode != 0
    assert "no configuration: set LEDGER_CONFIG" in proc.stderr and "bedrock-ledger demo" in proc.stderr


def test_every_asset_carries_its_column_schema_from_the_contract(config_env: Path) -> None:
    graph = _load_defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        table = key.to_user_string()
        column_schema = graph.get(key).metadata.get("dagster/column_schema")
        if table not in schemas.TABLES:  # not a table (the HTML cost report): no columns to show
            assert column_schema is None, table
            continue
        assert [c.name for c in column_schema.columns] == list(schemas.TABLES[table]), table
    invocations = graph.get(AssetKey("invocations")).metadata["dagster/column_schema"]
    types = {c.name: c.type for c in invocations.columns}
    assert types["timestamp"] == "timestamp[us, UTC]"
    assert types["request_metadata"] == "map<string,string>"
    assert types["input_tokens"] == "int64"


def test_every_check_of_a_day_is_partitioned_like_its_asset(config_env: Path) -> None:
    """So each evaluation is recorded for its day (the freshness check is about now: the one exception)."""
    graph = _load_defs().resolve_asset_graph()
    for check_key in graph.asset_check_keys:
        partitioned = graph.get(check_key).partitions_def is not None
        assert partitioned == (check_key.name != "invocations_fresh"), check_key


def test_jobs_run_in_process(config_env: Path) -> None:
    defs = _load_defs()
    for job in (ALL_JOB, BILLING_JOB):
        assert defs.resolve_job_def(job).executor_def.name == "in_process"


@pytest.mark.slow
def test_loading_definitions_leaves_step_libraries_alone(config_env: Path) -> None:
    """Loading the code location (every `dagster` command, every run worker) costs within a second of
    `import dagster` itself: no AWS SDK, Arrow, fsspec or parser imports until a step needs them. Move such an
    import into the asset's body (see `pipeline/defs/ingest.py`)."""
    script = (
        "import sys, time; t0 = time.perf_counter(); import dagster; t1 = time.perf_counter(); "
        "import pipeline.definitions as d; d.defs.resolve_asset_graph(); t2 = time.perf_counter(); "
        "heavy = sorted(m for m in ('boto3', 'botocore', 'pyarrow', 'fsspec', 's3fs', 'msgspec', 'aiobotocore') "
        "if m in sys.modules); print(heavy, round(t1 - t0, 2), round(t2 - t1, 2))"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    heavy, _dagster_s, _defs_s = proc.stdout.rsplit(" ", 2)
    assert heavy == "[]", proc.stdout


def test_expected_demo_failures_name_real_checks(config_env: Path) -> None:
    graph = _load_defs().resolve_asset_graph()
    for name in EXPECTED_CHECK_FAILURES:
        asset, check = name.split(":")
        assert AssetCheckKey(AssetKey(asset), check) in graph.asset_check_keys, name


def test_readme_and_messages_point_to_files_that_exist() -> None:
    import re

    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme):
        assert (ROOT / target).exists(), target
    for target in re.findall(r"`((?:docs|deploy|pipeline|tests)/[\w./-]+)`", readme):
        assert (ROOT / target).exists(), target
    for path in (ROOT / "pipeline").rglob("*.py"):
        assert "DESIGN.md" not in path.read_text(), f"{path.name} mentions DESIGN.md, which is not in the repository"


def test_glue_catalog_asset_only_with_glue_config() -> None:
    plain = build_definitions(parse_config({"start_date": "2026-01-01"}))
    assert "glue_catalog" not in {k.to_user_string() for k in plain.resolve_asset_graph().get_all_asset_keys()}
    cfg = parse_config({"start_date": "2026-01-01", "glue": {"database": "bedrock_ledger", "location": "s3://b/w"}})
    defs = build_definitions(cfg)
    job = defs.resolve_job_def(ALL_JOB)
    assert "glue_catalog" in {k.to_user_string() for k in job.asset_layer.executable_asset_keys}


def test_foresight_reads_eight_weeks_of_history_and_budgets_follow_the_forecast(config_env: Path) -> None:
    """cost_anomalies and spend_forecast depend on the 56 days before their partition (lineage the UI shows);
    budget_status waits for spend_forecast, and the report for all three."""
    from dagster import AssetKey

    graph = _load_defs().resolve_asset_graph()
    day = "2026-03-01"
    for asset, upstream in (
        ("cost_anomalies", "daily_usage_by_user"),
        ("spend_forecast", "daily_usage_by_cost_center"),
    ):
        node = graph.get(AssetKey(asset))
        upstream_days = graph.get_parent_partition_keys_for_child(
            day, AssetKey(upstream), AssetKey(asset)
        ).partitions_subset.get_partition_keys()
        assert AssetKey(upstream) in node.parent_keys
        assert min(upstream_days) == "2026-01-04" and max(upstream_days) == day and len(upstream_days) == 57
    assert AssetKey("spend_forecast") in graph.get(AssetKey("budget_status")).parent_keys
    assert {"cost_anomalies", "spend_forecast", "savings_opportunities"} <= {
        k.to_user_string() for k in graph.get(AssetKey("cost_report")).parent_keys
    }
