"""Benchmark of what a user pays for one day of `invocations`, against DuckDB baselines and the decompression floor.

A development command: it needs the dev dependencies (`uv sync` installs them; DuckDB is one) and lives in the
repository's `benchmarks/` folder, outside the installed `pipeline` package, which never imports it. Run it from
the repository's root.

    uv run python -m benchmarks.bench                      # a 400K-record day (~3.4 KB each), cached under the data dir
    uv run python -m benchmarks.bench --records 4000000    # flat memory as the day grows
    uv run python -m benchmarks.bench --only ours,floor    # a subset of the contenders
    uv run python -m benchmarks.bench --records 1000000 --distinct-users 1000000 --only cli_day
                                                           # a whole day (bill, chargeback, FOCUS …) of 1M callers
    uv run python -m benchmarks.bench --help

Why many contenders on the same files, in one run: absolute numbers depend on the machine (and on what else runs
on it), ratios much less.

*Fixed cost*, measured against `import dagster` itself (the targets: definitions load within 1 s of it, an empty-day
CLI run within 3 s of it): `uv_run` (what `uv run` adds to every README command), `import_dagster`, `defs_load`
(`import pipeline.definitions`), and the two ways a
user runs a day, on a day with no logs: `cli_empty` (`bedrock-ledger run --select invocations,rejected_records`)
and `dagster_empty` (`dagster asset materialize` of the same assets).

*End to end* (what the user waits for): `cli` and `dagster`, the same commands for the benchmark day, each a
fresh process with its own fixed cost, against one Dagster instance created beforehand (as a user's is).
`cli_day` runs *every* asset of the day (as the daily schedule does) over a sample bill of that day, and reports
the peak memory while each step ran: with `--distinct-users N` the records carry N distinct `userId` and
`applicationId` values (every record its own caller when N >= the records), the size a consumer SaaS putting its
end users' ids in request metadata reaches, which grows every per-caller table (chargeback, FOCUS, per-user usage).

*Inside the asset* (where the time goes): `ours` is what the `invocations` asset does, in-process: `normalize_day`
over a local folder in the S3 layout (the parse, with the partition written as it goes), the write's tail and the
rejects, then the asset's metadata and checks (reported on their own).

*Baselines*: `duckdb_lean` reads the same gzipped NDJSON with `read_json` and explicit columns, top-level fields
and the Converse `metrics.latencyMs` only, to one zstd Parquet file: the least a query engine must do.
`duckdb` extracts everything `invocations` holds (nested token counts, latency from the Converse metrics or the
stream's last chunk, stop reason, metadata map), re-parsing each body with `json_extract`. `floor` only inflates
every object with ISA-L (`isal`, the fastest gzip inflater available) on as many processes as ours has workers:
no parser can beat it.

Each contender runs in a fresh subprocess, after every object has been read once (the same hot page cache for
all; `--repeat N` keeps the fastest of N runs, useful on a shared machine). Peak memory is read from /proc over
the contender's whole process tree, workers included: the largest single process (its `VmHWM`) and the largest
sum of proportional memory (PSS: a page shared by forked workers counted once, not once per process) over all of
them, sampled every 20 ms (what a container's memory limit sees). CPU seconds
of the tree are reported beside wall time, and so is the CPU that *other* processes used meanwhile: on a shared
machine wall-time ratios move with the load, CPU-time ratios much less (both are printed).

Data: a realistic day from `pipeline.sample.logs` (several accounts and Regions, all four operations,
provider-native bodies, errors, guardrails, late deliveries). The generator renders a few thousand records per
second, far too slow for millions, so it writes `--distinct` records once (the *base*, cached) and the day is
made from copies: output object *j* holds copy *k* of base object *j + k* for k = 0..R-1, every request id of
copy *k* rewritten (its first 8 hex digits XOR k), gzip level 6 like the originals. Every object keeps its key
(account, Region, hour) and grows R times; every (object, copy) appears once, so all ids stay unique; copies in
one object come from different base objects, so gzip finds no artificial long repeats. Both the base and the
day are cached in the data dir (a `manifest.json` marks a finished one), so a rerun only measures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
"""The repository's root (this file is `benchmarks/bench.py`)."""
DEFAULT_DIR = Path(tempfile.gettempdir()) / "bedrock-ledger-bench"
DAY = dt.date(2026, 3, 2)
DISTINCT = 100_000
RID_KEY = b'"requestId":"'


# ------------------------------------------------------------------------------------------------- the data


@dataclass
class Dataset:
    """A cached benchmark day: where it is and what it holds (`manifest.json`)."""

    root: str
    day: str
    records: int
    objects: int
    bytes_gz: int
    bytes_json: int
    copies: int
    distinct: int
    body_kb: float
    seed: int
    seconds_to_build: float
    distinct_users: int = 0
    """Distinct `userId`s (and `applicationId`s) the day's records carry; 0 = as generated (a few dozen)."""


def _manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else None


def _base(data_dir: Path, distinct: int, body_kb: float, seed: int) -> Path:
    """Generate (once) the distinct records the day is copied from."""
    from pipeline.sample.logs import LogGenOptions, write_logs

    folder = data_dir / f"base-n{distinct}-kb{body_kb:g}-s{seed}"
    if _manifest(folder):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    print(f"generating {distinct:,} distinct records into {folder} (a few thousand per second) …", flush=True)
    t0 = time.perf_counter()
    opts = LogGenOptions(
        start=DAY, days=1, records_per_day=distinct, body_kb=body_kb, seed=seed, records_per_file=1_000_000
    )
    summary = write_logs(str(folder), opts)
    took = time.perf_counter() - t0
    (folder / "manifest.json").write_text(json.dumps({"records": summary.records, "seconds": took}))
    print(f"  {summary.records:,} records, {summary.files:,} objects in {took:.0f} s", flush=True)
    return folder


def _rewrite_ids(payload: bytes, copy: int) -> bytes:
    """The object's lines with every request id of copy `copy` made unique (first 8 hex digits XOR copy)."""
    if copy == 0:
        return payload
    out: list[bytes] = []
    for line in payload.split(b"\n"):
        at = line.find(RID_KEY)
        if at >= 0:
            start = at + len(RID_KEY)
            head = int(line[start : start + 8], 16) ^ copy
            line = b"%s%08x%s" % (line[:start], head, line[start + 8 :])
        out.append(line)
    return b"\n".join(out)


def _distinct_callers(payload: bytes, users: int) -> bytes:
    """Each record's `userId` and `applicationId` set from its (unique) request id: every record its own caller
    when `users` is -1, else about `users` of them (a hash of the id, modulo). What a consumer
    SaaS that puts its end users' ids in request metadata sends."""
    import orjson

    out: list[bytes] = []
    for line in payload.split(b"\n"):
        if not line.strip():
            out.append(line)
            continue
        rec = orjson.loads(line)
        rid = str(rec.get("requestId", ""))
        key = rid if users < 0 else zlib.crc32(rid.encode()) % users
        meta = rec.get("requestMetadata") if isinstance(rec.get("requestMetadata"), dict) else {}
        rec["requestMetadata"] = {**meta, "userId": f"user-{key}", "applicationId": f"app-{key}"}
        out.append(orjson.dumps(rec))
    return b"\n".join(out)


def _build_object(args: tuple[list[str], str, int]) -> tuple[int, int, int]:
    """Write one day object from its base sources (copy k from `sources[k]`); returns (records, gzip bytes,
    json bytes)."""
    sources, target, users = args
    parts: list[bytes] = []
    for k, src in enumerate(sources):
        payload = zlib.decompress(Path(src).read_bytes(), 31)
        if payload and not payload.endswith(b"\n"):
            payload += b"\n"
        payload = _rewrite_ids(payload, k)
        parts.append(_distinct_callers(payload, users) if users else payload)
    body = b"".join(parts)
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    gz = comp.compress(body) + comp.flush()
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_bytes(gz)
    return body.count(b"\n"), len(gz), len(body)


def ensure_data(
    data_dir: Path, records: int, body_kb: float, distinct: int, seed: int, workers: int, users: int = 0
) -> Dataset:
    """The benchmark day for these options, built if it is not cached yet."""
    from pipeline.sources import s3_logs

    copies = max(1, round(records / distinct))
    distinct = math.ceil(records / copies)
    folder = data_dir / f"day-r{records}-kb{body_kb:g}-d{distinct}-s{seed}{f'-u{users}' if users else ''}"
    cached = _manifest(folder)
    if cached:
        return Dataset(**cached)
    base = _base(data_dir, distinct, body_kb, seed)
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    objects = s3_logs.list_day(str(base), DAY).objects  # exactly what the pipeline will read
    sources = [o.uri for o in objects]
    n = len(sources)
    # Object j holds copy k of base object (j + k) % n, for k = 0..copies-1.
    per_object_users = -1 if users >= records else users
    jobs = [
        ([sources[(j + k) % n] for k in range(copies)], str(folder / Path(uri).relative_to(base)), per_object_users)
        for j, uri in enumerate(sources)
    ]
    print(f"building a day of ~{records:,} records: {n:,} objects x {copies} copies into {folder} …", flush=True)
    total = [0, 0, 0]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for i, res in enumerate(pool.map(_build_object, jobs, chunksize=16)):
            for t in range(3):
                total[t] += res[t]
            if (i + 1) % 2000 == 0:
                print(f"  {i + 1:,}/{n:,} objects", flush=True)
    ds = Dataset(
        root=str(folder),
        day=DAY.isoformat(),
        records=total[0],
        objects=n,
        bytes_gz=total[1],
        bytes_json=total[2],
        copies=copies,
        distinct=distinct,
        body_kb=body_kb,
        seed=seed,
        seconds_to_build=round(time.perf_counter() - t0, 1),
        distinct_users=users,
    )
    (folder / "manifest.json").write_text(json.dumps(asdict(ds)))
    print(f"  done in {ds.seconds_to_build:.0f} s", flush=True)
    return ds


def hourly(ds: Dataset) -> Dataset:
    """The same day with each hour's objects of one account and Region joined into one (cached).

    Why: the generated day has many small objects (tens of records each, as busy accounts in many Regions
    deliver them); a day of one account in one Region comes as a few hundred large ones, where per-object costs
    weigh far less. Joining gzip files byte for byte makes a multi-member gzip, which S3 delivery can also
    produce and every contender reads; no record changes.
    """
    folder = Path(f"{ds.root}-hourly")
    cached = _manifest(folder)
    if cached:
        return Dataset(**cached)
    shutil.rmtree(folder, ignore_errors=True)
    root = Path(ds.root)
    groups: dict[Path, list[Path]] = {}
    for path in sorted(root.rglob("*.json.gz")):
        groups.setdefault(path.parent, []).append(path)
    total_gz = 0
    for members in groups.values():
        target = folder / members[0].relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            for member in members:
                total_gz += out.write(member.read_bytes())
    for extra in root.iterdir():  # the permission-check marker and anything else beside AWSLogs/
        if extra.name not in ("AWSLogs", "manifest.json"):
            (shutil.copytree if extra.is_dir() else shutil.copy)(extra, folder / extra.name)
    merged = Dataset(**{**asdict(ds), "root": str(folder), "objects": len(groups), "bytes_gz": total_gz})
    (folder / "manifest.json").write_text(json.dumps(asdict(merged)))
    return merged


# --------------------------------------------------------------------------------------------- contenders


def _files(ds: Dataset) -> list[str]:
    from pipeline.sources import s3_logs

    return [o.uri for o in s3_logs.list_day(ds.root, dt.date.fromisoformat(ds.day)).objects]


def run_ours(ds: Dataset, workers: int, out: Path) -> dict[str, Any]:
    """What the `invocations` asset does: normalize the day, write the partition and the rejects."""
    from pipeline import warehouse
    from pipeline.config import LedgerConfig
    from pipeline.normalize import day as day_mod
    from pipeline.privacy import redact_body

    cfg = LedgerConfig.model_validate(
        {"warehouse": str(out / "warehouse"), "sources": {"invocation_logs": {"s3": [ds.root]}}}
    )
    day = dt.date.fromisoformat(ds.day)
    print("@phase parse", flush=True)
    t0 = time.perf_counter()
    batches, rejects, stats, cleanup = day_mod.normalize_day(
        day, cfg, workers=workers, redact=redact_body, spill_dir=str(out)
    )
    from pipeline.normalize.summary import SummaryAccumulator

    # The day is parsed while the writer takes its batches: the parse has ended when the last batch comes out
    # (the final counts are set just before it), and what follows is the write's tail.
    t_parsed = t0

    def watched(stream: Any) -> Any:
        nonlocal t_parsed
        for batch in stream:
            if t_parsed == t0 and "invocations" in stats.counts:
                t_parsed = time.perf_counter()
                print("@phase write", flush=True)
            yield batch
        if t_parsed == t0:  # the last part ended a full batch: no batch came after the final counts
            t_parsed = time.perf_counter()

    summary = SummaryAccumulator()  # as the asset does: figures from the stream, no re-read of the partition
    try:
        warehouse.write_partition(summary.tee(watched(batches)), cfg.warehouse, "invocations", day)
        reject_rows = rejects().collect()
    finally:
        cleanup()
    warehouse.write_partition(reject_rows, cfg.warehouse, "rejected_records", day)
    t_written = time.perf_counter()
    own_hwm_kib = _own_hwm_kib()  # the parent's peak before the checks
    print("@phase checks", flush=True)
    from pipeline.normalize.summary import day_checks  # the asset's checks, without Dagster

    t_checks = time.perf_counter()
    checks = day_checks(summary.result(), reject_rows, stats.as_metadata().get("rejects_not_kept", 0), 0.01)
    t1 = time.perf_counter()
    return {
        "seconds": t_written - t0,  # (a) of the docstring; the checks are reported on their own
        "rows": stats.counts["invocations"],
        "rejected": reject_rows.height,
        "checks_passed": all(checks.passed.values()),
        "parse_seconds": t_parsed - t0,
        "write_seconds": t_written - t_parsed,
        "checks_seconds": t1 - t_checks,
        "fast_path": day_mod.fast is not None,
        "own_hwm_kib": own_hwm_kib,
    }


DUCKDB_COLUMNS = {
    "schemaType": "VARCHAR",
    "schemaVersion": "VARCHAR",
    "timestamp": "VARCHAR",
    "accountId": "VARCHAR",
    "region": "VARCHAR",
    "requestId": "VARCHAR",
    "operation": "VARCHAR",
    "modelId": "VARCHAR",
    "errorCode": "VARCHAR",
    "inferenceRegion": "VARCHAR",
    "identity": "STRUCT(arn VARCHAR)",
    "requestMetadata": "MAP(VARCHAR, VARCHAR)",
    "input": "STRUCT(inputTokenCount BIGINT, cacheReadInputTokenCount BIGINT, cacheWriteInputTokenCount BIGINT, "
    "inputBodyS3Path VARCHAR, inputBodyJson JSON)",
    "output": "STRUCT(outputTokenCount BIGINT, outputBodyS3Path VARCHAR, outputBodyJson JSON)",
}
_LAST_CHUNK_METRICS = "'$[#-1].\"amazon-bedrock-invocationMetrics\"'"
DUCKDB_SELECT = f"""
SELECT requestId AS request_id,
       strptime(timestamp, '%Y-%m-%dT%H:%M:%SZ') AS timestamp,
       accountId AS account_id, region, inferenceRegion AS inference_region, operation, modelId AS model_id,
       identity.arn AS identity_arn,
       coalesce(input.inputTokenCount, body_in) AS input_tokens,
       coalesce(output.outputTokenCount, body_out) AS output_tokens,
       coalesce(input.cacheReadInputTokenCount, body_cr) AS cache_read_input_tokens,
       coalesce(input.cacheWriteInputTokenCount, body_cw) AS cache_write_input_tokens,
       CAST(json_extract(input.inputBodyJson, '$.imageGenerationConfig.numberOfImages') AS BIGINT) AS image_count,
       coalesce(CAST(json_extract(output.outputBodyJson, '$.metrics.latencyMs') AS BIGINT),
                CAST(json_extract(stream_metrics, '$.invocationLatency') AS BIGINT)) AS latency_ms,
       CAST(json_extract(stream_metrics, '$.firstByteLatency') AS BIGINT) AS first_byte_latency_ms,
       coalesce(json_extract_string(output.outputBodyJson, '$.stopReason'),
                json_extract_string(output.outputBodyJson, '$.stop_reason'),
                json_extract_string(output.outputBodyJson, '$[#-2].delta.stop_reason'),
                json_extract_string(output.outputBodyJson, '$[#-1].stop_reason')) AS stop_reason,
       errorCode AS error_code, requestMetadata AS request_metadata, filename AS source_uri,
       schemaVersion AS schema_version, json_extract_string(input.inputBodyJson, '$.serviceTier') AS service_tier,
       input.inputBodyS3Path AS input_body_s3_path, output.outputBodyS3Path AS output_body_s3_path
FROM (
  SELECT *,
         json_extract(output.outputBodyJson, {_LAST_CHUNK_METRICS}) AS stream_metrics,
         CAST(json_extract(output.outputBodyJson, '$.usage.inputTokens') AS BIGINT) AS body_in,
         CAST(json_extract(output.outputBodyJson, '$.usage.outputTokens') AS BIGINT) AS body_out,
         CAST(json_extract(output.outputBodyJson, '$.usage.cacheReadInputTokens') AS BIGINT) AS body_cr,
         CAST(json_extract(output.outputBodyJson, '$.usage.cacheWriteInputTokens') AS BIGINT) AS body_cw
  FROM read_json($files, format = 'newline_delimited', compression = 'gzip', columns = {DUCKDB_COLUMNS!r},
                 filename = true, maximum_object_size = 16777216)
)
"""

DUCKDB_LEAN_COLUMNS = {
    "timestamp": "VARCHAR",
    "accountId": "VARCHAR",
    "region": "VARCHAR",
    "requestId": "VARCHAR",
    "operation": "VARCHAR",
    "modelId": "VARCHAR",
    "errorCode": "VARCHAR",
    "identity": "STRUCT(arn VARCHAR)",
    "input": "STRUCT(inputTokenCount BIGINT, cacheReadInputTokenCount BIGINT, cacheWriteInputTokenCount BIGINT)",
    # JSON, not a STRUCT: a streaming body is an array, which a STRUCT type rejects (the whole file fails).
    "output": "STRUCT(outputTokenCount BIGINT, outputBodyJson JSON)",
}
DUCKDB_LEAN_SELECT = f"""
SELECT requestId AS request_id, strptime(timestamp, '%Y-%m-%dT%H:%M:%SZ') AS timestamp,
       accountId AS account_id, region, operation, modelId AS model_id, identity.arn AS identity_arn,
       input.inputTokenCount AS input_tokens, output.outputTokenCount AS output_tokens,
       input.cacheReadInputTokenCount AS cache_read_input_tokens,
       input.cacheWriteInputTokenCount AS cache_write_input_tokens,
       CAST(json_extract(output.outputBodyJson, '$.metrics.latencyMs') AS BIGINT) AS latency_ms,
       errorCode AS error_code
FROM read_json($files, format = 'newline_delimited', compression = 'gzip', columns = {DUCKDB_LEAN_COLUMNS!r},
               maximum_object_size = 16777216)
"""


def _duckdb_copy(ds: Dataset, workers: int, out: Path, select: str) -> dict[str, Any]:
    import duckdb

    files = _files(ds)
    con = duckdb.connect()
    con.execute(f"SET threads = {workers}")
    con.execute(f"SET temp_directory = '{out / 'duckdb-tmp'}'")
    target = out / "duckdb.parquet"
    t0 = time.perf_counter()
    con.execute(f"COPY ({select}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)", {"files": files})
    t1 = time.perf_counter()
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()
    return {"seconds": t1 - t0, "rows": rows[0] if rows else 0}


def run_duckdb(ds: Dataset, workers: int, out: Path) -> dict[str, Any]:
    """DuckDB's JSON reader over the same objects, the same fields as `invocations`, to one Parquet file."""
    return _duckdb_copy(ds, workers, out, DUCKDB_SELECT)


def run_duckdb_lean(ds: Dataset, workers: int, out: Path) -> dict[str, Any]:
    """DuckDB's JSON reader, top-level fields and the Converse latency only, to one Parquet file."""
    return _duckdb_copy(ds, workers, out, DUCKDB_LEAN_SELECT)


def _warm(files: list[str]) -> None:
    """Read every object once, untimed, so each contender starts with the same (hot) page cache."""
    for path in files:
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass


def _inflate(paths: list[str]) -> tuple[int, int]:
    from isal import igzip

    total = 0
    for p in paths:
        with open(p, "rb") as f:
            total += len(igzip.decompress(f.read()))  # every member of a multi-member file
    return len(paths), total


def run_floor(ds: Dataset, workers: int, out: Path) -> dict[str, Any]:
    """Read and inflate every object with ISA-L on `workers` processes; no parsing at all."""
    import multiprocessing

    files = _files(ds)
    t0 = time.perf_counter()
    shares = [files[i::workers] for i in range(workers)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:  # nothing threaded to copy in this child
        results = pool.map(_inflate, shares)
    t1 = time.perf_counter()
    return {"seconds": t1 - t0, "rows": ds.records, "bytes_json": sum(r[1] for r in results)}


# Contenders that are commands a user runs, each timed from outside as a fresh process (fixed cost included).
EMPTY_DAY_OFFSET = dt.timedelta(days=-10)
"""The empty day is ten days before the benchmark day: no folder of it (or of its neighbours) holds logs."""
SELECTED = "invocations,rejected_records"


def _bill_world(ds: Dataset) -> Path:
    """A sample world for the benchmark day (cached beside the day): its CUR 2.0 bill, price overrides, AWS state
    and `ledger.yaml`, for the whole-day run. Its own logs are small and unused: the bill allocates over the
    benchmark day's callers, which is what the run is measured for."""
    from pipeline.sample.demo import generate_all

    world = Path(f"{ds.root}-world")
    if not (world / "manifest.json").exists():
        shutil.rmtree(world, ignore_errors=True)
        generate_all(world, dt.date.fromisoformat(ds.day), 1, 2000, faults=False, bill_formats=("cur2",))
        (world / "manifest.json").write_text("{}")
    return world


def _day_scenario(ds: Dataset, out: Path) -> tuple[Path, dict[str, str]]:
    """`cli_day`: the world's `ledger.yaml` with the benchmark day as its logs and `out` as its warehouse."""
    import yaml

    world = _bill_world(ds)
    cfg = yaml.safe_load((world / "ledger.yaml").read_text())
    cfg["warehouse"] = str(out / "warehouse")
    cfg["sources"]["invocation_logs"]["s3"] = [ds.root]
    config = world / f"ledger-{out.name}.yaml"  # beside the world's files: its relative paths resolve
    config.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, LEDGER_CONFIG=str(config), DAGSTER_HOME=str(out.parent / "dagster-home"))
    return config, env


def _scenario(ds: Dataset, out: Path) -> tuple[Path, dict[str, str]]:
    """A `ledger.yaml` over the benchmark day and the environment the commands run with (one shared instance)."""
    config = out / "ledger.yaml"
    config.write_text(
        json.dumps(
            {
                "warehouse": str(out / "warehouse"),
                "start_date": (dt.date.fromisoformat(ds.day) + EMPTY_DAY_OFFSET).isoformat(),
                "sources": {"invocation_logs": {"s3": [ds.root]}},
            }
        )
    )
    env = dict(os.environ, LEDGER_CONFIG=str(config), DAGSTER_HOME=str(out.parent / "dagster-home"))
    return config, env


def _ensure_instance(home: Path) -> None:
    """Create the Dagster instance the commands share, untimed: a user's instance exists before their runs."""
    if (home / "dagster.yaml").exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    code = "from dagster import DagsterInstance; DagsterInstance.get().get_runs(limit=1)"
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, DAGSTER_HOME=str(home)))


def _command(name: str, ds: Dataset, config: Path) -> list[str]:
    day = dt.date.fromisoformat(ds.day)
    empty = (day + EMPTY_DAY_OFFSET).isoformat()
    cli = [sys.executable, "-m", "pipeline.cli", "run", "--config", str(config), "--select", SELECTED]
    dagster = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "pipeline.definitions"]
    dagster += ["--select", SELECTED, "--partition"]
    return {
        # What README's `uv run …` adds to every command: uv checks the environment against the lock first.
        "uv_run": [*_uv(), "run", "--project", str(ROOT), "python", "-c", "pass"],
        "import_dagster": [sys.executable, "-c", "import dagster"],
        "defs_load": [sys.executable, "-c", "import pipeline.definitions"],
        "cli_empty": [*cli, "--start", empty, "--end", empty],
        "dagster_empty": [*dagster, empty],
        "cli": [*cli, "--start", ds.day, "--end", ds.day],
        "dagster": [*dagster, ds.day],
        # The whole day: every asset (bill, chargeback, FOCUS, report …), as the daily schedule runs it.
        "cli_day": [*cli[:6], "--start", ds.day, "--end", ds.day],
    }[name]


def _uv() -> list[str]:
    """uv as the user has it: on PATH, else the `uv` package of this interpreter."""
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


COMMANDS = ("uv_run", "import_dagster", "defs_load", "cli_empty", "dagster_empty", "cli", "dagster", "cli_day")

CONTENDERS = {"ours": run_ours, "duckdb_lean": run_duckdb_lean, "duckdb": run_duckdb, "floor": run_floor}
ORDER = (*COMMANDS, "ours", "duckdb_lean", "duckdb", "floor")


# --------------------------------------------------------------------------------------------- backfill


def run_backfill(data_dir: Path, days: int, records_per_day: int, timeout: float) -> dict[str, Any]:
    """A backfill of the demo world through the queue and daemon of `deploy/dagster.local-parallel.yaml`.

    What a user runs for history: `dagster job backfill` of `ledger_daily_job` (every asset, one run per day),
    queued and launched by `dagster-daemon` with that file's concurrency limits. Measured from submission until
    the last run finished: runs per minute, invocation records per second across runs, the most runs in flight,
    and peak memory over the daemon's process tree (the daemon, its code server and every run process).
    """
    from pipeline.sample.demo import DEMO_START, generate_all

    world = data_dir / f"demo-{days}d-{records_per_day}"
    if not (world / "manifest.json").exists():
        shutil.rmtree(world, ignore_errors=True)
        print(f"generating the demo world: {days} days x {records_per_day:,} records into {world} …", flush=True)
        generate_all(world, DEMO_START, days, records_per_day)
        (world / "manifest.json").write_text(json.dumps({"days": days, "records_per_day": records_per_day}))
    shutil.rmtree(world / "warehouse", ignore_errors=True)
    home = Path(tempfile.mkdtemp(prefix="bench-backfill-home-", dir=data_dir))
    instance_yaml = ROOT / "deploy" / "dagster.local-parallel.yaml"
    shutil.copy(instance_yaml, home / "dagster.yaml")
    env = dict(os.environ, DAGSTER_HOME=str(home), LEDGER_CONFIG=str(world / "ledger.yaml"))
    bin_dir = Path(sys.executable).parent
    first, last = DEMO_START, DEMO_START + dt.timedelta(days=days - 1)
    # The instance's storage is created before anything uses it: the daemon and the backfill command creating a
    # fresh SQLite schema at the same moment race ("table … already exists") and the daemon dies.
    code = "from dagster import DagsterInstance; DagsterInstance.get().get_runs(limit=1)"
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    log = open(home / "daemon.log", "w")  # noqa: SIM115 - closed in the finally below
    daemon = subprocess.Popen(
        [str(bin_dir / "dagster-daemon"), "run", "-m", "pipeline.definitions"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as a whole, by its id, at the end
    )
    sampler, peak, in_flight = _TreeSampler(daemon.pid), 0, 0
    try:
        t0 = time.perf_counter()
        submit = [str(bin_dir / "dagster"), "job", "backfill", "-m", "pipeline.definitions", "-j", "ledger_daily_job"]
        submit += ["--from", first.isoformat(), "--to", last.isoformat(), "--noprompt"]
        subprocess.run(submit, env=env, check=True, stdout=subprocess.DEVNULL)
        os.environ["DAGSTER_HOME"] = str(home)
        from dagster import DagsterInstance, DagsterRunStatus

        done_states = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
        with DagsterInstance.get() as instance:
            while True:
                total, _, _ = sampler.sample()
                peak = max(peak, total)
                runs = instance.get_runs()
                in_flight = max(in_flight, sum(r.status == DagsterRunStatus.STARTED for r in runs))
                partitions = {r.tags.get("dagster/partition") for r in runs}
                # Done when every day has a run and nothing is queued or running (a retried run counts once).
                if len(partitions) >= days and all(r.status in done_states for r in runs):
                    break
                if daemon.poll() is not None:
                    tail = (home / "daemon.log").read_text(errors="replace").strip().splitlines()[-3:]
                    raise RuntimeError(f"dagster-daemon exited with code {daemon.returncode}: {' / '.join(tail)}")
                if time.perf_counter() - t0 > timeout:
                    finished = sum(r.status in done_states for r in runs)
                    raise RuntimeError(f"backfill not done after {timeout:.0f} s: {finished}/{len(runs)} runs done")
                time.sleep(0.5)
            wall = time.perf_counter() - t0
            ok = len({r.tags.get("dagster/partition") for r in runs if r.status == DagsterRunStatus.SUCCESS})
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        log.close()
    import pyarrow.parquet as pq

    records = sum(
        pq.ParquetFile(f).metadata.num_rows for f in (world / "warehouse" / "invocations").glob("date=*/*.parquet")
    )
    return {
        "days": days,
        "runs_succeeded": ok,
        "seconds": wall,
        "runs_per_minute": days / wall * 60,
        "records": records,
        "records_per_second": records / wall,
        "max_runs_in_flight": in_flight,
        "peak_pss_tree": peak,
        "instance": str(home),
    }


def backfill_report(r: dict[str, Any]) -> str:
    """The backfill's figures, printed."""
    return (
        f"backfill of {r['days']} days (deploy/dagster.local-parallel.yaml, ledger_daily_job): "
        f"{r['runs_succeeded']}/{r['days']} days succeeded in {r['seconds']:.0f} s; "
        f"{r['runs_per_minute']:.2f} runs/min, {r['records_per_second']:,.0f} invocation records/s across runs "
        f"({r['records']:,} records), at most {r['max_runs_in_flight']} runs in flight, peak memory (PSS) of all "
        f"processes {_mib(r['peak_pss_tree'])}"
    )


# --------------------------------------------------------------------------------------------- measuring


class _TreeSampler:
    """Memory and CPU of a process and its descendants, from /proc, cheap enough to poll every 20 ms.

    A pid's parent never changes while it lives (orphans aside, which a pool does not leave), so each pid's
    `stat` is read once to place it in the tree; afterwards only the tree's own processes are read.
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self.parent: dict[int, int] = {}
        self.tick = os.sysconf("SC_CLK_TCK")

    def sample(self) -> tuple[int, int, dict[int, float]]:
        """(sum of proportional memory now, largest resident process now, CPU seconds per pid) over the tree."""
        live = {int(e) for e in os.listdir("/proc") if e.isdigit()}
        for pid in live - self.parent.keys():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    self.parent[pid] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                self.parent[pid] = -1
        for pid in self.parent.keys() - live:
            del self.parent[pid]
        tree, frontier = {self.root}, [self.root]
        children: dict[int, list[int]] = {}
        for pid, ppid in self.parent.items():
            children.setdefault(ppid, []).append(pid)
        while frontier:
            for child in children.get(frontier.pop(), []):
                if child not in tree:
                    tree.add(child)
                    frontier.append(child)
        total = largest = 0
        cpu: dict[int, float] = {}
        for pid in tree:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                cpu[pid] = (int(fields[11]) + int(fields[12])) / self.tick
                rss, pss = _memory(pid)
                total += pss
                largest = max(largest, rss)
            except (OSError, ValueError, IndexError):
                continue
        return total, largest, cpu


def _memory(pid: int) -> tuple[int, int]:
    """(resident, proportional) bytes of one process. The proportional set size counts a page shared by n
    processes as 1/n in each, so its sum over a tree is what the tree really holds (what a container's memory
    limit counts): forked workers share their parent's pages, which a sum of resident sizes counts again for
    each of them. Without `smaps_rollup` (kernels before 4.14) both are the resident size."""
    rss = pss = -1
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    if rss < 0 or pss < 0:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = pss = int(line.split()[1]) * 1024
    return rss, pss


def _busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine since boot (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def measure(name: str, ds: Dataset, workers: int, out: Path) -> dict[str, Any]:
    """Run one contender in a fresh subprocess; its own timing plus peak memory seen from outside.

    Memory is sampled from /proc every 20 ms over the contender's process tree (forkserver workers are not our
    children's children in `getrusage`'s sense, so `RUSAGE_CHILDREN` would miss them): per phase the contender
    announces on stdout (`@phase NAME`), the largest resident process and the largest sum over the tree. CPU used
    meanwhile by processes outside the tree is reported too: on a shared machine it explains slow runs.
    """
    if name in COMMANDS:
        config, env = _day_scenario(ds, out) if name == "cli_day" else _scenario(ds, out)
        cmd = _command(name, ds, config)
    else:
        cmd = [sys.executable, "-m", "benchmarks.bench", "--child", name, "--dataset", json.dumps(asdict(ds))]
        cmd += ["--workers", str(workers), "--out", str(out)]
        # `benchmarks` is a folder of the repository, not of the installed package: found from its root.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    busy0, wall0, wall0_epoch = _busy_seconds(), time.perf_counter(), time.time()
    # A command's log (Dagster logs every event to stderr) goes to a file, shown only when it fails.
    errors = open(out / "stderr.log", "w+") if name in COMMANDS else None  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
    assert proc.stdout is not None
    phase = "run"
    peaks: dict[str, list[int]] = {}  # phase -> [sum over the tree, largest process]
    cpu: dict[int, float] = {}
    stop = threading.Event()
    sampler_state = _TreeSampler(proc.pid)

    timeline: list[tuple[float, int]] = []  # (epoch seconds, PSS of the tree): per-step peaks of a whole-day run

    def sample() -> None:
        while not stop.is_set():
            total, largest, by_pid = sampler_state.sample()
            timeline.append((time.time(), total))
            peak = peaks.setdefault(phase, [0, 0])
            peak[0], peak[1] = max(peak[0], total), max(peak[1], largest)
            for pid, seconds in by_pid.items():
                cpu[pid] = max(cpu.get(pid, 0.0), seconds)
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines: list[str] = []
    for line in proc.stdout:
        if line.startswith("@phase "):
            phase = line.split()[1]
        else:
            lines.append(line)
    proc.wait()
    stop.set()
    sampler.join()
    busy, wall = _busy_seconds() - busy0, time.perf_counter() - wall0
    tail = ""
    if errors is not None:
        errors.seek(0)
        tail = "".join(errors.readlines()[-5:])
        errors.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed with exit code {proc.returncode}: {''.join(lines[-5:])}{tail}")
    result = json.loads(lines[-1]) if name not in COMMANDS else {"seconds": wall, "rows": _rows_written(out, ds)}
    result["peaks"] = peaks
    if name == "cli_day":
        result["step_peaks"] = _step_peaks(out.parent / "dagster-home", wall0_epoch, timeline)
    main_phases = [p for p in peaks if p != "checks"]
    result["peak_pss_tree"] = max(peaks[p][0] for p in main_phases)
    result["peak_rss_process"] = max([peaks[p][1] for p in main_phases] + [result.get("own_hwm_kib", 0) * 1024])
    if "checks" in peaks:
        result["peak_pss_tree_checks"] = peaks["checks"][0]
    result["cpu_seconds"] = sum(cpu.values())
    result["foreign_cores"] = max(0.0, (busy - sum(cpu.values())) / wall) if wall > 0 else 0.0
    return result


def _step_peaks(home: Path, since: float, timeline: list[tuple[float, int]]) -> dict[str, int]:
    """Peak PSS of the tree while each step (asset) of the runs started after `since` ran, largest first: where a
    whole day's memory goes. From the steps' start and end events in the instance the run was recorded in."""
    from dagster import DagsterEventType, DagsterInstance

    kinds = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}
    windows: dict[str, list[float]] = {}
    with DagsterInstance.from_config(str(home)) as instance:
        for run in instance.get_runs(limit=20):
            for entry in instance.all_logs(run.run_id, of_type=kinds):
                if entry.timestamp < since or not entry.step_key:
                    continue
                windows.setdefault(entry.step_key, []).append(entry.timestamp)
    peaks = {
        step: max((pss for t, pss in timeline if min(times) <= t <= max(times)), default=0)
        for step, times in windows.items()
    }
    return dict(sorted(peaks.items(), key=lambda kv: -kv[1]))


def _rows_written(out: Path, ds: Dataset) -> int:
    """Rows of the benchmark day's `invocations` partition a command wrote (from the Parquet footer), else 0."""
    import pyarrow.parquet as pq

    path = out / "warehouse" / "invocations" / f"date={ds.day}" / "part-0.parquet"
    return pq.ParquetFile(path).metadata.num_rows if path.exists() else 0


def _own_hwm_kib() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:,.0f} MiB"


def bytecode_note() -> str:
    """Whether imports here read cached bytecode: without it every process compiles Dagster's ~2,000 modules
    again (about 3x the CPU of `import dagster`), which dwarfs everything else in the fixed cost."""
    import dagster

    cached = any((Path(dagster.__file__).parent / "__pycache__").glob("__init__.*.pyc"))
    if cached:
        return "bytecode: cached for the installed packages"
    return (
        "bytecode: NOT cached (PYTHONDONTWRITEBYTECODE is "
        f"{'set' if sys.flags.dont_write_bytecode else 'unset'}): every process compiles its imports; "
        "`uv sync --compile-bytecode` (or UV_COMPILE_BYTECODE=1 in an image) removes most of the fixed cost"
    )


def _verdict(ok: bool) -> str:
    return "meets" if ok else "misses"


def report(ds: Dataset, workers: int, results: dict[str, dict[str, Any]]) -> str:
    """The printed table, the fixed costs and the ratios the targets are stated in."""
    lines = [
        f"day {ds.day}: {ds.records:,} records in {ds.objects:,} objects, "
        f"{ds.bytes_json / 2**30:.2f} GiB of JSON ({ds.bytes_json / max(ds.records, 1):,.0f} B/record), "
        f"{ds.bytes_gz / 2**20:,.0f} MiB gzipped; {workers} workers on {os.cpu_count()} cores",
        *([f"{ds.distinct_users:,} distinct users and applications"] if ds.distinct_users else []),
        "",
        f"{'contender':<15}{'seconds':>9}{'records/s':>11}{'CPU s':>8}{'rows':>10}"
        f"{'peak RSS (largest proc)':>25}{'peak PSS (all procs)':>22}{'others':>8}",
    ]
    for name, r in results.items():
        secs = r["seconds"]
        per_s = f"{ds.records / secs:>11,.0f}" if r["rows"] else f"{'-':>11}"
        lines.append(
            f"{name:<15}{secs:>9.2f}{per_s}{r['cpu_seconds']:>8.1f}{r['rows']:>10,}"
            f"{_mib(r['peak_rss_process']):>25}{_mib(r['peak_pss_tree']):>22}{r['foreign_cores']:>8.2f}"
        )
    lines.append(
        "(CPU s: CPU time of the contender's processes, start-up included; PSS: shared pages counted once; "
        "others: cores busy outside it)"
    )
    if any(r["foreign_cores"] > 0.2 for r in results.values()):
        lines.append(
            "WARNING: other processes used the CPU during the run; wall times are pessimistic and move with the "
            "load, so the CPU-time ratios are printed beside the wall-time ones."
        )

    def ratio(num: str, den: str) -> tuple[float, float] | None:
        """How many times faster `den` is than `num`, by wall time and by CPU time."""
        if num not in results or den not in results:
            return None
        a, b = results[num], results[den]
        return a["seconds"] / b["seconds"], a["cpu_seconds"] / max(b["cpu_seconds"], 1e-9)

    base = results.get("import_dagster")
    if base:
        lines += ["", "fixed cost, over `import dagster` (wall s / CPU s):"]
        for name, limit in (("defs_load", 1.0), ("cli_empty", 3.0), ("dagster_empty", 3.0)):
            if name in results:
                wall = results[name]["seconds"] - base["seconds"]
                cpu = results[name]["cpu_seconds"] - base["cpu_seconds"]
                lines.append(
                    f"  {name:<14}+{wall:6.2f} / +{cpu:5.2f}  (target < {limit:g} s: "
                    f"{_verdict(wall < limit)} by wall, {_verdict(cpu < limit)} by CPU)"
                )
    if "uv_run" in results:
        uv = results["uv_run"]
        lines.append(
            f"  `uv run` itself adds {uv['seconds']:.2f} s / {uv['cpu_seconds']:.2f} CPU s to every README command "
            "(checking the environment against the lock)"
        )
    for whole in ("cli", "dagster", "cli_day"):
        if whole not in results:
            continue
        lines += ["", f"end to end, `{whole}` for the day (records/s ratio, wall / CPU):"]
        for other, target in () if whole == "cli_day" else (("duckdb_lean", 1.5), ("duckdb", None)):
            pair = ratio(other, whole)
            if pair:
                line = f"  {whole}/{other}: {pair[0]:.2f}x / {pair[1]:.2f}x"
                if target is not None:
                    by_wall, by_cpu = _verdict(pair[0] >= target), _verdict(pair[1] >= target)
                    line += f"  (target >= {target}x: {by_wall} by wall, {by_cpu} by CPU)"
                lines.append(line)
        empty = results.get(f"{whole}_empty")
        if empty:
            own = results[whole]["seconds"] - empty["seconds"]
            lines.append(
                f"  the day's own work (run minus the empty-day run): {own:.2f} s, {ds.records / max(own, 1e-9):,.0f}"
                f" records/s; fixed cost {empty['seconds']:.2f} s"
            )
        peak = results[whole]["peak_pss_tree"]
        lines.append(f"  peak memory (PSS), all processes: {_mib(peak)}  (target < 1 GiB: {_verdict(peak < 2**30)})")
        steps = results[whole].get("step_peaks") or {}
        if steps:
            lines.append("  peak memory (PSS) while each step ran, largest first:")
            lines += [f"    {step:<40}{_mib(pss):>12}" for step, pss in list(steps.items())[:12]]
    ours = results.get("ours")
    if ours:
        lines.append("")
        lines.append(
            f"inside the asset: parse {ours['parse_seconds']:.2f} s (the write streaming beside it) + the write's tail "
            f"{ours['write_seconds']:.2f} s"
            f"{'' if ours.get('fast_path') else ' (msgspec missing: reference path only)'} + metadata and checks "
            f"{ours['checks_seconds']:.2f} s (passed: {ours['checks_passed']}); peak memory (PSS), all processes "
            f"{_mib(ours['peak_pss_tree'])}"
        )
        if "floor" in results:
            floor = results["floor"]["seconds"]
            share = floor / ours["parse_seconds"]
            lines.append(f"  parser / ISA-L floor: {share:.2f}x  (target >= 0.5x: {_verdict(share >= 0.5)})")
        for other in ("duckdb_lean", "duckdb"):
            pair = ratio(other, "ours")
            if pair:
                lines.append(f"  ours/{other} (parse + write, no fixed cost): {pair[0]:.2f}x / {pair[1]:.2f}x by CPU")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse options, make sure the data exists, run the contenders, print the table."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=400_000, help="records in the day (default 400,000)")
    ap.add_argument("--body-kb", type=float, default=2.5, help="generator body size; 2.5 gives ~3.4 KB records")
    ap.add_argument("--distinct", type=int, default=DISTINCT, help="distinct records generated before copying")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--distinct-users",
        type=int,
        default=0,
        help="distinct userId/applicationId values in the day (default: as generated; >= --records: one per record)",
    )
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="processes/threads per contender")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DIR, help=f"cache of generated days ({DEFAULT_DIR})")
    ap.add_argument("--only", default="", help=f"comma-separated contenders (default all: {','.join(ORDER)})")
    ap.add_argument("--skip", default="", help="comma-separated contenders to leave out")
    ap.add_argument("--repeat", type=int, default=1, help="runs per contender; the fastest is reported")
    ap.add_argument("--hourly", action="store_true", help="one object per account, Region and hour (see `hourly`)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    ap.add_argument("--backfill", type=int, metavar="DAYS", help="instead: time a backfill of DAYS demo days")
    ap.add_argument("--backfill-records", type=int, default=2000, help="demo records per day (default 2,000)")
    ap.add_argument("--backfill-timeout", type=float, default=3600.0, help="seconds before giving up (3600)")
    ap.add_argument("--child", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    ap.add_argument("--dataset", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        ds = Dataset(**json.loads(args.dataset))
        result = CONTENDERS[args.child](ds, args.workers, args.out)
        result.setdefault("own_hwm_kib", _own_hwm_kib())
        print(json.dumps(result))
        return

    if args.backfill:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        result = run_backfill(args.data_dir, args.backfill, args.backfill_records, args.backfill_timeout)
        print(backfill_report(result))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        return

    only = {n.strip() for n in args.only.split(",") if n.strip()} or set(ORDER)
    skip = {n.strip() for n in args.skip.split(",") if n.strip()}
    unknown = (only | skip) - set(ORDER)
    if unknown:
        ap.error(f"unknown contender(s): {', '.join(sorted(unknown))} (known: {', '.join(ORDER)})")
    names = [n for n in ORDER if n in only and n not in skip]
    if any(n.startswith("duckdb") for n in names) and importlib.util.find_spec("duckdb") is None:
        ap.error("DuckDB is missing: this is a development command, run `uv sync` (dev dependencies) first")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    ds = ensure_data(
        args.data_dir, args.records, args.body_kb, args.distinct, args.seed, args.workers, args.distinct_users
    )
    if args.hourly:
        ds = hourly(ds)
    if any(n in COMMANDS for n in names):
        _ensure_instance(args.data_dir / "dagster-home")
    files = _files(ds)
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        for attempt in range(args.repeat):
            out = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir=args.data_dir))
            try:
                _warm(files)
                print(f"running {name} ({attempt + 1}/{args.repeat}) …", flush=True)
                result = measure(name, ds, args.workers, out)
            finally:
                shutil.rmtree(out, ignore_errors=True)
            if name not in results or result["seconds"] < results[name]["seconds"]:
                results[name] = result
    if args.json:  # first: the figures survive a failure to print them
        args.json.write_text(json.dumps({"dataset": asdict(ds), "results": results}, indent=2))
    print()
    print(report(ds, args.workers, results))
    print(bytecode_note())


if __name__ == "__main__":
    main()
