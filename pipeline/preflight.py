"""Checks the CLI makes before any work starts, so that a mistake costs seconds and one line, not a run.

- `days_to_run`: the days asked for, in `YYYY-MM-DD`, inside the partitions (not before `start_date`, not a day
  that has not ended yet in UTC).
- `resolve_selection`: `--select` names against the assets there are (with a suggestion for a typo), widened to
  what must run with them (the assets a non-subsettable multi-asset produces together).
- `check_paths`: the config names a source of invocation logs (an empty config would run every asset on nothing
  and write empty tables), the local files and folders it names exist, and the price overrides load.
- `check_reachable`: one cheap call per place the run will touch: write and delete a probe in the warehouse,
  list one key under each S3 source's prefix (a bucket that exists with a mistyped prefix is named here, not by a
  failed step), ask each log group for one event. Clients here try an unreachable endpoint
  twice (`pipeline.aws.UNREACHABLE_ATTEMPTS`) and wait at most a few seconds, so a wrong endpoint, a missing
  bucket, a denied policy or missing credentials is named before a day is parsed.

Each failure is an `InputError` (what was asked is wrong: exit code 2) or an `UnreachableError` (the
environment is: exit code 3), with a message of one line that names the thing, the likely cause and what to do.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import LedgerConfig

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PROBE_CONNECT_TIMEOUT_S = 5
PROBE_READ_TIMEOUT_S = 15


class InputError(ValueError):
    """What the user asked for cannot be done as asked (a date, an asset name, a path); one line, with the fix."""


class UnreachableError(RuntimeError):
    """A source or the warehouse cannot be reached, read or written; one line naming it, the cause and the fix."""


def today_utc() -> dt.date:
    """Today in UTC: the day that has not ended yet, so not a partition."""
    return dt.datetime.now(dt.UTC).date()


def parse_day(value: str, flag: str) -> dt.date:
    """A `YYYY-MM-DD` day, or an `InputError` that shows the expected form."""
    text = value.strip()
    if not _DAY.match(text):
        raise InputError(f"{flag} {value!r} is not a date: use YYYY-MM-DD, e.g. 2026-11-01")
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"{flag} {value!r} is not a date ({exc}): use YYYY-MM-DD, e.g. 2026-11-01") from None


def days_to_run(
    start: str, end: str, yesterday: bool, cfg: LedgerConfig, today: dt.date | None = None
) -> list[dt.date]:
    """The inclusive list of days from `--start`/`--end` (or `--yesterday`), checked against the partitions."""
    today = today or today_utc()
    last_partition = today - dt.timedelta(days=1)
    if yesterday:
        if start or end:
            raise InputError("give either --yesterday or --start/--end, not both")
        first = last = last_partition
    elif not start or not end:
        raise InputError(
            "say which days to run: --start YYYY-MM-DD --end YYYY-MM-DD (inclusive; the same day twice for one day), "
            "or --yesterday"
        )
    else:
        first, last = parse_day(start, "--start"), parse_day(end, "--end")
    if last < first:
        raise InputError(f"--end {last} is before --start {first}")
    if first < cfg.start_date:
        raise InputError(
            f"--start {first} is before the first partition {cfg.start_date} (start_date in the config): "
            f"start at {cfg.start_date} or move start_date back"
        )
    if last > last_partition:
        raise InputError(
            f"--end {last} has not ended yet in UTC (a day is a partition once it is over): "
            f"the last day that can run is {last_partition}"
        )
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass
class Selection:
    """The asset names a run materializes, and the names added because they must run with what was asked."""

    names: list[str]
    added: dict[str, list[str]] = field(default_factory=dict)


def _groups(assets: Iterable[Any]) -> tuple[list[str], dict[str, list[str]]]:
    """Every asset name, and for each one the names its definition must produce with it (if not subsettable)."""
    from dagster import AssetsDefinition

    names: list[str] = []
    together: dict[str, list[str]] = {}
    for item in assets:
        if not isinstance(item, AssetsDefinition) or not item.keys:
            continue
        keys = sorted(k.to_user_string() for k in item.keys)
        names.extend(keys)
        if not item.can_subset and len(keys) > 1:
            for key in keys:
                together[key] = keys
    return sorted(set(names)), together


def resolve_selection(requested: Sequence[str], assets: Iterable[Any]) -> Selection:
    """Check `--select` names against `assets` and widen them to what must run together.

    `invocations` alone selects `rejected_records` too (one step writes both); the same holds for any
    multi-asset that cannot be subset, whoever adds it.
    """
    valid, together = _groups(assets)
    unknown = [name for name in requested if name not in valid]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, valid, n=1)
            hints.append(f"{name!r} (did you mean {close[0]}?)" if close else repr(name))
        raise InputError(f"unknown asset {', '.join(hints)} in --select; the assets are: {', '.join(valid)}")
    chosen: list[str] = []
    added: dict[str, list[str]] = {}
    for name in requested:
        for member in together.get(name, [name]):
            if member not in chosen:
                chosen.append(member)
                if member not in requested:
                    added.setdefault(name, []).append(member)
    return Selection(chosen, added)


def _is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def _local(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def check_sources(cfg: LedgerConfig, config_path: str) -> None:
    """The config names at least one place to read invocation logs from: without one every asset runs on nothing
    and the tables are empty, which looks like a day without calls. (Loading such a config stays allowed: the
    code location and tests load it; only a run refuses it.)"""
    logs = cfg.sources.invocation_logs
    if not (logs.s3 or logs.cloudwatch or logs.discover):
        raise InputError(
            f"{config_path} names no invocation logs to read: add sources.invocation_logs.s3 (the S3 destination "
            "of Bedrock's model invocation logging), .cloudwatch or .discover (docs/first-real-day.md)"
        )


def check_paths(cfg: LedgerConfig, config_path: str) -> None:
    """The config names a source, the local paths it names exist, and the price overrides load (file, line and
    reason otherwise)."""
    check_sources(cfg, config_path)
    for root in cfg.sources.invocation_logs.s3:
        if not _is_remote(root) and not _local(root).is_dir():
            raise InputError(
                f"sources.invocation_logs.s3: folder {root} does not exist (in {config_path}): fix the path; "
                "relative paths are read from the config's folder"
            )
    discover = cfg.sources.invocation_logs.discover
    if discover and discover.snapshot and not _local(discover.snapshot).is_dir():
        raise InputError(
            f"sources.invocation_logs.discover.snapshot: folder {discover.snapshot} does not exist (in {config_path}): "
            "fix the path, or remove snapshot to ask AWS itself"
        )
    for source in cfg.sources.billing:
        if not _is_remote(source.uri) and not _local(source.uri).exists():
            raise InputError(
                f"sources.billing: {source.uri} does not exist (in {config_path}): fix the path; relative paths "
                "are read from the config's folder"
            )
    overrides = cfg.pricing.overrides
    if overrides:
        if not _is_remote(overrides) and not _local(overrides).is_file():
            raise InputError(f"pricing.overrides: file {overrides} does not exist (in {config_path})")
        from pipeline.pricing import PriceCatalogError, load_catalog

        try:
            load_catalog(overrides)
        except PriceCatalogError as exc:
            raise InputError(str(exc)) from exc


def _client(service: str, region: str | None = None) -> Any:
    """A client for one probe: two tries at most, short timeouts, the same endpoint and credentials as a run."""
    import boto3
    from botocore.config import Config

    from pipeline import aws

    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    made = boto3.session.Session().client(
        service,
        region_name=region,
        endpoint_url=aws.endpoint_url(service),
        config=Config(
            retries={"mode": "standard", "max_attempts": aws.UNREACHABLE_ATTEMPTS},
            connect_timeout=PROBE_CONNECT_TIMEOUT_S,
            read_timeout=PROBE_READ_TIMEOUT_S,
        ),
    )
    aws._register_fail_fast(made.meta.events)
    return made


def _split(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.split("://", 1)[1].partition("/")
    return bucket, prefix.strip("/")


def explain_aws(exc: BaseException, what: str, action: str) -> str:
    """One line for an AWS failure on `what` (a bucket, a log group): the likely cause and what to do."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or "AWS"
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return (
            f"cannot {action} {what}: no AWS credentials found (environment, profile, SSO, instance role): "
            "set AWS_PROFILE, sign in (aws sso login) or export an access key in the environment"
        )
    if isinstance(exc, EndpointConnectionError):
        return (
            f"cannot {action} {what}: {endpoint} is unreachable (connection refused or host name unknown): check "
            "the network, the region and AWS_ENDPOINT_URL"
        )
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
        return f"cannot {action} {what}: {endpoint} did not answer in time: check the network, proxy and region"
    if isinstance(exc, NoRegionError):
        return f"cannot {action} {what}: no AWS region set: set AWS_REGION"
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket",) or (status == 404 and "Bucket" in code):
            return f"cannot {action} {what}: the bucket does not exist: check the name and the endpoint"
        if code == "ResourceNotFoundException":
            return f"cannot {action} {what}: not found: check the log group name and its region"
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "UnrecognizedClientException"):
            return f"cannot {action} {what}: the credentials were rejected ({code}): refresh them (SSO login, new keys)"
        if code in ("AccessDenied", "AccessDeniedException", "Forbidden", "AllAccessDisabled") or status == 403:
            return (
                f"cannot {action} {what}: access denied: grant the role the permissions in docs/iam-policy.json "
                "(and check the bucket policy)"
            )
        return f"cannot {action} {what}: {code or status}: {exc}"
    return f"cannot {action} {what}: {type(exc).__name__}: {exc}"


def _probe_warehouse(warehouse: str) -> None:
    check_writable(warehouse, "the warehouse", "warehouse in the config")


def check_writable(uri: str, what: str, fix: str) -> None:
    """Write and delete a probe under `uri` (a local folder, created if missing, or `s3://`): `what` names it in
    the message (`the warehouse`), `fix` says where it is set (`warehouse in the config`, `--out`)."""
    if not _is_remote(uri):
        folder = _local(uri)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".probe-{uuid.uuid4().hex}.tmp"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise UnreachableError(
                f"cannot write to {what} {uri}: {exc.strerror or exc}: pick a writable folder ({fix})"
            ) from exc
        return
    if not uri.startswith(("s3://", "s3a://")):
        raise InputError(f"{fix}: {uri}: only local folders and s3:// are supported")
    bucket, prefix = _split(uri)
    key = "/".join(p for p in (prefix, "_staging", f"probe-{uuid.uuid4().hex}.tmp") if p)
    s3 = _client("s3")
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
        s3.delete_object(Bucket=bucket, Key=key)
    except Exception as exc:  # noqa: BLE001 - any failure means nothing could be written there
        raise UnreachableError(explain_aws(exc, f"{what} {uri}", "write to")) from exc


def _probe_s3(uri: str, role: str, key: str, folder: bool = True) -> None:
    """One key listed under `uri`'s prefix (a `folder`: `logs` does not match `logs-old/`; else the prefix may
    also be one object, as a billing export file can be). An unreachable or
    missing bucket is an `UnreachableError`; a bucket with nothing under the prefix is an `InputError` naming
    the config key, since the prefix is what is wrong."""
    bucket, prefix = _split(uri)
    under = f"{prefix}/" if prefix and folder else prefix
    try:
        listed = _client("s3").list_objects_v2(Bucket=bucket, Prefix=under, MaxKeys=1)
    except Exception as exc:  # noqa: BLE001 - any failure means the step would fail the same way
        raise UnreachableError(explain_aws(exc, f"{role} {uri}", "list")) from exc
    if not listed.get("KeyCount") and not listed.get("Contents"):
        raise InputError(
            f"{key}: nothing under {uri} (the bucket {bucket} exists, the prefix {prefix or '/'} holds no object): "
            "check the prefix against the bucket's contents (aws s3 ls) and the destination AWS writes to"
        )


def _probe_log_group(log_group: str, region: str | None) -> None:
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    try:
        _client("logs", region).filter_log_events(
            logGroupName=log_group, startTime=now_ms - 1000, endTime=now_ms, limit=1
        )
    except Exception as exc:  # noqa: BLE001
        where = f"the CloudWatch log group {log_group} ({region or 'default region'})"
        raise UnreachableError(explain_aws(exc, where, "read")) from exc


def check_reachable(cfg: LedgerConfig, billing: bool = True, logs: bool = True) -> None:
    """One cheap call to the warehouse and each source the run will read (see the module docstring)."""
    _probe_warehouse(cfg.warehouse)
    if logs:
        for root in cfg.sources.invocation_logs.s3:
            if _is_remote(root):
                _probe_s3(root, "invocation logs", "sources.invocation_logs.s3")
        for group in cfg.sources.invocation_logs.cloudwatch:
            _probe_log_group(group.log_group, group.region)
    if billing:
        for source in cfg.sources.billing:
            if _is_remote(source.uri):
                _probe_s3(source.uri, "the billing export", "sources.billing", folder=False)
