"""Which team will overrun its budget: spend to date per budgeted cost center, its run-rate forecast, its budget.

One small chart per cost center, for the `PANELS` fullest budgets; the table lists the `TOP_N` fullest and one
`others` row summing the rest, and cost centers spending without a budget are named up to `TOP_N`.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from pipeline.report.chart import OTHERS, TOP_N, Section, figure_dict, grid, layout, title
from pipeline.report.data import ReportInputs
from pipeline.text import usd

PANELS = 12
"""Small multiples drawn (the fullest budgets first): four rows of three still read at a glance."""
QUESTION = "Which team will overrun its budget?"
TABLE_COLUMNS = ("cost_center", "budget_usd", "spend_to_date_usd", "forecast_month_end_usd", "pct_used", "status")


def _month_days(day: dt.date) -> tuple[list[dt.date], dt.date]:
    month_end = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    return [day.replace(day=1) + dt.timedelta(days=i) for i in range(day.day)], month_end


def _spend_by_day(daily: pl.DataFrame, cost_centers: list[str]) -> dict[str, dict[dt.date, float]]:
    if not daily.height:
        return {}
    spend = (
        daily.filter(pl.col("cost_center").is_in(cost_centers))
        .group_by("cost_center", "date")
        .agg(pl.col("total_cost_usd").fill_null(0.0).sum())
    )
    out: dict[str, dict[dt.date, float]] = {}
    for cc, d, usd_ in spend.iter_rows():
        out.setdefault(cc, {})[d] = usd_
    return out


def _panel_traces(r: dict[str, Any], cumulative: list[float], days: list[dt.date], end: dt.date) -> list[go.Scatter]:
    """Spend to date, the forecast to month end, and the budget line of one cost center."""
    forecast, budget = round(float(r["forecast_month_end_usd"] or 0.0), 2), float(r["budget_usd"])
    return [
        go.Scatter(
            x=[d.isoformat() for d in days],
            y=cumulative,
            mode="lines+markers",
            name="spend to date",
            line={"color": "#0072B2", "width": 3},
            marker={"size": 5},
            legendgroup="spend",
            hovertemplate="%{x}: $%{y:,.2f} spent<extra></extra>",
        ),
        go.Scatter(
            x=[days[-1].isoformat(), end.isoformat()],
            y=[cumulative[-1], forecast],
            mode="lines",
            name="forecast (run rate)",
            line={"color": "#E69F00", "width": 2, "dash": "dash"},
            legendgroup="forecast",
            hovertemplate="%{x}: $%{y:,.2f} forecast<extra></extra>",
        ),
        go.Scatter(
            x=[days[0].isoformat(), end.isoformat()],
            y=[budget, budget],
            mode="lines",
            name="budget",
            line={"color": "#000000", "width": 1.5, "dash": "dot"},
            legendgroup="budget",
            hovertemplate="budget $%{y:,.2f}<extra></extra>",
        ),
    ]


def _figure(budgets: pl.DataFrame, inputs: ReportInputs) -> tuple[go.Figure, pl.DataFrame]:
    """The small multiples of the first `PANELS` budgets, and the rows they draw."""
    panels = budgets.head(PANELS)
    days, end = _month_days(inputs.day)
    cols = min(3, panels.height)
    rows = math.ceil(panels.height / cols)
    titles = [f"{title(r['cost_center'], 30)}: {r['pct_used']:,.0f}% used" for r in panels.iter_rows(named=True)]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.08, vertical_spacing=0.16)
    spend = _spend_by_day(inputs.month_by_cost_center, panels["cost_center"].to_list())
    data_rows: list[dict[str, Any]] = []
    for i, r in enumerate(panels.iter_rows(named=True)):
        by_day, running, cumulative = spend.get(r["cost_center"], {}), 0.0, []
        for d in days:
            running += by_day.get(d) or 0.0
            cumulative.append(round(running, 2))
            data_rows.append(
                {"cost_center": r["cost_center"], "date": d, "series": "spend to date", "usd": cumulative[-1]}
            )
        for trace in _panel_traces(r, cumulative, days, end):
            trace.showlegend = i == 0
            fig.add_trace(trace, row=i // cols + 1, col=i % cols + 1)
        for series, value in (("forecast", r["forecast_month_end_usd"]), ("budget", r["budget_usd"])):
            data_rows.append(
                {"cost_center": r["cost_center"], "date": end, "series": series, "usd": round(value or 0.0, 2)}
            )
    fig.update_layout(**layout(60 + 280 * rows, legend={"orientation": "h", "y": -0.12 / rows, "x": 0}))
    fig.update_layout(margin={"l": 60, "r": 20, "t": 40, "b": 70})
    fig.update_yaxes(tickprefix="$", rangemode="tozero")
    fig.update_xaxes(tickformat="%b %d", range=[days[0].isoformat(), end.isoformat()])
    grid(fig)
    return fig, pl.DataFrame(data_rows)


def _finding(budgets: pl.DataFrame) -> str:
    worst = budgets.row(0, named=True)
    finding = (
        f"{worst['cost_center']} is at {worst['pct_used']:.0f}% of its monthly budget "
        f"({usd(worst['spend_to_date_usd'])} of {usd(worst['budget_usd'])})"
    )
    forecast_over = budgets.filter(
        (pl.col("forecast_month_end_usd") > pl.col("budget_usd")) & (pl.col("pct_used") < 100)
    )
    if forecast_over.height:
        f = forecast_over.row(0, named=True)
        finding += (
            f"; {f['cost_center']} is forecast to end the month at "
            f"{f['forecast_month_end_usd'] / f['budget_usd'] * 100:.0f}% ({usd(f['forecast_month_end_usd'])})"
        )
        if forecast_over.height > 1:
            more = forecast_over.height - 1
            finding += f" and {more:,} more cost center{'s are' if more > 1 else ' is'} forecast over budget"
    over = budgets.filter(pl.col("pct_used") >= 100).height
    return (
        finding + f". {over:,} of {budgets.height:,} budgeted cost centers {'is' if over == 1 else 'are'} over budget."
    )


def status_rows(budgets: pl.DataFrame, n: int = TOP_N) -> pl.DataFrame:
    """The `n` fullest budgets and, past them, one `others` row: budgets, spend and forecasts summed, its share
    of budget used from those sums, and how many cost centers it holds in `status`."""
    table = budgets.select(TABLE_COLUMNS)
    if table.height <= n + 1:
        return table
    rest = table.slice(n)
    others = rest.select(
        pl.lit(OTHERS).alias("cost_center"),
        pl.col("budget_usd").sum(),
        pl.col("spend_to_date_usd").sum(),
        pl.col("forecast_month_end_usd").sum(),
        (pl.col("spend_to_date_usd").sum() / pl.col("budget_usd").sum() * 100).alias("pct_used"),
        pl.lit(f"{rest.height:,} cost centers").alias("status"),
    )
    return pl.concat([table.head(n), others], how="vertical_relaxed")


def _unbudgeted_note(budget_status: pl.DataFrame, n: int = TOP_N) -> str:
    spending = budget_status.filter(pl.col("budget_usd").is_null() & (pl.col("spend_to_date_usd") > 0)).sort(
        "spend_to_date_usd", "cost_center", descending=[True, False]
    )
    if not spending.height:
        return ""
    named = spending.head(n).select("cost_center", "spend_to_date_usd").iter_rows()
    note = "No budget: " + ", ".join(f"{cc} ({usd(spent)})" for cc, spent in named)
    if spending.height > n:
        rest = spending.slice(n)
        note += f", and {rest.height:,} more ({usd(float(rest['spend_to_date_usd'].sum()))})"
    return note


def budget_burndown(inputs: ReportInputs) -> Section:
    """Per budgeted cost center: spend to date by day, the run-rate forecast to month end, and the budget."""
    budgets = inputs.budgets.filter(pl.col("budget_usd").is_not_null()).sort(
        "pct_used", "cost_center", descending=[True, False]
    )
    if budgets.is_empty():
        return Section(
            key="budgets",
            question=QUESTION,
            finding="No budgets are configured (`budgets:` in ledger.yaml), so there is nothing to burn down.",
            figure=None,
            data=pl.DataFrame(),
        )
    fig, data = _figure(budgets, inputs)
    note = _unbudgeted_note(inputs.budgets)
    if budgets.height > PANELS:
        note = f"The chart shows the {PANELS} fullest of {budgets.height:,} budgets. {note}".strip()
    return Section(
        key="budgets",
        question=QUESTION,
        finding=_finding(budgets),
        figure=figure_dict(fig),
        data=data,
        tables=[("Budget status", status_rows(budgets))],
        note=note,
    )
