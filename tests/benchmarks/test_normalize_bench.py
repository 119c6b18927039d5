"""The performance issue's targets, as a test that runs the benchmark (`benchmarks.bench`) end to end.

Excluded from the default run (`-m 'not benchmark'` in pyproject); run it with

    uv run pytest -m benchmark tests/benchmarks -p no:logging -s

`BENCH_RECORDS` sets the day's size (default 400,000, the benchmark's standard day; the data is generated once
and cached in `BENCH_DATA_DIR`, default the benchmark's own cache folder). Ratios are taken by CPU time: on a
shared machine wall-time ratios move with the load (the printed report has both). The decompression-floor ratio
is only reported, because no parser here reaches 50% of ISA-L's inflate speed on this data (see README,
"Performance").
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from benchmarks import bench

pytestmark = pytest.mark.benchmark

RECORDS = int(os.environ.get("BENCH_RECORDS", "400000"))
DATA_DIR = Path(os.environ.get("BENCH_DATA_DIR", str(bench.DEFAULT_DIR)))
CONTENDERS = ("import_dagster", "defs_load", "cli_empty", "cli", "ours", "duckdb_lean", "duckdb", "floor")


@pytest.fixture(scope="module")
def results() -> tuple[bench.Dataset, dict[str, dict]]:
    pytest.importorskip("msgspec")
    pytest.importorskip("duckdb")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    workers = os.cpu_count() or 2
    ds = bench.ensure_data(DATA_DIR, RECORDS, 2.5, bench.DISTINCT, 7, workers)
    bench._ensure_instance(DATA_DIR / "dagster-home")
    out: dict[str, dict] = {}
    for name in CONTENDERS:
        scratch = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir=DATA_DIR))
        try:
            bench._warm(bench._files(ds))
            out[name] = bench.measure(name, ds, workers, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    print()
    print(bench.report(ds, workers, out))
    return ds, out


def test_every_contender_sees_every_record(results: tuple[bench.Dataset, dict[str, dict]]) -> None:
    ds, out = results
    assert out["ours"]["rows"] == out["cli"]["rows"] == out["duckdb"]["rows"] == ds.records
    assert out["ours"]["rejected"] == 0 and out["ours"]["checks_passed"]


def test_end_to_end_faster_than_lean_duckdb(results: tuple[bench.Dataset, dict[str, dict]]) -> None:
    _, out = results
    assert out["duckdb_lean"]["cpu_seconds"] / out["cli"]["cpu_seconds"] >= 1.5


def test_fixed_cost(results: tuple[bench.Dataset, dict[str, dict]]) -> None:
    _, out = results
    assert out["defs_load"]["cpu_seconds"] - out["import_dagster"]["cpu_seconds"] < 1.0
    assert out["cli_empty"]["cpu_seconds"] - out["import_dagster"]["cpu_seconds"] < 3.0


def test_memory_under_one_gib(results: tuple[bench.Dataset, dict[str, dict]]) -> None:
    _, out = results
    assert out["cli"]["peak_rss_tree"] < 2**30
