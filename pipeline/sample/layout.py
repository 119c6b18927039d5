"""Bedrock's S3 delivery layout (docs/formats/invocation-logs.md §2): folder per delivery hour, deterministic gzip,
where paths point.

Shared by the record renderer (offloaded bodies live under the hour folder's `data/`) and the delivery writer.
"""

from __future__ import annotations

import gzip
import os
import time

PERMISSION_MARKER = "amazon-bedrock-logs-permission-check"


def hour_prefix(account: str, region: str, ts_ms: int) -> str:
    t = time.gmtime(ts_ms // 1000)
    return f"AWSLogs/{account}/BedrockModelInvocationLogs/{region}/{time.strftime('%Y/%m/%d/%H', t)}"


def gzip_bytes(data: bytes) -> bytes:
    """Gzip with a zero mtime and no file name, so identical content gives identical bytes."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def delivery_root(dest: str) -> str:
    """Where sidecar paths point: the `s3://` URI as given, or the absolute local folder."""
    dest = dest.rstrip("/")
    if "://" in dest and not dest.startswith("file://"):
        return dest
    return os.path.abspath(dest.removeprefix("file://"))
