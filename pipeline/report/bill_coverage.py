"""The report's bill-first section: how much of each kind of Bedrock spend the ledger explains and owns.

One horizontal bar per spend kind (largest bill first), split into the part explained from a usage source
(invocation logs, batch jobs), the part owned without one (resource tags, the bill's principal, a rule), and the
part nobody owns; capacity commitments (Provisioned Throughput) split instead into hours that served logged calls
and idle hours with an owner. The finding names the capacity, the unowned dollars and why. Read from
`bill_coverage`, only when it exists.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import polars as pl

from pipeline.reconciliation.bill_coverage import by_kind
from pipeline.report.chart import Section, figure_dict, label, labels, layout
from pipeline.report.data import ReportInputs
from pipeline.text import usd
from pipeline.vocabulary import CAPACITY_SPEND_KINDS

PARTS: tuple[tuple[str, str, str], ...] = (
    ("capacity_used_usd", "capacity serving logged calls", "#56B4E9"),
    ("idle_capacity_usd", "idle capacity, owned", "#E69F00"),
    ("explained_cost_usd", "explained by logs or batch jobs", "#0072B2"),
    ("owned_not_explained_usd", "owned by tags, principal or rule", "#009E73"),
    ("unallocated_cost_usd", "no owner", "#D55E00"),
)
CAPACITY_PARTS = ("capacity_used_usd", "idle_capacity_usd")


def coverage_figure(table: pl.DataFrame, look: dict[str, Any]) -> dict[str, Any]:
    """The stacked bars as a plotly figure dict (`look` is the report's common layout, `chart.layout`)."""
    kinds = labels(list(reversed(table["spend_kind"].to_list())))  # largest on top
    fig = go.Figure()
    for column, name, colour in PARTS:
        if column in CAPACITY_PARTS and not (table[column] > 0).any():
            continue  # no capacity billed: no empty legend entries
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
        f"Of {usd(billed)} billed, {_capacity_clause(table, billed)}{explained / billed:.0%} is explained by "
        f"invocation logs or batch jobs and {owned / billed:.0%} has an owner"
    )
    if left.is_empty():
        return head + "; nothing is unallocated."
    worst = "; ".join(
        f"{r['spend_kind']} {usd(r['unallocated_cost_usd'])} ({r['unallocated_reasons'] or 'no reason recorded'})"
        for r in left.head(3).iter_rows(named=True)
    )
    return f"{head}; unallocated: {worst}."


def _capacity_clause(table: pl.DataFrame, billed: float) -> str:
    """The finding's capacity part (`98% is capacity (Provisioned Throughput: $X served logged calls and $Y sat
    idle), `), empty when no capacity with an owner was billed (unowned idle hours are in the unallocated part)."""
    used = float(table["capacity_used_usd"].sum() or 0.0)
    idle = float(table["idle_capacity_usd"].sum() or 0.0)
    if used + idle <= 0:
        return ""
    names = ", ".join(CAPACITY_SPEND_KINDS[k] for k in table["spend_kind"] if k in CAPACITY_SPEND_KINDS)
    did = [f"{usd(used)} served logged calls" if used > 0 else "", f"{usd(idle)} sat idle" if idle > 0 else ""]
    return f"{(used + idle) / billed:.0%} is capacity ({names}: {' and '.join(d for d in did if d)}), "


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
