"""Redaction of prompt and response bodies, for users who opt in to keeping them (`retain_bodies: redacted`).

By default no body is stored at all. When kept, bodies pass through the masks below, modelled on the managed
data identifiers of CloudWatch Logs data protection: e-mail addresses, IPv4/IPv6 addresses, phone numbers, AWS
access key ids and secret-looking keys, and card-like numbers (13-19 digits passing the Luhn check). Limits:
pattern masking misses names, addresses, free-text secrets and identifiers split across tokens or messages; it
is a reduction of exposure, not anonymisation. Stored text is capped at `MAX_CHARS`.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

MAX_CHARS = 20_000

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b")
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")
_IPV4 = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")
_IPV6 = re.compile(r"\b(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_PHONE = re.compile(r"(?<![\w.])\+?\(?\d{1,4}\)?[ .-]?\(?\d{2,4}\)?[ .-]?\d{3,4}[ .-]?\d{3,4}(?![\w.])")


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
    digits = re.sub(r"\D", "", m.group(0))
    return "[CARD]" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else m.group(0)


def redact_text(text: str) -> str:
    """Mask the identifiers listed in the module docstring in `text`."""
    text = _EMAIL.sub("[EMAIL]", text)
    text = _AWS_KEY_ID.sub("[AWS_ACCESS_KEY]", text)
    text = _AWS_SECRET.sub("[AWS_SECRET]", text)
    text = _CARD.sub(_mask_card, text)
    text = _IPV4.sub("[IP]", text)
    text = _IPV6.sub("[IP]", text)
    text = _PHONE.sub("[PHONE]", text)
    return text


def redact_body(body: Any) -> str | None:
    """A body (JSON object, list or string) as redacted text, capped in length; None for no body."""
    if body is None:
        return None
    text = body if isinstance(body, str) else orjson.dumps(body).decode("utf-8")
    return redact_text(text[: MAX_CHARS * 2])[:MAX_CHARS]
