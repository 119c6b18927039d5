"""Where the money went: daily cost stacked by cost center or by model, and the week's biggest movers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import plotly.graph_objects as go
import polars as pl

from pipeline.report.chart import OKABE_ITO, OTHER_COLOUR, OTHERS, Section, figure_dict, grid, label, layout
from pipeline.report.data import MOVER_DAYS, ReportInputs
from pipeline.report.words import pct, short_model
from pipeline.text import signed_usd, usd

TOP_SERIES = 7
"""Cost charts stack at most this many series; the rest are summed as `others` (a legend of 30 names is noise)."""
TOP_MOVERS = 5


def _top_names(totals: pl.DataFrame, key: str, n: int = TOP_SERIES) -> list[str]:
    """The `n` keys of largest `cost` in `totals` (one row per key), largest first; all of them when only one more."""
    if totals.height > n + 1:
        totals = totals.top_k(n, by=["cost", key], reverse=[False, True])
    return totals.sort(["cost", key], descending=[True, False])[key].to_list()


def movers(daily: pl.DataFrame, key: str, day: dt.date, top: int = TOP_MOVERS) -> pl.DataFrame:
    """The biggest changes in cost: the 7 days ending `day` against the 7 days before, by absolute change."""
    this_start = day - dt.timedelta(days=MOVER_DAYS - 1)
    prev_start = this_start - dt.timedelta(days=MOVER_DAYS)
    if daily.is_empty():
        return pl.DataFrame(
            schema={key: pl.String, "last_7_days": pl.Float64, "previous_7_days": pl.Float64, "change": pl.Float64}
        )
    cost = pl.col("total_cost_usd").fill_null(0.0)
    wide = (
        daily.filter(pl.col("date").is_between(prev_start, day))
        .group_by(key)
        .agg(
            cost.filter(pl.col("date") >= this_start).sum().alias("last_7_days"),
            cost.filter(pl.col("date") < this_start).sum().alias("previous_7_days"),
        )
    )
    return (
        wide.with_columns(pl.col("last_7_days", "previous_7_days").fill_null(0.0))
        .with_columns((pl.col("last_7_days") - pl.col("previous_7_days")).alias("change"))
        .with_columns(
            pl.when(pl.col("previous_7_days") > 0)
            .then(pl.col("change") / pl.col("previous_7_days"))
            .otherwise(None)
            .alias("change_pct")
        )
        .top_k(top, by=[pl.col("change").abs(), key], reverse=[False, True])
        .sort(pl.col("change").abs(), key, descending=[True, False])
        .select(key, "last_7_days", "previous_7_days", "change", "change_pct")
    )


def _mover_words(mv: pl.DataFrame, key: str, name: Callable[[str], str] = str) -> str:
    if mv.is_empty() or abs(mv["change"][0]) < 0.005:
        return "no change worth noting against the previous week"
    r = mv.row(0, named=True)
    rel = f" ({'+' if r['change'] >= 0 else ''}{pct(r['change_pct'])})" if r["change_pct"] is not None else " (new)"
    return f"biggest move vs the previous week: {name(r[key])} {signed_usd(r['change'])}{rel}"


def _trend(daily: pl.DataFrame, key: str, days: list[dt.date]) -> pl.DataFrame:
    """Cost per day and key over `days`."""
    if not daily.height:
        return pl.DataFrame(schema={"date": pl.Date, key: pl.String, "cost": pl.Float64})
    return (
        daily.filter(pl.col("date").is_in(days))
        .group_by("date", key)
        .agg(pl.col("total_cost_usd").fill_null(0.0).sum().alias("cost"))
    )


def _stacked(series: pl.DataFrame, names: list[str], name: Callable[[str], str]) -> go.Figure:
    """One bar trace per series name, stacked by day; `others` in grey."""
    fig = go.Figure()
    for i, series_name in enumerate(names):
        part = series.filter(pl.col("series") == series_name)
        shown = OTHERS if series_name == OTHERS else name(series_name)
        fig.add_bar(
            x=[d.isoformat() for d in part["date"]],
            y=[round(v, 2) for v in part["cost"]],
            name=label(shown),
            marker_color=OTHER_COLOUR if series_name == OTHERS else OKABE_ITO[i % len(OKABE_ITO)],
            hovertemplate="%{fullData.name}<br>%{x}: $%{y:,.2f}<extra></extra>",
        )
    fig.update_layout(
        **layout(380, barmode="stack", yaxis={"title": "cost (USD, estimated)", "tickprefix": "$"}),
        xaxis={"type": "date", "tickformat": "%b %d"},
    )
    grid(fig)
    return fig


def cost_by(inputs: ReportInputs, key: str) -> Section:
    """Stacked daily cost by cost center or by model over the trend window, and the top movers."""
    daily = inputs.by_cost_center if key == "cost_center" else inputs.by_model
    name: Callable[[str], str] = short_model if key == "base_model_id" else str
    noun = "cost center" if key == "cost_center" else "model"
    trend = _trend(daily, key, inputs.trend)
    totals = trend.group_by(key).agg(pl.col("cost").sum())
    top = _top_names(totals, key)
    series = trend.with_columns(
        pl.when(pl.col(key).is_in(top)).then(pl.col(key)).otherwise(pl.lit(OTHERS)).alias("series")
    )
    series = series.group_by("date", "series").agg(pl.col("cost").sum()).sort("date", "series")
    names = [*top, *([OTHERS] if OTHERS in set(series["series"]) and OTHERS not in top else [])]
    fig = _stacked(series, names, name)
    total = float(trend["cost"].sum() or 0.0)
    days = len(inputs.trend)
    span = "the last day" if days == 1 else f"the last {days} days" if inputs.kind == "daily" else "this month so far"
    mv = movers(daily, key, inputs.day) if daily.height else movers(pl.DataFrame(), key, inputs.day)
    if total <= 0:
        finding = f"No estimated cost over {span}."
    else:
        lead = totals.top_k(1, by=["cost", key], reverse=[False, True]).row(0)
        finding = (
            f"{name(lead[0])} spent the most of any {noun}: {usd(lead[1])} of {usd(total)} over {span} "
            f"({pct(lead[1] / total)}); {_mover_words(mv, key, name)}."
        )
    return Section(
        key=f"cost_by_{key}",
        question=f"Where did the money go, by {noun}?",
        finding=finding,
        figure=figure_dict(fig),
        data=series.rename({"series": noun}).select(pl.col("date"), pl.col(noun), pl.col("cost").round(2)),
        tables=[(f"Top movers: the 7 days to {inputs.day} against the 7 days before", mv.rename({key: noun}))],
    )
