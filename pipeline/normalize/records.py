"""Turn one Bedrock invocation-log record (a parsed JSON object) into one contract row, or a reason to reject it.

The rules follow `docs/formats/invocation-logs.md` §8: log-level token fields first and provider bodies only as
fallback; latency only where the log has it (Converse `metrics.latencyMs`, the stream's last-chunk
`amazon-bedrock-invocationMetrics`, nothing for plain InvokeModel); status from `errorCode` and guardrail action.
Bodies are read for these few fields and then dropped: prompts and responses are not stored by default.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pipeline.normalize.identity import split_identity
from pipeline.normalize.model_ids import resolve_model_id
from pipeline.vocabulary import GUARDRAIL_POLICIES

KNOWN_SCHEMA_VERSIONS = frozenset({"1.0"})
# Bounds of plausible values: a count past these is a corrupt record, not usage (and would overflow Int64 sums).
MAX_TOKENS = 10**12
MAX_LATENCY_MS = 10**9
MAX_IMAGES = 10_000
SCHEMA_TYPE = "ModelInvocationLog"

THROTTLE_CODES = frozenset({"ThrottlingException", "TooManyRequestsException"})
SERVER_CODES = frozenset(
    {
        "InternalServerException",
        "ServiceUnavailableException",
        "ModelTimeoutException",
        "ModelNotReadyException",
        "ModelErrorException",
        "ModelStreamErrorException",
        "InternalFailure",
        "ServiceException",
    }
)


def call_tokens(*counts: int | None) -> int:
    """All tokens of one call, the sum `quality.max_tokens_per_call` limits (the 1-hour cache writes are part of
    the cache writes, so not added again)."""
    return sum(c or 0 for c in counts)


class RecordError(ValueError):
    """A record that cannot become a row; the message is the reject reason."""


def classify_error(code: str) -> str:
    """Map a runtime error code to the contract's status vocabulary.

    Unknown codes that look like server faults count as server errors; everything else is the caller's (client).
    """
    if code in THROTTLE_CODES or "Throttl" in code:
        return "throttled"
    if code in SERVER_CODES or "Internal" in code or "Unavailable" in code:
        return "server_error"
    return "client_error"


def parse_timestamp(value: Any) -> dt.datetime | None:
    """Parse the record's ISO 8601 UTC timestamp (`2024-04-18T22:54:57Z`, fractions tolerated); None if invalid."""
    if not isinstance(value, str) or len(value) < 19:
        return None
    try:
        ts = dt.datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=dt.UTC)
        return ts.astimezone(dt.UTC)
    except (ValueError, OverflowError):  # not ISO 8601, or an offset that moves it past year 1 or 9999
        return None


def _int(value: Any) -> int | None:
    """A token count as int; None when absent or not a number (bools are not counts)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        # isdecimal, not isdigit: '²' is a digit int() refuses; the length cap keeps int() away from huge strings.
        if text.isdecimal() and len(text) <= 19:
            return int(text)
    return None


def _count(value: Any, name: str) -> int | None:
    """A token or image count: None when absent; an int when the value is one (an integral float such as 12.0 or
    a decimal string such as "12" included); otherwise `RecordError`. A count of 1.5, "1e3" or true is not a
    count the bill can agree with: stored as null it would be priced as $0, so the record is rejected instead."""
    if value is None:
        return None
    n = _int(value)
    if n is None:
        shown = value if isinstance(value, (int, float, bool)) else str(value)[:20]
        raise RecordError(f"bad_count: {name}={shown!r} is not a non-negative integer")
    return n


def _first_count(*named: tuple[str, Any]) -> int | None:
    """The first present count among (name, value) pairs, validated (`_count`)."""
    for name, value in named:
        if value is not None:
            return _count(value, name)
    return None


def _first_int(*values: Any) -> int | None:
    for v in values:
        iv = _int(v)
        if iv is not None:
            return iv
    return None


def _stream_metrics(body: Any) -> dict[str, Any]:
    """The `amazon-bedrock-invocationMetrics` of the last stream chunk that has one (scanned from the end)."""
    if isinstance(body, list):
        for chunk in reversed(body):
            if isinstance(chunk, dict):
                m = chunk.get("amazon-bedrock-invocationMetrics")
                if isinstance(m, dict):
                    return m
    return {}


def _stream_stop_reason(body: list[Any]) -> str | None:
    for chunk in reversed(body):
        if not isinstance(chunk, dict):
            continue
        delta = chunk.get("delta")
        if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
            return delta["stop_reason"]
        for key in ("completionReason", "stop_reason", "stopReason", "finish_reason"):
            if isinstance(chunk.get(key), str):
                return chunk[key]
    return None


def _guardrail_intervened(stop_reason: str | None, body: Any) -> bool:
    if stop_reason == "guardrail_intervened":
        return True
    if isinstance(body, dict):
        return body.get("amazon-bedrock-guardrailAction") == "INTERVENED"
    if isinstance(body, list):
        return any(isinstance(c, dict) and c.get("amazon-bedrock-guardrailAction") == "INTERVENED" for c in body)
    return False


def _body_usage(body: Any) -> dict[str, int | None]:
    """Token counts from a provider body, used only when the log-level fields are missing."""
    out: dict[str, int | None] = {"input": None, "output": None, "cache_read": None, "cache_write": None}
    if isinstance(body, list):
        m = _stream_metrics(body)
        for key, field in (
            ("input", "inputTokenCount"),
            ("output", "outputTokenCount"),
            ("cache_read", "cacheReadInputTokenCount"),
            ("cache_write", "cacheWriteInputTokenCount"),
        ):
            out[key] = _count(m.get(field), field)
        return out
    if not isinstance(body, dict):
        return out
    usage = body.get("usage")
    if isinstance(usage, dict):
        for key, fields in (
            ("input", ("inputTokens", "input_tokens", "prompt_tokens")),
            ("output", ("outputTokens", "output_tokens", "completion_tokens")),
            ("cache_read", ("cacheReadInputTokens", "cacheReadInputTokenCount", "cache_read_input_tokens")),
            ("cache_write", ("cacheWriteInputTokens", "cacheWriteInputTokenCount", "cache_creation_input_tokens")),
        ):
            out[key] = _first_count(*((f, usage.get(f)) for f in fields))
        return out
    out["input"] = _first_count(
        ("prompt_token_count", body.get("prompt_token_count")), ("inputTextTokenCount", body.get("inputTextTokenCount"))
    )
    out["output"] = _count(body.get("generation_token_count"), "generation_token_count")
    if out["output"] is None and isinstance(body.get("results"), list):
        out["output"] = _first_count(
            *(("tokenCount", r.get("tokenCount")) for r in body["results"] if isinstance(r, dict))
        )
    return out


ONE_HOUR_TTLS = frozenset({"1h", "1hr", "1hour", "60m", "3600s", "3600", "one_hour"})
"""Spellings of a one-hour TTL in Converse `cacheDetails[].ttl` (documented values not seen in a real log:
UNVERIFIED, so compared lower-cased against the likely forms; anything else counts as a 5-minute write)."""


def _usage_1h(usage: Any) -> int | None:
    """1-hour cache-write tokens of one usage object: Anthropic `cache_creation.ephemeral_1h_input_tokens`, else
    the sum of Converse `cacheDetails` entries whose ttl is one hour; None when the object splits nothing."""
    if not isinstance(usage, dict):
        return None
    creation = usage.get("cache_creation")
    if isinstance(creation, dict):
        n = _int(creation.get("ephemeral_1h_input_tokens"))
        if n is not None:
            return n
    details = usage.get("cacheDetails")
    if isinstance(details, list):
        total = 0
        for d in details:
            if isinstance(d, dict) and isinstance(d.get("ttl"), str) and d["ttl"].strip().lower() in ONE_HOUR_TTLS:
                total += _int(d.get("inputTokens")) or 0
        return total
    return None


def _cache_write_1h(body: Any) -> int | None:
    """The 1-hour cache writes a response body reports: its `usage`, or for an Anthropic stream the
    `message_start` chunk's `message.usage` (the last chunk that has one); None when the body does not split."""
    if isinstance(body, dict):
        return _usage_1h(body.get("usage"))
    if isinstance(body, list):
        for chunk in reversed(body):
            if isinstance(chunk, dict) and isinstance(chunk.get("message"), dict):
                n = _usage_1h(chunk["message"].get("usage"))
                if n is not None:
                    return n
    return None


GUARDRAIL_USAGE_KEYS: tuple[tuple[str, str], ...] = tuple(
    zip(
        GUARDRAIL_POLICIES,
        (
            "topicPolicyUnits",
            "contentPolicyUnits",
            "wordPolicyUnits",
            "sensitiveInformationPolicyUnits",
            "contextualGroundingPolicyUnits",
            "contentPolicyImageUnits",
            "automatedReasoningPolicyUnits",
        ),
        strict=True,
    )
)
"""(policy, its key in a guardrail assessment's `invocationMetrics.usage`), in `GUARDRAIL_POLICIES` order. The
trace's `sensitiveInformationPolicyFreeUnits` (regex-only matches) are free and not counted."""


def _guardrail_traces(body: Any) -> list[dict[str, Any]]:
    """The guardrail traces of a response: Converse's `trace.guardrail`, InvokeModel's
    `amazon-bedrock-trace.guardrail`, or either on the chunks of a stream. Present only when the caller enabled
    trace on the guardrail, so what they count is a lower bound of what the guardrail billed
    (docs/formats/invocation-logs.md §4.6)."""
    containers = body if isinstance(body, list) else [body]
    found = []
    for c in containers:
        if not isinstance(c, dict):
            continue
        for key in ("trace", "amazon-bedrock-trace"):
            trace = c.get(key)
            guardrail = trace.get("guardrail") if isinstance(trace, dict) else None
            if isinstance(guardrail, dict):
                found.append(guardrail)
    return found


def _assessments(guardrail: dict[str, Any]) -> list[Any]:
    """Every assessment of one trace: input (`input` / `inputAssessment`: guardrail id -> assessment) and output
    (`outputs` / `outputAssessments`: a list of id -> assessment, or id -> list of assessments)."""
    out: list[Any] = []
    for key in ("input", "inputAssessment"):
        value = guardrail.get(key)
        if isinstance(value, dict):
            out.extend(value.values())
    for key in ("outputs", "outputAssessments"):
        value = guardrail.get(key)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    out.extend(item.values())
        elif isinstance(value, dict):
            for item in value.values():
                if isinstance(item, list):
                    out.extend(item)
    return out


def guardrail_units(body: Any) -> tuple[dict[str, int], bool]:
    """Units per guardrail policy summed over every assessment of the response's guardrail traces (0 when absent),
    and whether a trace was there at all. A unit count that is not a count rejects the record (`_count`)."""
    traces = _guardrail_traces(body)
    units = dict.fromkeys(GUARDRAIL_POLICIES, 0)
    for guardrail in traces:
        for assessment in _assessments(guardrail):
            metrics = assessment.get("invocationMetrics") if isinstance(assessment, dict) else None
            usage = metrics.get("usage") if isinstance(metrics, dict) else None
            if not isinstance(usage, dict):
                continue
            for policy, key in GUARDRAIL_USAGE_KEYS:
                n = _count(usage.get(key), f"guardrail {key}")
                if n is not None and n < 0:
                    raise RecordError(f"negative_tokens: guardrail {key}={n}")
                units[policy] += n or 0
    return units, bool(traces)


def _stop_reason(operation: str, body: Any) -> str | None:
    if isinstance(body, list):
        return _stream_stop_reason(body)
    if isinstance(body, dict):
        for key in ("stopReason", "stop_reason", "completionReason", "finish_reason"):
            if isinstance(body.get(key), str):
                return body[key]
        results = body.get("results")
        if isinstance(results, list) and results and isinstance(results[0], dict):
            reason = results[0].get("completionReason")
            return reason if isinstance(reason, str) else None
    return None


def _latency_optimized(record: dict[str, Any], body: Any) -> bool:
    """`performanceConfig.latency = optimized` in the request body (Converse) or at the record's top level (seen
    only in a third-party schema: UNVERIFIED). InvokeModel passes it as an HTTP header the log may not keep."""
    for holder in (body, record):
        if isinstance(holder, dict):
            perf = holder.get("performanceConfig")
            if isinstance(perf, dict):
                latency = perf.get("latency")
                if isinstance(latency, str) and latency.lower() == "optimized":
                    return True
    return False


def _service_tier(body: Any) -> str | None:
    """The requested service tier (`serviceTier` / `service_tier`), if the request body carries one."""
    if not isinstance(body, dict):
        return None
    tier = body.get("serviceTier", body.get("service_tier"))
    if isinstance(tier, dict):
        tier = tier.get("type")
    if not isinstance(tier, str):
        return None
    tier = tier.lower()
    return "standard" if tier == "default" else tier


def _image_count(body: Any) -> int | None:
    if isinstance(body, dict):
        cfg = body.get("imageGenerationConfig")
        if isinstance(cfg, dict):
            if cfg.get("numberOfImages") is None:
                return 1  # Bedrock's default when the request names no count
            n = _count(cfg.get("numberOfImages"), "numberOfImages")  # not None: the value is present
            return n if n is not None and 0 <= n <= MAX_IMAGES else None
    return None


def _metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v if isinstance(v, str) else str(v) for k, v in value.items()}


def parse_record(
    record: Any,
    *,
    source: str,
    source_uri: str,
    fallback_time: dt.datetime | None = None,
    app_profiles: tuple[tuple[str, str], ...] = (),
    redact: Callable[[Any], str | None] | None = None,
    max_tokens_per_call: int | None = None,
) -> dict[str, Any]:
    """Map one log record to a contract row (without `date`). Raises `RecordError` with the reject reason.

    `fallback_time` (the S3 file-name time or the CloudWatch event time) stands in for an unparseable
    `timestamp` (docs/formats/invocation-logs.md §8). `redact`, when given, turns a body into stored redacted text.
    A call whose token fields sum past `max_tokens_per_call` (`quality.max_tokens_per_call`) is rejected as
    `implausible_tokens`: priced, one such record would outweigh a bucket's real traffic.
    """
    if not isinstance(record, dict):
        raise RecordError(f"not_a_record: a JSON {type(record).__name__}, not an object")
    schema_type = record.get("schemaType")
    if schema_type is not None and schema_type != SCHEMA_TYPE:
        raise RecordError(f"unknown_schema_type: {str(schema_type)[:60]}")
    version = record.get("schemaVersion")
    if version is not None and str(version) not in KNOWN_SCHEMA_VERSIONS:
        raise RecordError(f"unknown_schema_version: {str(version)[:30]}")
    request_id = record.get("requestId")
    if not isinstance(request_id, str) or not request_id:
        raise RecordError("missing_field: requestId")
    model_id = record.get("modelId")
    if not isinstance(model_id, str) or not model_id:
        raise RecordError("missing_field: modelId")
    ts = parse_timestamp(record.get("timestamp"))
    if ts is None:
        if fallback_time is None:
            raise RecordError(f"bad_timestamp: {str(record.get('timestamp'))[:40]}")
        ts = fallback_time

    raw_input, raw_output = record.get("input"), record.get("output")
    inp: dict[str, Any] = raw_input if isinstance(raw_input, dict) else {}
    out: dict[str, Any] = raw_output if isinstance(raw_output, dict) else {}
    in_body = inp.get("inputBodyJson")
    out_body = out.get("outputBodyJson")
    operation = record.get("operation") if isinstance(record.get("operation"), str) else None

    stream_metrics = _stream_metrics(out_body)
    # Log-level counts first; the body only where they are absent. A present count that is not one rejects.
    input_tokens = _count(inp.get("inputTokenCount"), "inputTokenCount")
    output_tokens = _count(out.get("outputTokenCount"), "outputTokenCount")
    cache_read = _count(inp.get("cacheReadInputTokenCount"), "cacheReadInputTokenCount")
    cache_write = _count(inp.get("cacheWriteInputTokenCount"), "cacheWriteInputTokenCount")
    if input_tokens is None or output_tokens is None or cache_read is None or cache_write is None:
        body_usage = _body_usage(out_body)
        input_tokens = body_usage["input"] if input_tokens is None else input_tokens
        output_tokens = body_usage["output"] if output_tokens is None else output_tokens
        cache_read = body_usage["cache_read"] if cache_read is None else cache_read
        cache_write = body_usage["cache_write"] if cache_write is None else cache_write
    cache_write_1h = _cache_write_1h(out_body)
    for name, value in (
        ("inputTokenCount", input_tokens),
        ("outputTokenCount", output_tokens),
        ("cacheReadInputTokenCount", cache_read),
        ("cacheWriteInputTokenCount", cache_write),
        ("cacheWrite1hInputTokens", cache_write_1h),
    ):
        if value is not None and value < 0:
            raise RecordError(f"negative_tokens: {name}={value}")
        if value is not None and value > MAX_TOKENS:
            raise RecordError(f"implausible_tokens: {name}={str(value)[:30]}")
    if max_tokens_per_call is not None:
        total = call_tokens(input_tokens, output_tokens, cache_read, cache_write)
        if total > max_tokens_per_call:
            raise RecordError(
                f"implausible_tokens: {total} tokens in one call, "
                f"over quality.max_tokens_per_call={max_tokens_per_call}"
            )

    g_units, g_trace = guardrail_units(out_body)

    latency = first_byte = None
    if isinstance(out_body, dict) and isinstance(out_body.get("metrics"), dict):
        latency = _int(out_body["metrics"].get("latencyMs"))
    if stream_metrics:
        latency = _first_int(stream_metrics.get("invocationLatency"), latency)
        first_byte = _int(stream_metrics.get("firstByteLatency"))
    latency = latency if latency is None or 0 <= latency <= MAX_LATENCY_MS else None
    first_byte = first_byte if first_byte is None or 0 <= first_byte <= MAX_LATENCY_MS else None

    stop_reason = _stop_reason(operation or "", out_body)
    error_code = record.get("errorCode")
    error_code = str(error_code) if error_code not in (None, "") else None
    if error_code:
        status = classify_error(error_code)
    elif _guardrail_intervened(stop_reason, out_body):
        status = "guardrail_intervened"
    else:
        status = "success"

    resolved = resolve_model_id(model_id, app_profiles)
    identity = record.get("identity")
    identity_arn = identity.get("arn") if isinstance(identity, dict) else None
    identity_arn = identity_arn if isinstance(identity_arn, str) else None
    principal, session = split_identity(identity_arn)
    inference_region = record.get("inferenceRegion")
    account = record.get("accountId")
    service_tier = _service_tier(in_body)
    if (service_tier is None or service_tier == "standard") and _latency_optimized(record, in_body):
        service_tier = "latency_optimized"

    return {
        "request_id": request_id,
        "timestamp": ts,
        "account_id": str(account) if account is not None else None,
        "region": record.get("region") if isinstance(record.get("region"), str) else None,
        "inference_region": inference_region if isinstance(inference_region, str) else None,
        "operation": operation,
        "model_id": model_id,
        "base_model_id": resolved.base_model_id,
        "routing": resolved.routing,
        "inference_profile": resolved.inference_profile,
        "identity_arn": identity_arn,
        "principal": principal,
        "session_name": session,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": cache_read,
        "cache_write_input_tokens": cache_write,
        "image_count": _image_count(in_body),
        "latency_ms": latency,
        "first_byte_latency_ms": first_byte,
        "stop_reason": stop_reason,
        "status": status,
        "error_code": error_code,
        "request_metadata": _metadata(record.get("requestMetadata")),
        "source": source,
        "source_uri": source_uri,
        "schema_version": str(version) if version is not None else None,
        "service_tier": service_tier,
        "input_body_s3_path": inp.get("inputBodyS3Path") if isinstance(inp.get("inputBodyS3Path"), str) else None,
        "output_body_s3_path": (out.get("outputBodyS3Path") if isinstance(out.get("outputBodyS3Path"), str) else None),
        "input_body_redacted": redact(in_body) if redact and in_body is not None else None,
        "output_body_redacted": redact(out_body) if redact and out_body is not None else None,
        # Never more than the total: a body whose split exceeds the log-level count is trusted for the total.
        "cache_write_1h_input_tokens": min(cache_write_1h or 0, cache_write or 0),
        **{f"guardrail_{policy}_units": n for policy, n in g_units.items()},
        "guardrail_trace_present": g_trace,
    }
