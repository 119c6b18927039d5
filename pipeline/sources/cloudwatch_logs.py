"""Read one UTC day of invocation-log events from a CloudWatch Logs group with `FilterLogEvents`.

Each event's `message` is the same JSON record as in S3 (docs/formats/invocation-logs.md §3), and its timestamp equals
the record's, so
the day's window is exact. Pages are followed to the end; throttling is retried with backoff by botocore's
adaptive retry mode, plus our own bounded backoff around each page for errors botocore gives up on. A page
that still fails ends the read with a `SourceError` naming the group and the cause: a day is never written
from part of a log group.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.sources.s3_logs import SourceError

RETRYABLE = {
    "ThrottlingException",
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
    "RequestLimitExceeded",
    "LimitExceededException",
}
PAGE_ATTEMPTS = 6
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 20.0


def backoff_seconds(attempt: int) -> float:
    """Our wait before page attempt `attempt + 1`: doubling from `BACKOFF_BASE_S`, capped at `BACKOFF_MAX_S`."""
    return min(BACKOFF_BASE_S * 2**attempt, BACKOFF_MAX_S)


def _retryable(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return code in RETRYABLE or "Throttl" in code or status >= 500


@dataclass(frozen=True)
class LogEvent:
    """One CloudWatch event: where it came from and its message."""

    uri: str
    timestamp: dt.datetime
    message: str


def _window_ms(day: dt.date) -> tuple[int, int]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000) - 1


def _explain(log_group: str, region: str | None, exc: BaseException) -> SourceError:
    code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
    if code == "ResourceNotFoundException":
        cause = "log group not found: check the name and the region"
    elif code in ("AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException"):
        cause = "access denied: check the credentials in the AWS chain and logs:FilterLogEvents on the group"
    elif isinstance(exc, BotoCoreError):
        cause = "endpoint unreachable or no credentials: check the network, the region and AWS_ENDPOINT_URL"
    elif "Throttl" in code or code in ("RequestLimitExceeded", "LimitExceededException"):
        cause = (
            f"CloudWatch Logs kept throttling FilterLogEvents after {PAGE_ATTEMPTS} attempts with backoff; its "
            "request quota is per account and region and shared with other readers: run the day again later or "
            "lower the `aws_logs` pool in dagster.yaml"
        )
    else:
        cause = f"the service kept failing ({code or 'server error'}) after {PAGE_ATTEMPTS} attempts with backoff"
    return SourceError(f"cannot read CloudWatch log group {log_group} in {region or 'default region'}: {cause} ({exc})")


def iter_day_events(
    log_group: str,
    day: dt.date,
    region: str | None = None,
    client: Any | None = None,
    page_size: int = 10_000,
    sleep: Callable[[float], None] | None = None,
    late_hours: int = 0,
    early_hours: int = 0,
) -> Iterator[list[LogEvent]]:
    """Yield the day's events page by page (each page a list), following `nextToken` to the end.

    The window is the day's event times widened by `early_hours` before and `late_hours` after: an event's time
    is its ingestion, and a record stamped 23:59:59 may be ingested after midnight; the caller keeps records by
    their own timestamp. `sleep` waits between our page attempts (tests pass a recorder; default `time.sleep`).
    """
    sleep = sleep or time.sleep
    client = client or aws.client("logs", region)
    start_ms, end_ms = _window_ms(day)
    start_ms -= early_hours * 3_600_000
    end_ms += late_hours * 3_600_000
    kwargs: dict[str, Any] = {
        "logGroupName": log_group,
        "startTime": start_ms,
        "endTime": end_ms,
        "limit": page_size,
    }
    prefix = f"cloudwatch://{region or ''}/{log_group.lstrip('/')}"
    while True:
        response = None
        for attempt in range(PAGE_ATTEMPTS):
            try:
                response = client.filter_log_events(**kwargs)
                break
            except ClientError as exc:
                if _retryable(exc) and attempt < PAGE_ATTEMPTS - 1:
                    sleep(backoff_seconds(attempt))
                    continue
                raise _explain(log_group, region, exc) from exc
            except BotoCoreError as exc:
                if attempt < PAGE_ATTEMPTS - 1:
                    sleep(backoff_seconds(attempt))
                    continue
                raise _explain(log_group, region, exc) from exc
        assert response is not None
        page = [
            LogEvent(
                uri=f"{prefix}/{e.get('logStreamName', '')}#{e.get('eventId', '')}",
                timestamp=dt.datetime.fromtimestamp(e["timestamp"] / 1000, tz=dt.UTC),
                message=e.get("message", ""),
            )
            for e in response.get("events", [])
        ]
        if page:
            yield page
        token = response.get("nextToken")
        if not token or token == kwargs.get("nextToken"):
            return
        kwargs["nextToken"] = token
