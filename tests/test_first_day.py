"""A first real day without guessing: one Dagster history per ledger (never the working folder), a config
without sources refused before any work, source prefixes checked, `generate` doing what its flags say or refusing
in one line, and every failed check printed with its severity and its reason."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import boto3
import pytest
import yaml

from pipeline.check_reasons import reason
from pipeline.cli import EXIT_BAD_INPUT, EXIT_UNREACHABLE, run_cli
from pipeline.config import CONFIG_ENV
from pipeline.home import home_for, slug
from tests.helpers import gz_lines, log_key, make_record, write_config

DAY = "2026-03-10"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No DAGSTER_HOME, a private XDG state folder, and a working folder of its own (checked for stray files)."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv(CONFIG_ENV, "unset-by-test")
    monkeypatch.delenv(CONFIG_ENV)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run_cli(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _logs(root: Path, records: int = 2) -> Path:
    key = root / log_key("111122223333", "us-east-1", f"{DAY}T10:05:00")
    key.parent.mkdir(parents=True)
    key.write_bytes(gz_lines([make_record(f"r-{i}", f"{DAY}T10:0{i}:00Z") for i in range(records)]))
    return root


# --- one history per ledger -------------------------------------------------------------------------------------


def test_a_ledgers_home_is_named_by_its_warehouse(no_home: Path, tmp_path: Path) -> None:
    a, b = home_for("s3://finops/ledger"), home_for("s3://finops/ledger-2")
    assert a.ours and a.path.parent == tmp_path / "state" / "bedrock-ledger"
    assert a.path != b.path and a.path == home_for("s3://finops/ledger").path
    assert slug("s3://a/b-c") != slug("s3://a/b/c")
    assert "finops-ledger" in a.path.name


def test_dagster_home_given_by_the_user_is_used_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "mine"))
    home = home_for("s3://finops/ledger")
    assert home.path == tmp_path / "mine" and not home.ours


def test_the_written_instance_settings_are_the_projects(no_home: Path) -> None:
    from pipeline.home import DAGSTER_YAML, WORKSPACE_YAML

    assert yaml.safe_load(DAGSTER_YAML) == yaml.safe_load((ROOT / "dagster.yaml").read_text())
    workspace = yaml.safe_load(WORKSPACE_YAML)["load_from"][0]["python_module"]
    checkout = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"][0]["python_module"]
    assert (workspace["module_name"], workspace["location_name"]) == (
        checkout["module_name"],
        checkout["location_name"],
    )


@pytest.mark.slow
def test_each_ledger_keeps_its_own_history_and_nothing_lands_in_the_working_folder(
    no_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dagster import DagsterInstance

    homes = {}
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        config = write_config(folder, sources={"invocation_logs": {"s3": [str(_logs(folder / "logs"))]}})
        code, out = cli(capsys, "run", "-c", str(config), "--start", DAY, "--end", DAY, "--select", "invocations")
        assert code == 0, out
        home = home_for(str(folder / "wh")).path
        assert f"Dagster home: {home} (this ledger's runs)" in out
        assert "bedrock-ledger ui --config" in out and " dg " not in out
        homes[name] = (home, str(config), str(folder / "wh"))
    assert list(no_home.iterdir()) == []  # no .dagster, no storage: the working folder stays as it was
    assert "telemetry" not in out.lower()
    for home, config, wh in homes.values():
        settings = yaml.safe_load((home / "dagster.yaml").read_text())
        assert settings["telemetry"] == {"enabled": False}
        assert settings["run_monitoring"]["enabled"] is True
        assert settings["concurrency"]["pools"]["default_limit"] == 2
        with DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_runs()
            assert len(runs) == 1
            assert runs[0].tags["bedrock-ledger/config"] == config
            assert runs[0].tags["bedrock-ledger/warehouse"] == wh


def test_ui_command_is_runnable_from_any_folder(no_home: Path) -> None:
    from pipeline.commands import ui_command

    command = ui_command("/x/ledger.yaml")
    assert command.endswith("bedrock-ledger ui --config /x/ledger.yaml")
    assert f"--project {ROOT}" in command  # a source checkout: `uv run` finds the project from anywhere


def test_ui_refuses_a_missing_config_in_one_line(no_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli(capsys, "ui", "-c", "nope.yaml")
    assert code == EXIT_BAD_INPUT and "nope.yaml" in out and len(out.strip().splitlines()) == 1


# --- a config without sources, a prefix that is not there -------------------------------------------------------


@pytest.mark.parametrize("content", ["", "warehouse: ./wh\n", "sources: {invocation_logs: {s3: []}}\n"])
def test_a_config_without_sources_is_refused_before_any_work(
    no_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    config = tmp_path / "ledger.yaml"
    config.write_text(content)
    code, out = cli(capsys, "run", "-c", str(config), "--start", DAY, "--end", DAY)
    assert code == EXIT_BAD_INPUT, out
    assert "names no invocation logs to read" in out and "sources.invocation_logs.s3" in out
    assert len(out.strip().splitlines()) == 1
    assert not (tmp_path / "wh").exists() and not (tmp_path / "warehouse").exists()


def test_a_config_without_sources_still_loads_as_definitions(tmp_path: Path) -> None:
    """The code location and `dg check defs` load such a config; only `run` refuses it."""
    from pipeline.config import load_config
    from pipeline.defs.build import build_definitions

    config = tmp_path / "ledger.yaml"
    config.write_text("")
    assert build_definitions(load_config(config), str(config)).resolve_job_def("ledger_daily_job")


def test_a_missing_s3_prefix_is_named_before_any_work(
    no_home: Path, tmp_path: Path, aws: str, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = boto3.client("s3", endpoint_url=aws, region_name="us-east-1")
    s3.put_object(Bucket=bucket, Key="bedrock/logs/AWSLogs/111122223333/x.json.gz", Body=b"x")
    config = write_config(
        tmp_path, warehouse=f"s3://{bucket}/wh", sources={"invocation_logs": {"s3": [f"s3://{bucket}/bedrock/log"]}}
    )
    code, out = cli(capsys, "run", "-c", str(config), "--start", DAY, "--end", DAY)
    assert code == EXIT_BAD_INPUT, out
    assert f"s3://{bucket}/bedrock/log" in out and "holds no object" in out and "sources.invocation_logs.s3" in out
    assert len(out.strip().splitlines()) == 1
    billing = write_config(
        tmp_path,
        warehouse=f"s3://{bucket}/wh",
        sources={
            "invocation_logs": {"s3": [f"s3://{bucket}/bedrock/logs"]},
            "billing": [{"uri": f"s3://{bucket}/cur2/nothing-here", "format": "cur2"}],
        },
    )
    code, out = cli(capsys, "run", "-c", str(billing), "--start", DAY, "--end", DAY)
    assert code == EXIT_BAD_INPUT, out
    assert "sources.billing" in out and f"s3://{bucket}/cur2/nothing-here" in out


# --- generate does what its flags say, or refuses in one line ---------------------------------------------------


def test_generate_refuses_cloudwatch_days_older_than_14_days(
    no_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(capsys, "generate", "--out", str(tmp_path / "s"), "--cloudwatch-group", "/bedrock/x")
    assert code == EXIT_BAD_INPUT, out
    assert "older than 14 days" in out and "--start" in out and len(out.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_generate_refuses_a_bill_it_cannot_write_to_s3(
    no_home: Path, aws: str, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(capsys, "generate", "--out", f"s3://{bucket}/logs", "--bill", "--days", "1")
    assert code == EXIT_BAD_INPUT, out
    assert "--no-bill" in out and len(out.strip().splitlines()) == 1


def test_generate_to_s3_says_it_writes_no_bill(
    no_home: Path, aws: str, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["generate", "--out", f"s3://{bucket}/logs", "--days", "1", "--records-per-day", "20"]
    code, out = cli(capsys, *args)
    assert code == 0, out
    assert "no bill or ledger.yaml" in out


def test_generate_names_a_missing_bucket(no_home: Path, aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli(capsys, "generate", "--out", "s3://no-such-bucket-for-sure/logs", "--no-bill", "--days", "1")
    assert code == EXIT_UNREACHABLE, out
    assert "s3://no-such-bucket-for-sure/logs" in out and "bucket does not exist" in out
    assert "FileNotFoundError" not in out


@pytest.mark.slow
def test_generate_with_a_local_out_puts_events_into_cloudwatch(
    no_home: Path, tmp_path: Path, aws: str, capsys: pytest.CaptureFixture[str]
) -> None:
    start = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3)).isoformat()
    args = ["generate", "--out", str(tmp_path / "s"), "--start", start, "--days", "1", "--records-per-day", "60"]
    code, out = cli(capsys, *args, "--cloudwatch-group", "/bedrock/sample", "--cloudwatch-share", "0.3")
    assert code == 0, out
    assert "CloudWatch Logs /bedrock/sample:" in out and "refused" not in out
    config = yaml.safe_load((tmp_path / "s" / "ledger.yaml").read_text())
    assert {g["log_group"] for g in config["sources"]["invocation_logs"]["cloudwatch"]} == {"/bedrock/sample"}
    logs = boto3.client("logs", endpoint_url=aws, region_name="us-east-1")
    assert logs.filter_log_events(logGroupName="/bedrock/sample", limit=1)["events"]


# --- failed checks: severity and reason -------------------------------------------------------------------------


def test_reasons_state_the_figures_with_money_in_cents_below_100() -> None:
    line = reason(
        "billing_line_items",
        "bill_rows_mapped",
        None,
        {"unmapped_rows": 3, "unmapped_cost_usd": 0.42},
    )
    assert line.startswith("3 bill rows ($0.42) naming a model")
    unpriced = reason(
        "priced_invocations",
        "unpriced_share",
        None,
        {"unpriced_invocations": 12, "unpriced_share": 0.015, "threshold": 0.0},
    )
    assert "12 calls (1.50%) without a price" in unpriced and "quality.max_unpriced_share" in unpriced
    assert reason("x", "y", "the check's own words\nsecond line", {}) == "the check's own words second line"
    assert reason("x", "y", None, {"share": 0.5, "rows": 3}) == "did not pass (share 0.5, rows 3)"


def test_a_failed_check_is_printed_with_its_severity_and_reason() -> None:
    from types import SimpleNamespace

    from dagster import AssetCheckSeverity, AssetKey, MetadataValue

    from pipeline.commands import check_line

    check = SimpleNamespace(
        asset_key=AssetKey("priced_invocations"),
        check_name="unpriced_share",
        severity=AssetCheckSeverity.WARN,
        description=None,
        metadata={
            "unpriced_invocations": MetadataValue.int(4),
            "unpriced_share": MetadataValue.float(0.02),
            "threshold": MetadataValue.float(0.0),
        },
    )
    line = check_line(check, {})
    assert line.startswith("    check priced_invocations:unpriced_share did not pass [WARN]: 4 calls (2.00%) without")
    error = SimpleNamespace(**{**vars(check), "severity": AssetCheckSeverity.ERROR})
    assert "[ERROR]" in check_line(error, {})
    assert "as the sample intends" in check_line(check, {"priced_invocations:unpriced_share": "on purpose"})


# --- start-up: a hint when bytecode is not cached ---------------------------------------------------------------


def test_a_hint_when_the_dependencies_have_no_cached_bytecode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.commands import bytecode_hint

    package = tmp_path / "never_compiled_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    hint = bytecode_hint("never_compiled_pkg")
    assert hint is not None and "uv sync --compile-bytecode" in hint and "\n" not in hint
    assert bytecode_hint("dagster") is None  # this environment was synced with --compile-bytecode


# --- the UI: each check result names the day it judges ----------------------------------------------------------


def test_every_check_result_names_the_partition_it_judges(tmp_path: Path) -> None:
    """Dagster plots a check's figures by evaluation time; the partition in each result's metadata says which day
    a point is (the evaluations themselves are recorded for the run's partition too)."""
    from tests.helpers import run_day

    config = write_config(tmp_path, sources={"invocation_logs": {"s3": [str(_logs(tmp_path / "logs"))]}})
    result = run_day(config, DAY)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    names = {e.check_name for e in evaluations}
    assert {"log_objects_found", "log_delivery_complete", "log_objects_all_read"} <= names
    for evaluation in evaluations:
        assert evaluation.metadata["partition"].value == DAY, evaluation.check_name
        assert evaluation.partition == DAY, evaluation.check_name


# --- a ledger without a bill ------------------------------------------------------------------------------------


def test_without_a_bill_the_billing_tables_are_empty_and_their_checks_say_so(tmp_path: Path) -> None:
    from pipeline import warehouse
    from pipeline.vocabulary import NO_BILL_CONFIGURED
    from tests.helpers import run_day

    config = write_config(tmp_path, sources={"invocation_logs": {"s3": [str(_logs(tmp_path / "logs"))]}})
    tables = ["billing_line_items", "cost_reconciliation", "chargeback", "focus_chargeback"]
    result = run_day(config, DAY, tables)
    assert result.success
    for table in tables:
        assert warehouse.partition_exists(str(tmp_path / "wh"), table, DAY), table
        assert warehouse.read_partition(str(tmp_path / "wh"), table, DAY).is_empty(), table
    evaluations = result.get_asset_check_evaluations()
    assert {e.asset_key.to_user_string() for e in evaluations} == set(tables)
    assert {"within_tolerance", "sums_to_bill", "focus_valid"} <= {e.check_name for e in evaluations}
    for evaluation in evaluations:
        assert evaluation.passed, evaluation.check_name
        assert evaluation.description == NO_BILL_CONFIGURED


def test_a_budget_failure_says_who_and_how_much_in_cents_below_100() -> None:
    import polars as pl

    from pipeline.defs.usage import budget_check

    status = pl.DataFrame(
        {
            "cost_center": ["platform", "search"],
            "budget_usd": [0.42, 5000.0],
            "pct_used": [270.0, 85.0],
            "status": ["over_budget", "warning"],
        }
    )
    result = budget_check(status, dt.date(2026, 11, 3))
    assert not result.passed and result.severity.value == "ERROR"
    assert result.description == (
        "platform is at 270% of its $0.42 monthly budget (over budget); "
        "search is at 85% of its $5,000 monthly budget (warning)"
    )


@pytest.mark.slow
def test_ui_opens_the_ledgers_history_from_any_folder(tmp_path: Path) -> None:
    """`bedrock-ledger ui` started in an unrelated folder: the webserver serves the ledger's code location on its
    own home, and the folder stays empty (no `.dagster`, no telemetry files, no `dg` needed)."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.helpers import free_port

    folder = tmp_path / "ledger"
    folder.mkdir()
    config = write_config(folder, sources={"invocation_logs": {"s3": [str(_logs(folder / "logs"))]}})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", CONFIG_ENV)}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "ui", "--config", str(config), "--port", str(port)],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its webserver and daemon are stopped with it, as a group we started
    )
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    entries: list = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(request, timeout=10) as resp:
                    entries = json.loads(resp.read())["data"]["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED":
                    break
            except OSError:
                pass
            time.sleep(2)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out = proc.communicate(timeout=60)[0].decode()
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out = proc.communicate()[0].decode()
    assert [(e["name"], e["loadStatus"]) for e in entries] == [("bedrock-ledger", "LOADED")], out
    home = tmp_path / "state" / "bedrock-ledger" / slug(str(folder / "wh"))
    assert f"Dagster home: {home}" in out
    assert (home / "dagster.yaml").is_file() and (home / "workspace.yaml").is_file()
    assert "telemetry" not in out.lower()
    assert list(elsewhere.iterdir()) == []


def test_a_failed_check_carries_its_reason_into_the_ui_and_alerts(tmp_path: Path) -> None:
    """A check result that states its figures only in metadata gets its one-line reason as its description: the
    UI shows it, the CLI prints it and an alert sends it."""
    from pipeline.report.alerts import CheckOutcome, summarize
    from tests.helpers import run_day

    root = tmp_path / "logs"
    key = root / log_key("111122223333", "us-east-1", f"{DAY}T10:05:00")
    key.parent.mkdir(parents=True)
    records = [make_record("r-0", f"{DAY}T10:00:00Z"), make_record("r-1", f"{DAY}T10:01:00Z", modelId="acme.x-v1")]
    key.write_bytes(gz_lines(records))
    config = write_config(tmp_path, sources={"invocation_logs": {"s3": [str(root)]}})
    result = run_day(config, DAY, ["invocations", "rejected_records", "priced_invocations"])
    assert result.success
    (unpriced,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "unpriced_share"]
    assert not unpriced.passed
    assert unpriced.description.startswith("1 call (50.00%) without a price")
    outcome = CheckOutcome(
        asset="priced_invocations",
        check="unpriced_share",
        partition=DAY,
        passed=False,
        severity="WARN",
        description=unpriced.description,
        metadata={},
        storage_id=1,
    )
    assert summarize(outcome, str(tmp_path / "wh")) == (unpriced.description, False)
    figures_only = CheckOutcome(**{**vars(outcome), "description": None, "metadata": dict(unpriced.metadata)})
    assert summarize(figures_only, str(tmp_path / "wh"))[0] == unpriced.description


def test_a_missing_discovery_snapshot_is_named_before_any_work(
    no_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    discover = {"regions": ["us-east-1"], "accounts": [{"account_id": "111122223333"}], "snapshot": "no-such-folder"}
    config = write_config(tmp_path, sources={"invocation_logs": {"discover": discover}})
    code, out = cli(capsys, "run", "-c", str(config), "--start", DAY, "--end", DAY)
    assert code == EXIT_BAD_INPUT, out
    assert "no-such-folder" in out and "does not exist" in out and len(out.strip().splitlines()) == 1


# --- the report: words that match the reconciliation --------------------------------------------------------------


def test_idle_provisioned_hours_are_a_volume_part_named_like_their_status() -> None:
    """Provisioned Throughput billed with no call on the model is capacity nobody used (`idle_capacity`): the bridge
    files it under volume as `idle capacity`, never under price; the parts still sum to billed − estimated."""
    import polars as pl

    from pipeline.report.bridge import bridge_parts

    recon = pl.DataFrame(
        {
            "status": ["idle_capacity", "matched", "price_mismatch"],
            "usage_kind": ["provisioned", "provisioned", "input"],
            "estimated_cost_usd": [None, 1200.0, 10.0],
            "billed_cost_usd": [1452.0, 1452.0, 12.0],
            "volume_variance_usd": [None, None, 0.0],
            "price_variance_usd": [1452.0, None, 2.0],
        }
    )
    estimate, billed, parts = bridge_parts(recon)
    by_part = {(r["step"], r["part"]): r["usd"] for r in parts.iter_rows(named=True)}
    assert by_part[("volume variance", "idle capacity")] == pytest.approx(1452.0)
    assert by_part[("price variance", "provisioned hours")] == pytest.approx(252.0)  # hours that served calls
    assert ("price variance", "idle capacity") not in by_part
    assert sum(by_part.values()) == pytest.approx(billed - estimate)


def test_a_report_without_a_bill_says_so_instead_of_zero_dollars(tmp_path: Path) -> None:
    from dagster import materialize

    from pipeline.config import load_config
    from pipeline.defs.build import build_assets
    from pipeline.defs.resources import LedgerResource

    config = write_config(tmp_path, sources={"invocation_logs": {"s3": [str(_logs(tmp_path / "logs"))]}})
    result = materialize(
        build_assets(load_config(config)),
        partition_key=DAY,
        resources={"ledger": LedgerResource(config_path=str(config))},
        raise_on_error=False,
    )
    assert result.success
    html = (tmp_path / "wh" / "reports" / f"date={DAY}" / "daily.html").read_text()
    assert "no bill configured" in html.lower()
    assert "billed usage (AWS bill)" in html and "$0.00" not in html.split("billed usage (AWS bill)")[1][:300]
    within = [e for e in result.get_asset_check_evaluations() if e.check_name == "within_tolerance"]
    assert within and within[0].passed


def test_the_report_error_rate_is_the_tables_error_rate() -> None:
    """One definition: client errors + server errors + throttles over calls, in the tables, the tile and the chart."""
    import polars as pl

    from pipeline.report.health import health_table

    day = pl.DataFrame(
        {
            "base_model_id": ["m"],
            "invocations": [100],
            "client_errors": [1],
            "server_errors": [1],
            "throttles": [8],
            "latency_ms_p50": [100.0],
            "latency_ms_p95": [200.0],
            "latency_ms_p99": [300.0],
        }
    )
    health = health_table(day)
    assert health["error_rate"][0] == pytest.approx(0.10)  # as daily_usage_by_model.error_rate counts it
    assert health["throttle_rate"][0] == pytest.approx(0.08)
