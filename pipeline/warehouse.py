"""The Parquet warehouse: `<warehouse>/<table>/date=YYYY-MM-DD/*.parquet`, local or on S3.

A partition is replaced as a whole, never half-written: the new file is written completely under a temporary
name first and only then put in place under the partition's one file name. Temporary files of writers that died
(`kill -9` mid-write) are removed by the next write of the partition. Temporary names never end in
`.parquet` (local: a hidden `.part-0.parquet.<id>.tmp` beside the target; S3: `_staging/<table>/<id>.tmp`), so
no glob a reader uses can pick up a file that is still being written or was left by a crash. Two runs of the
same partition at once each write their own temporary file; the last to finish wins, whole.
Map columns (`request_metadata`, `tags`) are written as Parquet MAP<string,string>, which DuckDB reads as a
MAP and polars as a list of key/value structs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from pipeline.aws import storage_options_for
from pipeline.memory import release_unused
from pipeline.schemas import STR_MAP, TABLES, conform
from pipeline.vocabulary import is_local

if TYPE_CHECKING:  # imported where used: loading the definitions must not pay for Arrow and fsspec
    import fsspec
    import pyarrow as pa

STAGING = "_staging"
PART_NAME = "part-0.parquet"
ROW_GROUP_ROWS = 131_072
"""Rows per Parquet row group at most: a reader streams a partition a row group at a time, so a table of a
million callers is read in bounded memory downstream (the writer's default, 1Mi rows, is one group per day)."""


def _fs(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri, **storage_options_for(uri))
    return fs, path


def _join(*parts: str) -> str:
    return "/".join(p.rstrip("/") for p in parts)


def partition_dir(warehouse: str, table: str, day: dt.date | str) -> str:
    """The folder (local path or URI) that holds one day of a table."""
    return _join(warehouse, table, f"date={day}")


def to_arrow(df: pl.DataFrame, table: str) -> pa.Table:
    """The frame as Arrow in the contract's column order, with map columns as real Parquet maps."""
    import pyarrow as pa

    df = conform(df, TABLES[table]) if table in TABLES else df
    at = df.to_arrow()
    fields = []
    arrays = []
    for name, col in zip(at.column_names, at.columns, strict=True):
        if table in TABLES and TABLES[table].get(name) == STR_MAP:
            combined = col.combine_chunks()
            offsets = combined.offsets
            values = combined.values
            map_type = pa.map_(pa.string(), pa.string())
            if len(combined) == 0:
                arr = pa.array([], type=map_type)
            else:
                keys = values.field("key")
                vals = values.field("value")
                arr = pa.MapArray.from_arrays(offsets, keys, vals, mask=combined.is_null())
            arrays.append(arr)
            fields.append(pa.field(name, map_type))
        else:
            arrays.append(col)
            fields.append(pa.field(name, col.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def write_partition(df: pl.DataFrame | Iterable[pl.DataFrame], warehouse: str, table: str, day: dt.date | str) -> str:
    """Replace one day of `table` with `df` (or a stream of frames), atomically; returns the file written.

    Each partition is one file with a fixed name, so replacing it is a single rename on a local disk and a
    single PUT (copy) on S3: readers see the old partition or the new one, never a mix or nothing.
    """
    frames = [df] if isinstance(df, pl.DataFrame) else df
    final_dir = partition_dir(warehouse, table, day)
    target = _join(final_dir, PART_NAME)
    if is_local(warehouse):
        folder = Path(final_dir.removeprefix("file://"))
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(folder)
        tmp = folder / tmp_name(PART_NAME)
        try:
            _write_frames(frames, table, str(tmp), None)
            os.replace(tmp, folder / PART_NAME)
        finally:
            tmp.unlink(missing_ok=True)
        return str(folder / PART_NAME)
    fs, _ = _fs(warehouse)
    staged = _join(warehouse, STAGING, table, f"{uuid.uuid4().hex}.tmp")
    try:
        _write_frames(frames, table, staged, fs)
        fs.copy(staged, target)
    finally:
        # A plain DELETE (no existence check first): under a least-privilege policy a HEAD of a key that was
        # never written is a 403, which would hide the error that brought us here.
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(staged)
    return target


STALE_TMP_S = 6 * 3600
"""A temporary file not written to for this long is a leftover whatever its name says (another host's crash)."""


def _host() -> str:
    return socket.gethostname().replace(".", "_")


def tmp_name(name: str) -> str:
    """A hidden temporary name beside `name` that says which writer owns it (host and pid): `remove_stale_tmp`
    can then tell a crashed writer's leftover from a live one's file."""
    return f".{name}.{_host()}.{os.getpid()}.{uuid.uuid4().hex}.tmp"


def remove_stale_tmp(folder: Path, name: str = PART_NAME) -> list[str]:
    """Remove temporary files (`tmp_name(name)`) of writers that are gone: this host's whose process is dead, and
    any untouched for `STALE_TMP_S` (a crash elsewhere, or a name from before the pid was in it). A live
    concurrent writer's file is left alone. Returns the names removed."""
    from pipeline.normalize.lifeline import alive

    host = _host()
    removed: list[str] = []
    for tmp in folder.glob(f".{name}.*.tmp"):
        parts = tmp.name[len(f".{name}.") : -len(".tmp")].split(".")
        ours_dead = len(parts) >= 3 and parts[-3] == host and parts[-2].isdigit() and not alive(int(parts[-2]))
        try:
            old = time.time() - tmp.stat().st_mtime > STALE_TMP_S
        except FileNotFoundError:
            continue
        if ours_dead or old:
            tmp.unlink(missing_ok=True)
            removed.append(tmp.name)
    return removed


def _list_parquet(fs: fsspec.AbstractFileSystem, folder: str) -> list[str]:
    # `refresh=True`: s3fs caches listings per process; another worker may have written the day since.
    try:
        return [p for p in fs.ls(folder, detail=False, refresh=True) if p.endswith(".parquet")]
    except FileNotFoundError:
        return []


def _write_frames(frames: Iterable[pl.DataFrame], table: str, path: str, fs: fsspec.AbstractFileSystem | None) -> None:
    import pyarrow.parquet as pq

    writer = None
    try:
        for frame in frames:
            at = to_arrow(frame, table)
            if writer is None:
                writer = pq.ParquetWriter(path, at.schema, filesystem=fs, compression="zstd")
            writer.write_table(at, row_group_size=ROW_GROUP_ROWS)
        if writer is None:  # no frames at all: still write an empty, typed partition
            at = to_arrow(pl.DataFrame(schema=TABLES[table]), table)
            writer = pq.ParquetWriter(path, at.schema, filesystem=fs, compression="zstd")
            writer.write_table(at)
    finally:
        if writer is not None:
            writer.close()
        release_unused()  # the Arrow copies of the frames: free for the next step, not kept in the pool


def partition_exists(warehouse: str, table: str, day: dt.date | str) -> bool:
    """Whether a day of a table has been written."""
    folder = partition_dir(warehouse, table, day)
    if is_local(warehouse):
        p = Path(folder.removeprefix("file://"))
        return p.is_dir() and any(p.glob("*.parquet"))
    fs, _ = _fs(warehouse)
    return bool(_list_parquet(fs, folder))


def partition_days(warehouse: str, table: str) -> list[dt.date]:
    """The days of a table that have a partition folder, oldest first (a reference table read across days)."""
    root = _join(warehouse, table)
    if is_local(warehouse):
        base = Path(root.removeprefix("file://"))
        names = [p.name for p in base.glob("date=*")] if base.is_dir() else []
    else:
        fs, path = _fs(root)
        try:  # `refresh=True`: another run may have written a day since this process last listed the table
            listed = fs.ls(path, detail=False, refresh=True)
        except FileNotFoundError:
            listed = []
        names = [n.rstrip("/").rsplit("/", 1)[-1] for n in listed]
        names = [n for n in names if n.startswith("date=")]
    days = []
    for name in names:
        try:
            days.append(dt.date.fromisoformat(name.removeprefix("date=")))
        except ValueError:
            continue
    return sorted(days)


def partition_files(warehouse: str, table: str, day: dt.date | str) -> list[str]:
    """The Parquet files of one partition (one, or none if the day was never written)."""
    folder = partition_dir(warehouse, table, day)
    if is_local(warehouse):
        p = Path(folder.removeprefix("file://"))
        return sorted(str(f) for f in p.glob("*.parquet")) if p.is_dir() else []
    fs, _ = _fs(warehouse)
    return [f"s3://{p}" for p in sorted(_list_parquet(fs, folder))]


def read_partition(warehouse: str, table: str, day: dt.date | str, columns: list[str] | None = None) -> pl.DataFrame:
    """One day of a table as the contract schema (an empty frame if the day was never written).

    `columns` reads only those columns (metadata and checks rarely need whole rows of a large day).
    """
    files = partition_files(warehouse, table, day)
    schema = TABLES.get(table)
    if schema and columns:
        schema = {c: schema[c] for c in columns}
    if not files:
        return pl.DataFrame(schema=schema) if schema else pl.DataFrame()
    opts: dict[str, Any] = storage_options_for(warehouse)
    frames = [
        pl.read_parquet(f, columns=columns, storage_options=_polars_storage(opts) if opts else None) for f in files
    ]
    df = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
    return conform(df, schema) if schema else df


def open_input(uri: str) -> Any:
    """A readable binary file for a local path or `s3://` URI (for streaming a partition in batches)."""
    import fsspec

    return fsspec.open(uri, "rb", **storage_options_for(uri)).open()


def scan_partitions(warehouse: str, table: str, days: Iterable[dt.date | str]) -> pl.LazyFrame:
    """Several days of a table lazily, for aggregations that must stay in flat memory."""
    files = [f for d in days for f in partition_files(warehouse, table, d)]
    schema = TABLES.get(table)
    if not files:
        return pl.LazyFrame(schema=schema)
    opts = storage_options_for(warehouse)
    lf = pl.scan_parquet(files, storage_options=_polars_storage(opts) if opts else None)
    return lf.select([pl.col(c).cast(t) for c, t in schema.items()]) if schema else lf


def _polars_storage(opts: dict[str, Any]) -> dict[str, str]:
    """polars' object store takes flat string options; only the endpoint matters beyond the default chain."""
    out: dict[str, str] = {}
    if "endpoint_url" in opts:
        out["aws_endpoint_url"] = opts["endpoint_url"]
        if opts["endpoint_url"].startswith("http://"):
            out["aws_allow_http"] = "true"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        out["aws_region"] = region
    return out
