"""Billing export manifests: which billing periods have a new delivery, so their days can be read again.

AWS rewrites a billing period's files for weeks after the month ends (refunds, credits, late usage); a new or
rewritten manifest is the sign. This lists the manifests under the configured exports with their modification
times, and tells the billing period from a manifest's path; the billing sensor (`defs/billing.py`) re-runs the
period's days when one is newer than the last it saw.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.aws import storage_options_for
from pipeline.config import BillingSource


def export_manifests(sources: Sequence[BillingSource]) -> dict[str, float]:
    """Export manifests under the billing sources, with their modification times: Data Exports
    (CUR 2.0 / FOCUS `metadata/…Manifest.json`) and legacy CUR (`<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json`,
    rewritten on every delivery of the month)."""
    import fsspec

    found: dict[str, float] = {}
    for source in sources:
        fs, root = fsspec.core.url_to_fs(source.uri, **storage_options_for(source.uri))
        try:
            paths = fs.glob(f"{root.rstrip('/')}/**/*Manifest.json")
        except (FileNotFoundError, PermissionError):  # nothing delivered yet (a 403 under prefix-limited List)
            continue
        for p in paths:
            try:
                info = fs.info(p)
            except (FileNotFoundError, PermissionError):
                continue
            mtime = info.get("LastModified") or info.get("mtime") or 0
            found[p] = mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime)
    return found


_LEGACY_RANGE = re.compile(r"^(\d{4})(\d{2})\d{2}-\d{8}$")


def billing_period_of(path: str) -> str | None:
    """The `YYYY-MM` of a `BILLING_PERIOD=` folder (Data Exports) or of a legacy CUR `yyyymmdd-yyyymmdd` folder in
    `path`; None for anything else (`BILLING_PERIOD=latest`, a tool's own folders), which the sensor skips instead
    of failing on every tick. The folder nearest the file wins: folders above the export are the user's names."""
    for part in reversed(path.split("/")):
        if part.upper().startswith("BILLING_PERIOD="):
            value = part.split("=", 1)[1]
            if re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value[:7]):
                return value[:7]
        if (m := _LEGACY_RANGE.match(part)) and 1 <= int(m.group(2)) <= 12:
            return f"{m.group(1)}-{m.group(2)}"
    return None
