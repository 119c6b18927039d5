"""Bytes of a delivered log object to JSON records, tolerant of what real deliveries and faults look like.

Objects are gzip (detected by magic bytes, not by name or Content-Encoding, docs/formats/invocation-logs.md §2.2), may
be multi-member,
and may be cut short. A truncated or corrupt stream keeps every complete line before the damage and reports
the rest; a bad line never fails its file. Lines holding a JSON array or several concatenated objects are
split (§2.2, defensive parsing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
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

    Plain (non-gzip) bytes pass through unchanged: some readers see objects already decoded. Whole-object form of
    `iter_decompressed` for callers that want the bytes (tests, tools); the pipeline streams instead.
    """
    chunks: list[bytes] = []
    for piece in iter_decompressed(data):
        if isinstance(piece, DecompressError):
            return b"".join(chunks), piece.reason
        chunks.append(piece)
    return b"".join(chunks), None


@dataclass(frozen=True)
class DecompressError:
    """Where a gzip stream broke: everything before it was yielded, nothing after it is readable."""

    reason: str


IN_CHUNK = 1 << 20
"""Most compressed bytes handed to the decompressor at a time."""
FIRST_FEED = 4096
"""Compressed bytes first handed over for each gzip member (doubling up to `IN_CHUNK`)."""
OUT_CHUNK = 4 << 20
"""Most decompressed bytes produced per call: the decompressor never holds more than this however large the
object or its ratio (a 1 MB object of spaces inflates to 1 GB)."""


class _Input:
    """Compressed bytes from one `bytes` or a stream of chunks, handed out in slices that never span two chunks,
    so the decompressor's leftover input of a slice can be given back (`unread`) without a copy of the rest."""

    def __init__(self, data: bytes | Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter([data] if isinstance(data, bytes) else data)
        self._view = memoryview(b"")
        self._pos = 0

    def _fill(self) -> bool:
        """Make the current chunk non-empty; False at the end of the input."""
        while self._pos >= len(self._view):
            nxt = next(self._chunks, None)
            if nxt is None:
                return False
            self._view, self._pos = memoryview(nxt), 0
        return True

    def take(self, n: int) -> bytes:
        """Up to `n` bytes (fewer at a chunk's end); empty only at the end of the input."""
        if not self._fill():
            return b""
        out = bytes(self._view[self._pos : self._pos + n])
        self._pos += len(out)
        return out

    def unread(self, n: int) -> None:
        """Give back the last `n` bytes taken (at most one slice's worth, so inside the current chunk)."""
        self._pos -= n

    def peek(self, n: int) -> bytes:
        """The next `n` bytes without consuming them (fewer at the end); may join two chunks (rare: a gzip
        member's header cut by a chunk boundary)."""
        if not self._fill():
            return b""
        head = bytes(self._view[self._pos : self._pos + n])
        while len(head) < n:
            nxt = next(self._chunks, None)
            if nxt is None:
                break
            rest = bytes(self._view[self._pos :]) + bytes(nxt)
            self._view, self._pos = memoryview(rest), 0
            head = rest[:n]
        return head

    def rest_is_padding(self) -> bool:
        """Whether all that is left is zero bytes (what some writers pad an object with)."""
        while self._fill():
            if bytes(self._view[self._pos :]).strip(b"\x00"):
                return False
            self._pos = len(self._view)
        return True


def iter_decompressed(data: bytes | Iterable[bytes], out_chunk: int = OUT_CHUNK) -> Iterator[bytes | DecompressError]:
    """The decompressed bytes of an object, in pieces of at most `out_chunk`, then a `DecompressError` if the
    stream is damaged. `data` is the object's bytes or a stream of its chunks (`s3_logs.iter_object`): memory
    then holds one chunk, never the object. Linear in the object's size whatever its number of gzip members:
    input is fed in slices and only a member's (at most one slice of) unused input is carried into the next
    member, never the rest of the object. Plain bytes are yielded in slices as they are."""
    src = _Input(data)
    if not src.peek(2).startswith(GZIP_MAGIC):
        while piece := src.take(out_chunk):
            yield piece
        return
    while src.peek(1):
        if src.peek(2) != GZIP_MAGIC:
            if not src.rest_is_padding():
                yield DecompressError("corrupt_gzip: trailing bytes after the last gzip member")
            return
        d = isal_zlib.decompressobj(31)
        # Slices start small and double while the member goes on: a member's leftover input (`unused_data`, a
        # copy) is then at most about its own size, so 20,000 tiny members cost as much as one large one.
        feed = FIRST_FEED
        buf = src.take(feed)
        while True:
            try:
                out = d.decompress(buf, out_chunk)
            except isal_zlib.error as exc:  # type: ignore[misc]  # isal's stub declares `error` as an instance
                yield DecompressError(f"corrupt_gzip: {exc}")
                return
            if out:
                yield out
            if d.eof:
                src.unread(len(d.unused_data))  # the next member starts inside the slice just fed
                break
            buf = d.unconsumed_tail
            if not buf:
                feed = min(feed * 2, IN_CHUNK)
                buf = src.take(feed)
                if not buf:
                    yield DecompressError("truncated_gzip: the object ends before the gzip stream does")
                    return


@dataclass(frozen=True)
class LineBatch:
    """Complete lines of an object (each ending in a newline but perhaps the object's last) and the number of the
    first one, so that rejects name the object's own line numbers."""

    first_line: int
    data: bytes


BATCH_BYTES = 8 << 20
"""Decompressed bytes of complete lines handed to the parsers at a time (one line may make a batch longer)."""


def iter_line_batches(
    data: bytes | Iterable[bytes],
    *,
    max_object_bytes: int,
    max_line_bytes: int,
    batch_bytes: int = BATCH_BYTES,
) -> Iterator[LineBatch | BadLine]:
    """An object's complete lines in batches, with the limits enforced as it streams.

    Memory holds one batch, one decompressed piece and at most `max_line_bytes` of a line being assembled,
    whatever the object holds. A line longer than `max_line_bytes` is skipped to its end and reported as a
    `BadLine` (`line_too_long`); past `max_object_bytes` decompressed the rest of the object is not read and a
    `BadLine` (`object_too_large`) says so; a damaged gzip stream ends with a `BadLine` carrying the error and the
    incomplete last line's excerpt. Lines before any of these are kept.
    """
    too_long = f"line_too_long: over quality.max_line_bytes={max_line_bytes}"
    out_chunk = max(1, min(OUT_CHUNK, max_line_bytes))  # a line inside one piece is then never over the limit
    line = 1  # number of the next line to start
    pending: list[bytes] = []  # pieces of the line being assembled (no newline yet)
    pending_len = 0
    skipping = False  # inside a line that was already reported too long
    batch: list[bytes] = []
    batch_len = 0
    batch_first = 1
    total = 0

    def flush() -> Iterator[LineBatch]:
        nonlocal batch, batch_len, batch_first
        if batch:
            joined = b"".join(batch)
            yield LineBatch(batch_first, joined)
            batch, batch_len = [], 0
        batch_first = line

    for piece in iter_decompressed(data, out_chunk):
        if isinstance(piece, DecompressError):
            yield from flush()
            tail = b"".join(pending)
            yield BadLine(line, piece.reason, "" if skipping else excerpt(tail))
            return
        total += len(piece)
        if total > max_object_bytes:
            yield from flush()
            yield BadLine(
                line,
                f"object_too_large: more than quality.max_object_bytes={max_object_bytes} bytes decompressed; "
                f"lines from {line} on were not read",
                "",
            )
            return
        start = 0
        first_nl = piece.find(b"\n")
        if first_nl < 0:
            if skipping:
                continue
            pending.append(piece)
            pending_len += len(piece)
            if pending_len > max_line_bytes:
                yield from flush()
                yield BadLine(line, too_long, excerpt(pending[0][:1024]))
                pending, pending_len, skipping = [], 0, True
            continue
        # The line in progress ends at first_nl.
        if skipping:
            skipping = False
            line += 1
            start = first_nl + 1
        elif pending_len + first_nl > max_line_bytes:
            yield from flush()
            yield BadLine(line, too_long, excerpt(pending[0][:1024]))
            pending, pending_len = [], 0
            line += 1
            start = first_nl + 1
        last_nl = piece.rfind(b"\n")
        if start <= last_nl:
            if not batch:
                batch_first = line
            batch.extend(pending)
            batch_len += pending_len
            pending, pending_len = [], 0
            complete = piece[start : last_nl + 1]
            batch.append(complete)
            batch_len += len(complete)
            line += complete.count(b"\n")
        rest = piece[last_nl + 1 :]
        if rest:
            pending.append(rest)
            pending_len += len(rest)
        if batch_len >= batch_bytes:
            yield from flush()
    if not skipping and pending:
        if not batch:
            batch_first = line
        batch.extend(pending)
    yield from flush()


def iter_batch_lines(batch: LineBatch) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset, line) of each non-blank line of a batch. Blank lines are skipped in C (a
    batch of nothing but newlines costs a scan, not a Python object per line)."""
    data = batch.data
    line = batch.first_line
    pos = 0
    for m in _NON_EMPTY.finditer(data):
        line += data.count(b"\n", pos, m.start())
        pos = m.start()
        yield line, pos, m.group()


_NON_EMPTY = re.compile(rb"[^\n]+")


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
        except Exception as exc:  # noqa: BLE001 - any failure to decode one line (RecursionError, MemoryError…) rejects that line only
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
