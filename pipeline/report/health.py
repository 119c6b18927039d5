"""Are the models fast and reliable: latency percentiles and error and throttle rates per model.

The error rate is the tables' `error_rate`, one definition everywhere: client errors + server errors + throttles
over calls (`pipeline.aggregates.daily.failed_calls`); the throttle rate is the throttled part of it.

The `TOP_N` models with the most calls are drawn by name; the rest are one `others` bar (their latency and rates
weighted by their calls), so a log full of invented model ids still draws a chart a browser can show.
"""

from __future__ import annotations

import polars as pl
from plotly.subplots import make_subplots

from pipeline.aggregates.daily import failed_calls
from pipeline.report.chart import OTHERS, Section, figure_dict, fold_others, grid, labels, layout
from pipeline.report.data import ReportInputs
from pipeline.report.words import pct, short_model

QUESTION = "Are the models fast and reliable?"
NOTE = (
    "Latency percentiles across accounts and regions (and days, month to date) are call-weighted means of the daily "
    "percentiles; a model without latency bars logged no latency. Throttles are the logged ones (and CloudWatch's "
    "where metrics are configured)."
)


def _weighted(col: str) -> pl.Expr:
    w = pl.col("invocations").cast(pl.Float64)
    ok = pl.col(col).is_not_null() & pl.col(col).is_not_nan()
    return ((pl.col(col) * w).filter(ok).sum() / w.filter(ok).sum()).alias(col.removeprefix("latency_ms_"))


def health_table(df: pl.DataFrame) -> pl.DataFrame:
    """Per model (the busiest `TOP_N`, then `others`): calls, call-weighted p50/p95/p99 and error/throttle rates,
    fewest calls first (the order of a horizontal bar chart, bottom up), `others` at the bottom."""
    folded, _ = fold_others(df, "base_model_id", pl.col("invocations").cast(pl.Float64))
    calls = pl.col("invocations").sum()
    return (
        folded.group_by("base_model_id")
        .agg(
            calls,
            _weighted("latency_ms_p50"),
            _weighted("latency_ms_p95"),
            _weighted("latency_ms_p99"),
            (failed_calls().sum() / calls).alias("error_rate"),
            (pl.col("throttles").sum() / calls).alias("throttle_rate"),
        )
        .with_columns(pl.col("p50", "p95", "p99").fill_nan(None))
        .sort(pl.col("base_model_id") != OTHERS, "invocations", "base_model_id", descending=[False, False, True])
    )


def _figure(health: pl.DataFrame) -> dict:
    names = labels([short_model(m) if m != OTHERS else OTHERS for m in health["base_model_id"]])
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=["latency (seconds)", "error rate, of which throttles (% of calls)"],
    )
    for col, colour in (("p50", "#9ecae1"), ("p95", "#4292c6"), ("p99", "#08306b")):
        seconds = [None if v is None else round(v / 1000, 2) for v in health[col]]
        fig.add_bar(y=names, x=seconds, orientation="h", name=col, marker_color=colour, row=1, col=1)
        fig.data[-1].hovertemplate = f"%{{y}} {col}: %{{x:.2f}} s<extra></extra>"
    for col, word, colour in (("error_rate", "error rate", "#D55E00"), ("throttle_rate", "throttles", "#CC79A7")):
        shares = [round((v or 0.0) * 100, 2) for v in health[col]]
        fig.add_bar(y=names, x=shares, orientation="h", name=word, marker_color=colour, row=1, col=2)
        fig.data[-1].hovertemplate = f"%{{y}} {word}: %{{x:.2f}}%<extra></extra>"
    fig.update_layout(**layout(max(300, 60 + 42 * len(names)), barmode="group"))
    fig.update_layout(margin={"l": 20, "r": 20, "t": 40, "b": 60})
    fig.update_yaxes(automargin=True)
    grid(fig)
    fig.update_xaxes(gridcolor="#e5e5e5")
    return figure_dict(fig)


def _finding(health: pl.DataFrame) -> str:
    named = health.filter(pl.col("base_model_id") != OTHERS)
    named = named if named.height else health
    parts = []
    slow = named.drop_nulls("p95").sort("p95", descending=True)
    if slow.height:
        s = slow.row(0, named=True)
        parts.append(f"{short_model(s['base_model_id'])} is the slowest (p95 {s['p95'] / 1000:.1f} s)")
    e = named.sort("error_rate", descending=True).row(0, named=True)
    parts.append(
        f"{short_model(e['base_model_id'])} fails most often ({pct(e['error_rate'], 1)} of calls, throttles included)"
        if (e["error_rate"] or 0) > 0
        else "no call failed or was throttled"
    )
    thr = named.sort("throttle_rate", descending=True).row(0, named=True)
    if (thr["throttle_rate"] or 0) > 0:
        parts.append(f"{short_model(thr['base_model_id'])} is throttled most ({pct(thr['throttle_rate'], 1)})")
    return "; ".join(parts) + "."


def model_health(inputs: ReportInputs) -> Section:
    """Latency p50/p95/p99 and error and throttle rates per model over the report's window."""
    df = inputs.by_model.filter(pl.col("date").is_in(inputs.window)) if inputs.by_model.height else inputs.by_model
    if df.is_empty():
        return Section("model_health", QUESTION, "No calls in this period.", None, pl.DataFrame())
    health = health_table(df)
    table = health.reverse().with_columns(
        pl.col("p50", "p95", "p99").round(0), pl.col("error_rate", "throttle_rate").round(4)
    )
    return Section(
        key="model_health",
        question=QUESTION,
        finding=_finding(health),
        figure=_figure(health),
        data=table,
        note=NOTE,
    )
