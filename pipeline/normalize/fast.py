"""The fast path of normalization: one decompressed log object straight to a typed frame, bodies skipped.

Why: parsing is the expensive step of the pipeline. A record is several KB, almost all of it prompt and response
text, and the reference path (`orjson.loads` of the whole line, then `records.parse_record` on the dicts) builds a
Python object for every string of every body only to throw it away. Here msgspec decodes each line into typed
`Struct`s that name only the fields `parse_record` reads; everything else (messages, answers, embeddings, traces)
is skipped inside the C decoder without allocating anything. The per-record Python that is left works on a few
attributes, and columns are built once per group of objects.

Exactness is by construction: the structs are *strict* (an int field rejects a float, a bool or a string; an
object field rejects an array), so whatever the fast path accepts is a value for which the rules below are the
rules of `parse_record` restated for that one type. Anything else sends the whole object back to the caller, to
go through the reference path: a line that does not decode with these types, a line holding an array or several
objects, a record that `parse_record` would reject (the reference then writes the exact reject, with its line
number), a timestamp that needs the fallback time when there is none, an object that is not valid UTF-8
(msgspec does not validate the strings it skips; orjson does). Such objects are rare, so handing back whole
objects costs nothing measurable and keeps row order and line numbers the reference's own.
`tests/test_normalize_equivalence.py` checks both paths give the same rows, rejects and counts on generated logs
of every shape, on the example records, on a table of every rule, and on randomly damaged records;
`tests/test_fast_shapes.py` pins the shortcuts this module takes for speed.

msgspec is an optional dependency: without it this module does not import, and `day.py` uses the reference path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import msgspec
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schemas
from pipeline.normalize.identity import split_identity
from pipeline.normalize.model_ids import resolve_model_id
from pipeline.normalize.records import (
    KNOWN_SCHEMA_VERSIONS,
    MAX_IMAGES,
    MAX_LATENCY_MS,
    MAX_TOKENS,
    ONE_HOUR_TTLS,
    SCHEMA_TYPE,
    classify_error,
    parse_timestamp,
)
from pipeline.vocabulary import GUARDRAIL_POLICIES

# Token counts, latencies and image counts: JSON integers in the range `parse_record` accepts for them. Anything
# else (out of range, floats, strings, bools) fails the decode and the object goes to the reference path, which
# has its own rules for it. Checking the range in the C decoder rather than per record in Python is what makes
# the per-record code short; an out-of-range value in a field the rules end up not reading also sends the object
# back, which costs nothing (no real log has one) and is exact (the reference decides).
Tokens = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]
LatencyMs = Annotated[int, msgspec.Meta(ge=0, le=MAX_LATENCY_MS)]
Images = Annotated[int, msgspec.Meta(ge=0, le=MAX_IMAGES)]
_UNSET = msgspec.UNSET


class _S(msgspec.Struct, gc=False):
    """Base of the decode types: no GC tracking (they hold no cycles), which makes allocating them cheaper."""


class _CacheCreation(_S):
    ephemeral_1h_input_tokens: Tokens | None = None


class _CacheDetail(_S):
    ttl: str | None = None
    inputTokens: Tokens | None = None


class _Usage(_S):
    cache_creation: _CacheCreation | None = None
    cacheDetails: list[_CacheDetail] | None = None
    inputTokens: Tokens | None = None
    input_tokens: Tokens | None = None
    prompt_tokens: Tokens | None = None
    outputTokens: Tokens | None = None
    output_tokens: Tokens | None = None
    completion_tokens: Tokens | None = None
    cacheReadInputTokens: Tokens | None = None
    cacheReadInputTokenCount: Tokens | None = None
    cache_read_input_tokens: Tokens | None = None
    cacheWriteInputTokens: Tokens | None = None
    cacheWriteInputTokenCount: Tokens | None = None
    cache_creation_input_tokens: Tokens | None = None


class _Metrics(_S):
    latencyMs: LatencyMs | None = None


class _Result(_S):
    tokenCount: Tokens | None = None
    completionReason: str | None = None


class _GuardrailUsage(_S):
    topicPolicyUnits: Tokens | None = None
    contentPolicyUnits: Tokens | None = None
    wordPolicyUnits: Tokens | None = None
    sensitiveInformationPolicyUnits: Tokens | None = None
    contextualGroundingPolicyUnits: Tokens | None = None
    contentPolicyImageUnits: Tokens | None = None
    automatedReasoningPolicyUnits: Tokens | None = None


class _GuardrailMetrics(_S):
    usage: _GuardrailUsage | None = None


class _Assessment(_S):
    invocationMetrics: _GuardrailMetrics | None = None


class _Guardrail(_S):
    """A guardrail trace: input assessments by guardrail id, output assessments as a list of id -> assessment
    (InvokeModel's `outputs`, the Converse logs seen) or id -> list (Converse's documented shape)."""

    input: dict[str, _Assessment] | None = None
    inputAssessment: dict[str, _Assessment] | None = None
    outputs: list[dict[str, _Assessment]] | None = None
    outputAssessments: list[dict[str, _Assessment]] | dict[str, list[_Assessment]] | None = None


class _Trace(_S):
    guardrail: _Guardrail | None = None


class _OutBody(_S):
    """A response body that is a JSON object (InvokeModel, Converse, ConverseStream)."""

    stopReason: str | None = None
    stop_reason: str | None = None
    completionReason: str | None = None
    finish_reason: str | None = None
    guardrail_action: str | None = msgspec.field(default=None, name="amazon-bedrock-guardrailAction")
    trace: _Trace | None = None
    bedrock_trace: _Trace | None = msgspec.field(default=None, name="amazon-bedrock-trace")
    usage: _Usage | None = None
    metrics: _Metrics | None = None
    prompt_token_count: Tokens | None = None
    inputTextTokenCount: Tokens | None = None
    generation_token_count: Tokens | None = None
    results: list[_Result] | None = None


class _InvocationMetrics(_S):
    inputTokenCount: Tokens | None = None
    outputTokenCount: Tokens | None = None
    cacheReadInputTokenCount: Tokens | None = None
    cacheWriteInputTokenCount: Tokens | None = None
    invocationLatency: LatencyMs | None = None
    firstByteLatency: LatencyMs | None = None


class _Delta(_S):
    stop_reason: str | None = None


class _StreamMessage(_S):
    """The `message` of an Anthropic `message_start` chunk, read for its usage's 1-hour cache writes."""

    usage: _Usage | None = None


class _Chunk(_S):
    """One element of an InvokeModelWithResponseStream body (a JSON array of chunk objects)."""

    delta: _Delta | None = None
    message: _StreamMessage | str | None = None
    completionReason: str | None = None
    stop_reason: str | None = None
    stopReason: str | None = None
    finish_reason: str | None = None
    guardrail_action: str | None = msgspec.field(default=None, name="amazon-bedrock-guardrailAction")
    metrics: _InvocationMetrics | None = msgspec.field(default=None, name="amazon-bedrock-invocationMetrics")
    trace: _Trace | None = None
    bedrock_trace: _Trace | None = msgspec.field(default=None, name="amazon-bedrock-trace")


class _Tier(_S):
    type: str | None = None


class _ImageConfig(_S):
    numberOfImages: Images | None = None


class _Perf(_S):
    latency: str | None = None


class _InBody(_S):
    imageGenerationConfig: _ImageConfig | None = None
    performanceConfig: _Perf | None = None
    # UNSET (absent) and None (JSON null) differ: `body.get("serviceTier", body.get("service_tier"))`.
    serviceTier: str | _Tier | None | msgspec.UnsetType = _UNSET
    service_tier: str | _Tier | None | msgspec.UnsetType = _UNSET


class _Input(_S):
    inputTokenCount: Tokens | None = None
    cacheReadInputTokenCount: Tokens | None = None
    cacheWriteInputTokenCount: Tokens | None = None
    inputBodyS3Path: str | None = None
    inputBodyJson: _InBody | None = None


class _Output(_S):
    outputTokenCount: Tokens | None = None
    outputBodyS3Path: str | None = None
    outputBodyJson: _OutBody | list[_Chunk] | None = None


class _Identity(_S):
    arn: str | None = None


class _Record(_S):
    schemaType: str | None = None
    schemaVersion: str | None = None
    timestamp: str | None = None
    accountId: str | None = None
    region: str | None = None
    requestId: str | None = None
    operation: str | None = None
    modelId: str | None = None
    errorCode: str | None = None
    inferenceRegion: str | None = None
    performanceConfig: _Perf | None = None
    identity: _Identity | None = None
    requestMetadata: dict[str, str] | None = None
    input: _Input | None = None
    output: _Output | None = None


_DECODER = msgspec.json.Decoder(_Record)
GENERIC_DECODER = msgspec.json.Decoder()
"""Untyped lines, for counting what an object past its reject limit holds without a Python call per line."""
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)
_TS_CACHE: dict[str, int | None] = {}
_TS_CACHE_MAX = 500_000


def _ts_micros(value: str | None) -> int | None:
    """`parse_timestamp` as microseconds since the epoch, memoised (a day has at most 86,400 distinct seconds)."""
    if value is None:
        return None
    try:
        return _TS_CACHE[value]
    except KeyError:
        pass
    ts = parse_timestamp(value)
    micros = None if ts is None else (ts - _EPOCH) // _MICRO
    if len(_TS_CACHE) >= _TS_CACHE_MAX:
        _TS_CACHE.clear()
    _TS_CACHE[value] = micros
    return micros


_T = TypeVar("_T")


def _first(a: _T | None, b: _T | None, c: _T | None) -> _T | None:
    """The first of three values that is not None (a fixed arity: cheaper to call than `*values`)."""
    return a if a is not None else b if b is not None else c


def _stream(
    chunks: list[_Chunk],
) -> tuple[_InvocationMetrics | None, str | None, int | None, bool, bool]:
    """What a stream body (an array of chunks) gives the row, in one backward pass: the invocation metrics of the
    last chunk that has them, the stop reason of the last chunk that has one (`delta.stop_reason` first, as
    `records._stream_stop_reason`), the 1-hour cache writes of the last `message` that splits them
    (`records._cache_write_1h`), and whether any chunk says the guardrail intervened. A stream has about twenty
    chunks; one pass over them costs about half of one pass per answer. Last: whether any chunk has a trace."""
    metrics = stop = cache_1h = None
    guardrail = traced = False
    for chunk in reversed(chunks):
        if chunk.trace is not None or chunk.bedrock_trace is not None:
            traced = True
        if metrics is None:
            metrics = chunk.metrics
        if stop is None:
            delta = chunk.delta
            stop = delta.stop_reason if delta is not None else None
            if stop is None:
                stop = _first(chunk.completionReason, chunk.stop_reason, chunk.stopReason)
                if stop is None:
                    stop = chunk.finish_reason
        if cache_1h is None:
            message = chunk.message
            if message is not None and type(message) is not str:
                cache_1h = _usage_1h(message.usage)
        if chunk.guardrail_action == "INTERVENED":
            guardrail = True
    return metrics, stop, cache_1h, guardrail, traced


_NO_GUARDRAIL: tuple[int, ...] = (0,) * 7


def _guardrail_units(containers: list[_OutBody] | list[_Chunk]) -> tuple[int, ...] | None:
    """Units per policy (`records.GUARDRAIL_USAGE_KEYS` order) summed over every assessment of the guardrail
    traces of a body or its chunks, as `records.guardrail_units`; None when no container has a trace."""
    traces = [
        t.guardrail for c in containers for t in (c.trace, c.bedrock_trace) if t is not None and t.guardrail is not None
    ]
    if not traces:
        return None
    assessments: list[_Assessment] = []
    for g in traces:
        for by_id in (g.input, g.inputAssessment):
            if by_id is not None:
                assessments.extend(by_id.values())
        for outs in (g.outputs, g.outputAssessments):
            if type(outs) is list:
                for item in outs:
                    assessments.extend(item.values())
            elif outs is not None:
                for lst in outs.values():
                    assessments.extend(lst)
    totals = [0] * 7
    for a in assessments:
        m = a.invocationMetrics
        u = m.usage if m is not None else None
        if u is None:
            continue
        for i, n in enumerate(
            (
                u.topicPolicyUnits,
                u.contentPolicyUnits,
                u.wordPolicyUnits,
                u.sensitiveInformationPolicyUnits,
                u.contextualGroundingPolicyUnits,
                u.contentPolicyImageUnits,
                u.automatedReasoningPolicyUnits,
            )
        ):
            if n:
                totals[i] += n
    return tuple(totals)


def _body_usage(
    body: _OutBody, inp: int | None, out: int | None, cr: int | None, cw: int | None
) -> tuple[int | None, int | None, int | None, int | None]:
    """Log-level counts completed from an object body, as `records._body_usage` + `_first_int` do: a log-level
    count wins, so only the missing ones are looked up (usually the cache counts of an InvokeModel record)."""
    usage = body.usage
    if usage is not None:
        if inp is None:
            inp = _first(usage.inputTokens, usage.input_tokens, usage.prompt_tokens)
        if out is None:
            out = _first(usage.outputTokens, usage.output_tokens, usage.completion_tokens)
        if cr is None:
            cr = _first(usage.cacheReadInputTokens, usage.cacheReadInputTokenCount, usage.cache_read_input_tokens)
        if cw is None:
            cw = _first(usage.cacheWriteInputTokens, usage.cacheWriteInputTokenCount, usage.cache_creation_input_tokens)
        return inp, out, cr, cw
    if inp is None:
        inp = body.prompt_token_count if body.prompt_token_count is not None else body.inputTextTokenCount
    if out is None:
        out = body.generation_token_count
        if out is None and body.results is not None:
            for res in body.results:
                if res.tokenCount is not None:
                    out = res.tokenCount
                    break
    return inp, out, cr, cw


def _usage_1h(usage: _Usage | None) -> int | None:
    """`records._usage_1h` for a typed usage object."""
    if usage is None:
        return None
    creation = usage.cache_creation
    if creation is not None and creation.ephemeral_1h_input_tokens is not None:
        return creation.ephemeral_1h_input_tokens
    details = usage.cacheDetails
    if details is not None:
        total = 0
        for d in details:
            if d.ttl is not None and d.ttl.strip().lower() in ONE_HOUR_TTLS:
                total += d.inputTokens or 0
        return total
    return None


def _latency_optimized(r: _Record, body: _InBody | None) -> bool:
    """`records._latency_optimized`: the request body first, then the record's top level."""
    for perf in (body.performanceConfig if body is not None else None, r.performanceConfig):
        if perf is not None and perf.latency is not None and perf.latency.lower() == "optimized":
            return True
    return False


def _tier(body: _InBody) -> str | None:
    tier = body.serviceTier
    if tier is _UNSET:
        tier = body.service_tier
        if tier is _UNSET:
            return None
    if isinstance(tier, _Tier):
        tier = tier.type
    if not isinstance(tier, str):
        return None
    tier = tier.lower()
    return "standard" if tier == "default" else tier


# Column names of the per-record tuples built by `_row`, in order.
_RAW_COLUMNS = (
    "source_uri",
    "request_id",
    "timestamp",
    "account_id",
    "region",
    "inference_region",
    "operation",
    "model_id",
    "identity_arn",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "image_count",
    "latency_ms",
    "first_byte_latency_ms",
    "stop_reason",
    "error_code",
    "_guardrail",
    "request_metadata",
    "schema_version",
    "service_tier",
    "input_body_s3_path",
    "output_body_s3_path",
    "cache_write_1h_input_tokens",
    "_guardrail_units",
)
_RAW_TYPES: dict[str, schemas.DType] = {
    "timestamp": pl.Int64,
    "input_tokens": pl.Int64,
    "output_tokens": pl.Int64,
    "cache_read_input_tokens": pl.Int64,
    "cache_write_input_tokens": pl.Int64,
    "image_count": pl.Int64,
    "latency_ms": pl.Int64,
    "first_byte_latency_ms": pl.Int64,
    "_guardrail": pl.Boolean,
    "cache_write_1h_input_tokens": pl.Int64,
}


def _row(
    r: _Record, source_uri: str, fallback_us: int | None, day_start: int, day_end: int
) -> tuple[Any, ...] | bool | None:
    """One record as a raw tuple (see `_RAW_COLUMNS`); False when it belongs to another day; None when the
    reference path must decide (a reject, or anything this function does not restate).

    This runs once per record, so it is written for the common shapes (a Converse or InvokeModel object body
    whose log-level counts are all present, a stream's chunk array): plain attribute reads and `is None` tests,
    helpers called only when a rarer field is there. Ranges of counts and latencies are checked by the decoder
    (see `Tokens`); only a sum of cache-detail entries can leave the range here.
    """
    st = r.schemaType
    if st is not None and st != SCHEMA_TYPE:
        return None
    version = r.schemaVersion
    if version is not None and version not in KNOWN_SCHEMA_VERSIONS:
        return None
    request_id = r.requestId
    model_id = r.modelId
    if not request_id or not model_id:
        return None
    ts = _TS_CACHE.get(r.timestamp)  # type: ignore[arg-type]
    if ts is None:
        ts = _ts_micros(r.timestamp)
        if ts is None:
            if fallback_us is None:
                return None
            ts = fallback_us

    inp = r.input
    if inp is not None:
        input_tokens = inp.inputTokenCount
        cache_read = inp.cacheReadInputTokenCount
        cache_write = inp.cacheWriteInputTokenCount
        in_body = inp.inputBodyJson
        in_path = inp.inputBodyS3Path
    else:
        input_tokens = cache_read = cache_write = in_body = in_path = None
    out = r.output
    if out is not None:
        output_tokens = out.outputTokenCount
        body = out.outputBodyJson
        out_path = out.outputBodyS3Path
    else:
        output_tokens = body = out_path = None

    latency = first_byte = stop_reason = cache_1h = g_units = None
    guardrail = False
    if body is None:
        pass
    elif type(body) is list:
        metrics, stop_reason, cache_1h, guardrail, traced = _stream(body)
        if traced:
            g_units = _guardrail_units(body)
        if metrics is not None:
            if input_tokens is None:
                input_tokens = metrics.inputTokenCount
            if output_tokens is None:
                output_tokens = metrics.outputTokenCount
            if cache_read is None:
                cache_read = metrics.cacheReadInputTokenCount
            if cache_write is None:
                cache_write = metrics.cacheWriteInputTokenCount
            latency = metrics.invocationLatency
            first_byte = metrics.firstByteLatency
    else:
        if input_tokens is None or output_tokens is None or cache_read is None or cache_write is None:
            input_tokens, output_tokens, cache_read, cache_write = _body_usage(
                body, input_tokens, output_tokens, cache_read, cache_write
            )
        usage = body.usage
        if usage is not None and (usage.cache_creation is not None or usage.cacheDetails is not None):
            cache_1h = _usage_1h(usage)
        body_metrics = body.metrics
        if body_metrics is not None:
            latency = body_metrics.latencyMs
        stop_reason = body.stopReason
        if stop_reason is None:
            stop_reason = _first(body.stop_reason, body.completionReason, body.finish_reason)
            if stop_reason is None and body.results:
                stop_reason = body.results[0].completionReason
        guardrail = body.guardrail_action == "INTERVENED"
        if body.trace is not None or body.bedrock_trace is not None:
            g_units = _guardrail_units([body])
    if cache_1h is not None and cache_1h > MAX_TOKENS:  # a sum of in-range cache-detail entries
        return None
    if ts < day_start or ts >= day_end:
        return False

    image_count = tier = None
    perf = r.performanceConfig
    if in_body is not None:
        cfg = in_body.imageGenerationConfig
        if cfg is not None:
            image_count = 1 if cfg.numberOfImages is None else cfg.numberOfImages
        if in_body.serviceTier is not _UNSET or in_body.service_tier is not _UNSET:
            tier = _tier(in_body)
        if perf is None:
            perf = in_body.performanceConfig
    if perf is not None and (tier is None or tier == "standard") and _latency_optimized(r, in_body):
        tier = "latency_optimized"
    identity = r.identity
    return (
        source_uri,
        request_id,
        ts,
        r.accountId,
        r.region,
        r.inferenceRegion,
        r.operation,
        model_id,
        identity.arn if identity is not None else None,
        input_tokens,
        output_tokens,
        cache_read,
        cache_write,
        image_count,
        latency,
        first_byte,
        stop_reason,
        r.errorCode or None,
        guardrail or stop_reason == "guardrail_intervened",
        r.requestMetadata,
        version,
        tier,
        in_path,
        out_path,
        # min(1-hour part or 0, cache writes or 0); both are non-negative, so no 1-hour part gives 0.
        min(cache_1h, cache_write or 0) if cache_1h else 0,
        g_units,
    )


def _decode(payload: bytes) -> list[_Record] | None:
    """Every record of the object as a `_Record`; None if any line is malformed or of another shape."""
    # decode_lines skips blank lines as the reference does; line numbers only matter for rejects, and an object
    # with anything to reject goes to the reference path whole.
    try:
        return _DECODER.decode_lines(payload)
    except Exception:  # noqa: BLE001 - DecodeError, ValidationError, RecursionError on deep nesting…: the
        # reference path decides line by line
        return None


_MAP_TYPE = pa.map_(pa.large_string(), pa.large_string())


def _map_column(values: tuple[dict[str, str] | None, ...]) -> pl.Series:
    """`request_metadata` as the contract's list of key/value structs, keys sorted (as `schemas.dict_to_map`).

    Arrow converts the dicts in C (a map array: flat keys and values plus offsets, None becoming an empty list
    as in the reference), and one sort over the flat entries by (record, key) orders each record's keys: that
    costs a fraction of flattening in Python and sorting inside each list with `list.eval`. Keys of one dict are
    distinct, so the order is total, and Arrow compares strings by UTF-8 bytes, which is Python's code-point order.
    """
    maps = pa.array(values, type=_MAP_TYPE)
    offsets = maps.offsets  # no validity: a null map is an empty run, so an empty list
    keys = maps.keys
    record = pc.list_parent_indices(pa.ListArray.from_arrays(offsets, keys))
    order = pc.sort_indices(
        pa.table({"record": record, "key": keys}), sort_keys=[("record", "ascending"), ("key", "ascending")]
    )
    entries = pa.StructArray.from_arrays([keys.take(order), maps.items.take(order)], names=["key", "value"])
    return pl.Series("request_metadata", pa.ListArray.from_arrays(offsets, entries)).cast(schemas.STR_MAP)


_STATUS_CACHE: dict[str, str] = {}


def _derived(frame: pl.DataFrame, app_profiles: tuple[tuple[str, str], ...]) -> list[pl.Expr]:
    """Status, model resolution and identity split, computed once per distinct value (a day has millions of
    calls but few distinct model ids, principals and error codes) and mapped back onto the column."""
    models = frame["model_id"].unique().to_list()
    resolved = [resolve_model_id(m, app_profiles) for m in models]
    arns = frame["identity_arn"].drop_nulls().unique().to_list()
    split = [split_identity(a) for a in arns]
    codes = frame["error_code"].drop_nulls().unique().to_list()
    for code in codes:
        if code not in _STATUS_CACHE:
            _STATUS_CACHE[code] = classify_error(code)

    def mapped(src: str, keys: list[str], vals: list[str | None]) -> pl.Expr:
        return pl.col(src).replace_strict(keys, vals, default=None, return_dtype=pl.String)

    return [
        pl.when(pl.col("error_code").is_not_null())
        .then(mapped("error_code", codes, [_STATUS_CACHE[c] for c in codes]))
        .when(pl.col("_guardrail"))
        .then(pl.lit("guardrail_intervened"))
        .otherwise(pl.lit("success"))
        .alias("status"),
        mapped("model_id", models, [r.base_model_id for r in resolved]).alias("base_model_id"),
        mapped("model_id", models, [r.routing for r in resolved]).alias("routing"),
        mapped("model_id", models, [r.inference_profile for r in resolved]).alias("inference_profile"),
        mapped("identity_arn", arns, [p for p, _ in split]).alias("principal"),
        mapped("identity_arn", arns, [s for _, s in split]).alias("session_name"),
    ]


@dataclass
class FastRows:
    """Rows of one or more objects, as raw tuples (see `_RAW_COLUMNS`), and the counts the day reports."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    records_seen: int = 0
    records_of_other_days: int = 0


def parse_payload(
    payload: bytes,
    into: FastRows,
    *,
    day: dt.date,
    source_uri: str,
    fallback_time: dt.datetime | None,
    kept_range: tuple[int, int] | None = None,
    max_tokens: int | None = None,
    max_latency: int | None = None,
) -> bool:
    """Parse one decompressed S3 object (or batch of its lines) and append its rows to `into`; False (and
    nothing appended) when it must take the reference path instead, which happens as soon as one line needs it.

    `kept_range` is the record times (epoch microseconds, half-open) whose own day reads this delivery
    (`ownership.Window.kept_range_us`): a record of another day inside it is that day's and only counted here; one
    outside it is a reject, which is the reference path's to write. None: every other day's record is counted.
    Whole batches, not lines, go back so that row order, line numbers and rejects are the reference's own.
    A call past the plausibility limits (`max_tokens` summed, `max_latency` for either latency) goes back too:
    its reject or its nulled latency is the reference's to write and count.
    """
    if not payload.isascii():
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            return False
    records = _decode(payload)
    if records is None:
        return False
    day_start = (dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) - _EPOCH) // _MICRO
    day_end = day_start + 86_400_000_000
    fallback_us = None if fallback_time is None else (fallback_time - _EPOCH) // _MICRO
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    other_days = 0
    lo, hi = kept_range if kept_range is not None else (-(2**63), 2**63 - 1)
    for rec in records:
        row = _row(rec, source_uri, fallback_us, day_start, day_end)
        if row is None:
            return False
        if (
            row is not False
            and (max_tokens is not None or max_latency is not None)
            and _implausible(row, max_tokens, max_latency)
        ):
            return False
        if row is False:
            ts = _ts_micros(rec.timestamp)
            ts = fallback_us if ts is None else ts
            if ts is None or not lo <= ts < hi:
                return False
            other_days += 1
        else:
            append(row)
    into.rows.extend(rows)
    into.records_seen += len(rows) + other_days
    into.records_of_other_days += other_days
    return True


def _guardrail_columns(units: tuple[tuple[int, ...] | None, ...]) -> list[pl.Series]:
    """The guardrail unit columns and `guardrail_trace_present`; most days have few traced calls, so a day without
    any costs one pass over the column, not one per policy."""
    n = len(units)
    if not any(u is not None for u in units):
        zeros = [pl.Series(f"guardrail_{p}_units", [0] * n, dtype=pl.Int64) for p in GUARDRAIL_POLICIES]
        return [*zeros, pl.Series("guardrail_trace_present", [False] * n, dtype=pl.Boolean)]
    filled = [u or _NO_GUARDRAIL for u in units]
    out = [
        pl.Series(f"guardrail_{p}_units", [u[i] for u in filled], dtype=pl.Int64)
        for i, p in enumerate(GUARDRAIL_POLICIES)
    ]
    return [*out, pl.Series("guardrail_trace_present", [u is not None for u in units], dtype=pl.Boolean)]


def _implausible(row: tuple[Any, ...], max_tokens: int | None, max_latency: int | None) -> bool:
    """Whether a raw row is past a plausibility limit (tokens 9-12 summed, latencies 14-15; see `_RAW_COLUMNS`)."""
    if max_tokens is not None and (row[9] or 0) + (row[10] or 0) + (row[11] or 0) + (row[12] or 0) > max_tokens:
        return True
    return max_latency is not None and ((row[14] or 0) > max_latency or (row[15] or 0) > max_latency)


def rows_frame(rows: list[tuple[Any, ...]], day: dt.date, app_profiles: tuple[tuple[str, str], ...]) -> pl.DataFrame:
    """Raw tuples of any number of objects as one frame in the contract's column order."""
    columns = dict(zip(_RAW_COLUMNS, zip(*rows, strict=True), strict=True))
    metadata = _map_column(columns.pop("request_metadata"))
    guardrail_columns = _guardrail_columns(columns.pop("_guardrail_units"))
    frame = pl.DataFrame(
        [pl.Series(name, values, dtype=_RAW_TYPES.get(name, pl.String)) for name, values in columns.items()]
    ).with_columns(metadata, *guardrail_columns)
    frame = frame.with_columns(
        *_derived(frame, app_profiles),
        pl.col("timestamp").cast(schemas.UTC_US),
        pl.lit(day, dtype=pl.Date).alias("date"),
        pl.lit("s3", dtype=pl.String).alias("source"),
        pl.lit(None, dtype=pl.String).alias("input_body_redacted"),
        pl.lit(None, dtype=pl.String).alias("output_body_redacted"),
    )
    return frame.select(list(schemas.INVOCATIONS))
