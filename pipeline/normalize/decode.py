"""Bytes of a delivered log object to JSON records, tolerant of what real deliveries and faults look like.

Objects are gzip (detected by magic bytes, not by name or Content-Encoding, spec §2.2), may be multi-member,
and may be cut short. A truncated or corrupt stream keeps every complete line before the damage and reports
the rest; a bad line never fails its file. Lines holding a JSON array or several concatenated objects are
split (spec §2.2, defensive parsing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from isal import isal_zlib

from pipeline.privacy import redact_text

GZIP_MAGIC = b"\x1f\x8b"
EXCERPT_CHARS = 160


@dataclass(frozen=True)
class BadLine:
    """A line that did not parse: its number, the reason and a short excerpt for a human."""

    line: int
    reason: str
    excerpt: str


_BODY_START = re.compile(r'"(?:input|output|inputBodyJson|outputBodyJson)"\s*:')


def excerpt(raw: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    """A short, printable, redacted excerpt of bad input: never the whole line, and nothing from the first body
    key on (Bedrock writes the envelope first, but a line from another writer may start with the prompt)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = text[: limit * 4]
    body = _BODY_START.search(text)
    if body:
        text = text[: body.start()]
    return redact_text(text[:limit])


def gunzip_tolerant(data: bytes) -> tuple[bytes, str | None]:
    """Decompress gzip (all members). Returns (what could be decompressed, error or None).

    Plain (non-gzip) bytes pass through unchanged: some readers see objects already decoded.
    """
    if not data.startswith(GZIP_MAGIC):
        return data, None
    chunks: list[bytes] = []
    rest = data
    while rest:
        if not rest.startswith(GZIP_MAGIC):
            if rest.strip(b"\x00"):
                return b"".join(chunks), "corrupt_gzip: trailing bytes after the last gzip member"
            break
        d = isal_zlib.decompressobj(31)
        try:
            chunks.append(d.decompress(rest))
            chunks.append(d.flush())
        except isal_zlib.error as exc:
            return b"".join(chunks), f"corrupt_gzip: {exc}"
        if not d.eof:
            return b"".join(chunks), "truncated_gzip: the object ends before the gzip stream does"
        rest = d.unused_data
    return b"".join(chunks), None


def _split_concatenated(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    out: list[Any] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        obj, end = decoder.raw_decode(text, pos)
        out.append(obj)
        pos = end
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
    return out


def iter_json_lines(payload: bytes) -> Iterator[tuple[int, Any] | BadLine]:
    """Yield (line number, record) per JSON record, or a `BadLine`. Line numbers are 1-based."""
    for number, raw in enumerate(payload.split(b"\n"), start=1):
        yield from iter_line(number, raw)


def iter_line(number: int, raw: bytes) -> Iterator[tuple[int, Any] | BadLine]:
    """The records of one line (none for a blank line, several for an array or concatenated objects).

    Split out of `iter_json_lines` so the fast path (`pipeline.normalize.fast`) can hand a single line it does
    not handle itself to exactly the same tolerant rules.
    """
    if not raw.strip():
        return
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            objs = _split_concatenated(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            yield BadLine(number, f"malformed_json: {str(exc)[:120] or type(exc).__name__}", excerpt(raw))
            return
        for o in objs:
            yield number, o
        return
    if isinstance(obj, list):
        for o in obj:
            yield number, o
    else:
        yield number, obj
