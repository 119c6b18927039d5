"""The CLI off the happy path: every failure class ends in a short message that names the cause, a non-zero exit
code and no traceback, within seconds; a CLI run is a `ledger_daily_job` run of its partition."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipeline.cli import EXIT_BAD_INPUT, EXIT_RUN_FAILED, EXIT_UNREACHABLE, run_cli
from pipeline.config import CONFIG_ENV
from tests.helpers import free_port, gz_lines, log_key, make_record, write_config

DAY = "2026-03-10"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway Dagster instance; LEDGER_CONFIG restored after the test (the CLI sets it for its runs)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv(CONFIG_ENV, "unset-by-test")
    monkeypatch.delenv(CONFIG_ENV)
    return home


def logs_folder(tmp_path: Path, records: int = 2) -> Path:
    """A local folder in Bedrock's S3 layout with one delivery of `records` calls on DAY."""
    root = tmp_path / "logs"
    key = root / log_key("111122223333", "us-east-1", f"{DAY}T10:05:00")
    key.parent.mkdir(parents=True)
    key.write_bytes(gz_lines([make_record(f"r-{i}", f"{DAY}T10:0{i}:00Z") for i in range(records)]))
    return root


def LOGS(tmp_path: Path) -> dict[str, Any]:  # noqa: N802 - reads as the constant it stands for
    """`sources` with one local logs folder (a run refuses a config without sources before anything else)."""
    return {"invocation_logs": {"s3": [str(logs_folder(tmp_path))]}}


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run_cli(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def assert_short(output: str, *needles: str, max_lines: int = 6) -> None:
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert 1 <= len(lines) <= max_lines, output
    for needle in needles:
        assert needle in output, output


# --- what was asked is wrong: exit code 2 ---------------------------------------------------------------------


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli(capsys, "run", "-c", str(tmp_path / "nope.yaml"), "--start", DAY, "--end", DAY)
    assert code == EXIT_BAD_INPUT
    assert_short(out, "nope.yaml", "configuration file not found")


def test_unknown_config_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, warehous="typo")
    code, out = cli(capsys, "run", "-c", str(config), "--start", DAY, "--end", DAY)
    assert code == EXIT_BAD_INPUT
    assert_short(out, "warehous", "unknown key", "docs/configuration.md")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((), "--start YYYY-MM-DD --end YYYY-MM-DD"),
        (("--start", "2026-11-1", "--end", "2026-11-02"), "'2026-11-1' is not a date: use YYYY-MM-DD"),
        (("--start", "2025-12-31", "--end", "2026-01-02"), "before the first partition 2026-01-01"),
        (("--start", "2026-03-10", "--end", "2026-03-09"), "--end 2026-03-09 is before --start 2026-03-10"),
        (("--start", "2026-03-10", "--end", "2999-01-01"), "has not ended yet"),
        (("--yesterday", "--start", "2026-03-10"), "either --yesterday or --start/--end"),
    ],
)
def test_bad_days(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], needle: str) -> None:
    config = write_config(tmp_path)
    code, out = cli(capsys, "run", "-c", str(config), *args)
    assert code == EXIT_BAD_INPUT
    assert_short(out, needle)


def test_unknown_asset_in_select_suggests_the_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    code, out = cli(capsys, "run", "-c", str(config), "--start", DAY, "--end", DAY, "--select", "pricedinvocations")
    assert code == EXIT_BAD_INPUT
    assert_short(out, "'pricedinvocations' (did you mean priced_invocations?)", "chargeback")


def test_missing_local_source_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, sources={"invocation_logs": {"s3": [str(tmp_path / "missing")]}})
    code, out = cli(capsys, "run", "-c", str(config), "--start", DAY, "--end", DAY)
    assert code == EXIT_BAD_INPUT
    assert_short(out, "missing", "does not exist")


def test_bad_price_overrides_name_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overrides = tmp_path / "prices.csv"
    overrides.write_text("model_id,region,bogus_column\nx,*,1\n")
    config = write_config(tmp_path, pricing={"overrides": str(overrides)}, sources=LOGS(tmp_path))
    code, out = cli(capsys, "run", "-c", str(config), "--start", DAY, "--end", DAY)
    assert code == EXIT_BAD_INPUT
    assert_short(out, "prices.csv")


# --- the environment is wrong: exit code 3, in seconds --------------------------------------------------------


def test_unreachable_warehouse_fails_fast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A closed local port as the endpoint (what a stopped moto server or a wrong AWS_ENDPOINT_URL looks like)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config = write_config(tmp_path, warehouse="s3://ledger-warehouse/wh", sources=LOGS(tmp_path))
    started = time.monotonic()
    code, out = cli(capsys, "run", "-c", str(config), "--start", DAY, "--end", DAY)
    assert time.monotonic() - started < 20
    assert code == EXIT_UNREACHABLE
    assert_short(out, "s3://ledger-warehouse/wh", "unreachable", "AWS_ENDPOINT_URL")


@pytest.mark.slow
def test_unreachable_endpoint_fails_fast_inside_a_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the CLI's probe (a UI run): a refused connection is tried twice, not for minutes of backoff."""
    from pipeline import warehouse
    from pipeline.sources import s3_logs

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("LEDGER_AWS_MAX_ATTEMPTS", "8")  # the default budget, which throttling still gets
    started = time.monotonic()
    with pytest.raises(Exception, match="Could not connect"):
        warehouse.write_partition(pl.DataFrame({"a": [1]}), "s3://nowhere-bucket/wh", "t", DAY)
    with pytest.raises(s3_logs.SourceError, match="endpoint unreachable"):
        s3_logs.list_day("s3://nowhere-bucket/logs", dt.date(2026, 3, 10))
    assert time.monotonic() - started < 20


def test_missing_bucket_is_named(tmp_path: Path, aws: str, bucket: str, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(
        tmp_path,
        warehouse=f"s3://{bucket}/wh",
        sources={"invocation_logs": {"s3": ["s3://no-such-bucket-here/bedrock"]}},
    )
    code, out = cli(capsys, "run", "-c", str(config), "--start", DAY, "--end", DAY)
    assert code == EXIT_UNREACHABLE
    assert_short(out, "s3://no-such-bucket-here/bedrock", "bucket does not exist")


def test_missing_log_group_is_named(tmp_path: Path, aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(
        tmp_path, sources={"invocation_logs": {"cloudwatch": [{"log_group": "/no/such/group", "region": "us-east-1"}]}}
    )
    code, out = cli(capsys, "run", "-c", str(config), "--start", DAY, "--end", DAY)
    assert code == EXIT_UNREACHABLE
    assert_short(out, "/no/such/group", "not found")


@pytest.fixture
def forbidding_endpoint() -> Iterator[str]:
    """An S3 endpoint that answers every request with 403 AccessDenied (a policy that does not allow us)."""

    class Deny(BaseHTTPRequestHandler):
        def _deny(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            body = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
            self.send_response(403)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _deny

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Deny)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_forbidden_warehouse_is_named(
    tmp_path: Path, forbidding_endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", forbidding_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    config = write_config(tmp_path, warehouse="s3://locked-bucket/wh", sources=LOGS(tmp_path))
    code, out = cli(capsys, "run", "-c", str(config), "--start", DAY, "--end", DAY)
    assert code == EXIT_UNREACHABLE
    assert_short(out, "s3://locked-bucket/wh", "access denied", "docs/iam-policy.json")
    assert (ROOT / "docs" / "iam-policy.json").is_file()


def test_no_credentials_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    config = write_config(tmp_path, warehouse="s3://some-bucket/wh", sources=LOGS(tmp_path))
    code, out = cli(capsys, "run", "-c", str(config), "--start", DAY, "--end", DAY)
    assert code == EXIT_UNREACHABLE
    assert_short(out, "no AWS credentials")


# --- a run fails: exit code 1, one line per failed step -------------------------------------------------------


@pytest.mark.slow
def test_failed_step_names_the_step_and_the_cause(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A billing export folder without any export in it: the billing step fails with the reader's message."""
    empty_export = tmp_path / "billing"
    empty_export.mkdir()
    config = write_config(
        tmp_path,
        sources={"invocation_logs": {"s3": [str(logs_folder(tmp_path))]}, "billing": [{"uri": str(empty_export)}]},
    )
    code, out = cli(capsys, "run", "-c", str(config), "--start", DAY, "--end", DAY, "--select", "billing_line_items")
    assert code == EXIT_RUN_FAILED
    assert_short(out, f"{DAY}: billing_refresh_job run", "FAILED", "step billing_line_items failed", str(empty_export))
    assert "CheckError" not in out


def test_verbose_adds_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli(capsys, "--verbose", "run", "-c", str(tmp_path / "nope.yaml"), "--start", DAY, "--end", DAY)
    assert code == EXIT_BAD_INPUT
    assert "Traceback" in out and "configuration file not found" in out


# --- a run is a job run of its partition ----------------------------------------------------------------------


@pytest.mark.slow
def test_cli_run_is_a_ledger_daily_job_run_of_its_partition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dagster_home: Path
) -> None:
    from dagster import AssetKey, DagsterEventType, DagsterInstance, RunsFilter

    config = write_config(tmp_path, sources={"invocation_logs": {"s3": [str(logs_folder(tmp_path))]}})
    code, out = cli(capsys, "run", "-c", str(config), "--start", DAY, "--end", DAY, "--select", "invocations")
    assert code == 0, out
    assert "--select invocations also runs rejected_records" in out
    assert f"{DAY}: ledger_daily_job run" in out
    with DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert [(r.job_name, r.tags.get("dagster/partition")) for r in runs] == [("ledger_daily_job", DAY)]
        # filed under the code location, like the UI's own runs: the job's page and the timeline list it
        assert runs[0].remote_job_origin.location_name == "bedrock-ledger"
        by_label = instance.get_runs(RunsFilter(tags={".dagster/repository": "__repository__@bedrock-ledger"}))
        assert [r.run_id for r in by_label] == [runs[0].run_id]
        assert runs[0].asset_selection == {AssetKey("invocations"), AssetKey("rejected_records")}
        # the daily job's checks of those assets, not every check they have: the freshness check is about now
        checks = {c.name for c in runs[0].asset_check_selection or ()}
        assert "log_objects_found" in checks and "log_delivery_complete" in checks
        assert "invocations_fresh" not in checks
        planned = instance.get_records_for_run(
            runs[0].run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
        ).records
        assert {r.event_log_entry.dagster_event.asset_check_planned_data.check_name for r in planned} == checks
        materialized = instance.get_latest_materialization_event(AssetKey("rejected_records"))
        assert materialized is not None and materialized.run_id == runs[0].run_id


@pytest.mark.slow
def test_yesterday_runs_the_last_complete_day(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dagster import DagsterInstance

    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    config = write_config(tmp_path, start_date="2026-01-01", sources=LOGS(tmp_path))
    code, out = cli(capsys, "run", "-c", str(config), "--yesterday", "--select", "billing_line_items")
    assert code == 0, out
    assert f"{yesterday}: billing_refresh_job run" in out
    with DagsterInstance.get() as instance:
        assert [(r.job_name, r.tags.get("dagster/partition")) for r in instance.get_runs()] == [
            ("billing_refresh_job", yesterday)
        ]


@pytest.mark.slow
def test_a_day_without_log_objects_fails_a_check_naming_the_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty-logs"
    empty.mkdir()
    config = write_config(tmp_path, sources={"invocation_logs": {"s3": [str(empty)]}})
    code, out = cli(capsys, "run", "-c", str(config), "--start", DAY, "--end", DAY, "--select", "invocations")
    assert code == 0, out  # the run works; the day's data is what is wrong
    assert "check invocations:log_objects_found did not pass" in out
    assert str(empty) in out and "logging is on" in out


def test_the_entry_module_imports_nothing() -> None:
    """Parse workers run the main module again (`__mp_main__`): `pipeline.cli` must cost them nothing."""
    code = "import sys, pipeline.cli; print(sorted({'typer', 'pydantic', 'pipeline.config'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stdout


@pytest.mark.slow
def test_a_day_through_python_m(tmp_path: Path) -> None:
    """`python -m pipeline.cli run` in its own process (the collector paused for the start-up, then resumed)."""
    empty = tmp_path / "empty-logs"
    empty.mkdir()
    config = write_config(tmp_path, sources={"invocation_logs": {"s3": [str(empty)]}})
    args = ["run", "-c", str(config), "--start", DAY, "--end", DAY, "--select", "invocations"]
    env = {**os.environ, "DAGSTER_HOME": os.environ["DAGSTER_HOME"]}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{DAY}: ledger_daily_job run" in proc.stdout
    assert "check invocations:log_objects_found did not pass" in proc.stdout


@pytest.mark.slow
def test_the_installed_command_prints_one_line(tmp_path: Path) -> None:
    """The real console script in a fresh process: no rich traceback, no Dagster log, one line on stderr."""
    config = write_config(tmp_path)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pipeline.cli import main; main()",
            "run",
            "-c",
            str(config),
            "--start",
            "2026-11-1",
            "--end",
            "2026-11-02",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "not a date" in proc.stderr or "say which days" in proc.stderr
