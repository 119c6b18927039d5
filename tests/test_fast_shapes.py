"""The fast path's per-record shortcuts give the reference path's rows: a stream's answers gathered in one backward
pass (which chunk wins each, and in which order a chunk's reasons are read), ranges checked by the decoder (an out
of range count the rules would not even read sends the object back, and the reference decides), and the
request-metadata column sorted in one Arrow sort (many records, unsorted and non-ASCII keys, empty and null maps).
`tests/test_normalize_equivalence.py` has the table of every rule; these are the cases its table does not pin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("msgspec")

from pipeline.normalize import day as day_mod  # noqa: E402
from pipeline.normalize import fast  # noqa: E402
from tests.test_normalize_equivalence import (  # noqa: E402
    _CHUNKS,
    START,
    _assert_same,
    _cfg,
    _objects_from,
    _Spy,
    _variant,
)

_STREAM = _variant("operation", "InvokeModelWithResponseStream", _variant("input.cacheWriteInputTokenCount", 10))
_ONE_HOUR = {"usage": {"cache_creation": {"ephemeral_1h_input_tokens": 2}}}
_CASES: dict[str, dict[str, Any]] = {
    "last chunk's reason wins, read stopReason before finish_reason": _variant(
        "output.outputBodyJson",
        [
            {"delta": {"stop_reason": "end_turn"}, "completionReason": "FINISH"},
            {"delta": {}, "stopReason": "max_tokens", "finish_reason": "length"},
        ],
        _STREAM,
    ),
    "delta's reason before the chunk's own": _variant(
        "output.outputBodyJson",
        [{"delta": {"stop_reason": "end_turn"}, "completionReason": "FINISH", "finish_reason": "length"}],
        _STREAM,
    ),
    "only finish_reason": _variant("output.outputBodyJson", [{"finish_reason": "length"}, {"delta": None}], _STREAM),
    "last message's 1-hour split wins, guardrail in the middle": _variant(
        "output.outputBodyJson",
        [
            {"message": _ONE_HOUR},
            {"message": {"usage": {"cache_creation": {"ephemeral_1h_input_tokens": 7}}}},
            {"amazon-bedrock-guardrailAction": "INTERVENED"},
            {"message": {"usage": {}}},
            {"message": "text"},
            *_CHUNKS[2:],
        ],
        _STREAM,
    ),
    "guardrail chunk and guardrail stop": _variant(
        "output.outputBodyJson",
        [{"amazon-bedrock-guardrailAction": "INTERVENED"}, {"delta": {"stop_reason": "guardrail_intervened"}}],
        _STREAM,
    ),
    "cache details summing past the token limit": _variant(
        "output.outputBodyJson",
        {"usage": {"cacheDetails": [{"ttl": "1h", "inputTokens": 10**12}, {"ttl": "1h", "inputTokens": 1}]}},
    ),
    "unread body count out of range": _variant(
        "input.inputTokenCount", 5, _variant("output.outputBodyJson", {"usage": {"inputTokens": -1}})
    ),
    "unread latency out of range": _variant("output.outputBodyJson", {"metrics": {"latencyMs": 10**10}}),
    "images out of range": _variant("input.inputBodyJson.imageGenerationConfig", {"numberOfImages": 10**6}),
}
_GOES_BACK = {
    "cache details summing past the token limit",
    "unread body count out of range",
    "unread latency out of range",
    "images out of range",
}


@pytest.mark.parametrize("name", sorted(_CASES))
def test_shape_same_result(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _Spy(monkeypatch)
    objects = _objects_from([json.dumps(_CASES[name]).encode() + b"\n"], tmp_path, monkeypatch)
    _assert_same(day_mod.DayParser(START, _cfg()), objects)
    assert (spy.handed_back, spy.taken) == ((1, 0) if name in _GOES_BACK else (0, 1))


def test_metadata_sorted_per_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys sorted within each record and never across records, whatever order they were logged in."""
    maps: list[dict[str, str] | None] = [
        {"userId": "u", "costCenter": "c", "applicationId": "a", "environment": "e"},
        None,
        {},
        {"b": "1", "a": "2"},
        {"é": "x", "z": "y", "Z": "w", "": "empty", "ü": "u", "日本": "j"},
        {"a": "same key, another record"},
    ]
    lines = []
    for n, m in enumerate(maps * 3):
        rec = _variant("requestId", f"req-{n}")
        if m is not None:
            rec["requestMetadata"] = m
        lines.append(json.dumps(rec, ensure_ascii=n % 2 == 0).encode())
    spy = _Spy(monkeypatch)
    objects = _objects_from([b"\n".join(lines) + b"\n"], tmp_path, monkeypatch)
    _assert_same(day_mod.DayParser(START, _cfg()), objects)
    assert spy.taken == 1


def test_rows_frame_metadata_column() -> None:
    """The Arrow-built column directly: an empty list for a null or empty map, keys in code-point order."""
    series = fast._map_column(({"b": "1", "a": "2"}, None, {}, {"é": "1", "z": "2"}))
    assert series.to_list() == [
        [{"key": "a", "value": "2"}, {"key": "b", "value": "1"}],
        [],
        [],
        [{"key": "z", "value": "2"}, {"key": "é", "value": "1"}],
    ]
