"""The billing export sensor: a new CUR 2.0 manifest re-runs its billing period's days, once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from dagster import DagsterInstance, build_sensor_context

from pipeline.config import parse_config
from pipeline.defs.build import BILLING_JOB, build_definitions


def _manifest(root: Path, period: str) -> None:
    folder = root / "my-export" / "metadata" / f"BILLING_PERIOD={period}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "my-export-Manifest.json").write_text("{}")


@pytest.mark.slow
def test_new_manifest_requests_its_month_once(tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()
    last_month = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    cfg = parse_config(
        {
            "start_date": last_month.isoformat(),
            "sources": {"billing": [{"uri": str(tmp_path / "my-export"), "format": "cur2"}]},
        }
    )
    defs = build_definitions(cfg)
    sensor = defs.resolve_sensor_def("billing_export_sensor")
    with DagsterInstance.ephemeral() as instance:
        ctx = build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
        assert sensor.evaluate_tick(ctx).skip_message  # nothing delivered yet

        _manifest(tmp_path, f"{last_month:%Y-%m}")
        result = sensor.evaluate_tick(ctx)
        keys = [r.partition_key for r in result.run_requests]
        first_of_month = today.replace(day=1)
        expected = [(last_month + dt.timedelta(days=i)).isoformat() for i in range((first_of_month - last_month).days)]
        assert keys == expected
        assert all(r.job_name in (None, BILLING_JOB) for r in result.run_requests)

        again = build_sensor_context(instance=instance, cursor=result.cursor, repository_def=defs.get_repository_def())
        assert not sensor.evaluate_tick(again).run_requests


def test_legacy_cur_manifest_requests_its_month(tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()
    last_month = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    first_of_month = today.replace(day=1)
    cfg = parse_config(
        {
            "start_date": last_month.isoformat(),
            "sources": {"billing": [{"uri": str(tmp_path / "cur"), "format": "cur"}]},
        }
    )
    defs = build_definitions(cfg)
    sensor = defs.resolve_sensor_def("billing_export_sensor")
    # legacy CUR: <report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json, rewritten on each delivery
    # (docs/formats/billing-exports.md §1.1)
    folder = tmp_path / "cur" / "my-report" / f"{last_month:%Y%m%d}-{first_of_month:%Y%m%d}"
    folder.mkdir(parents=True)
    (folder / "my-report-Manifest.json").write_text('{"reportKeys": []}')
    with DagsterInstance.ephemeral() as instance:
        ctx = build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
        keys = [r.partition_key for r in sensor.evaluate_tick(ctx).run_requests]
    assert keys[0] == last_month.isoformat() and keys[-1] == (first_of_month - dt.timedelta(days=1)).isoformat()
