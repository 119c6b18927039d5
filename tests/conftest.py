"""Shared fixtures: moto's standalone server over HTTP (the real boto3/s3fs stack talks to it), a fresh bucket, and
one demo run per session. Plain helpers live in `tests/helpers.py`; nothing imports from this module."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.helpers import free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs the `demo` fixture runs the whole pipeline once per session: slow by definition."""
    for item in items:
        if "demo" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's standalone server on a free loopback port for the whole session; stopped at the end."""
    port = free_port()
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
