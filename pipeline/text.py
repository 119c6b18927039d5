"""Words and numbers for people, one way everywhere: money as `usd()`, strings escaped for where they land.

A dollar figure read in the report, an alert, a check's description and the CLI must look the same: the docs
promise cents below $100 and whole dollars from $100, and a $0.42 budget printed as "$0" once made a forecast
read "270% of its $0 budget". Strings that come from logs, bills or config (a cost center, an application id, a
model id) are set by whoever calls Bedrock or writes the config: they are escaped for the context they land in, so
a cost center named `<a href=…>` is text in HTML, in a chart label, in Dagster's markdown and in Slack, never a link.
"""

from __future__ import annotations

import html
import math
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

Context = Literal["html", "plotly_label", "dagster_markdown", "slack_mrkdwn", "plain"]
CONTEXTS: tuple[str, ...] = ("html", "plotly_label", "dagster_markdown", "slack_mrkdwn", "plain")

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")
_MAX_PLAIN = 200


def usd(x: float | int | None) -> str:
    """Dollars for people: `$1,234` from $100 up, `$12.34` below, `<$0.01` for crumbs, `n/a` for no number.

    Negatives carry a minus sign in front (`-$12.34`), never `$-12.34`.
    """
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "n/a"
    sign = "-" if x < 0 else ""
    a = abs(float(x))
    if 0 < a < 0.005:
        return f"{sign}<$0.01"
    cents = _half_up(a, 2)
    return f"{sign}${_half_up(a, 0):,}" if cents >= 100 else f"{sign}${cents:,}"


def _half_up(a: float, places: int) -> Decimal:
    """`a` rounded as money is (half a cent or half a dollar up, $184.50 → $185), from its shortest decimal form
    (2.675 is 2.675, not the binary 2.67499…): Python's own formatting rounds halves to even."""
    return Decimal(repr(a)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def signed_usd(x: float) -> str:
    """An amount of change: `+$12.34` / `-$12.34`."""
    return ("+" if x >= 0 else "") + usd(x)


def escape_for(value: object, context: Context) -> str:
    """`value` as text that stays text in `context`.

    - `html`: entities for `& < > " '` (element content and quoted attributes).
    - `plotly_label`: Plotly renders a subset of HTML in labels, legends and hovers (`<a>`, `<b>`, `<br>`); its
      labels are escaped like HTML (quotes as numeric entities, which plotly decodes), and they are placed in a
      `<script>` as JSON, so `</` never closes it.
    - `dagster_markdown`: Markdown's punctuation backslash-escaped and `<`/`>` as entities (no raw HTML, no links).
    - `slack_mrkdwn`: Slack's three control characters `& < >` as entities (its only required escaping), so
      `<https://…|text>` links and `<!channel>` mentions can't be formed from data.
    - `plain`: control characters removed and the length capped, for terminals, logs and SNS subjects.
    """
    text = "" if value is None else str(value)
    text = _CONTROL.sub("", text)
    if context == "html":
        return html.escape(text, quote=True)
    if context == "plotly_label":
        # Plotly decodes numeric entities and only a few named ones (`&amp; &lt; &gt;`, not `&quot;`).
        return html.escape(text, quote=True).replace("&quot;", "&#34;").replace("/", "&#47;")
    if context == "dagster_markdown":
        return _MARKDOWN_SPECIAL.sub(r"\\\1", text.replace("<", "&lt;").replace(">", "&gt;"))
    if context == "slack_mrkdwn":
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if context == "plain":
        return text if len(text) <= _MAX_PLAIN else text[: _MAX_PLAIN - 1] + "…"
    raise ValueError(f"unknown escape context {context!r}; expected one of {', '.join(CONTEXTS)}")
