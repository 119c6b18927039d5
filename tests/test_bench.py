"""The benchmark's report (a dev command, `benchmarks.bench`) prints every ratio from a full set of results."""

from __future__ import annotations

from benchmarks import bench


def _result(seconds: float, cpu: float, rows: int = 0, **extra: object) -> dict:
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows": rows,
        "peak_rss_process": 2**28,
        "peak_pss_tree": 2**29,
        "foreign_cores": 0.5,
        **extra,
    }


def test_report_has_every_target() -> None:
    ds = bench.Dataset("/x", "2026-03-02", 400_000, 10, 1, 2, 4, 100_000, 2.5, 7, 1.0)
    ours = {"parse_seconds": 8.0, "write_seconds": 2.0, "checks_seconds": 0.1, "checks_passed": True}
    results = {
        "import_dagster": _result(1.0, 1.0),
        "defs_load": _result(1.5, 1.4),
        "cli_empty": _result(3.0, 2.9),
        "dagster_empty": _result(5.0, 4.0),
        "cli": _result(14.0, 25.0, 400_000),
        "dagster": _result(16.0, 27.0, 400_000),
        "ours": _result(10.0, 19.0, 400_000, fast_path=True, **ours),
        "duckdb_lean": _result(12.0, 22.0, 400_000),
        "duckdb": _result(30.0, 55.0, 400_000),
        "floor": _result(1.0, 1.9, 400_000),
    }
    text = bench.report(ds, 2, results)
    assert "defs_load     +  0.50" in text and "cli_empty     +  2.00" in text
    assert "cli/duckdb_lean: 0.86x / 0.88x  (target >= 1.5x: misses by wall, misses by CPU)" in text
    assert "cli/duckdb: 2.14x / 2.20x" in text
    assert "parser / ISA-L floor: 0.12x" in text
    assert "WARNING" in text


def test_report_with_a_subset() -> None:
    ds = bench.Dataset("/x", "2026-03-02", 10, 1, 1, 2, 1, 10, 2.5, 7, 1.0)
    assert "floor" in bench.report(ds, 2, {"floor": _result(1.0, 1.0, 10)})
