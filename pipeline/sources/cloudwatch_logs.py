"""Read one UTC day of invocation-log events from a CloudWatch Logs group with `FilterLogEvents`.

Each event's `message` is the same JSON record as in S3 (spec §3), and its timestamp equals the record's, so
the day's window is exact. Pages are followed to the end; throttling is retried with backoff by botocore's
adaptive retry mode, plus our own bounded backoff around each page for errors botocore gives up on.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.sources.s3_logs import SourceError

RETRYABLE = {"ThrottlingException", "ServiceUnavailableException", "InternalFailure", "RequestLimitExceeded"}
PAGE_ATTEMPTS = 6


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
    else:
        cause = "the service kept failing after retries"
    return SourceError(f"cannot read CloudWatch log group {log_group} in {region or 'default region'}: {cause} ({exc})")


def iter_day_events(
    log_group: str,
    day: dt.date,
    region: str | None = None,
    client: Any | None = None,
    page_size: int = 10_000,
    sleep: Any = time.sleep,
) -> Iterator[list[LogEvent]]:
    """Yield the day's events page by page (each page a list), following `nextToken` to the end."""
    client = client or aws.client("logs", region)
    start_ms, end_ms = _window_ms(day)
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
                code = exc.response.get("Error", {}).get("Code", "")
                if code in RETRYABLE and attempt < PAGE_ATTEMPTS - 1:
                    sleep(min(2**attempt * 0.5, 20))
                    continue
                raise _explain(log_group, region, exc) from exc
            except BotoCoreError as exc:
                if attempt < PAGE_ATTEMPTS - 1:
                    sleep(min(2**attempt * 0.5, 20))
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
