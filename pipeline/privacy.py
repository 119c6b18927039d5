"""Redaction of prompt and response bodies, for users who opt in to keeping them (`retain_bodies: redacted`).

By default no body is stored at all. When kept, bodies pass through the masks below, modelled on the managed
data identifiers of CloudWatch Logs data protection:

- e-mail addresses → `[EMAIL]`;
- AWS access key ids (`AKIA…`, `ASIA…` and the other 4-letter id prefixes) → `[AWS_ACCESS_KEY]`, and
  40-character secret-looking keys (mixed case and digits, the shape of a secret access key) → `[AWS_SECRET]`;
- card-like numbers: 13-19 digits, optionally in groups separated by single spaces or dashes, starting with
  2-6 (the card networks' first digits) and passing the Luhn check → `[CARD]`;
- IPv4 addresses, and IPv6 addresses that the `ipaddress` module accepts → `[IP]` (times like `12:30:45` are
  not addresses);
- phone numbers written as phone numbers: a leading `+` or a bracketed area code, or 7-15 digits in 2-5
  groups separated by spaces, dots or dashes → `[PHONE]`. Bare digit runs (token counts, account ids, epoch
  times), dates (`2024-01-15`, `15.01.2024`) and thousands-grouped numbers (`12 345 678`) are left alone.

Limits (also in docs/privacy.md): pattern masking misses names, postal addresses, free-text secrets, phone
numbers written without any separator, and identifiers split across tokens, stream chunks or messages; it is a
reduction of exposure, not anonymisation. Stored text is capped at `MAX_CHARS`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import orjson

MAX_CHARS = 20_000
"""Longest redacted body stored, in characters."""
_SCAN_CHARS = MAX_CHARS * 2
"""Only this much of a body is scanned (a bound on the work per record); see `redact_body` for the seam."""
_SEAM = 256
TOO_DEEP = "[body not stored: nested too deeply to redact]"

# Every pattern starts only where a run of its characters starts (a lookbehind), so a long base64 blob (an image
# in a multimodal prompt) is scanned in linear time rather than retried from each of its characters.
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_AWS_KEY_ID = re.compile(
    r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{16}(?![A-Za-z0-9])"
)
_AWS_SECRET = re.compile(
    r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+=]*[a-z])(?=[A-Za-z0-9/+=]*[A-Z])(?=[A-Za-z0-9/+=]*[0-9])"
    r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
)
_CARD = re.compile(r"(?<![\d.-])[2-6]\d{3}(?:[ -]?\d){9,15}(?![\d-])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\.?\d)")
_IPV6_CANDIDATE = re.compile(r"(?<![0-9A-Za-z:])[0-9A-Fa-f:]{2,39}(?:%[0-9A-Za-z]+)?(?![0-9A-Za-z:])")
_PHONE = re.compile(
    r"(?<![\w+(])"
    r"(?:\+\d{1,3}[ .-]?|\+?\(\d{1,4}\)[ .-]?)?"  # country code, or an area code in brackets
    r"\d{1,4}(?:[ .-]\d{2,4}){1,4}"  # groups of digits
    r"(?![\w:]|[.-]\d)"  # not followed by more of a number, a word, or a time's colon
    r"|(?<![\w+])\+\d{7,15}(?!\w)"  # +E.164 written without separators
)
_DATE = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4})$")
_THOUSANDS = re.compile(r"^\d{1,3}(?:([ .])\d{3})(?:\1\d{3})*$")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _mask_card(m: re.Match[str]) -> str:
    """Mask the longest leading run of the match's digit groups that is a valid card number (13-19 digits,
    Luhn), so a card followed by another separated number is still caught."""
    text = m.group(0)
    if len(set(re.sub(r"\d", "", text))) > 1:  # one kind of separator, as cards are written
        return text
    cuts = [i for i, ch in enumerate(text) if not ch.isdigit()] + [len(text)]
    for cut in reversed(cuts):
        digits = re.sub(r"\D", "", text[:cut])
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            return "[CARD]" + text[cut:]
    return text


def _mask_ipv6(m: re.Match[str]) -> str:
    text = m.group(0)
    if text.count(":") < 2 or ("::" not in text and text.count(":") != 7):
        return text
    try:
        ipaddress.IPv6Address(text.split("%", 1)[0])
    except ValueError:
        return text
    return "[IP]"


def _mask_phone(m: re.Match[str]) -> str:
    text = m.group(0)
    digits = re.sub(r"\D", "", text)
    marked = text.startswith("+") or "(" in text
    if not 7 <= len(digits) <= 15:
        return text
    if not marked and (_DATE.match(text) or _THOUSANDS.match(text)):
        return text
    return "[PHONE]"


def redact_text(text: str) -> str:
    """Mask the identifiers listed in the module docstring in `text` (order matters: most specific first)."""
    text = _EMAIL.sub("[EMAIL]", text)
    text = _AWS_KEY_ID.sub("[AWS_ACCESS_KEY]", text)
    text = _AWS_SECRET.sub("[AWS_SECRET]", text)
    text = _CARD.sub(_mask_card, text)
    text = _IPV4.sub("[IP]", text)
    text = _IPV6_CANDIDATE.sub(_mask_ipv6, text)
    text = _PHONE.sub(_mask_phone, text)
    return text


def redact_body(body: Any) -> str | None:
    """A body (JSON object, list or string) as redacted text, capped in length; None for no body.

    Only the first `_SCAN_CHARS` characters are scanned; when a body is longer, the last `_SEAM` characters of
    the scanned part are dropped too, so an identifier cut in half by the scan limit is never stored half
    unmasked. A body too deeply nested to serialise is replaced by a marker rather than failing the day.
    """
    if body is None:
        return None
    if isinstance(body, str):
        text = body
    else:
        try:
            text = orjson.dumps(body).decode("utf-8")
        except (TypeError, ValueError, RecursionError):  # orjson stops at 255 levels of nesting
            return TOO_DEEP
    cut = len(text) > _SCAN_CHARS
    redacted = redact_text(text[:_SCAN_CHARS])
    if cut:
        redacted = redacted[:-_SEAM]
    return redacted[:MAX_CHARS]
