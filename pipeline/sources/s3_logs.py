"""Find and read one day's invocation-log objects under an S3 root (or a local folder with the same layout).

Layout (docs/formats/invocation-logs.md §2.1):
`<root>/AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/<file>.json.gz`.
Folders follow the *delivery* time, so records of the last minutes of a day land in the next day's first folders:
a day reads its own 24 hours plus the next day's first `late_hours` hour folders and the previous day's last
`early_hours` (config `sources.invocation_logs.late_hours/early_hours`), and the caller keeps records by their
timestamp.
Permission-check markers, `data/` sidecars (offloaded bodies), zero-byte and non-`.json.gz` objects are skipped
and counted. A key is judged only by the part AWS writes (below the region folder), never by the configured root:
a root such as `s3://lake/data/bedrock` is a name the user chose, not a sidecar folder.
"""

from __future__ import annotations

import datetime as dt
import errno
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import fsspec

from pipeline.aws import storage_options_for
from pipeline.vocabulary import is_local

LOG_DIR = "BedrockModelInvocationLogs"
PERMISSION_MARKER = "amazon-bedrock-logs-permission-check"
_FILE_TIME = re.compile(r"(?P<ts>\d{8}T\d{6})(?P<ms>\d{3})?Z")
_HOUR_FOLDER = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+$")


class SourceError(RuntimeError):
    """A source that cannot be read at all; the message names it and the likely cause."""


class ServiceUnavailable(SourceError):
    """S3 kept throttling, failing (5xx) or dropping the connection after every retry.

    Not a property of the object: a later run will read it, so a caller should fail the run (or at least mark
    the day incomplete) rather than treat the object as bad data.
    """


# What S3 says when it is overloaded or failing; s3fs turns these into OSError(EBUSY / EREMOTEIO).
# Codes only, never bare status numbers: those also occur in key names (`…T150500000Z_…`).
_TRANSIENT_TEXT = ("SlowDown", "reduce your request rate", "ServiceUnavailable", "InternalError", "RequestTimeout")
_TRANSIENT_ERRNO = frozenset({errno.EBUSY, errno.EREMOTEIO, errno.ETIMEDOUT, errno.ECONNRESET})


@dataclass(frozen=True)
class LogObject:
    """One delivered log object to read."""

    uri: str
    size: int
    delivered_at: dt.datetime | None
    folder_hour: dt.datetime | None = None
    """Start of the `YYYY/MM/DD/HH` folder the object was delivered to (None outside that layout): which days'
    windows cover the object, so which day owns each of its records, follows from it."""


@dataclass
class Listing:
    """What a day's listing found: the objects to read and what was skipped, by reason."""

    objects: list[LogObject] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def folder_hour(path: str) -> dt.datetime | None:
    """The start of the hour folder (`…/YYYY/MM/DD/HH/<file>`) a key was delivered to."""
    m = _HOUR_FOLDER.search(path)
    if not m:
        return None
    try:
        year, month, day, hour = (int(g) for g in m.groups())
        return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)
    except ValueError:
        return None


def day_folders(day: dt.date, late_hours: int, early_hours: int) -> list[str]:
    """The folders (relative to a region) a day reads: whole days as `YYYY/MM/DD`, single hours as `…/HH`."""
    prev, nxt = day - dt.timedelta(days=1), day + dt.timedelta(days=1)
    early = [f"{prev:%Y/%m/%d}/{h:02d}" for h in range(24 - early_hours, 24)]
    late = [f"{nxt:%Y/%m/%d}/{h:02d}" for h in range(late_hours)]
    return [*early, f"{day:%Y/%m/%d}", *late]


def file_time(name: str) -> dt.datetime | None:
    """The delivery time in a log file name (`20241018T074319996Z_…`), used when a record's timestamp is bad."""
    m = _FILE_TIME.search(name.rsplit("/", 1)[-1])
    if not m:
        return None
    t = m.group("ts")  # YYYYMMDDTHHMMSS, digits by the pattern; sliced, not strptime'd (5x cheaper per object)
    try:
        ts = dt.datetime(
            int(t[:4]), int(t[4:6]), int(t[6:8]), int(t[9:11]), int(t[11:13]), int(t[13:15]), tzinfo=dt.UTC
        )
    except ValueError:  # digits that are no time (month 13): a name like any other, not a failed listing
        return None
    return ts + dt.timedelta(milliseconds=int(m.group("ms") or 0))


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is the service or the network failing (worth a later retry), not the object or the config."""
    if isinstance(exc, ServiceUnavailable):
        return True
    if isinstance(exc, (FileNotFoundError, PermissionError)):
        return False
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNO:
        return True
    name = type(exc).__name__
    if name in ("ClientPayloadError", "ServerDisconnectedError", "IncompleteRead", "EndpointConnectionError"):
        return True
    text = str(exc)
    return any(t in text for t in _TRANSIENT_TEXT)


def _explain(uri: str, exc: BaseException) -> SourceError:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, PermissionError) or "AccessDenied" in text or "Forbidden" in text:
        cause = "access denied: check the credentials in the AWS chain and the bucket policy (s3:ListBucket)"
    elif "NoSuchBucket" in text or isinstance(exc, FileNotFoundError):
        cause = "bucket or prefix not found: check the name, the region and AWS_ENDPOINT_URL"
    elif "Could not connect" in text or "EndpointConnectionError" in text or "ConnectionError" in text:
        cause = "endpoint unreachable: check the network, the region and AWS_ENDPOINT_URL"
    elif "credentials" in text.lower():
        cause = "no AWS credentials found in the standard chain (env, profile, SSO, instance role)"
    elif is_transient(exc):
        return ServiceUnavailable(
            f"cannot list invocation logs under {uri}: S3 kept throttling (503 SlowDown) or failing (5xx) after "
            f"every retry with backoff; run the day again later, or lower the `aws_logs` pool in dagster.yaml "
            f"({text[:300]})"
        )
    else:
        cause = "unexpected error"
    return SourceError(f"cannot list invocation logs under {uri}: {cause} ({text[:300]})")


def list_day(root: str, day: dt.date, late_hours: int = 2, early_hours: int = 1) -> Listing:
    """List the log objects that may hold records of `day` under `root` (every account and region in it): the
    day's folders and the neighbouring hours of its window (`day_folders`)."""
    root = root.rstrip("/")
    fs, base = fsspec.core.url_to_fs(root, **storage_options_for(root))
    scheme = "" if is_local(root) else root.split("://", 1)[0] + "://"
    listing = Listing()
    # Every listing bypasses s3fs' directory cache (`refresh=True`): a long-lived process (the CLI over many
    # days, a code server) would otherwise never see an account or region that started delivering after its
    # first listing, and those objects would be silently missed.
    try:
        try:
            accounts = list(fs.ls(f"{base}/AWSLogs", detail=False, refresh=True))
        except FileNotFoundError:
            if is_local(root) and not fs.exists(base):
                raise
            # An S3 root with nothing delivered yet is not an error, but the check will show zero objects.
            fs.ls(base, refresh=True)  # raises for a missing bucket or no access
            return listing
    except Exception as exc:  # noqa: BLE001 - every failure here means the source is unusable
        raise _explain(root, exc) from exc

    for account_dir in sorted(accounts):
        log_dir = f"{account_dir.rstrip('/')}/{LOG_DIR}"
        try:
            regions = fs.ls(log_dir, detail=True, refresh=True)
        except FileNotFoundError:
            continue
        except Exception as exc:  # noqa: BLE001
            raise _explain(f"{scheme}{log_dir}", exc) from exc
        for region_info in sorted(regions, key=lambda r: r["name"]):
            if region_info["type"] != "directory":
                if region_info["name"].endswith(PERMISSION_MARKER):
                    listing.skipped["permission_check_marker"] += 1
                continue
            region_dir = region_info["name"].rstrip("/")
            folders = [f"{region_dir}/{f}" for f in day_folders(day, late_hours, early_hours)]
            for folder in folders:
                try:
                    found = _find(fs, folder, is_local(root))
                except FileNotFoundError:
                    continue
                except Exception as exc:  # noqa: BLE001
                    raise _explain(f"{scheme}{folder}", exc) from exc
                for path in sorted(found):
                    _classify(path, path[len(region_dir) + 1 :], found[path], scheme, listing)
    return listing


def _find(fs: fsspec.AbstractFileSystem, folder: str, local: bool) -> dict[str, dict]:
    """Every file under `folder`, by path, with its details.

    On S3 this is one `ListObjectsV2` under the folder's prefix and nothing else: s3fs' plain `find` follows an
    empty listing with a `HeadObject` on the folder's name, which a least-privilege policy (`s3:ListBucket`
    limited by prefix, `s3:GetObject` on the logs) answers with 403, failing every day that has an hour, a
    region or a next-day folder without deliveries.
    """
    if local:
        return fs.find(folder, detail=True)
    parent, _, name = folder.rpartition("/")
    found = fs.find(parent, prefix=f"{name}/", detail=True)
    return {p: info for p, info in found.items() if p.startswith(f"{folder}/")}


def is_sidecar(below_region: str) -> bool:
    """Whether a key, given as the part below its region folder (`YYYY/MM/DD/HH/data/<id>_input.json.gz`), is an
    offloaded body (`data/` sidecar) rather than a log object. Only AWS's part of the key is looked at: the
    configured root may contain a `data` folder of its own."""
    return "data" in below_region.split("/")[:-1]


def _classify(path: str, below_region: str, info: dict, scheme: str, listing: Listing) -> None:
    name = path.rsplit("/", 1)[-1]
    size = int(info.get("size") or 0)
    if name.startswith(PERMISSION_MARKER):
        listing.skipped["permission_check_marker"] += 1
    elif is_sidecar(below_region):
        listing.skipped["data_sidecar"] += 1
    elif size == 0:
        listing.skipped["zero_byte"] += 1
    elif not name.endswith(".json.gz"):
        listing.skipped["not_json_gz"] += 1
    else:
        listing.objects.append(LogObject(f"{scheme}{path}", size, file_time(name), folder_hour(path)))


READ_ATTEMPTS = 3
"""Whole-object attempts on top of s3fs' own retries: a connection dropped mid-body is not retried by botocore
(the response had already arrived), so a flaky network gets a few more, patient, tries before an object is
given up on."""
READ_BACKOFF_S = 1.0

T = TypeVar("T")


def _read_whole(uri: str) -> bytes:
    with fsspec.open(uri, "rb", **storage_options_for(uri)) as f:
        data = f.read()
        size = getattr(f, "size", None)
    if isinstance(size, int) and len(data) != size:
        raise ServiceUnavailable(f"cannot read {uri}: got {len(data)} of {size} bytes (connection cut short)")
    return data


def read_object(uri: str, sleep: Callable[[float], None] | None = None) -> bytes:
    """The raw bytes of one object, whole or not at all.

    s3fs retries throttling, 5xx answers and connections dropped mid-body (the range is fetched again); what
    still fails is tried again `READ_ATTEMPTS` times with doubling waits. What fails after that is raised as
    `ServiceUnavailable` when the service or network is to blame, or as it came (`FileNotFoundError`,
    `PermissionError`, …) when the object is. A body shorter than the object's listed size is an error too,
    never a silently shorter log.
    """
    return _retrying(uri, lambda: _read_whole(uri), sleep or time.sleep)


def _retrying(
    uri: str,
    fetch: Callable[[], T],
    sleep: Callable[[float], None],
    where: Callable[[], str] = lambda: "",
    on_failure: Callable[[], None] = lambda: None,
) -> T:
    """`fetch()`, tried again `READ_ATTEMPTS` times with doubling waits while it fails for the service or the
    network (`on_failure` runs after each failure, e.g. to drop a broken handle). What fails for the object
    (`FileNotFoundError`, `PermissionError`, …) is raised as it came; what still fails for the service after the
    last try is a `ServiceUnavailable` naming the object (and `where()` in it, e.g. how far a stream got)."""
    for attempt in range(READ_ATTEMPTS):
        try:
            return fetch()
        except Exception as exc:
            on_failure()
            if not is_transient(exc):
                raise
            if attempt < READ_ATTEMPTS - 1:
                sleep(READ_BACKOFF_S * 2**attempt)
                continue
            if isinstance(exc, ServiceUnavailable):
                raise
            raise ServiceUnavailable(
                f"cannot read {uri}: S3 kept throttling, failing or dropping the connection after every "
                f"retry{where()} ({type(exc).__name__}: {str(exc)[:200]})"
            ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


READ_CHUNK = 8 * 2**20
"""Bytes fetched per ranged read when an object is streamed: what one object holds in memory, whatever its size."""


def iter_object(uri: str, size: int | None = None, sleep: Callable[[float], None] | None = None) -> Iterator[bytes]:
    """The raw bytes of one object in chunks of at most `READ_CHUNK`, so memory holds a chunk, not the object.

    Each chunk is a ranged read; one that fails for the service or the network is tried again from the same
    offset (on a fresh handle) `READ_ATTEMPTS` times with doubling waits, so a connection cut in the middle of a
    1 GB object costs a chunk, not the object. What still fails is raised as `read_object` raises it (already
    yielded chunks stay yielded: the caller keeps what it parsed). An object that ends before its listed `size`
    raises `ServiceUnavailable`: never a silently shorter log.
    """
    opts = storage_options_for(uri)
    state: dict[str, Any] = {"f": None, "offset": 0}

    def fetch() -> bytes:
        if state["f"] is None:
            handle: Any = fsspec.open(uri, "rb", block_size=READ_CHUNK, **opts).open()
            if state["offset"]:
                handle.seek(state["offset"])
            state["f"] = handle
        return state["f"].read(READ_CHUNK)

    def drop_handle() -> None:
        if state["f"] is not None:
            state["f"].close()
            state["f"] = None

    try:
        while chunk := _retrying(uri, fetch, sleep or time.sleep, lambda: f", {state['offset']} bytes in", drop_handle):
            state["offset"] += len(chunk)
            yield chunk
    finally:
        drop_handle()
    offset = state["offset"]
    if size is not None and offset != size:
        raise ServiceUnavailable(f"cannot read {uri}: got {offset} of {size} bytes (connection cut short)")
