"""Benchmark of the expensive step, normalization, against a DuckDB baseline and the decompression floor.

    uv run python -m pipeline.bench                      # 1M records (~3.4 KB each), cached under the data dir
    uv run python -m pipeline.bench --records 4000000    # flat memory as the day grows
    uv run python -m pipeline.bench --help

Why three contenders on the same files, in one run: absolute numbers depend on the machine, ratios much less.

(a) *ours* is what the `invocations` asset does: `normalize_day` over a local folder in the S3 layout, the
    partition written to a local warehouse (rejects too), and the asset's metadata and checks over it.
(b) *duckdb* reads the same gzipped NDJSON with `read_json` and explicit columns (`SET threads` to the worker
    count), extracts the same fields (nested token counts, latency from the Converse metrics or the stream's last
    chunk, stop reason, metadata map) and writes them to one zstd Parquet file: the same deliverable.
(c) *floor* only inflates every object with ISA-L (`isal`, the fastest gzip inflater available) on as many
    processes as ours has workers: no parser can beat it.

Each contender runs in a fresh subprocess, after every object has been read once (the same hot page cache for
all; `--repeat N` keeps the fastest of N runs, useful on a shared machine). Peak memory is read from /proc over
the contender's whole process tree, workers included: the largest single process (its `VmHWM`) and the largest
sum of resident memory over all of them, sampled every 20 ms (what a container's memory limit sees).

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
import datetime as dt
import json
import math
import os
import shutil
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


def _build_object(args: tuple[list[str], str]) -> tuple[int, int, int]:
    """Write one day object from its base sources (copy k from `sources[k]`); returns (records, gzip bytes,
    json bytes)."""
    sources, target = args
    parts: list[bytes] = []
    for k, src in enumerate(sources):
        payload = zlib.decompress(Path(src).read_bytes(), 31)
        if payload and not payload.endswith(b"\n"):
            payload += b"\n"
        parts.append(_rewrite_ids(payload, k))
    body = b"".join(parts)
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    gz = comp.compress(body) + comp.flush()
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_bytes(gz)
    return body.count(b"\n"), len(gz), len(body)


def ensure_data(data_dir: Path, records: int, body_kb: float, distinct: int, seed: int, workers: int) -> Dataset:
    """The benchmark day for these options, built if it is not cached yet."""
    from pipeline.sources import s3_logs

    copies = max(1, round(records / distinct))
    distinct = math.ceil(records / copies)
    folder = data_dir / f"day-r{records}-kb{body_kb:g}-d{distinct}-s{seed}"
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
    jobs = [
        ([sources[(j + k) % n] for k in range(copies)], str(folder / Path(uri).relative_to(base)))
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
    )
    (folder / "manifest.json").write_text(json.dumps(asdict(ds)))
    print(f"  done in {ds.seconds_to_build:.0f} s", flush=True)
    return ds


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
    t_parsed = time.perf_counter()
    print("@phase write", flush=True)
    try:
        path = warehouse.write_partition(batches, cfg.warehouse, "invocations", day)
        rejects = rejects.collect()
    finally:
        cleanup()
    reject_path = warehouse.write_partition(rejects, cfg.warehouse, "rejected_records", day)
    t_written = time.perf_counter()
    own_hwm_kib = _own_hwm_kib()  # the parent's peak before the checks
    print("@phase checks", flush=True)
    from pipeline.defs.ingest import ingest_results  # imports Dagster: after the measured part

    t_checks = time.perf_counter()
    # The asset's metadata and checks over the written partition (unique ids, token sums, status counts).
    written = warehouse.scan_partitions(cfg.warehouse, "invocations", [day])
    results = list(ingest_results(written, rejects, stats.as_metadata(), 0.01, path, reject_path))
    t1 = time.perf_counter()
    return {
        "seconds": t_written - t0,  # (a) of the docstring; the checks are reported on their own
        "rows": stats.counts["invocations"],
        "rejected": rejects.height,
        "checks_passed": all(getattr(r, "passed", True) for r in results),
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


def run_duckdb(ds: Dataset, workers: int, out: Path) -> dict[str, Any]:
    """DuckDB's JSON reader over the same objects, the same fields, to one Parquet file."""
    import duckdb

    files = _files(ds)
    con = duckdb.connect()
    con.execute(f"SET threads = {workers}")
    con.execute(f"SET temp_directory = '{out / 'duckdb-tmp'}'")
    target = out / "duckdb.parquet"
    t0 = time.perf_counter()
    con.execute(f"COPY ({DUCKDB_SELECT}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)", {"files": files})
    t1 = time.perf_counter()
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()
    return {"seconds": t1 - t0, "rows": rows[0] if rows else 0}


def _warm(files: list[str]) -> None:
    """Read every object once, untimed, so each contender starts with the same (hot) page cache."""
    for path in files:
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass


def _inflate(paths: list[str]) -> tuple[int, int]:
    from isal import isal_zlib

    total = 0
    for p in paths:
        with open(p, "rb") as f:
            total += len(isal_zlib.decompress(f.read(), 31))
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


CONTENDERS = {"ours": run_ours, "duckdb": run_duckdb, "floor": run_floor}


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
        """(sum of resident memory now, largest resident process now, CPU seconds per pid) over the tree."""
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
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            rss = int(line.split()[1]) * 1024
                            total += rss
                            largest = max(largest, rss)
            except (OSError, ValueError, IndexError):
                continue
        return total, largest, cpu


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
    cmd = [sys.executable, "-m", "pipeline.bench", "--child", name, "--dataset", json.dumps(asdict(ds))]
    cmd += ["--workers", str(workers), "--out", str(out)]
    busy0, wall0 = _busy_seconds(), time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    phase = "run"
    peaks: dict[str, list[int]] = {}  # phase -> [sum over the tree, largest process]
    cpu: dict[int, float] = {}
    stop = threading.Event()
    sampler_state = _TreeSampler(proc.pid)

    def sample() -> None:
        while not stop.is_set():
            total, largest, by_pid = sampler_state.sample()
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
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed with exit code {proc.returncode}")
    result = json.loads(lines[-1])
    result["peaks"] = peaks
    main_phases = [p for p in peaks if p != "checks"]
    result["peak_rss_tree"] = max(peaks[p][0] for p in main_phases)
    result["peak_rss_process"] = max([peaks[p][1] for p in main_phases] + [result.get("own_hwm_kib", 0) * 1024])
    if "checks" in peaks:
        result["peak_rss_tree_checks"] = peaks["checks"][0]
    result["cpu_seconds"] = sum(cpu.values())
    result["foreign_cores"] = max(0.0, (busy - sum(cpu.values())) / wall) if wall > 0 else 0.0
    return result


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


def report(ds: Dataset, workers: int, results: dict[str, dict[str, Any]]) -> str:
    """The printed table and ratios."""
    lines = [
        f"day {ds.day}: {ds.records:,} records in {ds.objects:,} objects, "
        f"{ds.bytes_json / 2**30:.2f} GiB of JSON ({ds.bytes_json / max(ds.records, 1):,.0f} B/record), "
        f"{ds.bytes_gz / 2**20:,.0f} MiB gzipped; {workers} workers on {os.cpu_count()} cores",
        "",
        f"{'contender':<10}{'seconds':>9}{'records/s':>12}{'MB/s json':>11}{'rows':>11}"
        f"{'peak RSS (largest proc)':>25}{'peak RSS (all procs)':>22}{'CPU s':>8}{'others':>8}",
    ]
    for name, r in results.items():
        secs = r["seconds"]
        lines.append(
            f"{name:<10}{secs:>9.2f}{ds.records / secs:>12,.0f}{ds.bytes_json / secs / 1e6:>11,.0f}{r['rows']:>11,}"
            f"{_mib(r['peak_rss_process']):>25}{_mib(r['peak_rss_tree']):>22}{r['cpu_seconds']:>8.1f}"
            f"{r['foreign_cores']:>8.2f}"
        )
    lines.append("(CPU s: CPU time of the contender's processes, incl. start-up; others: cores busy outside it)")
    if any(r["foreign_cores"] > 0.2 for r in results.values()):
        lines.append("WARNING: other processes used the CPU during the run; the figures are pessimistic.")
    ours = results.get("ours")
    if ours:
        lines.append("")
        lines.append(
            f"ours: parse {ours['parse_seconds']:.2f} s + write {ours['write_seconds']:.2f} s"
            f"{'' if ours.get('fast_path') else ' (msgspec missing: reference path only)'}; then the asset's "
            f"metadata and checks {ours['checks_seconds']:.2f} s, peak RSS {_mib(ours.get('peak_rss_tree_checks'))}"
            f" (passed: {ours['checks_passed']}; not in the figures above)"
        )
        for other, target in (("duckdb", 1.2), ("floor", 0.6)):
            if other in results:
                ratio = results[other]["seconds"] / ours["seconds"]
                verdict = "meets" if ratio >= target else "misses"
                lines.append(f"ours/{other} records/s: {ratio:.2f}x  (target >= {target}x: {verdict})")
        peak = ours["peak_rss_tree"]
        lines.append(
            f"ours peak RSS, all processes: {_mib(peak)}  (target < 1 GiB: {'meets' if peak < 2**30 else 'misses'})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse options, make sure the data exists, run the contenders, print the table."""
    ap = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000, help="records in the day (default 1,000,000)")
    ap.add_argument("--body-kb", type=float, default=2.5, help="generator body size; 2.5 gives ~3.4 KB records")
    ap.add_argument("--distinct", type=int, default=DISTINCT, help="distinct records generated before copying")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="processes/threads per contender")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DIR, help=f"cache of generated days ({DEFAULT_DIR})")
    ap.add_argument("--skip-duckdb", action="store_true")
    ap.add_argument("--skip-floor", action="store_true")
    ap.add_argument("--skip-ours", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="runs per contender; the fastest is reported")
    ap.add_argument("--json", type=Path, help="also write the results as JSON to this file")
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

    args.data_dir.mkdir(parents=True, exist_ok=True)
    ds = ensure_data(args.data_dir, args.records, args.body_kb, args.distinct, args.seed, args.workers)
    names = [n for n in ("ours", "duckdb", "floor") if not getattr(args, f"skip_{n}")]
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
    print()
    print(report(ds, args.workers, results))
    if args.json:
        args.json.write_text(json.dumps({"dataset": asdict(ds), "results": results}, indent=2))


if __name__ == "__main__":
    main()
