"""AWS access in one place: the standard credential chain, `AWS_ENDPOINT_URL`, and retries with backoff.

No credentials are read from files of ours; boto3/s3fs find them the usual way (env, profile, SSO, instance
role). `AWS_ENDPOINT_URL` (and the per-service `AWS_ENDPOINT_URL_<SERVICE>`) points every client at another
endpoint: moto in tests, an S3-compatible store, a VPC endpoint.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config

RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": int(os.environ.get("LEDGER_AWS_MAX_ATTEMPTS", "8"))},
    connect_timeout=10,
    read_timeout=60,
)


def endpoint_url(service: str) -> str | None:
    """The endpoint override for `service`, if the environment sets one."""
    specific = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}")
    return specific or os.environ.get("AWS_ENDPOINT_URL") or None


def client(service: str, region: str | None = None) -> Any:
    """A boto3 client with adaptive retries (throttling backs off) and the endpoint override applied."""
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return boto3.session.Session().client(
        service, region_name=region, endpoint_url=endpoint_url(service), config=RETRY_CONFIG
    )


def s3_storage_options() -> dict[str, Any]:
    """fsspec/s3fs options: the endpoint override and retries; credentials stay with the default chain."""
    opts: dict[str, Any] = {"config_kwargs": {"retries": {"mode": "adaptive", "max_attempts": 8}}}
    url = endpoint_url("s3")
    if url:
        opts["endpoint_url"] = url
    return opts


def storage_options_for(uri: str) -> dict[str, Any]:
    """Storage options for a local path or `s3://` URI."""
    return s3_storage_options() if uri.startswith(("s3://", "s3a://")) else {}
