"""Input hardening: property tests over the record parser, the file-level decoder, pricing of what parses, and the
billing usage-type parser, fed with mutated real records and usage types.

Properties: nothing crashes except with `RecordError`; every line of a file is a row, a reject (with a reason)
or counted as another day's; token counts are None or ≥ 0; costs are never negative or NaN; every usage type
gets a classification. The inputs that once crashed the normalizer (odd digit strings, token counts past Int64,
timestamps at the ends of time, negative image counts, deep nesting) have regression tests of their own at the
end.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import gzip
import json
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import schemas
from pipeline.billing.usage_types import (
    REGION_CODES,
    TIERS,
    parse_usage_type,
    parse_usage_types,
)
from pipeline.config import parse_config
from pipeline.normalize.day import DayParser, normalize_day, rows_to_frame
from pipeline.normalize.decode import BadLine, iter_json_lines
from pipeline.normalize.records import RecordError, parse_record, parse_timestamp
from pipeline.pricing import load_catalog, price_invocations
from pipeline.privacy import redact_body
from pipeline.sources.s3_logs import LogObject
from pipeline.vocabulary import PRICING_ROUTINGS, USAGE_KINDS
from tests.helpers import EXAMPLES, gz_lines, log_key, make_record

DAY = dt.date(2026, 3, 10)
FALLBACK = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens")
COST_COLUMNS = ("input_cost_usd", "output_cost_usd", "cache_read_cost_usd", "cache_write_cost_usd", "total_cost_usd")
INT64_MAX = 2**63 - 1
FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,  # no example database in the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

EXAMPLE_RECORDS: list[dict[str, Any]] = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]
if not EXAMPLE_RECORDS:  # pragma: no cover - the fixtures ship with the repository
    EXAMPLE_RECORDS = [make_record("r-1", "2026-03-10T10:00:00Z")]

# Where token counts live in a record: log-level fields first, provider bodies as fallback
# (docs/formats/invocation-logs.md §8).
TOKEN_PATHS: list[tuple[str, ...]] = [
    ("input", "inputTokenCount"),
    ("output", "outputTokenCount"),
    ("input", "cacheReadInputTokenCount"),
    ("input", "cacheWriteInputTokenCount"),
    ("output", "outputBodyJson", "usage", "inputTokens"),
    ("output", "outputBodyJson", "usage", "output_tokens"),
    ("output", "outputBodyJson", "usage", "cache_read_input_tokens"),
    ("output", "outputBodyJson", "prompt_token_count"),
    ("output", "outputBodyJson", "generation_token_count"),
    ("input", "inputBodyJson", "imageGenerationConfig", "numberOfImages"),
    ("output", "outputBodyJson", "metrics", "latencyMs"),
]


# ------------------------------------------------------------------------------------------------ strategies


SAFE_TEXT = st.text(max_size=40)
BIG_INTS = st.sampled_from([2**31, 2**53, INT64_MAX, 2**63, 10**30, -(10**30), -(2**63) - 1])


def _deep(levels: int) -> Any:
    value: Any = "deep"
    for _ in range(levels):
        value = {"a": [value]}
    return value


ENORMOUS = [
    "x" * 300_000,
    [{"chunk": i, "amazon-bedrock-invocationMetrics": {"inputTokenCount": i}} for i in range(5_000)],
    {"messages": [{"role": "user", "content": [{"text": "é🙂" * 20_000}]}]},
    _deep(120),
]


def token_values(big: bool) -> st.SearchStrategy[Any]:
    """What a token field may hold in a broken log: numbers of every size and sign, strings, junk."""
    options = [
        st.integers(-(10**6), 10**7),
        st.sampled_from([0, -1, 2**31 - 1, 2**53]),
        st.floats(min_value=-1e6, max_value=1e7),
        st.sampled_from([math.nan, math.inf, -math.inf, 1.5, -0.0, 2.0**62]),
        st.sampled_from(["123", " 42 ", "-5", "1e3", "", "NaN", "٣٤", "0x10"]),
        SAFE_TEXT,
        st.none(),
        st.booleans(),
        st.lists(st.integers(), max_size=3),
    ]
    if big:
        options += [BIG_INTS, st.floats(allow_nan=True, allow_infinity=True)]
    return st.one_of(*options)


def weird_values(big: bool) -> st.SearchStrategy[Any]:
    return st.one_of(
        token_values(big),
        st.dictionaries(SAFE_TEXT, st.one_of(SAFE_TEXT, st.integers(-5, 5), st.none()), max_size=4),
        st.sampled_from(ENORMOUS).map(copy.deepcopy),  # later mutations may edit inside it
        st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2100, 1, 1)).map(
            lambda d: d.isoformat() + "Z"
        ),
        st.sampled_from(["2026-03-10T10:00:00+05:30", "2026-03-10 10:00:00", "2026-02-30T00:00:00Z", "yesterday"]),
    )


def _containers(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) slot in a record, so a mutation can hit any level."""
    if isinstance(node, dict):
        for k in list(node):
            out.append((node, k))
            if len(out) < 400:
                _containers(node[k], out)
    elif isinstance(node, list):
        for i in range(min(len(node), 20)):
            out.append((node, i))
            _containers(node[i], out)
    return out


def _set_path(record: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node: Any = record
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


@st.composite
def mutated_records(draw: st.DrawFn, big: bool = True) -> Any:
    """A real example record with one to four mutations: a field dropped, a value of the wrong type or size,
    a token count set to something odd, or the whole record swapped for a non-object."""
    record = copy.deepcopy(draw(st.sampled_from(EXAMPLE_RECORDS)))
    if draw(st.integers(0, 40)) == 0:
        return draw(st.one_of(st.lists(st.integers(), max_size=3), SAFE_TEXT, st.none(), st.integers()))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["drop", "replace", "tokens", "tokens", "timestamp"]))
        if op == "tokens":
            _set_path(record, draw(st.sampled_from(TOKEN_PATHS)), draw(token_values(big)))
        elif op == "timestamp":
            record["timestamp"] = draw(weird_values(big))
        else:
            slots = _containers(record, [])
            if not slots:
                continue
            container, key = draw(st.sampled_from(slots))
            if op == "drop":
                del container[key]
            else:
                container[key] = draw(weird_values(big))
    return record


def _in_int64(value: Any) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**63) <= value <= INT64_MAX


# ---------------------------------------------------------------------------------------------- record level


@pytest.mark.slow
@FUZZ
@given(record=mutated_records(), with_fallback=st.booleans(), keep_bodies=st.booleans())
def test_parse_record_parses_or_rejects_with_a_reason(record: Any, with_fallback: bool, keep_bodies: bool) -> None:
    try:
        row = parse_record(
            record,
            source="s3",
            source_uri="s3://logs/AWSLogs/x.json.gz",
            fallback_time=FALLBACK if with_fallback else None,
            redact=redact_body if keep_bodies else None,
        )
    except RecordError as exc:
        reason = str(exc)
        assert reason.split(":", 1)[0].replace("_", "").isalpha(), reason  # `kind: detail`
        return
    for column in TOKEN_COLUMNS:
        value = row[column]
        assert value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0), (column, value)
    assert isinstance(row["request_id"], str) and row["request_id"]
    assert isinstance(row["timestamp"], dt.datetime) and row["timestamp"].utcoffset() == dt.timedelta(0)
    assert row["status"] in schemas.STATUSES
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in row["request_metadata"].items())
    for column in ("input_body_redacted", "output_body_redacted"):
        assert row[column] is None or (keep_bodies and isinstance(row[column], str))


# ------------------------------------------------------------------------------------------------ file level


def _line(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["record", "record", "record", "cut", "junk", "array", "blank"]))
    if kind == "blank":
        return b"   "
    if kind == "junk":
        return draw(st.binary(max_size=120)).replace(b"\n", b" ")
    record = draw(mutated_records(big=False))
    text = json.dumps(record, ensure_ascii=draw(st.booleans()))
    if kind == "cut":
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if kind == "array":
        text = json.dumps([record, make_record(f"arr-{draw(st.integers(0, 99))}", "2026-03-10T10:00:00Z")])
    return text.encode("utf-8")


@st.composite
def log_files(draw: st.DrawFn) -> list[bytes]:
    return [_line(draw) for _ in range(draw(st.integers(1, 6)))]


@functools.lru_cache(maxsize=1)
def _catalog() -> Any:
    return load_catalog(None)


@functools.lru_cache(maxsize=1)
def _config() -> Any:
    return parse_config({"start_date": "2026-01-01"})


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file the file-level property rewrites per example (module-scoped: hypothesis reruns the test)."""
    return tmp_path_factory.mktemp("fuzz") / "20260310T100500000Z_fuzz.json.gz"


@pytest.mark.slow
@settings(FUZZ, max_examples=100)  # each example writes, parses and prices a file
@given(lines=log_files())
def test_every_line_of_a_file_is_a_row_or_a_reject_and_prices_are_sane(scratch: Path, lines: list[bytes]) -> None:
    payload = b"\n".join(lines) + b"\n"
    expected = sum(1 for _ in iter_json_lines(payload))
    scratch.write_bytes(gzip.compress(payload, compresslevel=1))
    obj = LogObject(str(scratch), scratch.stat().st_size, dt.datetime(2026, 3, 10, 10, 5, tzinfo=dt.UTC))
    result = DayParser(DAY, _config()).parse_object(obj)
    accounted = (
        len(result.rows)
        + len(result.rejects)
        + result.counts["records_of_other_days"]
        + result.counts["rejects_of_other_days"]
    )
    assert accounted == expected
    for reject in result.rejects:
        assert reject["reason"] and reject["date"] == DAY
        assert len(reject["raw_excerpt"]) <= 400
    for row in result.rows:
        assert all(row[c] is None or row[c] >= 0 for c in TOKEN_COLUMNS)
    if not result.rows:
        return
    frame = rows_to_frame([dict(r) for r in result.rows])
    priced = price_invocations(frame, _catalog())
    for column in COST_COLUMNS:
        values = priced[column].drop_nulls().to_list()
        assert all(not math.isnan(v) and v >= 0 for v in values), (column, values)
    assert priced.height == frame.height


@FUZZ
@given(payload=st.binary(max_size=600))
def test_decoder_never_crashes_on_bytes(payload: bytes) -> None:
    for item in iter_json_lines(payload):
        assert isinstance(item, BadLine) or (isinstance(item, tuple) and isinstance(item[0], int))


# --------------------------------------------------------------------------------------------- usage types

REAL_USAGE_TYPES = [
    "USE1-Claude4.6Opus-cache-read-input-token-count-cross-region-global",
    "USE1-Claude4.6Opus-output-tokens",
    "USW2-anthropic.claude-opus-4-8-mantle-cache-write-tokens-global-standard",
    "USE1-MP:USE1_InputTokenCount_Global-Units",
    "USE1-MP:USE1_CacheWrite1hInputTokenCount-Units",
    "USE1-MP:USE1_ProvisionedThroughput_NoCommit_ModelUnits_Usage-Units",
    "USE1-MP:USE1_Reserved_3Month_OutputTPM_Global-Units",
    "EU-Nova2.0Lite-input-tokens-cross-region-global",
    "APN1-TitanEmbeddingsG1-Text-input-tokens",
    "USE1-Nova2.0Pro-text-input-tokens-priority-cross-region-global",
    "USE1-NovaCanvas-T2I-1024-Premium",
    "USE1-NovaPro-Customization-Training",
    "USE1-GPT-OSS-Safeguard-120B-output-tokens-batch",
    "USE1-xai.grok-4.3-mantle-cache-read-tokens-flex",
    "USE1-BoxUsage:t3.micro",
    "USE2-TitanEmbeddingV2-Text-input-tokens",
]
RESOURCE_IDS = [
    None,
    "",
    "arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0",
    "arn:aws:bedrock:us-east-1:111122223333:inference-profile/global.anthropic.claude-sonnet-4-v1:0",
    "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3",
    "arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-lite-v1:0",
]


@st.composite
def mutated_usage_types(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(REAL_USAGE_TYPES))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["insert", "delete", "case", "affix", "separator"]))
        pos = draw(st.integers(0, len(text)))
        if op == "insert":
            text = text[:pos] + draw(st.text(max_size=6)) + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 12)) :]
        elif op == "case":
            text = text.swapcase() if draw(st.booleans()) else text.lower()
        elif op == "affix":
            text = draw(st.text(max_size=8)) + text + draw(st.text(max_size=8))
        else:
            text = text.replace("-", draw(st.sampled_from(["_", ":", "", "--", " "])))
    return text


USAGE_TYPES = st.one_of(
    mutated_usage_types(), st.text(max_size=80), st.none(), st.sampled_from(["", "-", "MP:", "USE1-"])
)
RESOURCES = st.one_of(st.sampled_from(RESOURCE_IDS), st.text(max_size=80))
GRAMMARS = {"first_party", "mantle", "marketplace", "unknown"}


@pytest.mark.slow
@FUZZ
@given(usage_type=USAGE_TYPES, resource_id=RESOURCES)
def test_usage_type_parser_always_classifies(usage_type: str | None, resource_id: str | None) -> None:
    parsed = parse_usage_type(usage_type, resource_id)
    assert parsed.grammar in GRAMMARS
    assert parsed.usage_kind in USAGE_KINDS
    assert parsed.routing in PRICING_ROUTINGS
    assert parsed.tier in TIERS
    assert parsed.region is None or parsed.region in REGION_CODES.values()
    assert parsed.cache_ttl is None or parsed.usage_kind in ("cache_write", "cache_write_1h")
    assert parsed.context_tier in ("standard", "long")
    assert (parsed.usage_kind == "other") == (parsed.unit is None)


@pytest.mark.slow
@settings(max_examples=50, deadline=None, database=None)
@given(rows=st.lists(st.tuples(USAGE_TYPES, RESOURCES), min_size=1, max_size=20))
def test_usage_type_frame_parser_keeps_every_row(rows: list[tuple[str | None, str | None]]) -> None:
    df = pl.DataFrame(rows, schema={"usage_type": pl.String, "resource_id": pl.String}, orient="row")
    out = parse_usage_types(df)
    assert out.height == df.height
    assert out["usage_kind"].null_count() == 0 and out["routing"].null_count() == 0


# ------------------------------------------------------------------------------- known normalizer crashes


def _record_with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    record = make_record("r-x", "2026-03-10T10:00:00Z")
    _set_path(record, path, value)
    return record


def _parse(record: Any) -> dict[str, Any] | None:
    try:
        return parse_record(record, source="s3", source_uri="u")
    except RecordError:
        return None


@pytest.mark.parametrize("value", ["²", "9" * 5000], ids=["superscript", "over-4300-digits"])
def test_odd_digit_strings_are_not_fatal(value: str) -> None:
    row = _parse(_record_with(("input", "inputTokenCount"), value))
    assert row is None or row["input_tokens"] is None


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_timestamps_at_the_ends_of_time_are_not_fatal(value: str) -> None:
    assert parse_timestamp(value) is None


def test_negative_image_count_is_not_stored() -> None:
    row = _parse(_record_with(("input", "inputBodyJson"), {"imageGenerationConfig": {"numberOfImages": -5}}))
    assert row is None or row["image_count"] is None or row["image_count"] >= 0


def test_deeply_nested_line_is_a_bad_line() -> None:
    items = list(iter_json_lines(b"[" * 5000 + b"]" * 5000 + b"\n" + b'{"a": ' * 3000 + b"1" + b"}" * 3000))
    assert all(isinstance(i, BadLine) for i in items) and len(items) == 2


@pytest.mark.parametrize("value", [2**63, 10**30, 1e300])
def test_one_huge_token_count_does_not_fail_the_day(tmp_path: Path, value: float) -> None:
    root = tmp_path / "logs"
    path = root / log_key("111122223333", "us-east-1", "2026-03-10T10:05:00")
    path.parent.mkdir(parents=True)
    good = [make_record(f"ok-{i}", "2026-03-10T10:00:00Z") for i in range(3)]
    path.write_bytes(gz_lines([*good, _record_with(("input", "inputTokenCount"), value)]))
    cfg = parse_config({"start_date": "2026-01-01", "sources": {"invocation_logs": {"s3": [str(root)]}}})
    batches, reject_scan, _, cleanup = normalize_day(DAY, cfg, workers=1, spill_dir=str(tmp_path))
    try:
        rows = pl.concat(list(batches))
        rejects = reject_scan().collect()
    finally:
        cleanup()
    assert sorted(rows["request_id"]) == ["ok-0", "ok-1", "ok-2"]
    assert rejects.height == 1
    assert all(_in_int64(v) for v in rows["input_tokens"].to_list())
