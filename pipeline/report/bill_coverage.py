"""The report's bill-first section: how much of each kind of Bedrock spend the ledger explains and owns.

One horizontal bar per spend kind (largest bill first), split into the part explained from a usage source
(invocation logs, batch jobs), the part owned without one (resource tags, the bill's principal, a rule), and the
part nobody owns; the finding names the unowned dollars and why. Read from `bill_coverage`, only when it exists.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import polars as pl

from pipeline.reconciliation.bill_coverage import by_kind
from pipeline.report.chart import Section, figure_dict, label, labels, layout
from pipeline.report.data import ReportInputs
from pipeline.text import usd

PARTS: tuple[tuple[str, str, str], ...] = (
    ("explained_cost_usd", "explained by logs or batch jobs", "#0072B2"),
    ("owned_not_explained_usd", "owned by tags, principal or rule", "#009E73"),
    ("unallocated_cost_usd", "no owner", "#D55E00"),
)


def coverage_figure(table: pl.DataFrame, look: dict[str, Any]) -> dict[str, Any]:
    """The stacked bars as a plotly figure dict (`look` is the report's common layout, `chart.layout`)."""
    kinds = labels(list(reversed(table["spend_kind"].to_list())))  # largest on top
    fig = go.Figure()
    for column, name, colour in PARTS:
        values = list(reversed(table[column].to_list()))
        fig.add_trace(
            go.Bar(
                y=kinds,
                x=values,
                name=label(name),
                orientation="h",
                marker_color=colour,
                customdata=[usd(v) for v in values],
                hovertemplate="%{y}: %{customdata} " + label(name) + "<extra></extra>",
            )
        )
    fig.update_layout(**look, barmode="stack", xaxis={"title": "billed USD"})
    fig.update_yaxes(automargin=True)
    return figure_dict(fig)


def coverage_finding(table: pl.DataFrame) -> str:
    """One sentence: the bill, its explained and owned shares, and the unowned kinds with their reasons."""
    billed = float(table["billed_cost_usd"].sum() or 0.0)
    if billed == 0:
        return "Nothing was billed for Bedrock in this period."
    explained = float(table["explained_cost_usd"].sum() or 0.0)
    left = table.filter(pl.col("unallocated_cost_usd") > 0)
    owned = billed - float(left["unallocated_cost_usd"].sum() or 0.0)
    head = (
        f"Of {usd(billed)} billed, {explained / billed:.0%} is explained by invocation logs or batch jobs and "
        f"{owned / billed:.0%} has an owner"
    )
    if left.is_empty():
        return head + "; nothing is unallocated."
    worst = "; ".join(
        f"{r['spend_kind']} {usd(r['unallocated_cost_usd'])} ({r['unallocated_reasons'] or 'no reason recorded'})"
        for r in left.head(3).iter_rows(named=True)
    )
    return f"{head}; unallocated: {worst}."


def coverage_table(coverage: pl.DataFrame) -> pl.DataFrame:
    """`bill_coverage` per spend kind for the section (see `bill_coverage.by_kind`)."""
    return by_kind(coverage)


def bill_coverage_section(inputs: ReportInputs) -> Section | None:
    """Is the whole bill explained and owned: the section, when `bill_coverage` exists and something was billed."""
    cov = inputs.bill_coverage
    if cov is None or cov.is_empty():
        return None
    table = coverage_table(cov)
    if table.is_empty():
        return None
    return Section(
        key="bill_coverage",
        question="How much of the Bedrock bill does the ledger explain and own?",
        finding=coverage_finding(table),
        figure=coverage_figure(table, layout(max(220, 80 + 32 * table.height))),
        data=table,
    )
