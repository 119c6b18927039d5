"""Operability checks: freshness of yesterday's partition, hours with missing log deliveries, unreadable objects."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from dagster import AssetSelection, Definitions, materialize

from pipeline import schemas, warehouse
from pipeline.completeness.freshness import expected_fresh_day, find_delivery_gaps
from pipeline.config import load_config
from pipeline.defs.build import build_assets
from pipeline.defs.operability import (
    FRESHNESS_CHECK,
    FRESHNESS_KEY,
    GAPS_CHECK,
    UNREADABLE_CHECK,
    build_operability_checks,
    freshness_schedule,
)
from pipeline.defs.partitions import daily_partitions
from pipeline.defs.resources import LedgerResource
from pipeline.sources import s3_logs
from tests.helpers import gz_lines, log_key, make_record, write_config

DAY = "2026-03-10"
ACCOUNT = "111122223333"


def _calls(hours: dict[int, int], account: str = ACCOUNT, region: str = "us-east-1") -> pl.DataFrame:
    ts = [dt.datetime(2026, 3, 10, h, 30, tzinfo=dt.UTC) for h, n in hours.items() for _ in range(n)]
    return pl.DataFrame(
        {"timestamp": ts, "account_id": [account] * len(ts), "region": [region] * len(ts)},
        schema={"timestamp": schemas.UTC_US, "account_id": pl.String, "region": pl.String},
    )


def test_expected_fresh_day_moves_at_the_deadline() -> None:
    before = dt.datetime(2026, 3, 11, 8, 59, tzinfo=dt.UTC)
    after = dt.datetime(2026, 3, 11, 9, 0, tzinfo=dt.UTC)
    assert expected_fresh_day(before, daily_hour_utc=6, grace_hours=3) == dt.date(2026, 3, 9)
    assert expected_fresh_day(after, daily_hour_utc=6, grace_hours=3) == dt.date(2026, 3, 10)
    # a late schedule: day D is due at D+2 01:00
    assert expected_fresh_day(dt.datetime(2026, 3, 12, 0, 30, tzinfo=dt.UTC), 22, 3) == dt.date(2026, 3, 9)
    assert expected_fresh_day(dt.datetime(2026, 3, 12, 1, 0, tzinfo=dt.UTC), 22, 3) == dt.date(2026, 3, 10)


def test_gap_between_busy_hours_is_found_and_quiet_hours_are_not() -> None:
    busy = {h: 30 for h in range(24) if h != 11}  # hour 11 has nothing: a lost delivery
    quiet = {2: 3, 4: 2}  # hour 3 is empty but its neighbours are quiet: no evidence
    inv = pl.concat([_calls(busy), _calls(quiet, region="eu-west-1"), _calls({0: 50, 1: 50}, account="999")])
    gaps = find_delivery_gaps(inv, min_neighbour_calls=20)
    assert gaps.select("account_id", "region", "hour").rows() == [(ACCOUNT, "us-east-1", 11)]
    assert gaps["calls_before"].to_list() == [30] and gaps["calls_after"].to_list() == [30]
    assert find_delivery_gaps(inv, min_neighbour_calls=31).is_empty()
    assert find_delivery_gaps(_calls({}), 20).is_empty()


def _seed_local_logs(root: Path, hours: dict[int, int]) -> None:
    for h, n in hours.items():
        path = root / log_key(ACCOUNT, "us-east-1", f"{DAY}T{h:02d}:05:00", f"{h:016x}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gz_lines([make_record(f"r-{h}-{i}", f"{DAY}T{h:02d}:01:{i % 60:02d}Z") for i in range(n)]))


def _check_results(result: Any) -> dict[str, Any]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.mark.slow
def test_day_checks_flag_a_missing_hour_and_an_unreadable_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = tmp_path / "logs"
    _seed_local_logs(logs, {9: 25, 10: 25, 12: 25, 13: 25})  # hour 11 missing between busy hours
    # an object listed but gone when read (a lifecycle rule expired it meanwhile): quarantined as unreadable
    gone = logs / log_key(ACCOUNT, "us-east-1", f"{DAY}T15:05:00", f"{15:016x}")
    real_list = s3_logs.list_day

    def list_with_a_vanished_object(root: str, day: dt.date, **window: int) -> s3_logs.Listing:
        listing = real_list(root, day, **window)
        listing.objects.append(s3_logs.LogObject(str(gone), 1234, dt.datetime(2026, 3, 10, 15, 5, tzinfo=dt.UTC)))
        return listing

    monkeypatch.setattr(s3_logs, "list_day", list_with_a_vanished_object)
    cfg_path = write_config(tmp_path, sources={"invocation_logs": {"s3": [str(logs)]}})
    cfg = load_config(cfg_path)
    result = materialize(
        build_assets(cfg),  # the day checks come with the assets
        partition_key=DAY,
        resources={"ledger": LedgerResource(config_path=str(cfg_path))},
        # what the daily job should select: everything but the (unpartitioned) freshness check
        selection=AssetSelection.assets("invocations", "rejected_records"),
        raise_on_error=False,
    )
    assert result.success
    evaluations = _check_results(result)
    unreadable = evaluations[UNREADABLE_CHECK]
    assert not unreadable.passed
    assert unreadable.metadata["unreadable_objects"].value == 1
    assert f"{15:016x}" in unreadable.metadata["objects"].value
    gaps = evaluations[GAPS_CHECK]
    assert not gaps.passed
    assert gaps.metadata["gaps"].value == 1
    assert "11:00-11:59" in gaps.metadata["gap_hours"].value.replace("\\", "")  # markdown escapes removed
    assert FRESHNESS_CHECK not in evaluations  # not partitioned: not part of a day's run


@pytest.mark.parametrize("present", [True, False])
def test_freshness_check_reads_the_warehouse(tmp_path: Path, present: bool) -> None:
    cfg_path = write_config(tmp_path)
    cfg = load_config(cfg_path)
    if present:
        warehouse.write_partition(schemas.empty(schemas.INVOCATIONS), cfg.warehouse, "invocations", DAY)
    clock = lambda: dt.datetime(2026, 3, 11, 12, 0, tzinfo=dt.UTC)  # noqa: E731 - past the 09:00 deadline
    checks = build_operability_checks(daily_partitions(cfg.start_date), now=clock)
    fresh = [c for c in checks if FRESHNESS_KEY in c.check_keys]
    schedule = freshness_schedule(cfg.schedules.daily_hour_utc)
    defs = Definitions(
        assets=build_assets(cfg),
        asset_checks=fresh,
        schedules=[schedule],
        resources={"ledger": LedgerResource(config_path=str(cfg_path))},
    )
    result = defs.resolve_job_def(schedule.job_name).execute_in_process(raise_on_error=False)
    evaluations = _check_results(result)
    assert set(evaluations) == {FRESHNESS_CHECK}
    evaluation = evaluations[FRESHNESS_CHECK]
    assert evaluation.passed is present
    assert evaluation.metadata["expected_day"].value == DAY
    if not present:
        assert DAY in (evaluation.description or "")
