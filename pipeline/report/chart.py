"""What every report section is made of: the `Section` record, the charts' look, and the top-N rule.

Colours are the Okabe-Ito palette (safe for the common colour-vision deficiencies) with grey for "others"; the
heatmap uses cividis. A chart a person reads never has one bar or series per caller: applications, users and
cost centers are set by whoever calls Bedrock, and a day can hold a million of them, so charts and their tables
show the largest `TOP_N` and one `others` row that sums the rest (the warehouse tables keep every row).
Every string drawn by plotly (trace names, category labels, subplot titles) goes through `label`: plotly renders
a subset of HTML there, and a cost center named `<a href=…>` must stay text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
import polars as pl

from pipeline.text import escape_for

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"]
OTHER_COLOUR = "#999999"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"
TOP_N = 20
"""Bars, rows and panels a chart or chart table shows before the rest is summed as `others`."""
OTHERS = "others"


@dataclass
class Section:
    """One question, one chart (None when there is nothing to draw), the finding and the chart's data rows."""

    key: str
    question: str
    finding: str
    figure: dict[str, Any] | None
    data: pl.DataFrame
    tables: list[tuple[str, pl.DataFrame]] = field(default_factory=list)
    note: str = ""


def label(value: object) -> str:
    """A string from the data as plotly text (legend, axis category, hover, title): markup stays text."""
    return escape_for(value, "plotly_label")


def title(value: object, width: int = 40) -> str:
    """`label` for a title over a small chart: cut to `width` characters (a long name would run into its
    neighbour's title). Not for categories: two names cut alike would be drawn as one bar."""
    text = str(value)
    return label(text if len(text) <= width else text[: width - 1] + "…")


def labels(values: list[Any]) -> list[str]:
    """`label` for each value."""
    return [label(v) for v in values]


def fold_others(df: pl.DataFrame, key: str, weight: pl.Expr, n: int = TOP_N) -> tuple[pl.DataFrame, int]:
    """`df` with `key` replaced by `others` outside the `n` keys of largest total |`weight`|, and how many keys
    were folded. Aggregate the result by `key` to get at most n + 1 rows; nothing is dropped, only summed.

    A single leftover key keeps its name (an `others` row of one says less than the name).
    """
    if df.is_empty():
        return df, 0
    totals = df.group_by(key).agg(weight.abs().sum().alias("_w"))
    if totals.height <= n + 1:
        return df, 0
    top = totals.top_k(n, by=["_w", key], reverse=[False, True])[key]
    folded = df.with_columns(
        pl.when(pl.col(key).is_in(top.implode())).then(pl.col(key)).otherwise(pl.lit(OTHERS)).alias(key)
    )
    return folded, totals.height - n


def layout(height: int, **extra: Any) -> dict[str, Any]:
    """The house layout: font, white background, legend under the chart, full hover names."""
    out: dict[str, Any] = {
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
        "font": {"family": FONT, "size": 13, "color": "#222"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "legend": {"orientation": "h", "y": -0.18, "x": 0},
        "hoverlabel": {"namelength": -1},
    }
    out.update(extra)
    return out


def grid(fig: go.Figure) -> None:
    """Light horizontal grid lines, no vertical ones."""
    fig.update_xaxes(showgrid=False, linecolor="#888", ticks="outside")
    fig.update_yaxes(gridcolor="#e5e5e5", zerolinecolor="#888")


def figure_dict(fig: go.Figure) -> dict[str, Any]:
    """The figure as plain JSON values (plotly's encoder turns arrays and dates into lists and strings)."""
    return json.loads(fig.to_json())
