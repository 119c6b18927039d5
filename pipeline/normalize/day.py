"""Normalize one UTC day of invocation logs from every configured source into the `invocations` table.

The day streams: objects are read, decompressed and parsed in small groups ("tasks"), each reduced to contract
rows and written to its own spill part on local disk, so memory holds a few objects at a time however large the
day is. Tasks run in worker processes on every core (parsing is CPU-bound and the GIL would serialize threads);
the parts are numbered in the fixed source order (S3 roots, then log groups, each sorted), so the result does not
depend on which worker finished first. The caller writes the day while it is parsed: each part, as soon as the
parts before it are in, is deduplicated on `request_id` (a record delivered twice, or to both S3 and CloudWatch;
`first_delivery`) and handed out in batches, so the first delivery in that order wins, a rerun gives the same
rows, and the Parquet write overlaps the parse instead of starting after it.

Parsing has two paths with the same output: the reference (`orjson` per line, then `records.parse_record`) and a
fast path (`pipeline.normalize.fast`, msgspec decoding that skips the bodies). An object takes the fast path
unless bodies are kept (`retain_bodies: redacted`), msgspec is missing, or anything in it needs the reference's
tolerance; `tests/test_normalize_equivalence.py` holds the two to the same rows.

Every record ends up in exactly one place: a row of its own day, a reject of its own day, or another day's
partition. Records of the previous or next day found in this day's folders belong to those days and are only
counted here; a reject without a usable time belongs to the day of the folder it was delivered to.
"""

from __future__ import annotations

import datetime as dt
import gc
import multiprocessing
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson
import polars as pl

from pipeline import schemas
from pipeline.normalize import lifeline
from pipeline.normalize.decode import (
    BadLine,
    LineBatch,
    excerpt,
    gunzip_tolerant,  # noqa: F401 - re-exported for tools and tests
    iter_batch_lines,
    iter_json_lines,
    iter_line,
    iter_line_batches,
)
from pipeline.normalize.first_delivery import FirstDelivery
from pipeline.normalize.ownership import Window
from pipeline.normalize.records import RecordError, parse_record, parse_timestamp
from pipeline.sources import s3_logs

if TYPE_CHECKING:  # kept out of worker processes' imports: config (pydantic) and CloudWatch are parent-only
    from pipeline.config import LedgerConfig
    from pipeline.sources.cloudwatch_logs import LogEvent

try:  # msgspec is optional: without it every object takes the reference path
    from pipeline.normalize import fast
except ImportError:  # pragma: no cover - depends on the environment
    fast = None  # type: ignore[assignment]

_ROW_SCHEMA = dict(schemas.INVOCATIONS)

PARALLEL_MIN_BYTES = 64 * 2**20
"""Below this many compressed bytes a day is parsed in-process: starting worker processes costs about a second."""
TASK_BYTES = 4 * 2**20
"""Compressed bytes per task: small enough that a worker holds little, large enough that handing out tasks and
writing a part per task cost nothing next to the parsing."""
TASK_MAX_OBJECTS = 256
OUTPUT_BATCH_ROWS = 65_536
"""Rows per batch handed to the writer (one Parquet row group each)."""
SPILL_COMPRESSION: Literal["uncompressed", "lz4", "zstd"] = "zstd"
FETCH_THREADS = 4
"""Concurrent GETs per task when reading from S3."""
STREAM_MIN_BYTES = 16 * 2**20
"""Objects stored at least this large are streamed in chunks (`s3_logs.iter_object`) rather than fetched whole
ahead of parsing: memory per object is then a chunk, whatever the object's size (the default
`quality.max_object_bytes` lets a single object be 2 GiB)."""


@dataclass
class ChunkResult:
    """Rows and rejects from one object or one CloudWatch page."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


@dataclass
class DayStats:
    """What a day's normalization saw, for materialization metadata and checks."""

    counts: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    reject_reasons: Counter[str] = field(default_factory=Counter)
    conflict_examples: list[str] = field(default_factory=list)

    def unplaced(self) -> int:
        """Records seen that are neither a row or reject here nor owned by a day that reads them (must be 0)."""
        c = self.counts
        placed = c["rows_parsed"] + c["records_rejected"] + c["records_of_other_days"] + c["records_rejected_elsewhere"]
        return c["records_seen"] - placed

    def as_metadata(self) -> dict[str, int]:
        out = {k: int(v) for k, v in sorted(self.counts.items())}
        out.update({f"skipped_{k}": int(v) for k, v in sorted(self.skipped.items())})
        return out


def _record_excerpt(record: Any) -> str:
    """A rejected record without its bodies: enough to find it, never the prompt or the response.

    A record that is not an object (a string inside a JSON array may be prompt text) is described by its type
    only; an object keeps only its envelope fields (no `input`/`output`), and excerpts stop at any body key.
    """
    if isinstance(record, dict):
        # What finds the record first (the excerpt is short): its id, time and model, then the rest of the envelope.
        first = [k for k in ("requestId", "timestamp", "modelId", "operation") if k in record]
        rest = [k for k in record if k not in first and k not in ("input", "output")]
        slim = {k: record[k] for k in (*first, *rest)}
        try:
            return excerpt(orjson.dumps(slim))
        except Exception:  # noqa: BLE001 - unserialisable (too deep, huge int): the keys still help find it
            return excerpt(orjson.dumps(sorted(str(k)[:40] for k in slim)))
    return f"<a JSON {type(record).__name__}>"


def _reject(day: dt.date, uri: str, line: int, reason: str, raw: bytes | str) -> dict[str, Any]:
    return {"date": day, "source_uri": uri, "line": line, "reason": reason, "raw_excerpt": excerpt(raw)}


_GENERIC = None if fast is None else fast.GENERIC_DECODER


@dataclass
class _Delivery:
    """One object (or CloudWatch event) being parsed: where and when it was delivered, and its rejects so far."""

    uri: str
    at: dt.datetime
    source: str
    fallback: dt.datetime | None
    kept: int = 0
    over: int = 0


class DayParser:
    """Parses records for one day with the config's profile map, body policy, reading window and limits.

    Picklable (plain data and a module-level redaction function), so worker processes get their own copy.
    """

    def __init__(self, day: dt.date, cfg: LedgerConfig, redact: Callable[[Any], str | None] | None = None):
        self.day = day
        self.app_profiles = tuple(sorted((arn, p.model_id) for arn, p in cfg.attribution.inference_profiles.items()))
        self.redact = redact if cfg.retain_bodies == "redacted" else None
        inv = cfg.sources.invocation_logs
        # A day before start_date is only ever parsed by hand (tools, tests): the window then starts at it.
        self.window = Window(inv.late_hours, inv.early_hours, min(cfg.start_date, day))
        self.max_object_bytes = cfg.quality.max_object_bytes
        self.max_line_bytes = cfg.quality.max_line_bytes
        self.max_rejects = cfg.quality.max_rejects_per_object
        self.max_tokens_per_call = cfg.quality.max_tokens_per_call
        self.max_latency_ms = cfg.quality.max_latency_ms

    # ------------------------------------------------------------------------------------------ placement

    def _delivery(self, obj: s3_logs.LogObject) -> _Delivery:
        # Outside the hour-folder layout: the time in the file name, else this day (whose folder listed it).
        at = (
            obj.folder_hour
            or obj.delivered_at
            or dt.datetime(self.day.year, self.day.month, self.day.day, 12, tzinfo=dt.UTC)
        )
        return _Delivery(obj.uri, at, "s3", obj.delivered_at)

    def _reject_here(self, result: ChunkResult, d: _Delivery, line: int, reason: str, raw: bytes | str) -> None:
        """A reject of this day, kept while the object is under `max_rejects_per_object`, else only counted."""
        if d.kept < self.max_rejects:
            d.kept += 1
            result.rejects.append(_reject(self.day, d.uri, line, reason, raw))
        else:
            d.over += 1

    def _reject_delivered(self, result: ChunkResult, d: _Delivery, line: int, reason: str, raw: bytes | str) -> None:
        """A reject without a usable time: it belongs to the day it was delivered to."""
        if d.at.date() == self.day:
            self._reject_here(result, d, line, reason, raw)
        else:
            result.counts["rejects_of_other_days"] += 1

    def _finish(self, result: ChunkResult, d: _Delivery) -> None:
        if d.over:
            result.counts["rejects_not_kept"] += d.over
            result.rejects.append(
                _reject(
                    self.day,
                    d.uri,
                    0,
                    f"too_many_rejects: {d.over} more rejects in this object were counted, not kept "
                    f"(quality.max_rejects_per_object={self.max_rejects})",
                    "",
                )
            )

    def _add(self, result: ChunkResult, record: Any, d: _Delivery, line: int) -> None:
        result.counts["records_seen"] += 1
        try:
            row = parse_record(
                record,
                source=d.source,
                source_uri=d.uri,
                fallback_time=d.fallback,
                app_profiles=self.app_profiles,
                redact=self.redact,
                max_tokens_per_call=self.max_tokens_per_call,
            )
        except Exception as exc:  # noqa: BLE001 - any failure on one record rejects that record, never the day
            reason = str(exc) if isinstance(exc, RecordError) else f"unparseable_record: {type(exc).__name__}"
            ts = parse_timestamp(record.get("timestamp")) if isinstance(record, dict) else None
            owner, _ = self.window.owner_of(ts, d.at)
            if owner == self.day:
                result.counts["records_rejected"] += 1
                self._reject_here(result, d, line, reason, _record_excerpt(record))
            else:
                self._elsewhere(result, owner)
            return
        ts = row["timestamp"]
        owner, as_row = self.window.owner_of(ts, d.at)
        if as_row and owner == self.day:
            row["date"] = self.day
            limit = self.max_latency_ms
            if (row["latency_ms"] or 0) > limit or (row["first_byte_latency_ms"] or 0) > limit:
                # An impossible duration (a clock jump, a corrupt field): the call is real, its latency is not.
                row["latency_ms"] = row["first_byte_latency_ms"] = None
                result.counts["latencies_over_limit"] += 1
            result.counts["rows_parsed"] += 1
            result.rows.append(row)
        elif as_row:
            result.counts["records_of_other_days"] += 1
        elif owner == self.day:
            result.counts["records_rejected"] += 1
            self._reject_here(
                result,
                d,
                line,
                f"outside_window: a record of {ts.date()} delivered at {d.at:%Y-%m-%dT%H:%M}Z, which its day's "
                f"window (late_hours={self.window.late_hours}, early_hours={self.window.early_hours}, start_date) "
                "does not read",
                _record_excerpt(record),
            )
        else:
            self._elsewhere(result, owner)

    def _elsewhere(self, result: ChunkResult, owner: dt.date) -> None:
        """A record that is a reject of another day (the one it was delivered to), which reads it too; unless that
        day is before `start_date`, where no partition will ever hold it."""
        self._elsewhere_many(result, owner, 1)

    def _elsewhere_many(self, result: ChunkResult, owner: dt.date, n: int) -> None:
        first = self.window.first_day
        if first is not None and owner < first:
            result.counts["records_unplaced"] += n
        else:
            result.counts["rejects_of_other_days"] += n
            result.counts["records_rejected_elsewhere"] += n

    # ------------------------------------------------------------------------------------------ S3 objects

    def _read(
        self, obj: s3_logs.LogObject, result: ChunkResult, d: _Delivery, fetched: bytes | BaseException | None = None
    ) -> bytes | Iterable[bytes] | None:
        """The object's raw bytes, or a stream of its chunks for a large object; None (with the reject recorded)
        if unreadable or over the size limit.

        `fetched` is the object's bytes (or the error reading it) when they were fetched ahead (`_fetch`); objects
        of `STREAM_MIN_BYTES` or more are never fetched ahead but streamed here.
        """
        result.counts["objects_read"] += 1
        if obj.size > self.max_object_bytes:
            self._reject_delivered(
                result,
                d,
                0,
                f"object_too_large: {obj.size} bytes stored, over quality.max_object_bytes={self.max_object_bytes}",
                "",
            )
            return None
        if fetched is None and obj.size >= STREAM_MIN_BYTES:
            return self._stream(obj, result, d)
        try:
            if fetched is None:
                data = s3_logs.read_object(obj.uri)
            elif isinstance(fetched, BaseException):
                raise fetched
            else:
                data = fetched
        except Exception as exc:  # noqa: BLE001 - an unreadable object is quarantined, the run goes on
            self._reject_delivered(result, d, 0, f"unreadable_object: {type(exc).__name__}", str(exc))
            return None
        result.counts["bytes_read"] += len(data)
        return data

    def _stream(self, obj: s3_logs.LogObject, result: ChunkResult, d: _Delivery) -> Iterator[bytes]:
        """A large object's chunks, counted as they arrive. A read that fails part-way ends the stream with an
        `unreadable_object` reject saying where (the lines before it are kept; the decompressor then reports the
        stream as cut short)."""
        done = 0
        try:
            for chunk in s3_logs.iter_object(obj.uri, obj.size):
                done += len(chunk)
                result.counts["bytes_read"] += len(chunk)
                yield chunk
        except Exception as exc:  # noqa: BLE001 - an unreadable object is quarantined, the run goes on
            reason = f"unreadable_object: {type(exc).__name__} after {done} of {obj.size} bytes"
            self._reject_delivered(result, d, 0, reason, str(exc))

    def _batches(self, data: bytes | Iterable[bytes], result: ChunkResult) -> Iterator[LineBatch | BadLine]:
        for item in iter_line_batches(data, max_object_bytes=self.max_object_bytes, max_line_bytes=self.max_line_bytes):
            if isinstance(item, LineBatch):
                result.counts["bytes_uncompressed"] += len(item.data)
            yield item

    def parse_object(self, obj: s3_logs.LogObject) -> ChunkResult:
        """Read, decode and parse one S3 object with the reference path; failures become rejects, never
        exceptions."""
        result = ChunkResult()
        d = self._delivery(obj)
        data = self._read(obj, result, d)
        if data is not None:
            for item in self._batches(data, result):
                if isinstance(item, BadLine):
                    self._reject_delivered(result, d, item.line, item.reason, item.excerpt)
                else:
                    self._reference_batch(item, d, result)
        self._finish(result, d)
        return result

    def _reference_batch(self, batch: LineBatch, d: _Delivery, result: ChunkResult) -> None:
        """The reference path over one batch of lines. Once the object is over its reject limit, the rest of the
        batch is decoded in one C call and only its objects are parsed: a flood of `1` lines is counted, not
        turned into millions of reject rows one by one."""
        for number, offset, raw in iter_batch_lines(batch):
            if d.over and self._count_rest(batch.data[offset:], d, result):
                return
            for item in iter_line(number, raw):
                if isinstance(item, BadLine):
                    self._reject_delivered(result, d, item.line, item.reason, item.excerpt)
                else:
                    self._add(result, item[1], d, item[0])

    def _count_rest(self, rest: bytes, d: _Delivery, result: ChunkResult) -> bool:
        """Records of the rest of a batch whose object no longer keeps rejects; False if they need line by line."""
        if _GENERIC is None or not _valid_utf8(rest):
            return False
        try:
            items = _GENERIC.decode_lines(rest)
        except Exception:  # noqa: BLE001 - a malformed line: go on line by line
            return False
        others = 0  # values that are not objects: rejects without a time, counted in bulk
        if b"{" not in rest and b"[" not in rest:  # no object or array anywhere: a flood of scalars, no Python per line
            others, items = len(items), []
        for item in items:
            if type(item) is dict:
                self._add(result, item, d, 0)
            elif type(item) is list:
                for record in item:
                    if type(record) is dict:
                        self._add(result, record, d, 0)
                    else:
                        others += 1
            else:
                others += 1
        if others:
            result.counts["records_seen"] += others
            if d.at.date() == self.day:
                result.counts["records_rejected"] += others
                d.over += others  # the object is past its limit: counted, not kept
            else:
                self._elsewhere_many(result, d.at.date(), others)
        return True

    def parse_objects(self, objects: Iterable[s3_logs.LogObject]) -> tuple[list[pl.DataFrame], ChunkResult]:
        """Parse objects in order: frames of contract rows (in object and line order) plus rejects and counts.

        Each object streams through the decompressor in batches of lines; a batch takes the fast path when it
        can and the reference path otherwise. Rows of consecutive fast-path batches are turned into one frame
        (building columns per object costs more than parsing a small object), at most `OUTPUT_BATCH_ROWS` at a
        time so a huge object's rows do not pile up as Python tuples.
        """
        total = ChunkResult()
        frames: list[pl.DataFrame] = []
        use_fast = fast is not None and self.redact is None
        pending = fast.FastRows() if use_fast else None

        def flush() -> None:
            if pending is not None and pending.rows:
                frames.append(fast.rows_frame(pending.rows, self.day, self.app_profiles))
                pending.rows = []

        for obj, fetched in _fetch(list(objects)):
            one = ChunkResult()
            d = self._delivery(obj)
            data = self._read(obj, one, d, fetched)
            kept = self.window.kept_range_us(d.at)
            # The fast path keeps every record of this day as a row; that holds only where this day's window covers
            # the delivery (always so for what `list_day` lists). Elsewhere the reference path decides per record.
            fast_ok = pending is not None and not d.over and self.window.covers(self.day, d.at)
            if data is not None:
                for item in self._batches(data, one):
                    if isinstance(item, BadLine):
                        self._reject_delivered(one, d, item.line, item.reason, item.excerpt)
                        continue
                    if item.data.isspace():  # blank lines only (400 MiB of newlines): nothing to decode
                        continue
                    if fast_ok and pending is not None and self._fast(item, pending, d, kept):
                        if len(pending.rows) >= OUTPUT_BATCH_ROWS:
                            flush()
                        continue
                    self._reference_batch(item, d, one)
                    if one.rows:
                        flush()
                        frames.append(rows_to_frame(one.rows))
                        one.rows = []
            self._finish(one, d)
            total.rejects.extend(one.rejects)
            total.counts.update(one.counts)
        if pending is not None:
            # Only keys that counted something, as the reference path's counters do.
            if pending.records_seen:
                total.counts["records_seen"] += pending.records_seen
            if pending.records_of_other_days:
                total.counts["records_of_other_days"] += pending.records_of_other_days
            if pending.records_seen - pending.records_of_other_days:
                total.counts["rows_parsed"] += pending.records_seen - pending.records_of_other_days
            flush()
        return frames, total

    def _fast(self, batch: LineBatch, pending: Any, d: _Delivery, kept: tuple[int, int]) -> bool:
        try:
            return fast.parse_payload(
                batch.data,
                pending,
                day=self.day,
                source_uri=d.uri,
                fallback_time=d.fallback,
                kept_range=kept,
                max_tokens=self.max_tokens_per_call,
                max_latency=self.max_latency_ms,
            )
        except Exception:  # noqa: BLE001 - whatever the fast path trips on, the reference path decides per record
            return False

    # ------------------------------------------------------------------------------------------ CloudWatch

    def parse_events(self, events: list[LogEvent]) -> ChunkResult:
        """Parse one page of CloudWatch events (one record per event); the event time is the delivery."""
        result = ChunkResult()
        result.counts["cloudwatch_events"] += len(events)
        for event in events:
            d = _Delivery(event.uri, event.timestamp, "cloudwatch", event.timestamp)
            raw = event.message.encode("utf-8", "replace")
            if len(raw) > self.max_line_bytes:
                reason = f"line_too_long: over quality.max_line_bytes={self.max_line_bytes}"
                self._reject_delivered(result, d, 1, reason, raw[:1024])
                continue
            items = list(iter_json_lines(raw))
            if not items:
                self._reject_delivered(result, d, 1, "empty_event", event.message[:1024])
                continue
            for item in items:
                if isinstance(item, BadLine):
                    self._reject_delivered(result, d, 1, item.reason, item.excerpt)
                else:
                    self._add(result, item[1], d, 1)
            self._finish(result, d)
        return result


def _valid_utf8(data: bytes) -> bool:
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _get(obj: s3_logs.LogObject) -> bytes | BaseException | None:
    """An object's bytes fetched ahead (or the error reading them); None for an object large enough to stream."""
    if obj.size >= STREAM_MIN_BYTES:
        return None
    uri = obj.uri
    try:
        if "://" not in uri:  # a local folder in the S3 layout: fsspec's per-open overhead is pure cost here
            with open(uri, "rb") as f:
                return f.read()
        return s3_logs.read_object(uri)
    except Exception as exc:  # noqa: BLE001 - handed to `DayParser._read`, which records the reject
        return exc


def _fetch(
    objects: list[s3_logs.LogObject],
) -> Iterator[tuple[s3_logs.LogObject, bytes | BaseException | None]]:
    """Each object with its bytes, in order. Remote objects are fetched a few at a time on threads: a GET is
    mostly waiting (the GIL is free meanwhile), and spreading requests keeps a burst of throttling from landing
    on one object's retries. Local files are read inline."""
    remote = [o for o in objects if "://" in o.uri and not o.uri.startswith("file://")]
    if len(remote) < 2:
        for obj in objects:
            yield obj, _get(obj)
        return
    with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
        yield from zip(objects, pool.map(_get, objects), strict=True)


def rows_to_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Contract rows (dicts) as a typed frame; maps become key/value lists."""
    for r in rows:
        r["request_metadata"] = schemas.dict_to_map(r["request_metadata"])
    return pl.DataFrame(rows, schema=_ROW_SCHEMA)


@dataclass(frozen=True)
class _Task:
    """A run of consecutive objects parsed by one worker into one spill part."""

    index: int
    objects: tuple[s3_logs.LogObject, ...]
    part: str


@dataclass
class _TaskResult:
    index: int
    part: str | None
    rows: int
    rejects: list[dict[str, Any]]
    counts: Counter[str]


def _write_part(frames: list[pl.DataFrame], path: str) -> int:
    """Write frames as one spill part: Arrow IPC with zstd, about 30 MB per million rows on disk (a container's page
    cache counts against its memory), as cheap to write as lz4 and faster to read back, column by column."""
    frame = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
    frame.write_ipc(path, compression=SPILL_COMPRESSION)
    return frame.height


def _run_task(parser: DayParser, task: _Task) -> _TaskResult:
    """Parse a task's objects and spill their rows; runs in a worker process or in-process.

    The cyclic garbage collector is paused meanwhile: parsing allocates hundreds of thousands of short-lived
    tuples and lists (freed by reference counting, never in cycles), and the collector's passes over them cost
    about 15% of the parse. It is switched back on (if it was on) before returning.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        frames, result = parser.parse_objects(task.objects)
    finally:
        if was_enabled:
            gc.enable()
    frames = [f for f in frames if f.height]
    rows = _write_part(frames, task.part) if frames else 0
    return _TaskResult(task.index, task.part if rows else None, rows, result.rejects, result.counts)


_WORKER_PARSER: DayParser | None = None


def _init_worker(parser: DayParser, environ: dict[str, str], parent: int | None = None) -> None:
    """Worker setup: the parent's environment as of now (a forkserver started earlier may hold an older one)
    and the day's parser, sent once instead of with every task. The worker dies with the run's process
    (`lifeline.die_with`): a killed run must not leave workers parsing for nobody."""
    global _WORKER_PARSER
    if parent is not None:
        lifeline.die_with(parent)
    os.environ.clear()
    os.environ.update(environ)
    _WORKER_PARSER = parser


def _worker_task(task: _Task) -> _TaskResult:
    assert _WORKER_PARSER is not None
    return _run_task(_WORKER_PARSER, task)


def _tasks(objects: list[s3_logs.LogObject], first_index: int, spill: Path) -> list[_Task]:
    tasks: list[_Task] = []
    current: list[s3_logs.LogObject] = []
    size = 0
    for obj in objects:
        current.append(obj)
        size += obj.size
        if size >= TASK_BYTES or len(current) >= TASK_MAX_OBJECTS:
            index = first_index + len(tasks)
            tasks.append(_Task(index, tuple(current), str(spill / f"part-{index:07d}.arrow")))
            current, size = [], 0
    if current:
        index = first_index + len(tasks)
        tasks.append(_Task(index, tuple(current), str(spill / f"part-{index:07d}.arrow")))
    return tasks


def _mp_context() -> multiprocessing.context.BaseContext:
    """forkserver where there is one: never plain fork, which copies s3fs/boto3 threads and locks mid-flight."""
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    # The server imports the parsing modules once and every worker is forked from it ready to parse: without
    # this each worker of each day's pool imported polars, pyarrow and msgspec again (about half a CPU second
    # per worker, paid per day by a multi-day run). The server itself never parses, so it starts no threads.
    ctx.set_forkserver_preload([__name__])
    return ctx


def _s3_results(
    parser: DayParser, cfg: LedgerConfig, stats: DayStats, workers: int, spill: Path
) -> Iterator[_TaskResult]:
    """Task results of every S3 root, in source order, parsed in worker processes when the day is large."""
    tasks: list[_Task] = []
    total_bytes = 0
    for root in cfg.sources.invocation_logs.s3:
        listing = s3_logs.list_day(
            root, parser.day, late_hours=parser.window.late_hours, early_hours=parser.window.early_hours
        )
        stats.skipped.update(listing.skipped)
        stats.counts["objects_listed"] += len(listing.objects)
        total_bytes += sum(o.size for o in listing.objects)
        tasks.extend(_tasks(listing.objects, len(tasks), spill))
    if workers > 1 and len(tasks) > 1 and total_bytes >= PARALLEL_MIN_BYTES:
        with ProcessPoolExecutor(
            max_workers=min(workers, len(tasks)),
            mp_context=_mp_context(),
            initializer=_init_worker,
            initargs=(parser, dict(os.environ), os.getpid()),
        ) as pool:
            yield from pool.map(_worker_task, tasks)
    else:
        for task in tasks:
            yield _run_task(parser, task)


def _cloudwatch_frames(parser: DayParser, cfg: LedgerConfig) -> Iterator[tuple[pl.DataFrame | None, ChunkResult]]:
    from pipeline.sources import cloudwatch_logs

    for group in cfg.sources.invocation_logs.cloudwatch:
        for page in cloudwatch_logs.iter_day_events(
            group.log_group,
            parser.day,
            region=group.region,
            late_hours=parser.window.late_hours,
            early_hours=parser.window.early_hours,
        ):
            chunk = parser.parse_events(page)
            yield (rows_to_frame(chunk.rows) if chunk.rows else None), chunk


REJECT_SPILL_ROWS = 50_000
"""Rejects held in memory before they are written to a spill part (like rows)."""


def _spill_rejects(rejects: list[dict[str, Any]], folder: Path, parts: list[str], stats: DayStats) -> None:
    if not rejects:
        return
    frame = pl.DataFrame(rejects, schema=schemas.REJECTED_RECORDS)
    path = str(folder / f"rejects-{len(parts):07d}.arrow")
    frame.write_ipc(path, compression=SPILL_COMPRESSION)
    parts.append(path)
    stats.counts["rejected"] += frame.height
    stats.reject_reasons.update(r.split(":", 1)[0] for r in frame["reason"].to_list())
    rejects.clear()


def normalize_day(
    day: dt.date,
    cfg: LedgerConfig,
    *,
    workers: int | None = None,
    redact: Callable[[Any], str | None] | None = None,
    spill_dir: str | None = None,
) -> tuple[Generator[pl.DataFrame], Callable[[], pl.LazyFrame], DayStats, Callable[[], None]]:
    """Normalize `day`. Returns (deduplicated invocation batches, rejects, stats, cleanup).

    Nothing happens until the batches are read: the day is parsed *while* the caller writes them, each batch
    (about `OUTPUT_BATCH_ROWS` rows, one Parquet row group) deduplicated as soon as the parts before it are in,
    so the write overlaps the parse instead of waiting for it. `rejects()` (a lazy scan of their spill) and the
    final `stats` are ready once the batches are exhausted; call `cleanup()` once both have been written.

    `workers` is the number of worker processes (default: one per core). Spill folders left by runs that died
    are removed first.
    """
    workers = workers or os.cpu_count() or 1
    parser = DayParser(day, cfg, redact)
    stats = DayStats()
    parent = Path(spill_dir) if spill_dir else Path(tempfile.gettempdir())
    removed = lifeline.remove_orphans(parent)
    if removed:
        stats.counts["orphan_spill_folders_removed"] = len(removed)
    tmp = Path(tempfile.mkdtemp(prefix=f"{lifeline.SPILL_PREFIX}{day}-", dir=spill_dir))
    lifeline.mark_owner(tmp)
    reject_parts: list[str] = []
    finished = False

    def parts() -> Iterator[str]:
        """Spill parts of rows in source order, as soon as each is written (S3 tasks, then CloudWatch pages)."""
        rejects: list[dict[str, Any]] = []

        def tally(counts: Counter[str], new_rejects: list[dict[str, Any]]) -> None:
            stats.counts.update(counts)
            rejects.extend(new_rejects)
            if len(rejects) >= REJECT_SPILL_ROWS:
                _spill_rejects(rejects, tmp, reject_parts, stats)

        index = 0
        for res in _s3_results(parser, cfg, stats, workers, tmp):
            tally(res.counts, res.rejects)
            index = res.index + 1
            if res.part:
                stats.counts["rows_in_day"] += res.rows
                yield res.part
        for frame, chunk in _cloudwatch_frames(parser, cfg):
            tally(chunk.counts, chunk.rejects)
            if frame is not None:
                part = str(tmp / f"part-{index:07d}.arrow")
                index += 1
                stats.counts["rows_in_day"] += _write_part([frame], part)
                yield part
        _spill_rejects(rejects, tmp, reject_parts, stats)

    def batches() -> Generator[pl.DataFrame]:
        nonlocal finished
        dedup = FirstDelivery()
        pending: list[pl.DataFrame] = []
        size = 0
        try:
            for part in parts():
                frame = dedup.keep(pl.read_ipc(part), part)
                if frame.height == 0:
                    continue
                pending.append(frame)
                size += frame.height
                if size >= OUTPUT_BATCH_ROWS:
                    yield pl.concat(pending, how="vertical", rechunk=False)
                    pending, size = [], 0
        except BaseException:
            _rmtree(tmp)
            raise
        stats.counts["invocations"] = stats.counts["rows_in_day"] - dedup.dropped
        stats.counts["duplicates_removed"] = dedup.dropped
        stats.counts["conflicting_duplicates"] = dedup.conflicts
        stats.counts["rejected"] += 0  # present even when zero
        stats.conflict_examples = dedup.examples
        finished = True
        if pending or stats.counts["invocations"] == 0:
            # The last batch; a day without rows still yields one empty, typed frame.
            yield pl.concat(pending, how="vertical", rechunk=False) if pending else schemas.empty(schemas.INVOCATIONS)

    def rejects() -> pl.LazyFrame:
        if not finished:
            raise RuntimeError("normalize_day: read every batch first (the day is parsed as the batches are read)")
        if not reject_parts:
            return schemas.empty(schemas.REJECTED_RECORDS).lazy()
        return pl.scan_ipc(reject_parts).cast(schemas.REJECTED_RECORDS)  # type: ignore[arg-type]

    stream = batches()

    def cleanup() -> None:
        # Closing the stream first stops a parse that the caller abandoned (a failed write): the pool cancels the
        # tasks not yet started and waits only for those running, instead of parsing the rest of the day.
        stream.close()
        _rmtree(tmp)

    return stream, rejects, stats, cleanup


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
