"""docs/first-real-day.md followed as written, against a moto-backed S3 world: Bedrock's logs in the logs bucket,
a CUR 2.0 export in the billing bucket, an empty warehouse bucket. The page's `ledger.yaml`, its `run` command
and its notebook code are taken from the page itself, so the page cannot drift from what works."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline import warehouse
from pipeline.cli import run_cli
from pipeline.config import CONFIG_ENV, load_config

PAGE = Path(__file__).resolve().parents[1] / "docs" / "first-real-day.md"
BUCKETS = ("my-bedrock-logs", "my-billing-exports", "my-ledger-warehouse")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), flags=re.S)


def _upload(s3: Any, folder: Path, bucket: str, prefix: str) -> int:
    """Every file under `folder` to `s3://bucket/prefix/<relative path>`, as AWS would have delivered it."""
    count = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(folder).as_posix()}", Body=path.read_bytes())
        count += 1
    return count


@pytest.fixture
def aws_world(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The three buckets of the page, filled the way AWS fills them, from one small sample day."""
    from pipeline.sample.bill import EXPORT_NAMES
    from pipeline.sample.demo import DEMO_START, generate_all

    s3 = boto3.client("s3", endpoint_url=aws, region_name="us-east-1")
    for bucket in BUCKETS:
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=bucket)
    sample = generate_all(tmp_path / "aws-side", DEMO_START, days=1, records_per_day=120)
    assert _upload(s3, sample.root / "logs", "my-bedrock-logs", "bedrock/invocation-logs") > 0
    export = sample.root / "billing" / "cur2" / EXPORT_NAMES["cur2"]
    assert _upload(s3, export, "my-billing-exports", "cur2/my-export") > 0
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")  # polars' object store, for moto's plain-HTTP endpoint
    return aws


@pytest.mark.slow
@pytest.mark.usefixtures("aws_world")
def test_a_person_following_the_page_gets_a_reconciled_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    here = tmp_path / "my-ledger"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv(CONFIG_ENV, "unset-by-test")
    monkeypatch.delenv(CONFIG_ENV)

    # 5. ledger.yaml, as the page writes it
    (here / "ledger.yaml").write_text(_blocks("yaml")[0])
    cfg = load_config("ledger.yaml")
    assert cfg.warehouse == "s3://my-ledger-warehouse/warehouse"

    # 6. the first run, the page's command
    commands = [line for block in _blocks("bash") for line in block.splitlines() if "bedrock-ledger run" in line]
    args = shlex.split(commands[0].split("#")[0])
    assert args[:3] == ["uv", "run", "bedrock-ledger"]
    code = run_cli(args[3:])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert "Dagster home: " in out.out and "2026-11-01: ledger_daily_job run" in out.out and " ok" in out.out
    assert "bedrock-ledger ui --config" in out.out
    for line in out.out.splitlines():
        if line.strip().startswith("check "):
            assert "[WARN]" in line or "[ERROR]" in line, line
    assert sorted(p.name for p in here.iterdir()) == ["ledger.yaml"]  # nothing else lands in the working folder

    # a reconciled day: the estimate met the bill
    recon = warehouse.read_partition(cfg.warehouse, "cost_reconciliation", "2026-11-01")
    assert recon.height > 0
    assert (recon["status"] == "matched").sum() > 0
    assert recon["billed_cost_usd"].sum() > 0

    # 8. the notebook, as written
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(_blocks("python")[0], str(PAGE), "exec"), {})  # noqa: S102 - the page's own code
    text = printed.getvalue()
    assert "matched" in text and "cost_center" in text


def test_the_page_names_what_it_needs() -> None:
    text = PAGE.read_text()
    for needle in ("iam-policy.json", "uv sync --locked --compile-bytecode", "bedrock-ledger ui", "CUR 2.0"):
        assert needle in text
