"""Delivery: planned calls written the way AWS delivers them, with the faults real buckets show.

S3 objects batched per account and Region, late deliveries landing in a later hour's (or day's) folder,
duplicate and truncated re-deliveries, malformed lines, unknown-schema records, and the CloudWatch Logs share.
`GenerationSummary` records the ground truth a reader must recover.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import fsspec
import orjson

from pipeline.sample.bodies import render_record
from pipeline.sample.calls import Call, LogGenOptions, plan_day, uuid4_from
from pipeline.sample.layout import PERMISSION_MARKER, delivery_root, gzip_bytes, hour_prefix
from pipeline.sample.world import (
    CLOUDWATCH_STREAM,
    DEFAULT_LOG_GROUP,
)

CW_MAX_EVENTS = 10_000
CW_MAX_BYTES = 1_048_576
CW_EVENT_OVERHEAD = 26
CW_MAX_SPAN_MS = 24 * 3600 * 1000 - 1


@dataclass
class GenerationSummary:
    """What was written, and the ground truth a reader must recover.

    `expected_request_ids[d]` is the set of unique, valid request ids whose record `timestamp` falls on UTC day
    `d`, over S3 and CloudWatch together (faults and duplicates excluded). `day_totals[d]` holds the true counts
    per status and token sums for that day. Byte and file counts include everything written (sidecars, markers,
    duplicates, truncated copies).
    """

    dest: str
    records: int = 0
    records_per_day: dict[dt.date, int] = field(default_factory=dict)
    expected_request_ids: dict[dt.date, set[str]] = field(default_factory=dict)
    day_totals: dict[dt.date, dict[str, int]] = field(default_factory=dict)
    s3_records: int = 0
    files: int = 0
    bytes: int = 0
    log_keys: list[str] = field(default_factory=list)
    sidecars: int = 0
    sidecar_keys: list[str] = field(default_factory=list)
    marker_keys: list[str] = field(default_factory=list)
    late_records: int = 0
    cross_hour_records: int = 0
    cross_day_records: int = 0
    malformed_lines: int = 0
    unknown_schema_records: int = 0
    unknown_schema_request_ids: list[str] = field(default_factory=list)
    truncated_files: int = 0
    truncated_keys: list[str] = field(default_factory=list)
    duplicate_records: int = 0
    cloudwatch_records: list[dict[str, Any]] = field(default_factory=list)
    cloudwatch_only: int = 0
    cloudwatch_overlap: int = 0
    cloudwatch_events: int = 0

    @property
    def expected_unique_per_day(self) -> dict[dt.date, int]:
        return {d: len(ids) for d, ids in self.expected_request_ids.items()}


# ---------------------------------------------------------------------------------------------------------------
# Delivery: batching into S3 objects, late deliveries, faults, CloudWatch split
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _Batch:
    account: str
    region: str
    file_ms: int
    lines: list[bytes]
    name_hex: str
    truncate_at: float | None = None  # fraction of the gzip bytes kept
    ts_ms: list[int] = field(default_factory=list)
    copy: bool = False  # a re-delivery (duplicate or truncated) of another object

    @property
    def key(self) -> str:
        t = time.gmtime(self.file_ms // 1000)
        name = f"{time.strftime('%Y%m%dT%H%M%S', t)}{self.file_ms % 1000:03d}Z_{self.name_hex}.json.gz"
        return f"{hour_prefix(self.account, self.region, self.file_ms)}/{name}"


def _batch_stream(
    rng: random.Random, account: str, region: str, items: list[tuple[int, bytes]], per_file: int
) -> list[_Batch]:
    """Group one (account, Region) stream into delivered objects: each record lands 20-90 s after its
    timestamp, as in the real keys (docs/formats/invocation-logs.md §2.1), at most `per_file` records per object."""
    batches = []
    i = 0
    while i < len(items):
        ts0 = items[i][0]
        flush_ms = ts0 * 1000 + rng.randint(20_000, 90_000)
        j = i
        lines: list[bytes] = []
        ts_list: list[int] = []
        while j < len(items) and len(lines) < per_file and items[j][0] * 1000 <= flush_ms - 20_000:
            lines.append(items[j][1])
            ts_list.append(items[j][0] * 1000)
            j += 1
        batches.append(_Batch(account, region, flush_ms, lines, f"{rng.getrandbits(64):016x}", ts_ms=ts_list))
        i = j
    return batches


def _share(total: int, index: int, parts: int) -> int:
    """Spread `total` fault injections over `parts` days as evenly as possible."""
    return total // parts + (1 if index < total % parts else 0)


class _Sink:
    """Writes objects to a local folder (plain files) or any fsspec URL (batched `pipe`, concurrent on s3fs)."""

    def __init__(self, dest: str, storage_options: Mapping[str, Any] | None) -> None:
        self.root_uri = delivery_root(dest)
        self.local = "://" not in self.root_uri
        self.fs: Any = None
        self.root = self.root_uri
        if not self.local:
            options = {"skip_instance_cache": True, **dict(storage_options or {})}  # env may have changed
            self.fs, self.root = fsspec.core.url_to_fs(self.root_uri, **options)
            self.root = self.root.rstrip("/")
        self.pending: dict[str, bytes] = {}
        self.bytes = 0

    def put(self, key: str, data: bytes) -> None:
        self.bytes += len(data)
        if self.local:
            path = Path(self.root, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        else:
            self.pending[f"{self.root}/{key}"] = data
            if len(self.pending) >= 500:
                self.flush()

    def flush(self) -> None:
        if self.pending:
            self.fs.pipe(self.pending)
            self.pending = {}


def write_logs(dest: str, opts: LogGenOptions, storage_options: Mapping[str, Any] | None = None) -> GenerationSummary:
    """Write the S3 delivery layout (§2) under `dest` (local folder or `s3://bucket/prefix`).

    Objects: `AWSLogs/<acct>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/<YYYYMMDD>T<HHMMSSmmm>Z_<16hex>.json.gz`
    (gzip NDJSON, folder = delivery hour), `.../HH/data/<requestId>_{input,output}.json.gz` sidecars, and
    zero-byte `amazon-bedrock-logs-permission-check` markers. Records routed to CloudWatch are returned in
    `summary.cloudwatch_records` (deliver them with `deliver_cloudwatch`). S3 access uses s3fs, which honours
    `AWS_ENDPOINT_URL` and the standard credential chain; `storage_options` are passed to fsspec.
    """
    sink = _Sink(dest, storage_options)
    summary = GenerationSummary(dest=sink.root_uri)
    cw_accounts = set(opts.cloudwatch_accounts if opts.cloudwatch_accounts is not None else opts.accounts)

    for acct in opts.accounts:
        key = f"AWSLogs/{acct}/BedrockModelInvocationLogs/{PERMISSION_MARKER}"
        sink.put(key, b"")
        summary.marker_keys.append(key)
    sink.put(PERMISSION_MARKER, b"")
    summary.marker_keys.append(PERMISSION_MARKER)

    for day_index, day in enumerate(opts.dates):
        calls = plan_day(opts, day)
        drng = random.Random(f"{opts.seed}:delivery:{day.isoformat()}")
        frng = random.Random(f"{opts.seed}:faults:{day.isoformat()}")
        ids: set[str] = set()
        totals: Counter[str] = Counter()
        streams: dict[tuple[str, str], list[tuple[int, bytes]]] = defaultdict(list)
        late: list[_Batch] = []
        for c in calls:
            if any(c.account == a and c.region == r and lo <= c.ts < hi for a, r, lo, hi in opts.undelivered):
                continue  # a logging gap: the call happened but no log has it
            rec, sidecars = render_record(c, opts, sink.root_uri)
            for key, data in sidecars:
                sink.put(key, data)
                summary.sidecar_keys.append(key)
            ids.add(c.request_id)
            _count(totals, c)
            u = drng.random()
            is_late = drng.random() < opts.late_fraction
            late_ms = drng.randint(180_000, 7_200_000)
            to_cw = opts.cloudwatch_share > 0 and c.account in cw_accounts
            only_cw = to_cw and u < opts.cloudwatch_share
            both = to_cw and not only_cw and u < opts.cloudwatch_share + opts.cloudwatch_overlap
            if only_cw or both:
                summary.cloudwatch_records.append(rec)
                summary.cloudwatch_only += only_cw
                summary.cloudwatch_overlap += both
            if only_cw:
                continue
            line = orjson.dumps(rec)
            summary.s3_records += 1
            if is_late:
                ts_ms = c.ts * 1000
                late.append(
                    _Batch(
                        c.account,
                        c.region,
                        ts_ms + late_ms,
                        [line],
                        f"{drng.getrandbits(64):016x}",
                        ts_ms=[ts_ms],
                    )
                )
                summary.late_records += 1
            else:
                streams[(c.account, c.region)].append((c.ts, line))

        batches: list[_Batch] = []
        for (acct, region), items in sorted(streams.items()):
            batches.extend(_batch_stream(drng, acct, region, items, opts.records_per_file))
        batches.extend(late)
        _inject_faults(frng, opts, day_index, batches, summary)

        for b in batches:
            payload = gzip_bytes(b"\n".join(b.lines) + b"\n")
            if b.truncate_at is not None:
                payload = payload[: max(12, int(len(payload) * b.truncate_at))]
                summary.truncated_keys.append(b.key)
            sink.put(b.key, payload)
            summary.log_keys.append(b.key)
            if not b.copy:
                for t in b.ts_ms:
                    summary.cross_hour_records += t // 3_600_000 != b.file_ms // 3_600_000
                    summary.cross_day_records += t // 86_400_000 != b.file_ms // 86_400_000
        sink.flush()

        summary.expected_request_ids[day] = ids
        summary.records_per_day[day] = len(ids)
        summary.records += len(ids)
        summary.day_totals[day] = dict(totals)

    summary.cloudwatch_records.sort(key=lambda r: (r["timestamp"], r["requestId"]))
    summary.cloudwatch_events = len(summary.cloudwatch_records)
    summary.files = len(summary.log_keys)
    summary.sidecars = len(summary.sidecar_keys)
    summary.bytes = sink.bytes
    return summary


def _count(totals: Counter[str], c: Call) -> None:
    totals["records"] += 1
    totals[c.status] += 1
    totals["input_tokens"] += c.input_tokens
    totals["output_tokens"] += c.output_tokens
    totals["cache_read_input_tokens"] += c.cache_read
    totals["cache_write_input_tokens"] += c.cache_write
    totals["image_count"] += c.images if c.status == "success" else 0
    totals["unpriced"] += not c.model.priced


def _parse_or_none(line: bytes) -> dict[str, Any] | None:
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return rec if isinstance(rec, dict) else None


def _inject_faults(
    rng: random.Random, opts: LogGenOptions, day_index: int, batches: list[_Batch], summary: GenerationSummary
) -> None:
    """Duplicates and truncated re-deliveries first (copies of clean files), then bad lines into originals."""
    originals = [b for b in batches if b.lines]
    if not originals:
        return
    for _ in range(_share(opts.duplicate_deliveries, day_index, opts.days)):
        src = rng.choice(originals)
        batches.append(
            _Batch(
                src.account,
                src.region,
                src.file_ms + rng.randint(300_000, 3_600_000),
                list(src.lines),
                f"{rng.getrandbits(64):016x}",
                ts_ms=list(src.ts_ms),
                copy=True,
            )
        )
        summary.duplicate_records += len(src.lines)
    for _ in range(_share(opts.truncated_files, day_index, opts.days)):
        src = rng.choice(originals)
        batches.append(
            _Batch(
                src.account,
                src.region,
                src.file_ms + rng.randint(60_000, 600_000),
                list(src.lines),
                f"{rng.getrandbits(64):016x}",
                truncate_at=rng.uniform(0.4, 0.8),
                ts_ms=list(src.ts_ms),
                copy=True,
            )
        )
        summary.truncated_files += 1
    for _ in range(_share(opts.malformed_lines, day_index, opts.days)):
        dst = rng.choice(originals)
        line = rng.choice(dst.lines)
        cut = line[: rng.randint(max(1, len(line) // 4), len(line) - 1)]
        dst.lines.insert(rng.randint(0, len(dst.lines)), cut)
        summary.malformed_lines += 1
    for _ in range(_share(opts.unknown_schema_records, day_index, opts.days)):
        dst = rng.choice(originals)
        rec = _parse_or_none(rng.choice(dst.lines)) or _parse_or_none(dst.lines[-1]) or {}
        if "requestId" not in rec:  # picked injected cut lines only; take the first intact one
            rec = next(r for r in map(_parse_or_none, dst.lines) if r and "requestId" in r)
        rec["requestId"] = uuid4_from(rng)
        rec["schemaVersion"] = "2.0"
        dst.lines.insert(rng.randint(0, len(dst.lines)), orjson.dumps(rec))
        summary.unknown_schema_records += 1
        summary.unknown_schema_request_ids.append(rec["requestId"])


# ---------------------------------------------------------------------------------------------------------------
# CloudWatch Logs delivery
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class CloudWatchPutResult:
    """How many events CloudWatch accepted; events older than 14 days (or >2 h ahead) are rejected by AWS."""

    log_group: str
    region: str
    events: int = 0
    accepted: int = 0
    rejected: int = 0
    requests: int = 0


def _record_ms(rec: Mapping[str, Any]) -> int:
    t = dt.datetime.strptime(rec["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


def cloudwatch_batches(events: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for ev in events:
        ev_size = len(ev["message"].encode("utf-8")) + CW_EVENT_OVERHEAD
        if batch and (
            len(batch) >= CW_MAX_EVENTS
            or size + ev_size > CW_MAX_BYTES
            or ev["timestamp"] - batch[0]["timestamp"] > CW_MAX_SPAN_MS
        ):
            yield batch
            batch, size = [], 0
        batch.append(ev)
        size += ev_size
    if batch:
        yield batch


def put_cloudwatch(
    records: Iterable[Mapping[str, Any]],
    log_group: str = DEFAULT_LOG_GROUP,
    region: str = "us-east-1",
    client: Any = None,
) -> CloudWatchPutResult:
    """Deliver records as Bedrock does: one event per record in stream `aws/bedrock/modelinvocations`, event
    timestamp = record `timestamp` in ms, message = compact JSON. Creates group and stream if missing; sends
    time-sorted batches within PutLogEvents limits (10,000 events, 1 MB, 24 h span)."""
    client = client or boto3.client("logs", region_name=region)
    for create, kwargs in (
        (client.create_log_group, {"logGroupName": log_group}),
        (client.create_log_stream, {"logGroupName": log_group, "logStreamName": CLOUDWATCH_STREAM}),
    ):
        with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
            create(**kwargs)
    events: list[dict[str, Any]] = sorted(
        ({"timestamp": _record_ms(r), "message": orjson.dumps(r).decode("utf-8")} for r in records),
        key=lambda e: e["timestamp"],
    )
    result = CloudWatchPutResult(log_group, region, events=len(events))
    for batch in cloudwatch_batches(events):
        resp = client.put_log_events(logGroupName=log_group, logStreamName=CLOUDWATCH_STREAM, logEvents=batch)
        result.requests += 1
        info = resp.get("rejectedLogEventsInfo") or {}
        rejected = 0
        if "tooNewLogEventStartIndex" in info:
            rejected += len(batch) - info["tooNewLogEventStartIndex"]
        old_end = max(info.get("tooOldLogEventEndIndex", -1), info.get("expiredLogEventEndIndex", -1))
        rejected += old_end + 1
        result.rejected += rejected
        result.accepted += len(batch) - rejected
    return result


def deliver_cloudwatch(
    records: Iterable[Mapping[str, Any]] | GenerationSummary,
    log_group: str = DEFAULT_LOG_GROUP,
    client_factory: Callable[[str], Any] | None = None,
) -> list[CloudWatchPutResult]:
    """Send records to `log_group` in each record's own Region (`summary.cloudwatch_records` if given a
    summary). `client_factory(region)` builds the logs client; default boto3 with the ambient config."""
    recs = records.cloudwatch_records if isinstance(records, GenerationSummary) else list(records)
    by_region: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in recs:
        by_region[r["region"]].append(r)
    results = []
    for region in sorted(by_region):
        client = client_factory(region) if client_factory else None
        results.append(put_cloudwatch(by_region[region], log_group, region, client))
    return results


def generate_sample(
    dest: str,
    start: dt.date,
    days: int = 3,
    records_per_day: int = 2000,
    *,
    seed: int = 7,
    body_kb: float = 2.0,
    faults: bool = True,
    cloudwatch_share: float = 0.0,
    deliver_to_cloudwatch: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    **extra: Any,
) -> GenerationSummary:
    """One call for the CLI and the demo: realistic logs with (by default) a few of every fault.

    `faults=True` injects per run: 2 malformed lines per day, one truncated re-delivery, one duplicate
    delivery per day and one unknown-schema record; explicit counts in `extra` win. With
    `deliver_to_cloudwatch`, the CloudWatch share is also put to CloudWatch Logs (events older than 14 days
    are rejected by AWS; the result counts are in `summary.cloudwatch_events`).
    """
    fault_opts: dict[str, Any] = {}
    if faults:
        fault_opts = {
            "malformed_lines": 2 * days,
            "truncated_files": 1,
            "duplicate_deliveries": days,
            "unknown_schema_records": 1,
        }
    fault_opts.update(extra)
    opts = LogGenOptions(
        start=start,
        days=days,
        records_per_day=records_per_day,
        seed=seed,
        body_kb=body_kb,
        cloudwatch_share=cloudwatch_share,
        **fault_opts,
    )
    summary = write_logs(dest, opts, storage_options)
    if deliver_to_cloudwatch and summary.cloudwatch_records:
        results = deliver_cloudwatch(summary, opts.cloudwatch_log_group)
        summary.cloudwatch_events = sum(r.accepted for r in results)
    return summary
