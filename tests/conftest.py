"""Shared fixtures: moto's standalone server over HTTP (the real boto3/s3fs stack talks to it), the verbatim log
examples from the spec, and helpers to write logs in Bedrock's S3 layout."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

EXAMPLES = Path(__file__).resolve().parent / "fixtures" / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's standalone server on a free loopback port for the whole session; stopped at the end."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point every AWS client at moto through the standard chain (env), with dummy credentials."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("LEDGER_AWS_MAX_ATTEMPTS", "2")
    return moto_server


@pytest.fixture
def bucket(aws: str) -> str:
    """A fresh, empty bucket on moto."""
    name = f"logs-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=aws, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def load_example(prefix: str) -> dict[str, Any]:
    """A spec example record by its file-name prefix (`e2`, `e11` …)."""
    matches = sorted(EXAMPLES.glob(f"{prefix}-*.json"))
    if not matches:
        pytest.skip(f"spec example {prefix} not available (shared/ missing)")
    return json.loads(matches[0].read_text())


def log_key(account: str, region: str, when: str, suffix: str = "0123456789abcdef") -> str:
    """The S3 key Bedrock uses for a batch delivered at `when` (`YYYY-mm-ddTHH:MM:SS`)."""
    d, t = when.split("T")
    y, m, dd = d.split("-")
    hh, mi, ss = t.split(":")
    return (
        f"AWSLogs/{account}/BedrockModelInvocationLogs/{region}/{y}/{m}/{dd}/{hh}/"
        f"{y}{m}{dd}T{hh}{mi}{ss}000Z_{suffix}.json.gz"
    )


def gz_lines(records: list[Any]) -> bytes:
    """Records (dicts, or raw strings for broken lines) as a gzip NDJSON batch."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return gzip.compress(("\n".join(lines) + "\n").encode())


def make_record(request_id: str, timestamp: str, **overrides: Any) -> dict[str, Any]:
    """A small, valid Converse record."""
    rec: dict[str, Any] = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": timestamp,
        "accountId": "111122223333",
        "identity": {"arn": "arn:aws:sts::111122223333:assumed-role/search-api/alice"},
        "region": "us-east-1",
        "requestId": request_id,
        "operation": "Converse",
        "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
        "input": {"inputContentType": "application/json", "inputTokenCount": 100},
        "output": {
            "outputContentType": "application/json",
            "outputBodyJson": {"stopReason": "end_turn", "metrics": {"latencyMs": 500}},
            "outputTokenCount": 20,
        },
    }
    rec.update(overrides)
    return rec


def write_config(tmp_path: Path, **data: Any) -> Path:
    """A `ledger.yaml` in `tmp_path` (warehouse `tmp_path/wh`, partitions from 2026-01-01 unless given)."""
    data.setdefault("start_date", "2026-01-01")
    data.setdefault("warehouse", str(tmp_path / "wh"))
    path = tmp_path / "ledger.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_day(config_path: Path, day: str, selection: list[str] | None = None) -> Any:
    """Materialize one day of the ingestion assets (with their checks), or `selection`, against real files."""
    from dagster import materialize

    from pipeline.config import load_config
    from pipeline.defs.build import build_assets
    from pipeline.defs.resources import LedgerResource

    cfg = load_config(config_path)
    return materialize(
        build_assets(cfg),
        partition_key=day,
        resources={"ledger": LedgerResource(config_path=str(config_path))},
        selection=selection or ["invocations", "rejected_records"],
        raise_on_error=False,
    )


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo (2 days × 400 calls from 2026-11-01) run through every asset, in a throwaway Dagster instance
    at `<root>/dagster_home`; the sample and its warehouse are under `<root>/demo`. Shared by the demo and report
    tests so the pipeline runs once per session."""
    from pipeline.cli import run_days
    from pipeline.sample.demo import generate_all

    root = tmp_path_factory.mktemp("demo-run")
    home = root / "dagster_home"
    home.mkdir()
    old = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        sample = generate_all(root / "demo", dt.date(2026, 11, 1), days=2, records_per_day=400)
        assert run_days(str(sample.config_path), sample.days, echo=False)
    finally:
        if old is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = old
    return root
