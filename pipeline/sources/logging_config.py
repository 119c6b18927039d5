"""Bedrock's own model-invocation logging configuration, per account × region, as rows of `logging_configuration`.

`GetModelInvocationLoggingConfiguration` answers `{"loggingConfig": {s3Config: {bucketName, keyPrefix},
cloudWatchConfig: {logGroupName, roleArn, largeDataDeliveryS3Config}, textDataDeliveryEnabled, …}}`, or no
`loggingConfig` at all where logging was never set up (moto answers `"loggingConfig": null`; both mean off).
Logging is on when at least one destination (S3 or CloudWatch Logs) is set. The per-modality switches default to
on when omitted (docs/formats/invocation-logs.md §1: AWS turns all of them on when only some are given), so an omitted
flag is stored as `true` — the stored value is what Bedrock does, not what the caller typed.

A failed call (access denied, no such region) is a row with `error` set and `logging_enabled` null: the region is
reported, never skipped.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.config import Discover, InvocationLogSources
from pipeline.sources.aws_accounts import AwsAccess
from pipeline.sources.s3_logs import SourceError

DELIVERY_FLAGS: dict[str, str] = {
    "text_data_delivery": "textDataDeliveryEnabled",
    "image_data_delivery": "imageDataDeliveryEnabled",
    "embedding_data_delivery": "embeddingDataDeliveryEnabled",
    "video_data_delivery": "videoDataDeliveryEnabled",
    "audio_data_delivery": "audioDataDeliveryEnabled",
}
DESTINATION_COLUMNS = ("s3_uri", "cloudwatch_log_group", "cloudwatch_role_arn", "large_data_s3_uri")


def _s3_uri(cfg: dict[str, Any] | None) -> str | None:
    if not cfg or not cfg.get("bucketName"):
        return None
    prefix = (cfg.get("keyPrefix") or "").strip("/")
    return f"s3://{cfg['bucketName']}/{prefix}" if prefix else f"s3://{cfg['bucketName']}"


def parse_logging_config(response: dict[str, Any] | None) -> dict[str, Any]:
    """One API answer as the table's configuration columns (see the module docstring for the rules)."""
    lc = (response or {}).get("loggingConfig") or {}
    cw = lc.get("cloudWatchConfig") or {}
    s3 = _s3_uri(lc.get("s3Config"))
    group = cw.get("logGroupName") or None
    row: dict[str, Any] = {
        "logging_enabled": bool(s3 or group),
        "s3_uri": s3,
        "cloudwatch_log_group": group,
        "cloudwatch_role_arn": cw.get("roleArn") or None,
        "large_data_s3_uri": _s3_uri(cw.get("largeDataDeliveryS3Config")),
    }
    for col, key in DELIVERY_FLAGS.items():
        value = lc.get(key)
        row[col] = (True if value is None else bool(value)) if row["logging_enabled"] else False
    return row


def discover_logging(access: AwsAccess, discover: Discover) -> list[dict[str, Any]]:
    """Ask every configured account × region for its logging configuration (one row each, errors included)."""
    observed_at = access.now()
    rows = []
    for account in discover.accounts:
        for region in discover.regions:
            base = {
                "account_id": account.account_id,
                "region": region,
                "role_arn": account.role_arn,
                "observed_at": observed_at,
            }
            try:
                client = access.client("bedrock", account.account_id, region, account.role_arn)
                resp = client.get_model_invocation_logging_configuration()
                rows.append({**base, **parse_logging_config(resp), "error": None})
            except (ClientError, BotoCoreError, SourceError) as exc:
                rows.append({**base, "logging_enabled": None, "error": _one_line(exc)})
    return rows


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def discovered_sources(config_rows: pl.DataFrame, access: AwsAccess | None = None) -> tuple[list[str], list[dict]]:
    """The S3 roots and CloudWatch log groups a day's configuration points at, each once, in a stable order."""
    if config_rows.is_empty():
        return [], []
    on = config_rows.filter(pl.col("logging_enabled").fill_null(False))
    s3 = sorted({u for u in on["s3_uri"].to_list() if u})
    roots = [access.log_root(u) if access else u for u in s3]
    # A log group of another account would be read with the pipeline's own credentials, which cannot see it: only
    # the pipeline's own accounts' groups are added (other accounts: S3 delivery, or list the group explicitly).
    own = on.filter(pl.col("role_arn").is_null()) if "role_arn" in on.columns else on
    groups = sorted(
        {(g, r) for g, r in zip(own["cloudwatch_log_group"].to_list(), own["region"].to_list(), strict=True) if g}
    )
    return roots, [{"log_group": g, "region": r} for g, r in groups]


def with_discovered(sources: InvocationLogSources, roots: list[str], groups: list[dict]) -> InvocationLogSources:
    """The explicit source lists plus what discovery found (a location listed both ways is read once)."""
    from pipeline.config import CloudWatchSource

    s3 = list(sources.s3)
    for root in roots:
        if root.rstrip("/") not in {s.rstrip("/") for s in s3}:
            s3.append(root)
    cw = list(sources.cloudwatch)
    have = {(c.log_group, c.region) for c in cw}
    for g in groups:
        if (g["log_group"], g["region"]) not in have:
            cw.append(CloudWatchSource(**g))
    return sources.model_copy(update={"s3": s3, "cloudwatch": cw})
