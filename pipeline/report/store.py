"""Where reports live: `<warehouse>/reports/date=YYYY-MM-DD/{daily,month_to_date}.html`, local or on S3.

One folder per partition day, like the tables, so a rerun of a day replaces exactly its own files. The names
never end in `.parquet`, so no table glob picks them up. A file is replaced whole: a local write goes to a hidden
temporary name first (naming its host and process) and is renamed into place; an S3 PUT is atomic by itself. A
temporary file left by a writer killed mid-write (`kill -9`) is removed by the next write of that folder.
"""

from __future__ import annotations

import datetime as dt
import os
import urllib.parse
from pathlib import Path
from typing import Literal

from pipeline import warehouse
from pipeline.aws import storage_options_for
from pipeline.vocabulary import is_local

ReportKind = Literal["daily", "month_to_date"]
REPORTS = "reports"


def report_uri(warehouse: str, day: dt.date | str, kind: ReportKind) -> str:
    """The report of one partition day: `daily` (that day) or `month_to_date` (the 1st through that day)."""
    return f"{warehouse.rstrip('/')}/{REPORTS}/date={day}/{kind}.html"


def report_link(uri: str, base_url: str | None = None, warehouse: str | None = None) -> str:
    """A link a person can follow: `base_url` + the path under the warehouse when configured, else a `file://`
    URL for a local report, else the `s3://` URI itself."""
    if base_url and warehouse and uri.startswith(warehouse.rstrip("/")):
        rel = uri[len(warehouse.rstrip("/")) :].lstrip("/")
        return f"{base_url.rstrip('/')}/{rel}"
    if is_local(uri):
        # Quoted like `Path.as_uri`, but keeping `=` readable (`date=…` folders) — it is legal in a URL path.
        return "file://" + urllib.parse.quote(str(Path(uri.removeprefix("file://")).resolve()), safe="/=")
    return uri


def write_report(html: str, uri: str) -> str:
    """Write one report file (replacing it whole) and return where it went."""
    data = html.encode("utf-8")
    if is_local(uri):
        target = Path(uri.removeprefix("file://"))
        target.parent.mkdir(parents=True, exist_ok=True)
        warehouse.remove_stale_tmp(target.parent, target.name)
        tmp = target.parent / warehouse.tmp_name(target.name)
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return str(target)
    import fsspec  # when used: loading the definitions must not pay for it

    fs, path = fsspec.core.url_to_fs(uri, **storage_options_for(uri))
    # The content type makes a browser (S3 website, CloudFront, a presigned URL) render the page, not download it.
    fs.pipe_file(path, data, ContentType="text/html; charset=utf-8")
    return uri


def report_exists(uri: str) -> bool:
    """Whether a report file is there (local or S3)."""
    if is_local(uri):
        return Path(uri.removeprefix("file://")).is_file()
    import fsspec  # when used: loading the definitions must not pay for it

    fs, path = fsspec.core.url_to_fs(uri, **storage_options_for(uri))
    return bool(fs.exists(path))
