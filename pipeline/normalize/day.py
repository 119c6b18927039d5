"""Normalize one UTC day of invocation logs from every configured source into the `invocations` table.

The day streams: each object (or CloudWatch page) is decoded, parsed and reduced to contract rows on its own and
appended to a local spill file, so memory holds one object at a time however large the day is. Deduplication on
`request_id` (a record delivered twice, or to both S3 and CloudWatch) runs at the end over the spill file with
polars' streaming engine. The first delivery wins, in a fixed order (S3 roots, then log groups, each sorted), so a
rerun gives the same rows.

Every record ends up in exactly one place: a row of its own day, a reject of its own day, or another day's
partition. Records of the previous or next day found in this day's folders belong to those days and are only
counted here; a reject without a usable time belongs to the day of the folder it was delivered to.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow.parquet as pq

from pipeline import schemas
from pipeline.config import LedgerConfig
from pipeline.normalize.decode import BadLine, excerpt, gunzip_tolerant, iter_json_lines
from pipeline.normalize.records import RecordError, parse_record, parse_timestamp
from pipeline.sources import cloudwatch_logs, s3_logs

_ROW_SCHEMA = dict(schemas.INVOCATIONS)


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
    """Parses records for one day with the config's profile map and body policy."""

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

    def parse_object(self, obj: s3_logs.LogObject) -> ChunkResult:
        """Read, decode and parse one S3 object; failures become rejects, never exceptions."""
        result = ChunkResult()
        home_day = obj.delivered_at.date() if obj.delivered_at else self.day
        result.counts["objects_read"] += 1
        try:
            data = s3_logs.read_object(obj.uri)
        except Exception as exc:  # noqa: BLE001 - an unreadable object is quarantined, the run goes on
            if home_day == self.day:
                result.rejects.append(
                    _reject(self.day, obj.uri, 0, f"unreadable_object: {type(exc).__name__}", str(exc))
                )
            return result
        result.counts["bytes_read"] += len(data)
        payload, gzip_error = gunzip_tolerant(data)
        result.counts["bytes_uncompressed"] += len(payload)
        tail = b""
        if gzip_error:
            cut = payload.rfind(b"\n") + 1
            payload, tail = payload[:cut], payload[cut:]
        last_line = 0
        for item in iter_json_lines(payload):
            if isinstance(item, BadLine):
                last_line = item.line
                if home_day == self.day:
                    result.rejects.append(_reject(self.day, obj.uri, item.line, item.reason, item.excerpt))
                else:
                    result.counts["rejects_of_other_days"] += 1
                continue
            last_line, record = item
            self._add(
                result, record, source="s3", uri=obj.uri, line=last_line, fallback=obj.delivered_at, home_day=home_day
            )
        if gzip_error and home_day == self.day:
            result.rejects.append(_reject(self.day, obj.uri, payload.count(b"\n") + 1, gzip_error, tail))
        return result

    def parse_events(self, events: list[cloudwatch_logs.LogEvent]) -> ChunkResult:
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


def _chunks(parser: DayParser, cfg: LedgerConfig, stats: DayStats, workers: int) -> Iterator[ChunkResult]:
    """Every source's chunks, in the fixed order that decides which duplicate wins."""
    for root in cfg.sources.invocation_logs.s3:
        listing = s3_logs.list_day(root, parser.day)
        stats.skipped.update(listing.skipped)
        stats.counts["objects_listed"] += len(listing.objects)
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                yield from pool.map(parser.parse_object, listing.objects)
        else:
            yield from map(parser.parse_object, listing.objects)
    for group in cfg.sources.invocation_logs.cloudwatch:
        for page in cloudwatch_logs.iter_day_events(group.log_group, parser.day, region=group.region):
            yield parser.parse_events(page)


def rows_to_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Contract rows (dicts) as a typed frame; maps become key/value lists."""
    for r in rows:
        r["request_metadata"] = schemas.dict_to_map(r["request_metadata"])
    return pl.DataFrame(rows, schema=_ROW_SCHEMA)


def normalize_day(
    day: dt.date,
    cfg: LedgerConfig,
    *,
    workers: int | None = None,
    redact: Callable[[Any], str | None] | None = None,
    spill_dir: str | None = None,
) -> tuple[Iterable[pl.DataFrame], pl.DataFrame, DayStats, Callable[[], None]]:
    """Normalize `day`. Returns (deduplicated invocation batches, rejects, stats, cleanup).

    The batches are read lazily from a local spill file; call `cleanup()` once they have been written.
    """
    workers = workers or min(4, (os.cpu_count() or 2) * 2)
    parser = DayParser(day, cfg, redact)
    stats = DayStats()
    tmp = Path(tempfile.mkdtemp(prefix=f"ledger-{day}-", dir=spill_dir))
    spill = tmp / "rows.parquet"
    deduped = tmp / "deduped.parquet"
    rejects: list[dict[str, Any]] = []
    writer: pq.ParquetWriter | None = None
    try:
        for chunk in _chunks(parser, cfg, stats, workers):
            stats.counts.update(chunk.counts)
            rejects.extend(chunk.rejects)
            if not chunk.rows:
                continue
            stats.counts["rows_in_day"] += len(chunk.rows)
            table = rows_to_frame(chunk.rows).to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(str(spill), table.schema)
            writer.write_table(table)
    except BaseException:
        if writer is not None:
            writer.close()
        _rmtree(tmp)
        raise
    if writer is not None:
        writer.close()
        lf = pl.scan_parquet(spill).unique(subset="request_id", keep="first", maintain_order=True)
        lf.sink_parquet(deduped)
        unique = pl.scan_parquet(deduped).select(pl.len()).collect().item()
    else:
        schemas.empty(schemas.INVOCATIONS).write_parquet(deduped)
        unique = 0
    stats.counts["invocations"] = unique
    stats.counts["duplicates_removed"] = stats.counts["rows_in_day"] - unique
    reject_df = (
        pl.DataFrame(rejects, schema=schemas.REJECTED_RECORDS) if rejects else schemas.empty(schemas.REJECTED_RECORDS)
    )
    stats.counts["rejected"] = reject_df.height
    stats.reject_reasons.update(r.split(":", 1)[0] for r in reject_df["reason"].to_list())

    def batches() -> Iterator[pl.DataFrame]:
        pf = pq.ParquetFile(str(deduped))
        if pf.metadata.num_rows == 0:
            yield schemas.empty(schemas.INVOCATIONS)
            return
        for batch in pf.iter_batches(batch_size=65_536):
            yield pl.from_arrow(batch)  # type: ignore[misc]

    return batches(), reject_df, stats, lambda: _rmtree(tmp)


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
