"""Normalize one UTC day of invocation logs from every configured source into the `invocations` table.

The day streams: objects are read, decompressed and parsed in small groups ("tasks"), each reduced to contract
rows and written to its own spill part on local disk, so memory holds a few objects at a time however large the
day is. Tasks run in worker processes on every core (parsing is CPU-bound and the GIL would serialize threads);
the parts are numbered in the fixed source order (S3 roots, then log groups, each sorted), so the result does not
depend on which worker finished first. Deduplication on `request_id` (a record delivered twice, or to both S3
and CloudWatch) runs at the end over the parts, in that order: the first delivery wins, and a rerun gives the
same rows.

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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl

from pipeline import schemas
from pipeline.normalize.decode import BadLine, excerpt, gunzip_tolerant, iter_json_lines
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
SPILL_COMPRESSION = "zstd"
FETCH_THREADS = 4
"""Concurrent GETs per task when reading from S3."""
_HASH_SEED = 0x1ED6E2


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

    def as_metadata(self) -> dict[str, int]:
        out = {k: int(v) for k, v in sorted(self.counts.items())}
        out.update({f"skipped_{k}": int(v) for k, v in sorted(self.skipped.items())})
        return out


def _record_excerpt(record: Any) -> bytes:
    """A rejected record without its bodies: enough to find it, never the prompt or the response."""
    if isinstance(record, dict):
        slim = {k: v for k, v in record.items() if k not in ("input", "output")}
        return orjson.dumps(slim)
    return orjson.dumps(record)[:80]


def _reject(day: dt.date, uri: str, line: int, reason: str, raw: bytes | str) -> dict[str, Any]:
    return {"date": day, "source_uri": uri, "line": line, "reason": reason, "raw_excerpt": excerpt(raw)}


class DayParser:
    """Parses records for one day with the config's profile map and body policy.

    Picklable (plain data and a module-level redaction function), so worker processes get their own copy.
    """

    def __init__(self, day: dt.date, cfg: LedgerConfig, redact: Callable[[Any], str | None] | None = None):
        self.day = day
        self.app_profiles = tuple(sorted((arn, p.model_id) for arn, p in cfg.attribution.inference_profiles.items()))
        self.redact = redact if cfg.retain_bodies == "redacted" else None

    def _add(
        self,
        result: ChunkResult,
        record: Any,
        *,
        source: str,
        uri: str,
        line: int,
        fallback: dt.datetime | None,
        home_day: dt.date | None,
    ) -> None:
        result.counts["records_seen"] += 1
        try:
            row = parse_record(
                record,
                source=source,
                source_uri=uri,
                fallback_time=fallback,
                app_profiles=self.app_profiles,
                redact=self.redact,
            )
        except RecordError as exc:
            ts = parse_timestamp(record.get("timestamp")) if isinstance(record, dict) else None
            owner = ts.date() if ts else home_day
            if owner == self.day:
                result.rejects.append(_reject(self.day, uri, line, str(exc), _record_excerpt(record)))
            else:
                result.counts["rejects_of_other_days"] += 1
            return
        ts = row["timestamp"]
        if ts.date() != self.day:
            result.counts["records_of_other_days"] += 1
            return
        row["date"] = self.day
        result.rows.append(row)

    def _read(
        self, obj: s3_logs.LogObject, result: ChunkResult, fetched: bytes | BaseException | None = None
    ) -> tuple[bytes, str | None] | None:
        """The object's decompressed bytes and gzip error; None (with the reject recorded) if unreadable.

        `fetched` is the object's bytes (or the error reading it) when they were fetched ahead (`_fetch`).
        """
        home_day = obj.delivered_at.date() if obj.delivered_at else self.day
        result.counts["objects_read"] += 1
        try:
            if fetched is None:
                data = s3_logs.read_object(obj.uri)
            elif isinstance(fetched, BaseException):
                raise fetched
            else:
                data = fetched
        except Exception as exc:  # noqa: BLE001 - an unreadable object is quarantined, the run goes on
            if home_day == self.day:
                result.rejects.append(
                    _reject(self.day, obj.uri, 0, f"unreadable_object: {type(exc).__name__}", str(exc))
                )
            return None
        result.counts["bytes_read"] += len(data)
        payload, gzip_error = gunzip_tolerant(data)
        result.counts["bytes_uncompressed"] += len(payload)
        return payload, gzip_error

    def parse_object(self, obj: s3_logs.LogObject) -> ChunkResult:
        """Read, decode and parse one S3 object with the reference path; failures become rejects, never
        exceptions."""
        result = ChunkResult()
        read = self._read(obj, result)
        if read is not None:
            self._parse_payload(obj, read[0], read[1], result)
        return result

    def _parse_payload(
        self, obj: s3_logs.LogObject, payload: bytes, gzip_error: str | None, result: ChunkResult
    ) -> None:
        """The reference path over one object's decompressed bytes."""
        home_day = obj.delivered_at.date() if obj.delivered_at else self.day
        tail = b""
        if gzip_error:
            cut = payload.rfind(b"\n") + 1
            payload, tail = payload[:cut], payload[cut:]
        for item in iter_json_lines(payload):
            self._line_item(result, item, obj, home_day)
        if gzip_error and home_day == self.day:
            result.rejects.append(_reject(self.day, obj.uri, payload.count(b"\n") + 1, gzip_error, tail))

    def _line_item(
        self, result: ChunkResult, item: tuple[int, Any] | BadLine, obj: s3_logs.LogObject, home_day: dt.date
    ) -> None:
        if isinstance(item, BadLine):
            if home_day == self.day:
                result.rejects.append(_reject(self.day, obj.uri, item.line, item.reason, item.excerpt))
            else:
                result.counts["rejects_of_other_days"] += 1
            return
        number, record = item
        self._add(result, record, source="s3", uri=obj.uri, line=number, fallback=obj.delivered_at, home_day=home_day)

    def parse_objects(self, objects: Iterable[s3_logs.LogObject]) -> tuple[list[pl.DataFrame], ChunkResult]:
        """Parse objects in order: frames of contract rows (in object and line order) plus rejects and counts.

        Objects take the fast path when they can and the reference path otherwise; rows of consecutive
        fast-path objects are turned into one frame, because building columns per object costs more than
        parsing a small object.
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
            read = self._read(obj, one, fetched)
            if read is not None:
                payload, gzip_error = read
                done = (
                    pending is not None
                    and gzip_error is None
                    and fast.parse_payload(
                        payload, pending, day=self.day, source_uri=obj.uri, fallback_time=obj.delivered_at
                    )
                )
                if not done:
                    self._parse_payload(obj, payload, gzip_error, one)
                    if one.rows:
                        flush()
                        frames.append(rows_to_frame(one.rows))
            total.rejects.extend(one.rejects)
            total.counts.update(one.counts)
        if pending is not None:
            # Only keys that counted something, as the reference path's counters do.
            if pending.records_seen:
                total.counts["records_seen"] += pending.records_seen
            if pending.records_of_other_days:
                total.counts["records_of_other_days"] += pending.records_of_other_days
            flush()
        return frames, total

    def parse_events(self, events: list[LogEvent]) -> ChunkResult:
        """Parse one page of CloudWatch events (one record per event)."""
        result = ChunkResult()
        result.counts["cloudwatch_events"] += len(events)
        for event in events:
            home_day = event.timestamp.date()
            items = list(iter_json_lines(event.message.encode("utf-8")))
            if not items:
                if home_day == self.day:
                    result.rejects.append(_reject(self.day, event.uri, 1, "empty_event", event.message))
                continue
            for item in items:
                if isinstance(item, BadLine):
                    if home_day == self.day:
                        result.rejects.append(_reject(self.day, event.uri, 1, item.reason, item.excerpt))
                    continue
                self._add(
                    result,
                    item[1],
                    source="cloudwatch",
                    uri=event.uri,
                    line=1,
                    fallback=event.timestamp,
                    home_day=home_day,
                )
        return result


def _get(uri: str) -> bytes | BaseException:
    try:
        if "://" not in uri:  # a local folder in the S3 layout: fsspec's per-open overhead is pure cost here
            with open(uri, "rb") as f:
                return f.read()
        return s3_logs.read_object(uri)
    except Exception as exc:  # noqa: BLE001 - handed to `DayParser._read`, which records the reject
        return exc


def _fetch(objects: list[s3_logs.LogObject]) -> Iterator[tuple[s3_logs.LogObject, bytes | BaseException]]:
    """Each object with its bytes, in order. Remote objects are fetched a few at a time on threads: a GET is
    mostly waiting (the GIL is free meanwhile), and spreading requests keeps a burst of throttling from landing
    on one object's retries. Local files are read inline."""
    remote = [o for o in objects if "://" in o.uri and not o.uri.startswith("file://")]
    if len(remote) < 2:
        for obj in objects:
            yield obj, _get(obj.uri)
        return
    with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
        yield from zip(objects, pool.map(_get, [o.uri for o in objects]), strict=True)


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


def _init_worker(parser: DayParser, environ: dict[str, str]) -> None:
    """Worker setup: the parent's environment as of now (a forkserver started earlier may hold an older one)
    and the day's parser, sent once instead of with every task."""
    global _WORKER_PARSER
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
        listing = s3_logs.list_day(root, parser.day)
        stats.skipped.update(listing.skipped)
        stats.counts["objects_listed"] += len(listing.objects)
        total_bytes += sum(o.size for o in listing.objects)
        tasks.extend(_tasks(listing.objects, len(tasks), spill))
    if workers > 1 and len(tasks) > 1 and total_bytes >= PARALLEL_MIN_BYTES:
        with ProcessPoolExecutor(
            max_workers=min(workers, len(tasks)),
            mp_context=_mp_context(),
            initializer=_init_worker,
            initargs=(parser, dict(os.environ)),
        ) as pool:
            yield from pool.map(_worker_task, tasks)
    else:
        for task in tasks:
            yield _run_task(parser, task)


def _cloudwatch_frames(parser: DayParser, cfg: LedgerConfig) -> Iterator[tuple[pl.DataFrame | None, ChunkResult]]:
    from pipeline.sources import cloudwatch_logs

    for group in cfg.sources.invocation_logs.cloudwatch:
        for page in cloudwatch_logs.iter_day_events(group.log_group, parser.day, region=group.region):
            chunk = parser.parse_events(page)
            yield (rows_to_frame(chunk.rows) if chunk.rows else None), chunk


def _dedup_parts(parts: list[str]) -> int:
    """Drop later deliveries of a `request_id` from the parts, in place; returns how many rows were dropped.

    Flat in memory: the first pass reads only the `request_id` column, one part at a time, and keeps one 64-bit
    hash per row (32 MB for 4M rows; sorted, not hashed again, to find repeats). Only rows whose hash occurs
    twice (true duplicates and the odd collision) are compared by their actual id, part by part in order.
    """
    if not parts:
        return 0
    hashes = pl.concat([pl.read_ipc(p, columns=["request_id"])["request_id"].hash(_HASH_SEED) for p in parts])
    hashes = hashes.sort()
    candidates = hashes.filter(hashes == hashes.shift(1)).unique()
    del hashes
    if candidates.is_empty():
        return 0
    seen: set[str] = set()
    dropped = 0
    for part in parts:
        frame = pl.read_ipc(part)
        positions = frame.select(pl.col("request_id").hash(_HASH_SEED).is_in(candidates)).to_series().arg_true()
        if positions.is_empty():
            continue
        drop: list[int] = []
        for pos, rid in zip(positions.to_list(), frame["request_id"].gather(positions).to_list(), strict=True):
            if rid in seen:
                drop.append(pos)
            else:
                seen.add(rid)
        if drop:
            keep = pl.int_range(frame.height, eager=True).is_in(pl.Series(drop, dtype=pl.Int64)).not_()
            frame.filter(keep).write_ipc(f"{part}.tmp", compression=SPILL_COMPRESSION)
            os.replace(f"{part}.tmp", part)
            dropped += len(drop)
    return dropped


def _read_ahead(reader: ThreadPoolExecutor, parts: list[str]) -> Iterator[pl.DataFrame]:
    """The parts in order, each read while the previous one is being used (one part ahead: flat memory)."""
    if not parts:
        return
    future = reader.submit(pl.read_ipc, parts[0])
    for nxt in parts[1:]:
        frame = future.result()
        future = reader.submit(pl.read_ipc, nxt)
        yield frame
    yield future.result()


def normalize_day(
    day: dt.date,
    cfg: LedgerConfig,
    *,
    workers: int | None = None,
    redact: Callable[[Any], str | None] | None = None,
    spill_dir: str | None = None,
) -> tuple[Iterable[pl.DataFrame], pl.DataFrame, DayStats, Callable[[], None]]:
    """Normalize `day`. Returns (deduplicated invocation batches, rejects, stats, cleanup).

    `workers` is the number of worker processes (default: one per core). The batches are read lazily from
    local spill files; call `cleanup()` once they have been written.
    """
    workers = workers or os.cpu_count() or 1
    parser = DayParser(day, cfg, redact)
    stats = DayStats()
    tmp = Path(tempfile.mkdtemp(prefix=f"ledger-{day}-", dir=spill_dir))
    rejects: list[dict[str, Any]] = []
    parts: list[str] = []
    try:
        index = 0
        for res in _s3_results(parser, cfg, stats, workers, tmp):
            stats.counts.update(res.counts)
            rejects.extend(res.rejects)
            if res.part:
                parts.append(res.part)
                stats.counts["rows_in_day"] += res.rows
            index = res.index + 1
        for frame, chunk in _cloudwatch_frames(parser, cfg):
            stats.counts.update(chunk.counts)
            rejects.extend(chunk.rejects)
            if frame is not None:
                part = str(tmp / f"part-{index:07d}.arrow")
                index += 1
                parts.append(part)
                stats.counts["rows_in_day"] += _write_part([frame], part)
        dropped = _dedup_parts(parts)
    except BaseException:
        _rmtree(tmp)
        raise
    unique = stats.counts["rows_in_day"] - dropped
    stats.counts["invocations"] = unique
    stats.counts["duplicates_removed"] = dropped
    reject_df = (
        pl.DataFrame(rejects, schema=schemas.REJECTED_RECORDS) if rejects else schemas.empty(schemas.REJECTED_RECORDS)
    )
    stats.counts["rejected"] = reject_df.height
    stats.reject_reasons.update(r.split(":", 1)[0] for r in reject_df["reason"].to_list())

    def batches() -> Iterator[pl.DataFrame]:
        # The next part is read on a thread while the caller encodes the current batch (both release the GIL),
        # so reading the spill back costs next to nothing on two cores.
        pending: list[pl.DataFrame] = []
        size = 0
        yielded = False
        with ThreadPoolExecutor(max_workers=1) as reader:
            for frame in _read_ahead(reader, parts):
                if frame.height == 0:
                    continue
                pending.append(frame)
                size += frame.height
                if size >= OUTPUT_BATCH_ROWS:
                    yield pl.concat(pending, how="vertical", rechunk=False)
                    pending, size, yielded = [], 0, True
        if pending:
            yield pl.concat(pending, how="vertical", rechunk=False)
        elif not yielded:
            yield schemas.empty(schemas.INVOCATIONS)

    return batches(), reject_df, stats, lambda: _rmtree(tmp)


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
