"""Golden tests of the record parser on example records (docs/formats/invocation-logs.md §7; real where verbatim)."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.normalize.decode import gunzip_tolerant, iter_json_lines
from pipeline.normalize.identity import split_identity
from pipeline.normalize.model_ids import resolve_model_id
from pipeline.normalize.records import RecordError, classify_error, parse_record
from tests.helpers import gz_lines, load_example

APP_ARN = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3d4e5f6"

# example, expected fields (hand-read from the record)
GOLDEN = [
    (
        "e1",
        dict(
            operation="InvokeModel",
            base_model_id="anthropic.claude-3-sonnet-20240229-v1:0",
            routing="in_region",
            input_tokens=859,
            output_tokens=15,
            cache_read_input_tokens=None,
            latency_ms=None,
            first_byte_latency_ms=None,
            stop_reason="stop_sequence",
            status="success",
        ),
    ),
    (
        "e2",
        dict(
            operation="InvokeModelWithResponseStream",
            input_tokens=571,
            output_tokens=281,
            latency_ms=3848,
            first_byte_latency_ms=509,
            stop_reason="end_turn",
            principal="john.doe@example.com",
            session_name=None,
            status="success",
        ),
    ),
    (
        "e4",
        dict(
            operation="ConverseStream",
            base_model_id="anthropic.claude-haiku-4-5-20251001-v1:0",
            routing="geo",
            inference_profile="us.anthropic.claude-haiku-4-5-20251001-v1:0",
            input_tokens=62,
            output_tokens=36,
            latency_ms=1134,
            principal="bedrock-test",
            status="success",
        ),
    ),
    ("e5", dict(base_model_id="meta.llama2-13b-chat-v1", input_tokens=4, output_tokens=160, stop_reason="stop")),
    (
        "e6",
        dict(
            base_model_id="anthropic.claude-opus-4-6-v1",
            routing="global",
            inference_profile="global.anthropic.claude-opus-4-6-v1",
            inference_region="ap-southeast-4",
            input_tokens=1,
            cache_read_input_tokens=129709,
            cache_write_input_tokens=411,
            output_tokens=326,
            latency_ms=None,
        ),
    ),
    ("e7", dict(status="guardrail_intervened", input_tokens=None, output_tokens=None, session_name="suspicious.user")),
    ("e8", dict(status="client_error", error_code="ValidationException", routing="geo", output_tokens=None)),
    ("e9", dict(base_model_id="amazon.titan-embed-text-v2:0", input_tokens=9, output_tokens=0)),
    ("e10", dict(image_count=1, output_tokens=0)),
    (
        "e11",
        dict(
            routing="application_profile",
            inference_profile=APP_ARN,
            base_model_id="anthropic.claude-3-haiku-20240307-v1:0",
            latency_ms=2870,
            principal="support-app",
            session_name="alice",
            cache_read_input_tokens=0,
        ),
    ),
    ("e12", dict(latency_ms=8129, first_byte_latency_ms=2154, input_tokens=20, output_tokens=354)),
]


@pytest.mark.parametrize(("example", "expected"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_examples(example: str, expected: dict) -> None:
    rec = load_example(example)
    row = parse_record(
        rec,
        source="s3",
        source_uri="s3://b/k",
        app_profiles=((APP_ARN, "anthropic.claude-3-haiku-20240307-v1:0"),),
    )
    for key, value in expected.items():
        assert row[key] == value, key


def test_no_body_is_kept_by_default() -> None:
    row = parse_record(load_example("e1"), source="s3", source_uri="u")
    assert row["input_body_redacted"] is None and row["output_body_redacted"] is None
    assert "What is 2 + 2" not in repr(row)


def test_request_metadata_is_kept_as_strings() -> None:
    row = parse_record(load_example("e11"), source="s3", source_uri="u")
    assert row["request_metadata"]["user"] == "alice@example.com"
    assert row["request_metadata"]["feature"] == "summarizer"


def test_invalid_timestamp_falls_back_to_delivery_time() -> None:
    rec = load_example("e3")  # timestamp 2025-04-99 in the verbatim record
    with pytest.raises(RecordError, match="bad_timestamp"):
        parse_record(rec, source="s3", source_uri="u")
    fallback = dt.datetime(2025, 4, 30, 23, 0, 45, tzinfo=dt.UTC)
    row = parse_record(rec, source="s3", source_uri="u", fallback_time=fallback)
    assert row["timestamp"] == fallback
    assert row["request_metadata"] == {"traceId": "b956002a-fd01-47ba-9da7-07e4c9b1a6b6"}


@pytest.mark.parametrize(
    ("mutation", "reason"),
    [
        ({"schemaVersion": "2.0"}, "unknown_schema_version"),
        ({"schemaType": "SomethingElse"}, "unknown_schema_type"),
        ({"requestId": None}, "missing_field: requestId"),
        ({"modelId": ""}, "missing_field: modelId"),
        ({"input": {"inputTokenCount": -5}}, "negative_tokens"),
    ],
)
def test_rejects_name_the_reason(mutation: dict, reason: str) -> None:
    rec = {**load_example("e4"), **mutation}
    with pytest.raises(RecordError, match=reason):
        parse_record(rec, source="s3", source_uri="u")


@pytest.mark.parametrize(
    ("model_id", "base", "routing", "profile"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0", "in_region", None),
        ("us.anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic.claude-3-5-sonnet-20240620-v1:0", "geo", "us."),
        ("eu.amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0", "geo", "eu."),
        ("apac.amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0", "geo", "apac."),
        ("us-gov.anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0", "geo", "us-gov."),
        ("global.anthropic.claude-opus-4-6-v1", "anthropic.claude-opus-4-6-v1", "global", "global."),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
            "anthropic.claude-3-haiku-20240307-v1:0",
            "in_region",
            None,
        ),
        (
            "arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0",
            "anthropic.claude-haiku-4-5-20251001-v1:0",
            "geo",
            "us.",
        ),
        (APP_ARN, None, "application_profile", "arn:"),
        ("arn:aws:bedrock:us-east-1:111122223333:provisioned-model/abc123", None, "provisioned", "arn:"),
    ],
)
def test_model_id_resolution(model_id: str, base: str | None, routing: str, profile: str | None) -> None:
    r = resolve_model_id(model_id)
    assert r.base_model_id == base
    assert r.routing == routing
    if profile is None:
        assert r.inference_profile is None
    else:
        assert r.inference_profile is not None and r.inference_profile.startswith(profile)


def test_application_profile_resolves_through_config_to_geo_model() -> None:
    r = resolve_model_id(APP_ARN, ((APP_ARN, "us.anthropic.claude-3-5-sonnet-20240620-v1:0"),))
    assert r.base_model_id == "anthropic.claude-3-5-sonnet-20240620-v1:0"
    assert r.routing == "application_profile" and r.geo == "us"


@pytest.mark.parametrize(
    ("arn", "principal", "session"),
    [
        ("arn:aws:sts::111122223333:assumed-role/search-api/alice", "search-api", "alice"),
        ("arn:aws:iam::111122223333:user/division/bob", "bob", None),
        ("arn:aws:iam::111122223333:user/john.doe@example.com", "john.doe@example.com", None),
        ("arn:aws:sts::xxxx", None, None),
        (None, None, None),
    ],
)
def test_identity_split(arn: str | None, principal: str | None, session: str | None) -> None:
    assert split_identity(arn) == (principal, session)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", "throttled"),
        ("ValidationException", "client_error"),
        ("AccessDeniedException", "client_error"),
        ("InternalServerException", "server_error"),
        ("ModelTimeoutException", "server_error"),
        ("ServiceUnavailableException", "server_error"),
    ],
)
def test_error_classification(code: str, status: str) -> None:
    assert classify_error(code) == status


def test_truncated_gzip_keeps_complete_lines() -> None:
    data = gz_lines([{"a": i} for i in range(200)])
    payload, err = gunzip_tolerant(data[: len(data) // 2])
    assert err and err.startswith("truncated_gzip")
    assert payload.startswith(b'{"a": 0}')


def test_lines_with_arrays_and_concatenated_objects_are_split() -> None:
    payload = b'[{"a": 1}, {"a": 2}]\n{"a": 3}{"a": 4}\n{"broken\n'
    items = list(iter_json_lines(payload))
    assert [i[1] for i in items[:4]] == [{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4}]
    assert items[4].reason.startswith("malformed_json") and items[4].line == 3


def test_plain_bytes_pass_through() -> None:
    assert gunzip_tolerant(b'{"a": 1}\n') == (b'{"a": 1}\n', None)


# Cache writes by TTL and the latency-optimized tier (prices that depend on the call's shape)
def _rec(out_body: object, in_body: object | None = None, **top: object) -> dict:
    rec = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": "2026-02-10T09:00:00Z",
        "accountId": "111122223333",
        "region": "us-east-1",
        "requestId": "r-ttl",
        "operation": "InvokeModel",
        "modelId": "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "input": {"inputBodyJson": in_body or {}},
        "output": {"outputBodyJson": out_body},
    }
    rec.update(top)
    return rec


@pytest.mark.parametrize(
    ("out_body", "total", "one_hour"),
    [
        pytest.param(
            {"usage": {"input_tokens": 10, "cache_creation_input_tokens": 50,
                       "cache_creation": {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 30}}},
            50, 30, id="anthropic body split",
        ),
        pytest.param(
            {"usage": {"inputTokens": 10, "cacheWriteInputTokens": 50,
                       "cacheDetails": [{"ttl": "5m", "inputTokens": 20}, {"ttl": "1h", "inputTokens": 30}]}},
            50, 30, id="converse cacheDetails",
        ),
        pytest.param({"usage": {"input_tokens": 10, "cache_creation_input_tokens": 50}}, 50, 0, id="no split"),
        pytest.param(
            [{"type": "message_start", "message": {"usage": {"input_tokens": 10, "cache_creation_input_tokens": 8,
              "cache_creation": {"ephemeral_1h_input_tokens": 8}}}},
             {"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 10,
              "outputTokenCount": 1, "cacheWriteInputTokenCount": 8}}],
            8, 8, id="stream message_start",
        ),
    ],
)  # fmt: skip
def test_cache_write_1h_tokens(out_body: object, total: int, one_hour: int) -> None:
    row = parse_record(_rec(out_body), source="s3", source_uri="s3://b/k")
    assert row["cache_write_input_tokens"] == total
    assert row["cache_write_1h_input_tokens"] == one_hour


def test_cache_write_1h_never_exceeds_total() -> None:
    rec = _rec({"usage": {"cacheDetails": [{"ttl": "1h", "inputTokens": 30}]}})
    rec["input"]["cacheWriteInputTokenCount"] = 10  # the log-level total wins; the split is capped to it
    assert parse_record(rec, source="s3", source_uri="s3://b/k")["cache_write_1h_input_tokens"] == 10


@pytest.mark.parametrize(
    ("in_body", "top", "tier"),
    [
        ({"performanceConfig": {"latency": "optimized"}}, {}, "latency_optimized"),
        ({"performanceConfig": {"latency": "standard"}}, {}, None),
        ({}, {"performanceConfig": {"latency": "optimized"}}, "latency_optimized"),
        ({"performanceConfig": {"latency": "optimized"}, "serviceTier": "default"}, {}, "latency_optimized"),
        ({"performanceConfig": {"latency": "optimized"}, "serviceTier": "priority"}, {}, "priority"),
    ],
)
def test_latency_optimized_tier(in_body: dict, top: dict, tier: str | None) -> None:
    row = parse_record(_rec({"usage": {"input_tokens": 1}}, in_body, **top), source="s3", source_uri="s3://b/k")
    assert row["service_tier"] == tier


def test_guardrail_trace_units_are_summed_per_policy() -> None:
    # E7's shape: InvokeModel with `amazon-bedrock-trace.guardrail.input`; one content-policy unit.
    row = parse_record(load_example("e7"), source="s3", source_uri="s3://b/k")
    assert row["guardrail_trace_present"] is True
    assert row["guardrail_content_units"] == 1
    assert row["guardrail_sensitive_information_units"] == 0 and row["guardrail_topic_units"] == 0


def test_converse_guardrail_trace_counts_input_and_every_output_assessment() -> None:
    usage = {"topicPolicyUnits": 1, "contentPolicyUnits": 1, "wordPolicyUnits": 1,
             "sensitiveInformationPolicyUnits": 1, "sensitiveInformationPolicyFreeUnits": 5}  # fmt: skip
    record = load_example("e3")
    record["output"]["outputBodyJson"]["trace"] = {
        "guardrail": {
            "inputAssessment": {"g1": {"invocationMetrics": {"usage": usage}}},
            "outputAssessments": [{"g1": {"invocationMetrics": {"usage": usage}}}],
        }
    }
    when = dt.datetime(2025, 4, 9, tzinfo=dt.UTC)
    row = parse_record(record, source="s3", source_uri="s3://b/k", fallback_time=when)
    got = {p: row[f"guardrail_{p}_units"] for p in ("topic", "content", "word", "sensitive_information")}
    assert got == {"topic": 2, "content": 2, "word": 2, "sensitive_information": 2}  # free units are not billed
    assert row["guardrail_trace_present"] is True


def test_no_trace_is_zero_units_and_says_so() -> None:
    row = parse_record(load_example("e1"), source="s3", source_uri="s3://b/k")
    assert row["guardrail_trace_present"] is False
    assert all(row[k] == 0 for k in row if k.startswith("guardrail_") and k.endswith("_units"))
