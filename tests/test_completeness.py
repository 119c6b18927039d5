"""Completeness: discovery from Bedrock's logging configuration, `AWS/Bedrock` metrics, `log_completeness`.

Against moto's server over HTTP where moto implements the call. Where moto differs from AWS, the test says so:
* `GetMetricData`: moto never paginates (no `NextToken`, no `MaxDatapoints`), does not round `StartTime` and does
  not refuse more than 500 queries. Production code batches to 500 and follows `NextToken` as AWS requires; the
  paging is exercised against the recording client (`SnapshotAws`), which pages like CloudWatch.
* `GetModelInvocationLoggingConfiguration` where logging was never set: moto answers `"loggingConfig": null`,
  AWS leaves the member out. Both parse as "logging off".
* moto accepts metric datums of any age; AWS refuses `PutMetricData` older than two weeks (the tests' days are
  backfills only for the pipeline, not for `PutMetricData`).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pytest

from pipeline import warehouse
from pipeline.completeness import apply_metric_throttles, build_log_completeness, config_drift, config_for_day
from pipeline.completeness.coverage import day_coverage
from pipeline.config import Discover, load_config
from pipeline.sources import bedrock_metrics
from pipeline.sources.aws_accounts import SNAPSHOT_FORMAT, LiveAws, SnapshotAws
from pipeline.sources.logging_config import discover_logging, discovered_sources, parse_logging_config
from tests.helpers import gz_lines, log_key, make_record, write_config

DEFAULT_ACCOUNT = "123456789012"  # moto's account for the "testing" credentials
OTHER_ACCOUNT = "222233334444"
ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/ledger-read"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"


def _client(aws: str, service: str, region: str = "us-east-1", creds: dict[str, str] | None = None) -> Any:
    kw: dict[str, Any] = {}
    if creds:
        kw = {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }
    return boto3.client(service, region_name=region, endpoint_url=aws, **kw)


def _assumed(aws: str) -> dict[str, str]:
    return _client(aws, "sts").assume_role(RoleArn=ROLE, RoleSessionName="test")["Credentials"]


def _put_logging(
    client: Any, bucket: str | None, prefix: str = "", group: str | None = None, text: bool = True
) -> None:
    cfg: dict[str, Any] = {"textDataDeliveryEnabled": text}
    if bucket:
        cfg["s3Config"] = {"bucketName": bucket, "keyPrefix": prefix}
    if group:
        cfg["cloudWatchConfig"] = {"logGroupName": group, "roleArn": "arn:aws:iam::123456789012:role/bedrock-logs"}
    client.put_model_invocation_logging_configuration(loggingConfig=cfg)


def _fresh_region_config(aws: str) -> None:
    """moto keeps state for the whole session: clear the configurations these tests set."""
    for region in ("us-east-1", "us-west-2"):
        _client(aws, "bedrock", region).delete_model_invocation_logging_configuration()
        _client(aws, "bedrock", region, _assumed(aws)).delete_model_invocation_logging_configuration()


# ---------------------------------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------------------------------


def test_parse_logging_config_shapes() -> None:
    off = parse_logging_config({})
    assert off["logging_enabled"] is False and off["s3_uri"] is None
    assert parse_logging_config({"loggingConfig": None})["logging_enabled"] is False  # moto's answer
    on = parse_logging_config({"loggingConfig": {"s3Config": {"bucketName": "b", "keyPrefix": "p/q/"}}})
    # Omitted delivery switches are on (docs/formats/invocation-logs.md §1: AWS turns them all on).
    assert on["s3_uri"] == "s3://b/p/q" and on["text_data_delivery"] and on["video_data_delivery"]
    cw = parse_logging_config(
        {
            "loggingConfig": {
                "cloudWatchConfig": {
                    "logGroupName": "/aws/bedrock/x",
                    "roleArn": "arn:aws:iam::1:role/r",
                    "largeDataDeliveryS3Config": {"bucketName": "big"},
                },
                "textDataDeliveryEnabled": False,
            }
        }
    )
    assert cw["logging_enabled"] and cw["cloudwatch_log_group"] == "/aws/bedrock/x"
    assert cw["large_data_s3_uri"] == "s3://big" and cw["text_data_delivery"] is False


@pytest.mark.slow
def test_discovery_per_account_and_region_with_assumed_role(aws: str) -> None:
    _fresh_region_config(aws)
    _put_logging(_client(aws, "bedrock"), "org-logs", "bedrock/", group="/aws/bedrock/invocations")
    _put_logging(_client(aws, "bedrock", "us-east-1", _assumed(aws)), "other-logs", text=False)
    discover = Discover(
        regions=["us-east-1", "us-west-2"],
        accounts=[{"account_id": DEFAULT_ACCOUNT}, {"account_id": OTHER_ACCOUNT, "role_arn": ROLE}],
    )
    rows = {(r["account_id"], r["region"]): r for r in discover_logging(LiveAws(), discover)}
    assert len(rows) == 4
    mine = rows[(DEFAULT_ACCOUNT, "us-east-1")]
    assert mine["logging_enabled"] and mine["s3_uri"] == "s3://org-logs/bedrock"
    assert mine["cloudwatch_log_group"] == "/aws/bedrock/invocations" and mine["text_data_delivery"]
    # The assumed role sees its own account's configuration, not the caller's.
    other = rows[(OTHER_ACCOUNT, "us-east-1")]
    assert other["s3_uri"] == "s3://other-logs" and other["text_data_delivery"] is False
    assert other["role_arn"] == ROLE
    # A region with logging off is a row, not a gap.
    assert rows[(DEFAULT_ACCOUNT, "us-west-2")]["logging_enabled"] is False
    assert rows[(OTHER_ACCOUNT, "us-west-2")]["logging_enabled"] is False
    assert all(r["error"] is None for r in rows.values())


def test_discovered_log_groups_only_for_own_account() -> None:
    """A discovered log group of another account would be read with the pipeline's own credentials: left out."""
    rows = pl.DataFrame(
        [
            {"account_id": "1", "region": "us-east-1", "logging_enabled": True, "s3_uri": "s3://a/p",
             "cloudwatch_log_group": "/g", "role_arn": None},
            {"account_id": "2", "region": "us-east-1", "logging_enabled": True, "s3_uri": "s3://a/p",
             "cloudwatch_log_group": "/g2", "role_arn": ROLE},
            {"account_id": "3", "region": "us-west-2", "logging_enabled": False, "s3_uri": None,
             "cloudwatch_log_group": None, "role_arn": None},
        ]
    )  # fmt: skip
    roots, groups = discovered_sources(rows)
    assert roots == ["s3://a/p"] and groups == [{"log_group": "/g", "region": "us-east-1"}]


# ---------------------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------------------


class _Counting:
    """Counts GetMetricData requests and their query counts (a real client underneath)."""

    def __init__(self, inner: Any, max_datapoints: int | None = None) -> None:
        self.inner, self.max_datapoints, self.requests = inner, max_datapoints, []

    def list_metrics(self, **kw: Any) -> Any:
        return self.inner.list_metrics(**kw)

    def get_metric_data(self, **kw: Any) -> Any:
        self.requests.append(len(kw["MetricDataQueries"]))
        if self.max_datapoints:
            kw["MaxDatapoints"] = self.max_datapoints
        return self.inner.get_metric_data(**kw)


@pytest.mark.slow
def test_metrics_paging_across_many_models_and_hours(aws: str) -> None:
    region = "eu-west-1"  # a region no other test writes metrics to
    cw = _client(aws, "cloudwatch", region)
    day = dt.date(2026, 11, 10)
    models = [f"us.anthropic.model-{i:02d}-v1:0" for i in range(60)]
    expected: dict[tuple[str, int], int] = {}
    datums = []
    for i, model in enumerate(models):
        for hour in (0, 7, 23):
            n = i + hour + 1
            expected[(model, hour)] = n
            ts = dt.datetime(2026, 11, 10, hour, 15, tzinfo=dt.UTC)
            for name, value in (("Invocations", n), ("InputTokenCount", 10 * n), ("CacheReadInputTokenCount", n)):
                datums.append(
                    {
                        "MetricName": name,
                        "Dimensions": [{"Name": "ModelId", "Value": model}],
                        "Timestamp": ts,
                        "Value": value,
                    }
                )
    for i in range(0, len(datums), 500):
        cw.put_metric_data(Namespace="AWS/Bedrock", MetricData=datums[i : i + 500])
    # 60 models x 3 names = 180 series; ListMetrics pages at 500 in AWS and moto, so this is one page.
    ids = bedrock_metrics.list_model_ids(cw)
    assert set(models) <= ids
    counting = _Counting(cw)
    points = bedrock_metrics.get_day_datapoints(counting, day, models)
    # 60 models x 10 metric names = 600 queries: two requests, none above CloudWatch's 500.
    assert counting.requests == [500, 100]
    for (model, hour), n in expected.items():
        assert points[(model, "Invocations", hour)] == n
        assert points[(model, "InputTokenCount", hour)] == 10 * n
    rows = bedrock_metrics.datapoints_to_rows(points, day, "1", region, dt.datetime.now(dt.UTC))
    assert {r["base_model_id"] for r in rows} == {m.removeprefix("us.") for m in models}
    assert sum(r["cache_read_input_tokens"] for r in rows) == sum(expected.values())


def _snapshot(tmp_path: Path, datums: list[dict[str, Any]], account: str = "1", region: str = "us-east-1") -> Path:
    root = tmp_path / "aws"
    (root / "cloudwatch" / account / region).mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps({"format": SNAPSHOT_FORMAT, "replay_delay_hours": 1}))
    lines = [json.dumps({"Namespace": "AWS/Bedrock", **d}) for d in datums]
    (root / "cloudwatch" / account / region / "metric-data.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_get_metric_data_follows_next_token_and_both_cache_spellings(tmp_path: Path) -> None:
    day = dt.date(2026, 11, 10)
    datums = []
    for hour in range(24):
        ts = f"2026-11-10T{hour:02d}:05:00Z"
        for name, v in (("Invocations", 2), ("CacheReadInputTokens", 30), ("CacheReadInputTokenCount", 30)):
            datums.append({"MetricName": name, "Dimensions": [{"Name": "ModelId", "Value": SONNET}], "Timestamp": ts,
                           "Value": v})  # fmt: skip
    datums.append(
        {
            "MetricName": "Invocations",
            "Dimensions": [{"Name": "ModelId", "Value": SONNET}],
            "Timestamp": "2026-11-11T00:00:00Z",
            "Value": 99,
        }
    )  # fmt: skip  (next day: not counted)
    root = _snapshot(tmp_path, datums)
    cw = _Counting(SnapshotAws(str(root), day).client("cloudwatch", "1", "us-east-1"), max_datapoints=7)
    rows = bedrock_metrics.read_day_metrics(cw, day, "1", "us-east-1", [], dt.datetime.now(dt.UTC))
    assert len(cw.requests) > 5  # 72 datapoints in pages of 7
    assert len(rows) == 24 and all(r["invocations"] == 2 for r in rows)
    # Both spellings present: the larger, not the sum.
    assert all(r["cache_read_input_tokens"] == 30 for r in rows)


def test_metric_model_ids_resolve_like_logged_ones() -> None:
    key = bedrock_metrics.metric_model_key
    assert key("us.anthropic.claude-3-haiku-20240307-v1:0") == HAIKU
    assert key("global.anthropic.claude-sonnet-4-5-20250929-v1:0") == SONNET
    assert key("anthropic.claude-3-haiku-20240307-v1:0+latency-optimized") == HAIKU
    arn = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/abc123"
    assert key(arn, ((arn, HAIKU),)) == HAIKU
    assert key(arn) == arn  # unresolvable: keyed as itself, like daily_usage_by_model


# ---------------------------------------------------------------------------------------------------------------
# Pure functions: history, drift, statuses
# ---------------------------------------------------------------------------------------------------------------


def _cfg_row(day: dt.date | None, source: str = "observed", **kw: Any) -> dict[str, Any]:
    row = {
        "date": day,
        "account_id": "1",
        "region": "us-east-1",
        "logging_enabled": True,
        "s3_uri": "s3://logs",
        "text_data_delivery": True,
        "config_source": source,
        "observed_on": day,
        "error": None,
    }
    row.update(kw)
    return row


def test_configuration_history_rules() -> None:
    from pipeline import schemas

    d = dt.date(2026, 11, 10)
    fetched = [_cfg_row(None, s3_uri="s3://now")]
    empty = schemas.empty(schemas.LOGGING_CONFIGURATION)
    at = dt.datetime(2026, 11, 11, 6, tzinfo=dt.UTC)
    # Run during the next day: observed.
    got = config_for_day(d, fetched, at, empty).row(0, named=True)
    assert got["config_source"] == "observed" and got["s3_uri"] == "s3://now"
    later = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    hist = schemas.conform(
        pl.DataFrame([_cfg_row(dt.date(2026, 11, 5), s3_uri="s3://before"), _cfg_row(dt.date(2026, 11, 20))]),
        schemas.LOGGING_CONFIGURATION,
    )
    # A backfill borrows the latest observation before the day ...
    got = config_for_day(d, fetched, later, hist).row(0, named=True)
    assert got["config_source"] == "carried_forward" and got["s3_uri"] == "s3://before"
    assert got["observed_on"] == dt.date(2026, 11, 5) and got["date"] == d
    # ... days before the first record take the earliest known one, and say so.
    got = config_for_day(dt.date(2026, 11, 1), fetched, later, hist).row(0, named=True)
    assert got["config_source"] == "earliest_known" and got["s3_uri"] == "s3://before"
    # No history at all: today's answer is the earliest known one.
    assert config_for_day(d, fetched, later, empty).row(0, named=True)["config_source"] == "earliest_known"
    # A rerun keeps what was observed on the day.
    kept = schemas.conform(pl.DataFrame([_cfg_row(d, s3_uri="s3://then")]), schemas.LOGGING_CONFIGURATION)
    assert config_for_day(d, fetched, later, kept).row(0, named=True)["s3_uri"] == "s3://then"


def test_drift_before_and_after() -> None:
    yesterday = pl.DataFrame([_cfg_row(None), _cfg_row(None, region="us-west-2"), _cfg_row(None, region="eu-west-1")])
    today = pl.DataFrame(
        [
            _cfg_row(None, s3_uri="s3://elsewhere"),
            _cfg_row(None, region="us-west-2", logging_enabled=False, s3_uri=None),
            _cfg_row(None, region="eu-west-1", text_data_delivery=False),
        ]
    )
    changes = {(c["region"], c["kind"]): c for c in config_drift(today, yesterday)}
    assert changes[("us-east-1", "destination_changed")]["before"] == "s3_uri=s3://logs"
    assert changes[("us-east-1", "destination_changed")]["after"] == "s3_uri=s3://elsewhere"
    assert changes[("us-west-2", "logging_disabled")]["after"] == "logging off"
    assert changes[("eu-west-1", "delivery_off")]["after"] == "text_data_delivery=off"
    assert config_drift(yesterday, yesterday) == []


def _inv(ts: str, model: str = HAIKU, account: str = "1", region: str = "us-east-1", **kw: Any) -> dict[str, Any]:
    t = dt.datetime.fromisoformat(ts).replace(tzinfo=dt.UTC)
    row = {
        "date": t.date(),
        "timestamp": t,
        "account_id": account,
        "region": region,
        "model_id": model,
        "base_model_id": model,
        "status": "success",
        "input_tokens": 100,
        "output_tokens": 10,
        "cache_read_input_tokens": 0,
        "cache_write_input_tokens": 0,
    }
    row.update(kw)
    return row


def _met(hour: int, invocations: int, model: str = HAIKU, account: str = "1", region: str = "us-east-1",
         **kw: int) -> dict[str, Any]:  # fmt: skip
    row = {"date": dt.date(2026, 11, 10), "account_id": account, "region": region, "model_id": model,
           "base_model_id": bedrock_metrics.metric_model_key(model), "hour": hour, "invocations": invocations,
           "input_tokens": 100 * invocations, "output_tokens": 10 * invocations, "cache_read_input_tokens": 0,
           "cache_write_input_tokens": 0, "throttles": 0, "client_errors": 0, "server_errors": 0}  # fmt: skip
    row.update(kw)
    return row


def test_every_status_from_plain_frames() -> None:
    day = dt.date(2026, 11, 10)
    inv = pl.DataFrame(
        [
            *[_inv(f"2026-11-10T01:{m:02d}:00") for m in range(10)],  # complete
            _inv("2026-11-10T02:00:00", status="throttled"),  # not counted: Invocations excludes throttles
            *[_inv(f"2026-11-10T04:{m:02d}:00") for m in range(3)],  # 3 of 5: logs_missing
            *[_inv(f"2026-11-10T05:{m:02d}:00", model="arn:aws:bedrock:us-east-1:1:custom-model/x") for m in range(2)],
            *[_inv(f"2026-11-10T23:{m:02d}:00") for m in range(4)],  # 4 of 6, window still open: delivery_late
        ]
    )
    metrics = pl.DataFrame(
        [
            _met(1, 10, model=f"us.{HAIKU}"),
            _met(2, 0, throttles=7),
            _met(4, 5),
            _met(9, 3, model=SONNET),  # metric-only model: logs_missing
            _met(23, 6),
            _met(12, 8, region="us-west-2"),  # logging off there: logging_disabled
        ]
    )
    config = pl.DataFrame(
        [
            {"account_id": "1", "region": "us-east-1", "logging_enabled": True, "config_source": "observed"},
            {"account_id": "1", "region": "us-west-2", "logging_enabled": False, "config_source": "observed"},
        ]
    )
    billing = pl.DataFrame(
        [{"date": day, "account_id": "1", "region": "us-east-1", "base_model_id": HAIKU, "usage_kind": "input",
          "tokens": 2000}]
    )  # fmt: skip
    checked = dt.datetime(2026, 11, 11, 0, 30, tzinfo=dt.UTC)
    out = build_log_completeness(
        inv, metrics, config, billing, day=day, checked_at=checked, read_pairs={("1", "us-east-1"), ("1", "us-west-2")}
    )
    status = {(r["region"], r["base_model_id"], r["hour"]): r for r in out.iter_rows(named=True)}
    assert status[("us-east-1", HAIKU, 1)]["status"] == "complete"
    assert status[("us-east-1", HAIKU, 1)]["coverage"] == 1.0
    assert status[("us-east-1", HAIKU, 2)]["metric_throttles"] == 7
    assert status[("us-east-1", HAIKU, 4)]["status"] == "logs_missing"
    assert "2 missing" in status[("us-east-1", HAIKU, 4)]["explanation"]
    assert status[("us-east-1", SONNET, 9)]["status"] == "logs_missing"
    assert status[("us-east-1", "arn:aws:bedrock:us-east-1:1:custom-model/x", 5)]["status"] == "metrics_missing"
    late = status[("us-east-1", HAIKU, 23)]
    assert late["status"] == "delivery_late" and "rerun" in late["explanation"]
    assert status[("us-west-2", HAIKU, 12)]["status"] == "logging_disabled"
    assert status[("us-east-1", HAIKU, 1)]["day_billed_tokens"] == 2000
    assert status[("us-east-1", HAIKU, 1)]["day_logged_tokens"] == (10 + 3 + 4 + 1) * 110  # throttled row too
    assert set(out["status"]) == {"complete", "logs_missing", "metrics_missing", "delivery_late", "logging_disabled"}
    # Checked after the window closed, the same shortfall is logs_missing.
    later = build_log_completeness(
        inv,
        metrics,
        config,
        billing,
        day=day,
        checked_at=checked + dt.timedelta(hours=2),
        read_pairs={("1", "us-east-1")},
    )
    assert later.filter(pl.col("hour") == 23)["status"].to_list() == ["logs_missing"]
    summary = day_coverage(out, 0.99)
    # min(logged, metric) summed: 10 + 3 + 0 + 4 + 0 = 17 of 10 + 5 + 3 + 6 + 8 = 32
    assert summary["metric_invocations"] == 32 and summary["coverage"] == pytest.approx(17 / 32)
    assert not summary["passed"] and not summary["late_only"]
    offenders = summary["offenders"]
    assert set(offenders["region"]) == {"us-east-1", "us-west-2"}
    assert "23h" in offenders.filter(pl.col("status") == "delivery_late")["hours"].item()


def test_throttles_from_metrics_where_read() -> None:
    from pipeline import schemas

    by_model = schemas.conform(
        pl.DataFrame(
            [
                {"date": dt.date(2026, 11, 10), "account_id": "1", "region": "us-east-1", "base_model_id": HAIKU,
                 "invocations": 10, "client_errors": 1, "server_errors": 0, "throttles": 1},
                {"date": dt.date(2026, 11, 10), "account_id": "1", "region": "eu-west-1", "base_model_id": HAIKU,
                 "invocations": 10, "client_errors": 0, "server_errors": 0, "throttles": 2},
            ]
        ),
        schemas.DAILY_USAGE_BY_MODEL,
    )  # fmt: skip
    metrics = pl.DataFrame([_met(3, 5, model=f"us.{HAIKU}", throttles=4), _met(4, 5, throttles=5)])
    out = apply_metric_throttles(by_model, metrics, {("1", "us-east-1")})
    east, west = out.sort("region", descending=True).iter_rows(named=True)
    assert east["throttles"] == 9 and east["error_rate"] == pytest.approx(1.0)
    assert west["throttles"] == 2  # metrics not read there: the logged count stays
    assert out.columns == by_model.columns


# ---------------------------------------------------------------------------------------------------------------
# Dagster, end to end against moto
# ---------------------------------------------------------------------------------------------------------------


def _put_metrics(aws: str, region: str, day: dt.date, series: dict[tuple[str, str, int], float], creds=None) -> None:
    cw = _client(aws, "cloudwatch", region, creds)
    datums = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": "ModelId", "Value": model}],
            "Timestamp": dt.datetime(day.year, day.month, day.day, hour, 30, tzinfo=dt.UTC),
            "Value": value,
        }
        for (model, name, hour), value in series.items()
    ]
    cw.put_metric_data(Namespace="AWS/Bedrock", MetricData=datums)


def _materialize(config_path: Path, day: dt.date, selection: list[str] | None = None) -> Any:
    from dagster import materialize

    from pipeline.defs.build import build_assets
    from pipeline.defs.resources import LedgerResource

    return materialize(
        build_assets(load_config(config_path)),
        partition_key=day.isoformat(),
        resources={"ledger": LedgerResource(config_path=str(config_path))},
        selection=selection,
        raise_on_error=False,
    )


def _checks(result: Any) -> dict[str, Any]:
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


@pytest.mark.slow
def test_config_names_only_regions_and_accounts(aws: str, bucket: str, tmp_path: Path) -> None:
    """Discovery finds the bucket; logs (one delivered across midnight) are read; the metrics show a logging gap,
    a metric-only model, throttles, and calls in a region whose logging is off; the checks say so."""
    _fresh_region_config(aws)
    # Each test uses its own metric region pair: moto's metrics are shared by the whole session.
    region, dark = "ap-south-1", "ap-southeast-2"
    for r in (region, dark):
        _client(aws, "bedrock", r).delete_model_invocation_logging_configuration()
    _put_logging(_client(aws, "bedrock", region), bucket, "bedrock/logs")
    day = dt.date(2026, 11, 10)
    s3 = _client(aws, "s3")
    records = [
        make_record(f"r{i}", f"2026-11-10T01:{i:02d}:00Z", accountId=DEFAULT_ACCOUNT, region=region) for i in range(8)
    ]
    late = make_record("late-1", "2026-11-10T23:55:00Z", accountId=DEFAULT_ACCOUNT, region=region)
    s3.put_object(
        Bucket=bucket,
        Key="bedrock/logs/" + log_key(DEFAULT_ACCOUNT, region, "2026-11-10T01:59:00"),
        Body=gz_lines(records),
    )
    # Delivered after midnight into the next day's folder: the day's late-hours window still reads it.
    s3.put_object(
        Bucket=bucket,
        Key="bedrock/logs/" + log_key(DEFAULT_ACCOUNT, region, "2026-11-11T00:40:00", "fedcba9876543210"),
        Body=gz_lines([late]),
    )
    _put_metrics(
        aws,
        region,
        day,
        {
            (HAIKU, "Invocations", 1): 8,
            (HAIKU, "InputTokenCount", 1): 800,
            (HAIKU, "OutputTokenCount", 1): 160,
            (HAIKU, "InvocationThrottles", 1): 5,
            (HAIKU, "Invocations", 23): 1,
            (HAIKU, "Invocations", 6): 40,  # a logging gap: no log for 06h
            (f"us.{SONNET}", "Invocations", 9): 12,  # a model only the metrics know
        },
    )
    _put_metrics(aws, dark, day, {(HAIKU, "Invocations", 14): 9})
    config = write_config(
        tmp_path,
        start_date="2026-11-01",
        sources={
            "invocation_logs": {"discover": {"regions": [region, dark], "accounts": [{"account_id": DEFAULT_ACCOUNT}]}}
        },
    )
    result = _materialize(config, day)
    assert result.success
    wh = str(tmp_path / "wh")
    inv = warehouse.read_partition(wh, "invocations", day)
    assert set(inv["request_id"]) == {f"r{i}" for i in range(8)} | {"late-1"}
    cfg_rows = warehouse.read_partition(wh, "logging_configuration", day)
    assert dict(zip(cfg_rows["region"], cfg_rows["logging_enabled"], strict=True)) == {region: True, dark: False}
    assert set(cfg_rows["config_source"]) == {"earliest_known"}  # a backfill: today's answer, said so
    lc = warehouse.read_partition(wh, "log_completeness", day)
    by = {(r["region"], r["base_model_id"], r["hour"]): r["status"] for r in lc.iter_rows(named=True)}
    assert by[(region, HAIKU, 1)] == "complete"
    assert by[(region, HAIKU, 23)] == "complete"  # late delivery across midnight, found
    assert by[(region, HAIKU, 6)] == "logs_missing"
    assert by[(region, SONNET, 9)] == "logs_missing"
    assert by[(dark, HAIKU, 14)] == "logging_disabled"
    dark_row = lc.filter((pl.col("region") == dark) & (pl.col("hour") == 14)).row(0, named=True)
    assert "assumed: the earliest known configuration, observed" in dark_row["explanation"]
    usage = warehouse.read_partition(wh, "daily_usage_by_model", day)
    assert usage.filter(pl.col("base_model_id") == HAIKU)["throttles"].to_list() == [5]
    checks = _checks(result)
    cov = checks["logs_cover_metrics"]
    assert not cov.passed
    where = cov.metadata["short_accounts_regions_hours"].value.replace("\\", "")  # markdown escapes removed
    assert region in where and dark in where and "06h" in where
    assert not checks["logging_on_in_every_region"].passed
    assert checks["logging_unchanged_since_previous_day"].passed  # nothing recorded the day before


@pytest.mark.slow
def test_ingestion_alone_asks_bedrock_live(aws: str, bucket: str, tmp_path: Path) -> None:
    """Run without `logging_configuration`, ingestion still finds the discovered bucket (asked live)."""
    region = "sa-east-1"
    _put_logging(_client(aws, "bedrock", region), bucket)
    rec = make_record("solo-1", "2026-11-12T08:00:00Z", accountId=DEFAULT_ACCOUNT, region=region)
    _client(aws, "s3").put_object(
        Bucket=bucket, Key=log_key(DEFAULT_ACCOUNT, region, "2026-11-12T08:01:00"), Body=gz_lines([rec])
    )
    config = write_config(
        tmp_path,
        start_date="2026-11-01",
        sources={"invocation_logs": {"discover": {"regions": [region], "accounts": [{"account_id": DEFAULT_ACCOUNT}]}}},
    )
    result = _materialize(config, dt.date(2026, 11, 12), ["invocations", "rejected_records"])
    assert result.success
    got = warehouse.read_partition(str(tmp_path / "wh"), "invocations", dt.date(2026, 11, 12))["request_id"]
    assert got.to_list() == ["solo-1"]
    assert not warehouse.partition_exists(str(tmp_path / "wh"), "logging_configuration", dt.date(2026, 11, 12))


@pytest.mark.slow
def test_drift_check_in_materialization(aws: str, tmp_path: Path) -> None:
    region = "ca-central-1"
    bedrock = _client(aws, "bedrock", region)
    _put_logging(bedrock, "drift-logs", "a")
    config = write_config(
        tmp_path,
        start_date="2026-11-01",
        sources={"invocation_logs": {"discover": {"regions": [region], "accounts": [{"account_id": DEFAULT_ACCOUNT}],
                                                  "metrics": False}}},
    )  # fmt: skip
    first = _materialize(config, dt.date(2026, 11, 3), ["logging_configuration"])
    assert first.success and _checks(first)["logging_unchanged_since_previous_day"].passed
    _put_logging(bedrock, "drift-logs", "b", text=False)
    second = _materialize(config, dt.date(2026, 11, 4), ["logging_configuration"])
    check = _checks(second)["logging_unchanged_since_previous_day"]
    assert not check.passed
    table = check.metadata["before_after"].value.replace("\\", "")  # markdown escapes removed
    assert "s3_uri=s3://drift-logs/a" in table and "s3_uri=s3://drift-logs/b" in table
    assert "text_data_delivery=off" in table
    bedrock.delete_model_invocation_logging_configuration()
    third = _materialize(config, dt.date(2026, 11, 5), ["logging_configuration"])
    after = _checks(third)["logging_unchanged_since_previous_day"].metadata["before_after"].value
    assert "logging_disabled" in after.replace("\\", "")


def test_unreadable_account_is_reported(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A role that cannot be assumed (STS unreachable here) is a row with the error, not a skipped account."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{closed}")
    monkeypatch.setenv("LEDGER_AWS_MAX_ATTEMPTS", "0")
    discover = Discover(regions=["us-east-1"], accounts=[{"account_id": OTHER_ACCOUNT, "role_arn": ROLE}])
    (row,) = discover_logging(LiveAws(), discover)
    assert row["logging_enabled"] is None and f"cannot assume {ROLE}" in row["error"]


def test_mantle_metrics_are_read_and_never_count_against_the_logs(aws: str) -> None:
    """`AWS/BedrockMantle` (per `Model`) is read beside `AWS/Bedrock` through CloudWatch (moto); its rows are
    `not_logged_by_design` and the day's log coverage ignores them."""
    from pipeline import schemas
    from pipeline.completeness.coverage import build_log_completeness, day_coverage
    from pipeline.sources.bedrock_metrics import read_day_metrics

    region = "ap-southeast-2"  # a region no other test writes metrics to (moto's metrics are session-wide)
    cw = _client(aws, "cloudwatch", region)
    day = dt.date(2026, 11, 3)
    ts = dt.datetime(2026, 11, 3, 10, 5, tzinfo=dt.UTC)
    cw.put_metric_data(
        Namespace="AWS/BedrockMantle",
        MetricData=[
            {"MetricName": name, "Dimensions": [{"Name": "Model", "Value": "openai.gpt-oss-120b"}],
             "Timestamp": ts, "Value": value}
            for name, value in (("Inferences", 12.0), ("TotalInputTokens", 9000.0), ("TotalOutputTokens", 2000.0))
        ],
    )  # fmt: skip
    rows = read_day_metrics(cw, day, "111122223333", region, set(), dt.datetime.now(dt.UTC))
    assert [(r["endpoint"], r["hour"], r["invocations"], r["input_tokens"], r["output_tokens"]) for r in rows] == [
        ("mantle", 10, 12, 9000, 2000)
    ]
    no_config = {
        "account_id": pl.String,
        "region": pl.String,
        "logging_enabled": pl.Boolean,
        "config_source": pl.String,
    }
    lc = build_log_completeness(
        schemas.empty(schemas.INVOCATIONS),
        pl.DataFrame(rows),
        pl.DataFrame(schema=no_config),
        None,
        day=day,
        checked_at=dt.datetime(2026, 11, 5, tzinfo=dt.UTC),
        read_pairs={("111122223333", region)},
    )
    row = lc.row(0, named=True)
    assert (row["status"], row["endpoint"], row["metric_invocations"], row["logged_invocations"]) == (
        "not_logged_by_design", "mantle", 12, 0)  # fmt: skip
    assert "bedrock-runtime only" in row["explanation"]
    assert day_coverage(lc, 0.99)["passed"] and day_coverage(lc, 0.99)["coverage"] is None
