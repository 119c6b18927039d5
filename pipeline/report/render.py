"""The report page: one HTML file with plotly.js inlined, each chart's figure and data embedded as JSON.

No request leaves the page (no CDN, no fonts, no map tiles), so it opens from a laptop's disk, an S3 download or
an e-mail attachment alike. Each section is a `<figure>` whose caption states the finding; the chart is drawn
from a `<script type="application/json">` block, and the same rows sit in a table under "Data" for screen
readers and for copying.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import polars as pl

from pipeline.report.chart import Section
from pipeline.report.words import pct
from pipeline.text import escape_for, usd

MONEY = {"last_7_days", "previous_7_days", "change", "estimated", "billed", "gap", "usd", "cost"}
SHARES = {"change_pct", "error_rate", "throttle_rate"}
MAX_TABLE_ROWS = 400

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: #1f2328; font: 15px/1.5 system-ui, -apple-system, "Segoe UI",
  Roboto, Helvetica, Arial, sans-serif; }
header, main, footer { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; }
h1 { font-size: 26px; margin: 0 0 4px; }
.sub { color: #57606a; margin: 0 0 16px; }
nav a { margin-right: 14px; color: #0b5cad; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin: 18px 0; }
.tile { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 14px; }
.tile .v { font-size: 22px; font-weight: 650; }
.tile .k { color: #57606a; font-size: 13px; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 10px; margin: 18px 0; padding: 18px 22px; }
section h2 { font-size: 15px; font-weight: 600; color: #57606a; margin: 0 0 4px; text-transform: none; }
figure { margin: 0; }
figcaption { font-size: 19px; font-weight: 650; line-height: 1.35; margin: 0 0 10px; }
.chart { width: 100%; }
.note { color: #57606a; font-size: 13px; margin: 8px 0 0; }
details { margin-top: 10px; }
summary { cursor: pointer; color: #0b5cad; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; width: 100%; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 4px 8px; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
h3 { font-size: 14px; margin: 14px 0 2px; }
.wrap { overflow-x: auto; }
footer { color: #57606a; font-size: 12px; padding-bottom: 30px; }
"""

BOOT = """
(function () {
  var blocks = document.querySelectorAll('script[type="application/json"][data-figure]');
  blocks.forEach(function (block) {
    var fig = JSON.parse(block.textContent);
    var target = document.getElementById(block.getAttribute('data-figure'));
    Plotly.newPlot(target, fig.data, fig.layout, {responsive: true, displaylogo: false, displayModeBar: false});
  });
})();
"""


def _h(value: object) -> str:
    """Text from the data (or a finding built from it) as HTML text: `<a href=…>` in a cost center stays text."""
    return escape_for(value, "html")


def _cell(name: str, value: Any) -> tuple[str, bool]:
    """A value formatted for people, and whether it is a number (right-aligned)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ("new" if name == "change_pct" else ""), name in SHARES
    if isinstance(value, bool):
        return str(value).lower(), False
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat(), False
    if isinstance(value, int | float):
        if name.endswith("_usd") or name in MONEY:
            return usd(float(value)), True
        if name in SHARES:
            return pct(float(value), 1 if abs(value) < 10 else 0), True
        if name == "pct_used":
            return f"{value:,.0f}%", True
        if isinstance(value, int):
            return f"{value:,}", True
        return f"{value:,.2f}", True
    return str(value), False


def table_html(df: pl.DataFrame, max_rows: int = MAX_TABLE_ROWS) -> str:
    """A frame as an HTML table with people's number formats (escaped; at most `max_rows` rows)."""
    if df.is_empty():
        return '<p class="note">none</p>'
    first = df.row(0, named=True)
    numeric = {c: _cell(c, first[c])[1] or c in MONEY | SHARES for c in df.columns}
    head = "".join(f'<th class="{"n" if numeric[c] else ""}">{_h(c.replace("_", " "))}</th>' for c in df.columns)
    rows = []
    for row in df.head(max_rows).iter_rows(named=True):
        cells = []
        for name, value in row.items():
            text, is_number = _cell(name, value)
            cells.append(f'<td class="n">{_h(text)}</td>' if is_number else f"<td>{_h(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<p class="note">{df.height - max_rows:,} more rows not shown</p>' if df.height > max_rows else ""
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>{more}'


def _json_script(obj: Any, figure_id: str) -> str:
    # `<` escaped so no string inside the JSON can close the script element.
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return f'<script type="application/json" data-figure="{figure_id}">{text}</script>'


def section_html(section: Section) -> str:
    """One section: question, captioned chart (or a note when there is nothing to draw), tables and data."""
    cid = f"chart-{section.key}"
    parts = [f'<section id="{section.key}" data-section="{section.key}">', f"<h2>{_h(section.question)}</h2>"]
    parts.append(f'<figure aria-labelledby="{cid}-caption">')
    parts.append(f'<figcaption id="{cid}-caption">{_h(section.finding)}</figcaption>')
    if section.figure is not None:
        parts.append(f'<div class="chart" id="{cid}" role="img" aria-label="{_h(section.finding)}"></div>')
        parts.append(_json_script(section.figure, cid))
    parts.append("</figure>")
    if section.note:
        parts.append(f'<p class="note">{_h(section.note)}</p>')
    for title, table in section.tables:
        parts.append(f"<h3>{_h(title)}</h3>{table_html(table)}")
    if section.figure is not None:
        parts.append(
            f"<details><summary>Data behind this chart ({section.data.height:,} rows)</summary>"
            f'<div data-rows="{section.key}">{table_html(section.data)}</div></details>'
        )
    parts.append("</section>")
    return "\n".join(parts)


def page(
    title: str,
    subtitle: str,
    tiles: list[tuple[str, str]],
    sections: list[Section],
    links: list[tuple[str, str]],
    plotly_js: str,
    generated_at: dt.datetime,
) -> str:
    """The whole report as one HTML document."""
    nav = "".join(f'<a href="{_h(href)}">{_h(text)}</a>' for text, href in links)
    toc = "".join(f'<a href="#{s.key}">{_h(s.question)}</a>' for s in sections)
    tile_html = "".join(
        f'<div class="tile"><div class="v">{_h(v)}</div><div class="k">{_h(k)}</div></div>' for k, v in tiles
    )
    body = "\n".join(section_html(s) for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_h(title)}</title>
<style>{CSS}</style>
<script>{plotly_js}</script>
</head>
<body>
<header>
<h1>{_h(title)}</h1>
<p class="sub">{_h(subtitle)}</p>
<nav>{nav}</nav>
<div class="tiles">{tile_html}</div>
<nav aria-label="sections">{toc}</nav>
</header>
<main>
{body}
</main>
<footer>Generated {generated_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")} by bedrock-ledger from the
warehouse's daily tables. Estimated costs use the price catalog; billed costs come from the AWS bill. No prompt or
response text is read or shown.</footer>
<script>{BOOT}</script>
</body>
</html>
"""
