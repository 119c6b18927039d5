"""Helpers the tests share: example records, Bedrock's S3 key layout, log records, config files, one-day runs.

Tests import these from here (`from tests.helpers import ...`); `conftest.py` holds only fixtures, which pytest
injects by name, so nothing imports from it.
"""

from __future__ import annotations

import gzip
import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parent / "fixtures" / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def free_port() -> int:
    """A free TCP port on the loopback interface, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
