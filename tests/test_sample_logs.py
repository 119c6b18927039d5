"""The sample-log generator must produce what Bedrock really writes (docs/formats/invocation-logs.md), the
same bytes for the same options, and an exact account of what a reader has to recover."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import json
import re
import shutil
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.config import parse_config
from pipeline.sample.delivery import cloudwatch_batches
from pipeline.sample.ledger_config import OVERRIDE_COLUMNS, sample_ledger_config, write_price_overrides
from pipeline.sample.logs import (
    CW_MAX_BYTES,
    CW_MAX_EVENTS,
    OPERATIONS,
    PERMISSION_MARKER,
    GenerationSummary,
    LogGenOptions,
    deliver_cloudwatch,
    estimate_spend,
    iter_records,
    write_logs,
)
from pipeline.sample.world import (
    APP_PROFILES,
    BILL_ONLY_MODEL_ID,
    CUSTOM_MODEL_ARN,
    UNKNOWN_MODEL_ID,
    expected_cost_center,
)

# docs/formats/invocation-logs.md §2.1, verbatim.
MAIN_KEY = re.compile(
    r"^(?P<prefix>(?:.*/)?)AWSLogs/(?P<account>\d{12})/BedrockModelInvocationLogs/"
    r"(?P<region>[a-z0-9-]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/"
    r"(?P<file>(?P<ts>\d{8}T\d{9}Z)_(?P<hash>[0-9a-f]{16})\.json\.gz)$"
)
DATA_KEY = re.compile(
    r"^(?P<base>.*/BedrockModelInvocationLogs/[a-z0-9-]+/\d{4}/\d{2}/\d{2}/\d{2})/data/"
    r"(?P<request_id>[0-9a-f-]{36})_(?P<dir>input|output)(?P<rest>.*)$"
)
ERROR_CODES = {
    "ValidationException",
    "ModelTimeoutException",
    "ThrottlingException",
    "InternalServerException",
    "ServiceUnavailableException",
}
START = dt.date(2026, 1, 30)  # the run crosses a month end too
FAULTY = LogGenOptions(
    start=START,
    days=2,
    records_per_day=700,
    malformed_lines=4,
    truncated_files=2,
    duplicate_deliveries=3,
    unknown_schema_records=1,
    late_fraction=0.05,
)
PRICES_CSV = Path(__file__).resolve().parents[1] / "pipeline" / "pricing" / "data" / "prices.csv"


@pytest.fixture(scope="module")
def day_records() -> list[dict[str, Any]]:
    """One full default day (2,000 calls): enough for every operation, error code and shape to appear."""
    return list(iter_records(LogGenOptions(start=START, days=1)))


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSummary]:
    root = tmp_path_factory.mktemp("faulty") / "logs"
    return root, write_logs(str(root), FAULTY)


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def _file_time(key: str) -> dt.datetime:
    ts = MAIN_KEY.match(key).group("ts")  # type: ignore[union-attr]
    return dt.datetime.strptime(ts[:15], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC) + dt.timedelta(
        milliseconds=int(ts[15:18])
    )


def _record_time(rec: dict[str, Any]) -> dt.datetime:
    return dt.datetime.strptime(rec["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def _lines(path: Path) -> list[bytes]:
    return gzip.decompress(path.read_bytes()).splitlines()


# --- determinism --------------------------------------------------------------------------------------------


def test_same_options_same_bytes(tmp_path: Path) -> None:
    opts = LogGenOptions(
        start=START,
        days=1,
        records_per_day=400,
        malformed_lines=2,
        truncated_files=1,
        duplicate_deliveries=1,
        unknown_schema_records=1,
        cloudwatch_share=0.1,
    )
    dest = tmp_path / "logs"
    first = write_logs(str(dest), opts)
    digest = _tree_digest(dest)
    shutil.rmtree(dest)
    second = write_logs(str(dest), opts)
    assert _tree_digest(dest) == digest
    assert first.expected_request_ids == second.expected_request_ids
    assert first.cloudwatch_records == second.cloudwatch_records

    other = tmp_path / "other"
    write_logs(str(other), LogGenOptions(start=START, days=1, records_per_day=400, seed=8))
    assert set(_tree_digest(other).values()).isdisjoint(v for k, v in digest.items() if k.endswith(".json.gz"))


def test_days_are_independent_and_iter_records_matches_expected() -> None:
    one = list(iter_records(LogGenOptions(start=START, days=1, records_per_day=300)))
    two = list(iter_records(LogGenOptions(start=START, days=2, records_per_day=300)))
    assert two[:300] == one
    assert all(r["timestamp"].startswith("2026-01-31") for r in two[300:])
    assert len({r["requestId"] for r in two}) == 600


# --- layout -------------------------------------------------------------------------------------------------


def test_layout_matches_spec_regexes(faulty: tuple[Path, GenerationSummary]) -> None:
    root, summary = faulty
    files = [p for p in root.rglob("*") if p.is_file()]
    rel = {str(p.relative_to(root)) for p in files}
    assert rel == set(summary.log_keys) | set(summary.sidecar_keys) | set(summary.marker_keys)
    assert summary.files == len(summary.log_keys) and summary.sidecars == len(summary.sidecar_keys)
    assert summary.bytes == sum(p.stat().st_size for p in files)
    for key in summary.log_keys:
        m = MAIN_KEY.match(key)
        assert m, key
        assert m.group("account") in FAULTY.accounts and m.group("region") in FAULTY.regions
        assert m.group("ts")[:8] == m.group("y") + m.group("m") + m.group("d")  # folder = delivery time
        assert m.group("ts")[9:11] == m.group("h")
    for key in summary.sidecar_keys:
        assert DATA_KEY.match(key), key
    for acct in FAULTY.accounts:
        marker = root / "AWSLogs" / acct / "BedrockModelInvocationLogs" / PERMISSION_MARKER
        assert marker.is_file() and marker.stat().st_size == 0
    assert (root / PERMISSION_MARKER).stat().st_size == 0


def test_every_line_is_a_record_except_injected_faults(faulty: tuple[Path, GenerationSummary]) -> None:
    root, summary = faulty
    bad_lines = 0
    v2_ids: list[str] = []
    seen: Counter[str] = Counter()
    for key in summary.log_keys:
        raw = (root / key).read_bytes()
        assert raw[:2] == b"\x1f\x8b"
        if key in summary.truncated_keys:
            with pytest.raises((EOFError, zlib.error)):
                gzip.decompress(raw)
            continue
        text = gzip.decompress(raw)
        assert text.endswith(b"\n")
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                bad_lines += 1
                continue
            assert isinstance(rec, dict) and rec["schemaType"] == "ModelInvocationLog"
            if rec["schemaVersion"] == "2.0":
                v2_ids.append(rec["requestId"])
            else:
                assert rec["schemaVersion"] == "1.0"
                seen[rec["requestId"]] += 1
    assert bad_lines == summary.malformed_lines == FAULTY.malformed_lines
    assert sorted(v2_ids) == sorted(summary.unknown_schema_request_ids) and len(v2_ids) == 1
    assert summary.truncated_files == len(summary.truncated_keys) == 2
    assert sum(seen.values()) - len(seen) == summary.duplicate_records > 0
    expected = set().union(*summary.expected_request_ids.values())
    assert set(seen) == expected  # no CloudWatch share here: S3 holds every record
    assert summary.records == len(expected) == 1400
    assert summary.expected_unique_per_day == {START: 700, START + dt.timedelta(days=1): 700}


def test_late_deliveries_cross_hour_and_day(faulty: tuple[Path, GenerationSummary]) -> None:
    root, summary = faulty
    copies = set(summary.truncated_keys)
    delays: list[float] = []
    folder_hour_differs = folder_day_differs = 0
    for key in summary.log_keys:
        if key in copies:
            continue
        delivered = _file_time(key)
        for line in _lines(root / key):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            t = _record_time(rec)
            delays.append((delivered - t).total_seconds())
            folder_hour_differs += t.strftime("%Y%m%d%H") != delivered.strftime("%Y%m%d%H")
            folder_day_differs += t.date() != delivered.date()
    assert min(delays) >= 20
    on_time = [d for d in delays if d <= 90]
    late = [d for d in delays if d > 90]
    assert len(late) >= summary.late_records > 0  # duplicates re-deliver later still
    assert len(on_time) > 0.9 * len(delays)
    assert folder_hour_differs > 0 and folder_day_differs > 0
    assert summary.cross_hour_records > 0 and summary.cross_day_records > 0


def test_sidecars_hold_the_offloaded_bodies(tmp_path: Path) -> None:
    opts = LogGenOptions(start=START, days=1, records_per_day=800)
    summary = write_logs(str(tmp_path), opts)
    dirs = Counter(DATA_KEY.match(k).group("dir") for k in summary.sidecar_keys)  # type: ignore[union-attr]
    assert dirs["input"] > 0 and dirs["output"] > 0
    records = {r["requestId"]: r for r in iter_records(opts, str(tmp_path))}
    for key in summary.sidecar_keys:
        m = DATA_KEY.match(key)
        assert m
        rec = records[m.group("request_id")]
        body_raw = gzip.decompress((tmp_path / key).read_bytes())
        assert len(body_raw) > 100 * 1024
        body = json.loads(body_raw)
        if m.group("dir") == "input":
            assert rec["input"]["inputBodyS3Path"] == str(tmp_path / key)
            assert "inputBodyJson" not in rec["input"] and rec["input"]["inputTokenCount"] > 20_000
        else:
            assert rec["output"]["outputBodyS3Path"] == str(tmp_path / key)
            assert rec["modelId"] == "amazon.nova-canvas-v1:0"
            n = rec["input"]["inputBodyJson"]["imageGenerationConfig"]["numberOfImages"]
            assert len(body["images"]) == n
        hour_folder = m.group("base").rsplit("/", 4)[-4:]
        assert "/".join(hour_folder) == _record_time(rec).strftime("%Y/%m/%d/%H")


# --- record shapes --------------------------------------------------------------------------------------------


def _status(rec: dict[str, Any]) -> str:
    if "errorCode" in rec:
        return "error"
    body = rec.get("output", {}).get("outputBodyJson")
    if isinstance(body, dict) and (
        body.get("stopReason") == "guardrail_intervened" or body.get("amazon-bedrock-guardrailAction") == "INTERVENED"
    ):
        return "guardrail"
    return "success"


def test_record_shapes_per_operation(day_records: list[dict[str, Any]]) -> None:
    ops: Counter[str] = Counter()
    codes: set[str] = set()
    for rec in day_records:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", rec["timestamp"])
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", rec["requestId"])
        assert rec["identity"]["arn"].startswith(("arn:aws:sts::", "arn:aws:iam::"))
        op = rec["operation"]
        ops[op] += 1
        inp, out = rec["input"], rec.get("output")
        status = _status(rec)
        if status == "error":
            codes.add(rec["errorCode"])
            assert out is None and "inputTokenCount" not in inp and "inferenceRegion" not in rec
            continue
        body = out.get("outputBodyJson")
        if status == "guardrail":
            if op == "InvokeModel":
                assert "inputTokenCount" not in inp and "outputTokenCount" not in out
                assert body["amazon-bedrock-trace"]["guardrail"]["input"]
            else:
                assert inp["inputTokenCount"] == 0 and out["outputTokenCount"] == 0
                assert body["usage"] == {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0}
                assert body["metrics"]["latencyMs"] > 0 and "inputAssessment" in body["trace"]["guardrail"]
            continue
        n_in, n_out = inp["inputTokenCount"], out["outputTokenCount"]
        cr, cw = inp.get("cacheReadInputTokenCount", 0), inp.get("cacheWriteInputTokenCount", 0)
        if op in ("Converse", "ConverseStream"):
            assert isinstance(body, dict) and body["metrics"]["latencyMs"] > 0
            u = body["usage"]
            assert (u["inputTokens"], u["outputTokens"]) == (n_in, n_out)
            assert u["totalTokens"] == n_in + n_out + cr + cw
            assert u.get("cacheReadInputTokens", 0) == cr and u.get("cacheWriteInputTokens", 0) == cw
        elif op == "InvokeModelWithResponseStream":
            assert isinstance(body, list) and len(body) >= 3
            metrics = body[-1]["amazon-bedrock-invocationMetrics"]
            assert (metrics["inputTokenCount"], metrics["outputTokenCount"]) == (n_in, n_out)
            assert metrics["invocationLatency"] >= metrics["firstByteLatency"] > 0
            assert all("amazon-bedrock-invocationMetrics" not in c for c in body[:-1])
            if "anthropic" in rec["modelId"]:
                assert metrics["cacheReadInputTokenCount"] == cr and metrics["cacheWriteInputTokenCount"] == cw
        else:
            blob = json.dumps(out)
            assert "latencyMs" not in blob and "invocationLatency" not in blob  # InvokeModel logs no latency
    assert set(ops) == set(OPERATIONS)
    assert codes == ERROR_CODES


def test_field_orders_inference_region_and_metadata(day_records: list[dict[str, Any]]) -> None:
    first_keys = Counter(next(iter(r)) for r in day_records)
    assert first_keys["schemaType"] > 0 and first_keys["timestamp"] > 0
    for rec in day_records:
        keys = list(rec)
        if keys[0] == "timestamp":
            assert keys[-3:-1] == ["schemaType", "schemaVersion"] or keys[-2:] == ["schemaType", "schemaVersion"]
        model = rec["modelId"]
        cross = re.match(r"^(?:arn:.*inference-profile/)?(us|eu|global)\.", model) or any(
            model == p.arn and re.match(r"^(us|eu|global)\.", p.model_id) for p in APP_PROFILES
        )
        if "inferenceRegion" in rec:
            assert cross, model
        elif _status(rec) == "success":
            assert not cross, model
    with_md = [r for r in day_records if "requestMetadata" in r]
    assert 0.5 < len(with_md) / len(day_records) < 0.9
    assert {"userId", "costCenter", "applicationId", "environment"} <= set().union(
        *(r["requestMetadata"] for r in with_md)
    )
    centers = Counter(
        expected_cost_center(r["identity"]["arn"], r["modelId"], r.get("requestMetadata")) for r in day_records
    )
    assert len(set(centers) - {"unattributed"}) >= 4 and centers["unattributed"] > 0
    assert any(r["identity"]["arn"].startswith("arn:aws:iam::") for r in day_records)
    assert any("/BEDROCKPLAYGROUNDACCESS/" in r["identity"]["arn"] for r in day_records)


def test_model_ids_exist_in_price_catalog(day_records: list[dict[str, Any]]) -> None:
    if not PRICES_CSV.is_file():
        pytest.skip("bundled price CSV not present")
    with PRICES_CSV.open(newline="") as fh:
        priced = {row["model_id"] for row in csv.DictReader(fh)}
    app = {p.arn: p.model_id for p in APP_PROFILES}
    used = {r["modelId"] for r in day_records}
    assert {CUSTOM_MODEL_ARN, UNKNOWN_MODEL_ID} <= used
    # Image models are priced per image from shared/data/bedrock-image-prices.csv (size/quality tiers), which the
    # bundled token catalog may carry only in part; the token-priced ids must all be there.
    for model in used - {CUSTOM_MODEL_ARN, UNKNOWN_MODEL_ID, BILL_ONLY_MODEL_ID, "amazon.nova-canvas-v1:0"}:
        plain = app.get(model) or model.rsplit("inference-profile/", 1)[-1]
        assert plain in priced, model
    assert UNKNOWN_MODEL_ID not in priced
    assert BILL_ONLY_MODEL_ID in used and BILL_ONLY_MODEL_ID not in priced  # priced from the bill only


def test_diurnal_pattern(day_records: list[dict[str, Any]]) -> None:
    by_hour = Counter(int(r["timestamp"][11:13]) for r in day_records)
    assert by_hour[18] > 2 * by_hour[8]


# --- config, budgets, overrides -------------------------------------------------------------------------------


def test_sample_ledger_config_is_valid_and_budgets_bite(tmp_path: Path) -> None:
    opts = LogGenOptions(start=START, days=3, records_per_day=800)
    cfg = sample_ledger_config("logs", "warehouse", opts=opts, overrides_path="prices.csv")
    parsed = parse_config(cfg, base_dir=tmp_path)
    assert parsed.sources.invocation_logs.s3 == [str((tmp_path / "logs").resolve())]
    assert set(parsed.attribution.inference_profiles) == {p.arn for p in APP_PROFILES}
    spend = estimate_spend(opts)["2026-02"]  # month of the last sample day
    ratios = {b["cost_center"]: spend.get(b["cost_center"], 0) / b["monthly_usd"] for b in cfg["budgets"]}
    assert len(ratios) >= 4
    assert any(r > 1.0 for r in ratios.values())
    assert any(0.8 <= r <= 1.0 for r in ratios.values())

    path = write_price_overrides(str(tmp_path / "sub" / "prices.csv"))
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == OVERRIDE_COLUMNS and rows[0]["model_id"] == CUSTOM_MODEL_ARN

    with_cw = sample_ledger_config("s3://b/p", "s3://w", opts=LogGenOptions(start=START, cloudwatch_share=0.2))
    assert {c["region"] for c in with_cw["sources"]["invocation_logs"]["cloudwatch"]} == set(opts.regions)


def test_options_are_validated() -> None:
    with pytest.raises(ValueError):
        LogGenOptions(start=START, days=0)
    with pytest.raises(ValueError):
        LogGenOptions(start=START, accounts=("123456789012",))
    with pytest.raises(ValueError):
        LogGenOptions(start=START, cloudwatch_share=0.98, cloudwatch_overlap=0.05)


# --- S3 and CloudWatch against moto ---------------------------------------------------------------------------


def test_write_to_s3(aws: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="bedrock-logs")
    opts = LogGenOptions(start=START, days=1, records_per_day=60, duplicate_deliveries=1)
    summary = write_logs("s3://bedrock-logs/bedrock/invocation-logs/", opts)
    assert summary.dest == "s3://bedrock-logs/bedrock/invocation-logs"
    keys = {
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bedrock-logs", Prefix="bedrock/")
        for o in page.get("Contents", [])
    }
    prefix = "bedrock/invocation-logs/"
    assert keys == {prefix + k for k in summary.log_keys + summary.sidecar_keys + summary.marker_keys}
    assert all(MAIN_KEY.match(prefix + k) for k in summary.log_keys)
    local = write_logs(str(tmp_path), opts)
    assert local.log_keys == summary.log_keys
    key = summary.log_keys[0]
    assert s3.get_object(Bucket="bedrock-logs", Key=prefix + key)["Body"].read() == (tmp_path / key).read_bytes()


def test_cloudwatch_delivery(aws: str, tmp_path: Path) -> None:
    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3)  # CloudWatch rejects events older than 14 days
    opts = LogGenOptions(start=start, days=1, records_per_day=300, cloudwatch_share=0.3, cloudwatch_overlap=0.1)
    summary = write_logs(str(tmp_path), opts)
    assert summary.cloudwatch_only > 0 and summary.cloudwatch_overlap > 0
    assert summary.s3_records + summary.cloudwatch_only == summary.records == 300
    results = deliver_cloudwatch(summary, log_group="/aws/bedrock/test-invocations")
    assert sum(r.accepted for r in results) == len(summary.cloudwatch_records) and not any(r.rejected for r in results)
    got: dict[str, dict[str, Any]] = {}
    for res in results:
        logs = boto3.client("logs", region_name=res.region)
        streams = logs.describe_log_streams(logGroupName=res.log_group)["logStreams"]
        assert [s["logStreamName"] for s in streams] == ["aws/bedrock/modelinvocations"]
        kwargs: dict[str, Any] = {"logGroupName": res.log_group}
        while True:
            page = logs.filter_log_events(**kwargs)
            for ev in page["events"]:
                rec = json.loads(ev["message"])
                assert ev["timestamp"] == int(_record_time(rec).timestamp() * 1000)
                got[rec["requestId"]] = rec
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    assert got == {r["requestId"]: r for r in summary.cloudwatch_records}
    in_s3 = set()
    for key in summary.log_keys:
        in_s3 |= {json.loads(line)["requestId"] for line in _lines(tmp_path / key)}
    assert in_s3 | set(got) == summary.expected_request_ids[start]
    assert len(in_s3 & set(got)) == summary.cloudwatch_overlap


def test_cloudwatch_batches_respect_limits() -> None:
    events = [{"timestamp": 1_700_000_000_000 + i, "message": "x" * 150} for i in range(12_000)]
    batches = list(cloudwatch_batches(events))
    assert sum(len(b) for b in batches) == 12_000
    for b in batches:
        assert len(b) <= CW_MAX_EVENTS
        assert sum(len(e["message"]) + 26 for e in b) <= CW_MAX_BYTES
    spread = [{"timestamp": i * 3_600_000, "message": "y"} for i in range(30)]
    assert all(b[-1]["timestamp"] - b[0]["timestamp"] < 24 * 3_600_000 for b in cloudwatch_batches(spread))
