"""Faults survived, nothing lost: throttling, 5xx and dropped connections from S3 and CloudWatch Logs (through a
fault-injecting proxy in front of moto), crashes in the middle of writing a partition, two writers of one
partition at once, and reruns that must give the same rows.

Retries keep their real shape (botocore's exponential backoff, s3fs' retries, our page loop) but run with the
waits scaled down, so the whole file stays fast.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pyarrow.parquet as pq
import pytest
import s3fs
from botocore.retries.standard import ExponentialBackoff

from pipeline import schemas, warehouse
from pipeline.config import load_config
from pipeline.defs.operability import UNREADABLE_CHECK
from pipeline.sources import cloudwatch_logs, s3_logs
from tests import helpers
from tests.faultproxy import FaultProxy
from tests.helpers import gz_lines, log_key, make_record, write_config

DAY = "2026-03-10"
ACCOUNT = "111122223333"
HOURS = (9, 10, 11, 12)
PER_OBJECT = 25
ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def proxy(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The fault proxy in front of moto; every client of the pipeline goes through it (seeding does not)."""
    with FaultProxy(aws) as px:
        monkeypatch.setenv("AWS_ENDPOINT_URL", px.url)
        yield px


@pytest.fixture
def backoffs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Fast retries of the real shape: botocore standard mode, 3 attempts, its computed backoffs recorded and
    slept at 1/100; s3fs' own retry loop twice; our CloudWatch page and S3 object backoffs at 1 ms."""
    monkeypatch.setenv("LEDGER_AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("LEDGER_AWS_MAX_ATTEMPTS", "3")
    monkeypatch.setattr(s3fs.S3FileSystem, "retries", 2)
    monkeypatch.setattr(cloudwatch_logs, "BACKOFF_BASE_S", 0.001)
    monkeypatch.setattr(s3_logs, "READ_BACKOFF_S", 0.001)
    recorded: list[float] = []
    original = ExponentialBackoff.delay_amount

    def scaled(self: ExponentialBackoff, context: Any) -> float:
        delay = original(self, context)
        recorded.append(delay)
        return delay / 100

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", scaled)
    return recorded


@pytest.fixture
def s3(aws: str) -> Any:
    """A client straight to moto (not through the proxy), for seeding and inspecting."""
    return boto3.client("s3", endpoint_url=aws, region_name="us-east-1")


@pytest.fixture
def logs(aws: str) -> Any:
    return boto3.client("logs", endpoint_url=aws, region_name="us-east-1")


# ----------------------------------------------------------------------------------------------------- helpers


def object_key(hour: int) -> str:
    return log_key(ACCOUNT, "us-east-1", f"{DAY}T{hour:02d}:05:00", f"{hour:016x}")


def seed_day(s3: Any, bucket: str) -> set[str]:
    """One object per hour in HOURS, PER_OBJECT records each; returns every request id."""
    ids: set[str] = set()
    for hour in HOURS:
        records = [make_record(f"r-{hour}-{i}", f"{DAY}T{hour:02d}:01:{i:02d}Z") for i in range(PER_OBJECT)]
        ids.update(r["requestId"] for r in records)
        s3.put_object(Bucket=bucket, Key=object_key(hour), Body=gz_lines(records))
    return ids


def run_day(config_path: Path, day: str = DAY, selection: list[str] | None = None, checks: bool = False) -> Any:
    """Materialize a day; the day checks (`checks`) come with `build_assets`, so nothing extra is needed."""
    return helpers.run_day(config_path, day, selection)


def read(config_path: Path, table: str, day: str = DAY) -> pl.DataFrame:
    return warehouse.read_partition(load_config(config_path).warehouse, table, day)


def failure_message(result: Any) -> str:
    failure = next(e for e in result.all_events if e.is_step_failure)
    error, message = failure.step_failure_data.error, ""
    while error is not None:
        message += error.message
        error = error.cause
    return message


# -------------------------------------------------------------------------------------------- S3 and CloudWatch


@pytest.mark.slow
def test_s3_throttling_and_5xx_are_retried_and_change_nothing(
    tmp_path: Path, s3: Any, bucket: str, proxy: FaultProxy, backoffs: list[float]
) -> None:
    ids = seed_day(s3, bucket)
    cfg = write_config(tmp_path, sources={"invocation_logs": {"s3": [f"s3://{bucket}"]}})
    assert run_day(cfg).success
    clean = read(cfg, "invocations")
    assert set(clean["request_id"]) == ids

    listing = proxy.fail(r"^GET /[^ ]*list-type=2", "slowdown", times=2)
    gets = proxy.fail(rf"^GET /{bucket}/AWSLogs/.*\.json\.gz", "slowdown", times=3)
    errors = proxy.fail(rf"^GET /{bucket}/AWSLogs/.*\.json\.gz", "internal", times=2)
    result = run_day(cfg)
    assert result.success
    assert (listing.fired, gets.fired, errors.fired) == (2, 3, 2)
    assert read(cfg, "invocations").equals(clean)  # row-identical to the run without faults
    assert read(cfg, "rejected_records").is_empty()
    assert len(backoffs) >= 7 and all(b > 0 for b in backoffs)  # every fault was followed by a backoff


@pytest.mark.slow
def test_s3_that_keeps_throttling_fails_the_run_clearly(
    tmp_path: Path, s3: Any, bucket: str, proxy: FaultProxy, backoffs: list[float]
) -> None:
    seed_day(s3, bucket)
    cfg = write_config(tmp_path, sources={"invocation_logs": {"s3": [f"s3://{bucket}"]}})
    assert run_day(cfg).success
    before = read(cfg, "invocations")
    proxy.fail(rf"^GET /{bucket}\?list-type=2", "slowdown", times=10_000)
    result = run_day(cfg)
    assert not result.success
    message = failure_message(result)
    assert bucket in message and "kept throttling" in message
    assert proxy.count(r"list-type=2", fault="slowdown") >= 6  # 3 botocore attempts x 2 s3fs tries
    assert read(cfg, "invocations").equals(before)  # the failed run left the day as it was


@pytest.mark.slow
def test_connection_dropped_mid_object_is_retried(
    tmp_path: Path, s3: Any, bucket: str, proxy: FaultProxy, backoffs: list[float]
) -> None:
    ids = seed_day(s3, bucket)
    cfg = write_config(tmp_path, sources={"invocation_logs": {"s3": [f"s3://{bucket}"]}})
    drops = proxy.fail(rf"^GET /{bucket}/AWSLogs/.*\.json\.gz", "drop", times=3, after_bytes=200)
    assert run_day(cfg).success
    assert drops.fired == 3
    assert set(read(cfg, "invocations")["request_id"]) == ids
    assert read(cfg, "rejected_records").is_empty()


@pytest.mark.slow
def test_object_that_keeps_dropping_is_never_silently_lost(
    tmp_path: Path, s3: Any, bucket: str, proxy: FaultProxy, backoffs: list[float]
) -> None:
    ids = seed_day(s3, bucket)
    bad_key = object_key(HOURS[1])
    cfg = write_config(tmp_path, sources={"invocation_logs": {"s3": [f"s3://{bucket}"]}})
    proxy.fail(rf"^GET /{bucket}/{bad_key}", "drop", times=10_000, after_bytes=100)
    result = run_day(cfg, checks=True)
    bad_uri = f"s3://{bucket}/{bad_key}"
    lost = {i for i in ids if i.startswith(f"r-{HOURS[1]}-")}
    if not result.success:  # failing the whole run is acceptable: nothing is written from part of the day
        assert bad_uri in failure_message(result)
        return
    assert set(read(cfg, "invocations")["request_id"]) == ids - lost
    rejects = read(cfg, "rejected_records")
    quarantined = rejects.filter(pl.col("source_uri") == bad_uri)
    assert quarantined.height == 1 and quarantined["reason"].item().startswith("unreadable_object")
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks[UNREADABLE_CHECK].passed  # and the day is flagged in the UI until it is run again


@pytest.mark.slow
def test_least_privilege_s3_needs_no_head_of_a_missing_key(
    tmp_path: Path, s3: Any, bucket: str, proxy: FaultProxy, backoffs: list[float]
) -> None:
    """With `s3:ListBucket` limited by prefix (docs/iam-policy.json), S3 answers a HEAD of a missing key with
    403. A day whose next-day folder is empty, and a warehouse on S3 written twice, must still work."""
    ids = seed_day(s3, bucket)
    proxy.fail(r"^HEAD ", "missing_as_403", times=100_000)
    cfg = write_config(
        tmp_path,
        warehouse=f"s3://{bucket}/warehouse",
        sources={"invocation_logs": {"s3": [f"s3://{bucket}"]}},
    )
    selection = ["invocations", "rejected_records", "priced_invocations"]
    for _ in range(2):
        result = run_day(cfg, selection=selection)
        assert result.success, failure_message(result)
    assert set(read(cfg, "invocations")["request_id"]) == ids
    assert read(cfg, "priced_invocations").height == len(ids)


RECENT = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)  # CloudWatch (and moto) keep 14 days


def seed_log_group(logs: Any, n: int = 30) -> tuple[str, set[str]]:
    """A fresh log group (moto lives for the session) with `n` records of RECENT; returns its name and ids."""
    group = f"/aws/bedrock/faults-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    base = dt.datetime(RECENT.year, RECENT.month, RECENT.day, 12, tzinfo=dt.UTC)
    events = []
    for i in range(n):
        when = base + dt.timedelta(seconds=i)
        record = make_record(f"cw-{i}", when.strftime("%Y-%m-%dT%H:%M:%SZ"))
        events.append({"timestamp": int(when.timestamp() * 1000), "message": json.dumps(record)})
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=events)
    return group, {f"cw-{i}" for i in range(n)}


@pytest.mark.slow
def test_cloudwatch_throttling_and_5xx_are_retried(
    tmp_path: Path, logs: Any, proxy: FaultProxy, backoffs: list[float]
) -> None:
    group, ids = seed_log_group(logs)
    pages = [list(p) for p in cloudwatch_logs.iter_day_events(group, RECENT, region="us-east-1", page_size=10)]
    assert len(pages) >= 3
    throttles = proxy.fail(r"FilterLogEvents", "throttle", times=4)  # more than one call's botocore attempts
    unavailable = proxy.fail(r"FilterLogEvents", "unavailable", times=2)
    sleeps: list[float] = []
    again = list(cloudwatch_logs.iter_day_events(group, RECENT, region="us-east-1", page_size=10, sleep=sleeps.append))
    assert (throttles.fired, unavailable.fired) == (4, 2)
    assert again == pages
    assert sleeps  # our page loop backed off once botocore had given up on a call

    cfg = write_config(tmp_path, sources={"invocation_logs": {"cloudwatch": [{"log_group": group}]}})
    proxy.fail(r"FilterLogEvents", "throttle", times=5)
    assert run_day(cfg, RECENT.isoformat()).success
    assert set(read(cfg, "invocations", RECENT.isoformat())["request_id"]) == ids


@pytest.mark.slow
def test_cloudwatch_that_keeps_throttling_fails_clearly(
    tmp_path: Path, logs: Any, proxy: FaultProxy, backoffs: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    group, _ = seed_log_group(logs, n=3)
    monkeypatch.setattr(cloudwatch_logs, "PAGE_ATTEMPTS", 3)
    proxy.fail(r"FilterLogEvents", "throttle", times=10_000)
    sleeps: list[float] = []
    with pytest.raises(cloudwatch_logs.SourceError, match=f"{group}.*kept throttling") as info:
        list(cloudwatch_logs.iter_day_events(group, RECENT, region="us-east-1", sleep=sleeps.append))
    assert "ThrottlingException" in str(info.value)
    assert len(sleeps) == cloudwatch_logs.PAGE_ATTEMPTS - 1
    assert sleeps == sorted(sleeps) and sleeps[-1] > sleeps[0]  # exponential backoff between page attempts

    cfg = write_config(tmp_path, sources={"invocation_logs": {"cloudwatch": [{"log_group": group}]}})
    result = run_day(cfg, RECENT.isoformat())
    assert not result.success
    assert "kept throttling" in failure_message(result)
    assert not warehouse.partition_exists(load_config(cfg).warehouse, "invocations", RECENT)


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (OSError(errno.EBUSY, "Please reduce your request rate."), True),
        (OSError(errno.EREMOTEIO, "We encountered an internal error."), True),
        (TimeoutError("read timed out"), True),
        (ConnectionResetError("reset by peer"), True),
        (FileNotFoundError("s3://logs/AWSLogs/x.json.gz"), False),
        (PermissionError("Access Denied"), False),
        (IsADirectoryError(errno.EISDIR, "AWSLogs/1/2026/03/10/15/20260310T150500000Z_x.json.gz"), False),
        (ValueError("not gzip"), False),
    ],
)
def test_transient_errors_are_told_apart_from_bad_objects(exc: BaseException, transient: bool) -> None:
    """Only the service or the network failing is worth a retry (and a rerun); a missing or forbidden object,
    or a bad one, is not, whatever digits its key holds."""
    assert s3_logs.is_transient(exc) is transient


def test_new_account_or_region_is_seen_by_a_long_lived_process(s3: Any, bucket: str) -> None:
    """s3fs caches listings per process: the CLI running many days, or a rerun in the same process, must still
    see an account or region whose first delivery came after the first listing."""
    s3.put_object(Bucket=bucket, Key=object_key(9), Body=gz_lines([make_record("a", f"{DAY}T09:00:00Z")]))
    assert len(s3_logs.list_day(f"s3://{bucket}", dt.date(2026, 3, 10)).objects) == 1
    for account, region in (("444455556666", "us-east-1"), (ACCOUNT, "eu-west-1")):
        key = log_key(account, region, f"{DAY}T10:05:00")
        s3.put_object(Bucket=bucket, Key=key, Body=gz_lines([make_record(key, f"{DAY}T10:00:00Z")]))
    assert len(s3_logs.list_day(f"s3://{bucket}", dt.date(2026, 3, 10)).objects) == 3


# ------------------------------------------------------------------------------------------ partition writing


def version(tag: str, n: int = 50) -> list[pl.DataFrame]:
    """A partition's content as three frames, every row tagged so a mix of two versions is visible."""
    day = dt.date(2026, 3, 10)
    frames = []
    for part in range(3):
        rows = {
            "request_id": [f"{tag}-{part}-{i}" for i in range(n)],
            "timestamp": [dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)] * n,
            "date": [day] * n,
            "model_id": [tag] * n,
            "input_tokens": list(range(n)),
        }
        frames.append(schemas.conform(pl.DataFrame(rows), schemas.INVOCATIONS))
    return frames


def visible_parquet(wh: str, s3: Any) -> list[str]:
    """Every file under the warehouse a reader's `*.parquet` glob could pick up."""
    if wh.startswith("s3://"):
        bucket, prefix = wh.removeprefix("s3://").split("/", 1)
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return sorted(o["Key"] for o in listed if o["Key"].endswith(".parquet"))
    return sorted(str(p.relative_to(wh)) for p in Path(wh).rglob("*.parquet"))


def all_files(wh: str, s3: Any) -> list[str]:
    if wh.startswith("s3://"):
        bucket, prefix = wh.removeprefix("s3://").split("/", 1)
        return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))
    return sorted(str(p.relative_to(wh)) for p in Path(wh).rglob("*") if p.is_file())


class CrashingWriter(pq.ParquetWriter):
    """A Parquet writer whose disk gives out after the first batch."""

    def write_table(self, table: Any, row_group_size: int | None = None) -> None:
        if getattr(self, "_written", 0) >= 1:
            raise OSError("disk gave out in the middle of the partition")
        self._written = 1
        super().write_table(table, row_group_size)


@pytest.fixture(params=["local", "s3"])
def wh(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "wh")
    return f"s3://{request.getfixturevalue('bucket')}/wh"


def test_crash_mid_partition_keeps_the_previous_one(wh: str, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    first = pl.concat(version("A"))
    warehouse.write_partition(version("A"), wh, "invocations", DAY)
    with monkeypatch.context() as patched, pytest.raises(OSError, match="disk gave out"):
        patched.setattr(pq, "ParquetWriter", CrashingWriter)  # warehouse imports pyarrow.parquet when it writes
        warehouse.write_partition(version("B"), wh, "invocations", DAY)
    assert warehouse.read_partition(wh, "invocations", DAY).equals(first)
    assert visible_parquet(wh, s3) == [
        f"{'wh/' if wh.startswith('s3://') else ''}invocations/date={DAY}/part-0.parquet"
    ]
    assert len(all_files(wh, s3)) == 1  # nor any temporary or staged file left behind


@pytest.mark.slow
def test_killed_writer_leaves_no_partial_file_visible(tmp_path: Path) -> None:
    """A real crash (SIGKILL) after the first batch: readers still see the previous partition, whole."""
    wh = str(tmp_path / "wh")
    warehouse.write_partition(version("A"), wh, "invocations", DAY)
    first = warehouse.read_partition(wh, "invocations", DAY)
    marker = tmp_path / "first-batch-written"
    child = f"""
import datetime as dt, time, sys
from pathlib import Path
import polars as pl
from pipeline import schemas, warehouse

def frames():
    for part in range(3):
        ids = [f"B-{{part}}-{{i}}" for i in range(5000)]
        df = pl.DataFrame({{"request_id": ids, "date": [dt.date(2026, 3, 10)] * len(ids)}})
        yield schemas.conform(df, schemas.INVOCATIONS)
        Path({str(marker)!r}).touch()
        time.sleep(60)

warehouse.write_partition(frames(), {wh!r}, "invocations", {DAY!r})
"""
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None, "the writer exited before its first batch"
            assert time.monotonic() < deadline, "the writer never wrote its first batch"
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert visible_parquet(wh, None) == [f"invocations/date={DAY}/part-0.parquet"]
    assert warehouse.read_partition(wh, "invocations", DAY).equals(first)
    assert pl.scan_parquet(f"{wh}/invocations/**/*.parquet").collect().height == first.height


@pytest.mark.slow
def test_concurrent_writers_of_one_partition_leave_one_whole_version(wh: str, s3: Any) -> None:
    tags = ["A", "B", "C", "D"]
    expected = {t: pl.concat(version(t)) for t in tags}
    for _ in range(3):
        barrier = threading.Barrier(len(tags))
        errors: list[BaseException] = []

        def write(tag: str, barrier: threading.Barrier = barrier, errors: list[BaseException] = errors) -> None:
            try:
                barrier.wait(timeout=10)
                warehouse.write_partition(iter(version(tag)), wh, "invocations", DAY)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(t,)) for t in tags]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors
        result = warehouse.read_partition(wh, "invocations", DAY)
        winners = [t for t, df in expected.items() if result.equals(df)]
        assert len(winners) == 1, "the partition is a mix of concurrent writes"
        assert len(visible_parquet(wh, s3)) == 1 and len(all_files(wh, s3)) == 1


def seed_local(root: Path) -> set[str]:
    ids: set[str] = set()
    for hour in HOURS:
        records = [
            make_record(
                f"l-{hour}-{i}",
                f"{DAY}T{hour:02d}:02:{i:02d}Z",
                requestMetadata={"costCenter": f"cc-{i % 3}", "userId": f"u{i % 5}"},
            )
            for i in range(PER_OBJECT)
        ]
        records.append(records[0])  # a duplicate delivery inside the object
        path = root / object_key(hour)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gz_lines(records))
        ids.update(r["requestId"] for r in records)
    return ids


def test_two_runs_of_one_day_at_once_equal_a_single_run(tmp_path: Path) -> None:
    ids = seed_local(tmp_path / "logs")
    cfg = write_config(tmp_path, sources={"invocation_logs": {"s3": [str(tmp_path / "logs")]}})
    selection = ["invocations", "rejected_records", "priced_invocations"]
    assert run_day(cfg, selection=selection).success
    single = {t: read(cfg, t) for t in ("invocations", "priced_invocations")}
    assert set(single["invocations"]["request_id"]) == ids

    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(run_day(cfg, selection=selection))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 2 and all(r.success for r in results)
    for table, df in single.items():
        assert read(cfg, table).equals(df), f"{table} after two concurrent runs differs from a single run"
    assert len(visible_parquet(str(tmp_path / "wh"), None)) == 3


def test_rerun_is_row_identical(tmp_path: Path) -> None:
    seed_local(tmp_path / "logs")
    cfg = write_config(tmp_path, sources={"invocation_logs": {"s3": [str(tmp_path / "logs")]}})
    selection = ["invocations", "rejected_records", "priced_invocations"]
    assert run_day(cfg, selection=selection).success
    first = {t: read(cfg, t) for t in ("invocations", "priced_invocations", "rejected_records")}
    assert first["priced_invocations"]["priced"].all()
    assert run_day(cfg, selection=selection).success
    for table, df in first.items():
        again = read(cfg, table)
        assert again.equals(df), f"{table} differs on rerun"
