"""The `invocations` and `rejected_records` assets, materialized against moto's S3 and CloudWatch Logs servers."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pytest

from pipeline import warehouse
from pipeline.config import load_config
from pipeline.sources import cloudwatch_logs
from tests import helpers
from tests.helpers import gz_lines, log_key, make_record, write_config

DAY = "2026-03-10"
ACCOUNT = "111122223333"


def run_day(config_path: Path, day: str = DAY, selection: list[str] | None = None) -> Any:
    return helpers.run_day(config_path, day, selection)


def put(s3: Any, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body)


@pytest.fixture
def s3(aws: str) -> Any:
    return boto3.client("s3", endpoint_url=aws, region_name="us-east-1")


@pytest.fixture
def logs(aws: str) -> Any:
    return boto3.client("logs", endpoint_url=aws, region_name="us-east-1")


def seed_bucket(s3: Any, bucket: str, prefix: str = "bedrock/") -> None:
    """A day of deliveries with every kind of object and fault the listing and parser must handle."""
    k = lambda when, sfx="0123456789abcdef": prefix + log_key(ACCOUNT, "us-east-1", when, sfx)  # noqa: E731
    put(
        s3,
        bucket,
        k("2026-03-10T00:01:10"),
        gz_lines(
            [
                make_record("r-prev-day", "2026-03-09T23:59:40Z"),  # late record of the day before: not ours
                make_record("r-1", "2026-03-10T00:00:30Z"),
            ]
        ),
    )
    put(
        s3,
        bucket,
        k("2026-03-10T13:05:00"),
        gz_lines(
            [
                make_record("r-2", "2026-03-10T13:04:01Z"),
                '{"schemaType": "ModelInvocationLog", "requestId": "cut',
                make_record("r-3", "2026-03-10T13:04:02Z", schemaVersion="9.9"),
                make_record("r-4", "2026-03-10T13:04:03Z", errorCode="ThrottlingException"),
            ]
        ),
    )
    # the same batch delivered twice (duplicate delivery)
    put(
        s3, bucket, k("2026-03-10T13:05:00", "fedcba9876543210"), gz_lines([make_record("r-2", "2026-03-10T13:04:01Z")])
    )
    # a truncated gzip object: the first record survives, the cut is reported
    whole = gz_lines([make_record(f"r-t{i}", "2026-03-10T15:00:00Z") for i in range(40)])
    put(s3, bucket, k("2026-03-10T15:01:00"), whole[: len(whole) - 40])
    # next day's 00 folder: a late record of our day and a record of the next day
    put(
        s3,
        bucket,
        k("2026-03-11T00:00:50"),
        gz_lines(
            [
                make_record("r-late", "2026-03-10T23:59:58Z"),
                make_record("r-next", "2026-03-11T00:00:10Z"),
            ]
        ),
    )
    base = prefix + f"AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/"
    put(s3, bucket, base + "amazon-bedrock-logs-permission-check", b"")
    put(s3, bucket, base + "us-east-1/2026/03/10/13/data/r-2_input.json.gz", gzip.compress(b'{"big": 1}'))
    put(s3, bucket, base + "us-east-1/2026/03/10/13/empty.json.gz", b"")
    put(s3, bucket, base + "us-east-1/2026/03/10/13/notes.txt", b"hello")


def read(cfg_path: Path, table: str, day: str = DAY) -> pl.DataFrame:
    return warehouse.read_partition(load_config(cfg_path).warehouse, table, day)


def test_s3_day_with_faults_late_records_and_duplicates(tmp_path: Path, s3: Any, bucket: str) -> None:
    seed_bucket(s3, bucket)
    cfg = write_config(tmp_path, sources={"invocation_logs": {"s3": [f"s3://{bucket}/bedrock"]}})
    result = run_day(cfg)
    assert result.success
    inv = read(cfg, "invocations")
    ids = set(inv["request_id"])
    assert {"r-1", "r-2", "r-4", "r-late"} <= ids
    assert "r-prev-day" not in ids and "r-next" not in ids and "r-3" not in ids
    assert inv["request_id"].n_unique() == inv.height  # r-2 delivered twice appears once
    truncated_kept = {i for i in ids if i.startswith("r-t")}
    assert 0 < len(truncated_kept) < 40
    assert inv.filter(pl.col("request_id") == "r-4")["status"].item() == "throttled"
    assert inv["date"].unique().to_list() == [dt.date(2026, 3, 10)]
    assert inv["source"].unique().to_list() == ["s3"]

    rej = read(cfg, "rejected_records")
    reasons = sorted(r.split(":")[0] for r in rej["reason"])
    assert reasons == ["malformed_json", "truncated_gzip", "unknown_schema_version"]
    assert rej["source_uri"].str.starts_with(f"s3://{bucket}/").all()

    mats = {
        e.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    meta = mats["invocations"]
    assert meta["skipped_permission_check_marker"].value == 1
    assert meta["skipped_data_sidecar"].value == 1
    assert meta["skipped_zero_byte"].value == 1
    assert meta["skipped_not_json_gz"].value == 1
    assert meta["duplicates_removed"].value == 1
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["request_id_unique"] and checks["no_negative_tokens"]
    assert checks["rejects_within_threshold"] is False  # 3 rejects of ~45 records is over the 1% default


def test_next_day_owns_its_records_and_rejects_once(tmp_path: Path, s3: Any, bucket: str) -> None:
    seed_bucket(s3, bucket)
    cfg = write_config(tmp_path, sources={"invocation_logs": {"s3": [f"s3://{bucket}/bedrock"]}})
    assert run_day(cfg, "2026-03-11").success
    inv = read(cfg, "invocations", "2026-03-11")
    assert inv["request_id"].to_list() == ["r-next"]
    assert read(cfg, "rejected_records", "2026-03-11").height == 0


@pytest.mark.slow
def test_rerun_is_idempotent_and_failed_run_keeps_previous_partition(tmp_path: Path, s3: Any, bucket: str) -> None:
    seed_bucket(s3, bucket)
    cfg = write_config(tmp_path, sources={"invocation_logs": {"s3": [f"s3://{bucket}/bedrock"]}})
    assert run_day(cfg).success
    first = read(cfg, "invocations")
    assert run_day(cfg).success
    assert read(cfg, "invocations").equals(first)

    broken = write_config(
        tmp_path,
        sources={"invocation_logs": {"s3": [f"s3://{bucket}/bedrock", "s3://no-such-bucket-xyz/logs"]}},
    )
    result = run_day(broken)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    error, message = failure.step_failure_data.error, ""
    while error is not None:
        message += error.message
        error = error.cause
    assert "no-such-bucket-xyz" in message and "not found" in message
    assert read(cfg, "invocations").equals(first)
    files = list((tmp_path / "wh" / "invocations").rglob("*"))
    assert not [f for f in files if f.name.endswith(".tmp")]


# CloudWatch Logs (and moto) drop events older than 14 days, so these tests use a recent day.
RECENT = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)


def _ts(day: dt.date, hms: str) -> str:
    return f"{day.isoformat()}T{hms}Z"


def test_cloudwatch_and_s3_are_deduplicated(tmp_path: Path, s3: Any, logs: Any, bucket: str) -> None:
    day, nxt = RECENT, RECENT + dt.timedelta(days=1)
    put(
        s3,
        bucket,
        log_key(ACCOUNT, "us-east-1", _ts(day, "10:01:00")[:-1]),
        gz_lines(
            [
                make_record("both-1", _ts(day, "10:00:00")),
                make_record("s3-only", _ts(day, "10:00:05")),
            ]
        ),
    )
    group = "/aws/bedrock/modelinvocations"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="aws/bedrock/modelinvocations")
    events = []
    for rid, ts in [
        ("both-1", _ts(day, "10:00:00")),
        ("cw-only", _ts(day, "11:00:00")),
        ("cw-next-day", _ts(nxt, "00:00:01")),
    ]:
        when = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
        events.append({"timestamp": int(when.timestamp() * 1000), "message": json.dumps(make_record(rid, ts))})
    events.append({"timestamp": events[1]["timestamp"] + 1, "message": "not json at all"})
    events.sort(key=lambda e: e["timestamp"])
    logs.put_log_events(logGroupName=group, logStreamName="aws/bedrock/modelinvocations", logEvents=events)

    cfg = write_config(
        tmp_path,
        sources={
            "invocation_logs": {
                "s3": [f"s3://{bucket}"],
                "cloudwatch": [{"log_group": group, "region": "us-east-1"}],
            }
        },
    )
    assert run_day(cfg, day.isoformat()).success
    inv = read(cfg, "invocations", day.isoformat()).sort("request_id")
    assert inv["request_id"].to_list() == ["both-1", "cw-only", "s3-only"]
    assert dict(zip(inv["request_id"], inv["source"], strict=True)) == {
        "both-1": "s3",
        "cw-only": "cloudwatch",
        "s3-only": "s3",
    }
    rej = read(cfg, "rejected_records", day.isoformat())
    assert rej["reason"].str.starts_with("malformed_json").to_list() == [True]
    assert rej["source_uri"].item().startswith("cloudwatch://us-east-1/aws/bedrock/modelinvocations")


def test_cloudwatch_pagination_reads_every_page(logs: Any) -> None:
    group = "/paging/test"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    base = int(dt.datetime(RECENT.year, RECENT.month, RECENT.day, 12, tzinfo=dt.UTC).timestamp() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": base + i, "message": f'{{"n": {i}}}'} for i in range(25)],
    )
    pages = list(cloudwatch_logs.iter_day_events(group, RECENT, region="us-east-1", page_size=10))
    assert len(pages) >= 3
    assert sum(len(p) for p in pages) == 25


def test_missing_log_group_names_it(logs: Any) -> None:
    with pytest.raises(cloudwatch_logs.SourceError, match="/does/not/exist.*not found"):
        list(cloudwatch_logs.iter_day_events("/does/not/exist", dt.date(2026, 3, 10), region="us-east-1"))


def test_warehouse_on_s3(tmp_path: Path, s3: Any, bucket: str) -> None:
    put(
        s3,
        bucket,
        log_key(ACCOUNT, "us-east-1", "2026-03-10T10:01:00"),
        gz_lines([make_record("a", "2026-03-10T10:00:00Z")]),
    )
    cfg = write_config(
        tmp_path, warehouse=f"s3://{bucket}/warehouse", sources={"invocation_logs": {"s3": [f"s3://{bucket}"]}}
    )
    assert run_day(cfg).success
    assert run_day(cfg).success
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="warehouse/")["Contents"]]
    assert f"warehouse/invocations/date={DAY}/part-0.parquet" in keys
    assert not [k for k in keys if "_staging" in k]
    assert read(cfg, "invocations")["request_id"].to_list() == ["a"]


def test_local_folder_with_same_layout(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    path = root / log_key(ACCOUNT, "eu-central-1", "2026-03-10T08:00:40")
    path.parent.mkdir(parents=True)
    path.write_bytes(gz_lines([make_record("local-1", "2026-03-10T08:00:00Z", region="eu-central-1")]))
    cfg = write_config(tmp_path, sources={"invocation_logs": {"s3": [str(root)]}})
    assert run_day(cfg).success
    inv = read(cfg, "invocations")
    assert inv["request_id"].to_list() == ["local-1"] and inv["region"].to_list() == ["eu-central-1"]
