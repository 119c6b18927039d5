"""AWS access in one place: the standard credential chain, `AWS_ENDPOINT_URL`, and retries with backoff.

No credentials are read from files of ours; boto3/s3fs find them the usual way (env, profile, SSO, instance
role). `AWS_ENDPOINT_URL` (and the per-service `AWS_ENDPOINT_URL_<SERVICE>`) points every client at another
endpoint: moto in tests, an S3-compatible store, a VPC endpoint.

Retries: botocore's `adaptive` mode by default (exponential backoff with jitter, and a client-side rate limit
that slows down after throttling, which is what S3 `SlowDown` and CloudWatch `ThrottlingException` ask for).
`LEDGER_AWS_MAX_ATTEMPTS` (botocore's `max_attempts`: retries after the first try) and `LEDGER_AWS_RETRY_MODE`
tune it; they are read when a client is made, not at import, so a test or a run can change them through the
environment. s3fs adds its own few retries around each S3 call (dropped connections, `SlowDown`), so a
persistent S3 fault fails after botocore's attempts × s3fs' retries.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: loading the definitions must not pay for boto3
    from botocore.config import Config

DEFAULT_MAX_ATTEMPTS = 8
UNREACHABLE_ATTEMPTS = 2
"""Tries of a request whose endpoint refuses the connection or whose host name does not resolve. Backoff is for
a service that answers (throttling, 5xx); an endpoint that is not there will not appear within minutes of
retries, and a person waiting on the CLI wants the one-line reason in seconds."""
DEFAULT_RETRY_MODE = "adaptive"
RETRY_MODES = ("legacy", "standard", "adaptive")


def retry_settings() -> dict[str, Any]:
    """botocore's `retries` setting from the environment (retries ≥ 0, a known mode), with safe defaults."""
    try:
        attempts = max(0, int(os.environ.get("LEDGER_AWS_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)))
    except ValueError:
        attempts = DEFAULT_MAX_ATTEMPTS
    mode = os.environ.get("LEDGER_AWS_RETRY_MODE", DEFAULT_RETRY_MODE)
    return {"mode": mode if mode in RETRY_MODES else DEFAULT_RETRY_MODE, "max_attempts": attempts}


def retry_config() -> Config:
    """The botocore client config every client of ours uses: retries and bounded timeouts."""
    from botocore.config import Config

    return Config(retries=retry_settings(), connect_timeout=10, read_timeout=60)


def fail_fast_when_unreachable(attempts: int = 0, caught_exception: BaseException | None = None, **_: Any) -> None:
    """botocore `needs-retry` handler: stop retrying refused connections and DNS failures after
    `UNREACHABLE_ATTEMPTS` tries by raising the error itself; everything else is left to the retry mode.

    botocore has one attempt budget for every kind of failure; this gives unreachable endpoints a small one.
    """
    from botocore.exceptions import EndpointConnectionError

    if isinstance(caught_exception, EndpointConnectionError) and attempts >= UNREACHABLE_ATTEMPTS:
        raise caught_exception


def _register_fail_fast(events: Any) -> None:
    events.register("needs-retry", fail_fast_when_unreachable, unique_id="bedrock-ledger-fail-fast")


_AIO_SESSION: Any = None


def _aio_session() -> Any:
    """One aiobotocore session per process for s3fs, carrying the fail-fast retry handler to its clients."""
    global _AIO_SESSION
    if _AIO_SESSION is None:
        from aiobotocore.session import AioSession

        session = AioSession()
        _register_fail_fast(session.get_component("event_emitter"))
        _AIO_SESSION = session
    return _AIO_SESSION


def endpoint_url(service: str) -> str | None:
    """The endpoint override for `service`, if the environment sets one."""
    specific = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}")
    return specific or os.environ.get("AWS_ENDPOINT_URL") or None


def client(service: str, region: str | None = None) -> Any:
    """A boto3 client with retries (throttling backs off) and the endpoint override applied."""
    import boto3

    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    made = boto3.session.Session().client(
        service, region_name=region, endpoint_url=endpoint_url(service), config=retry_config()
    )
    _register_fail_fast(made.meta.events)
    return made


def s3_storage_options() -> dict[str, Any]:
    """fsspec/s3fs options: the endpoint override and retries; credentials stay with the default chain."""
    opts: dict[str, Any] = {
        "config_kwargs": {"retries": retry_settings(), "connect_timeout": 10, "read_timeout": 60},
        "session": _aio_session(),
    }
    url = endpoint_url("s3")
    if url:
        opts["endpoint_url"] = url
    return opts


def storage_options_for(uri: str) -> dict[str, Any]:
    """Storage options for a local path or `s3://` URI."""
    return s3_storage_options() if uri.startswith(("s3://", "s3a://")) else {}
