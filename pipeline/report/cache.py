"""Is prompt caching paying off: net saving per application (when `daily_cache_economics` exists).

Applications are named by callers, so a day can hold a million: the `TOP_N` with the largest net saving or loss
are drawn by name and the rest are one `others` bar with their summed saving.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from pipeline.report.chart import OTHERS, Section, figure_dict, fold_others, grid, labels, layout
from pipeline.report.data import ReportInputs
from pipeline.text import signed_usd, usd

SAVING_COLUMNS = ("net_saving_usd", "net_savings_usd", "net_saved_usd", "saving_usd", "savings_usd")


def savings_by_application(df: pl.DataFrame, col: str) -> tuple[pl.DataFrame, int]:
    """Net saving per application (`others` summing past the `TOP_N` largest |saving|), smallest first, and how
    many applications `others` holds."""
    per_app = df.group_by(pl.col("application").fill_null("unattributed")).agg(
        pl.col(col).fill_null(0.0).sum().alias("net_saving_usd")
    )
    folded, rest = fold_others(per_app, "application", pl.col("net_saving_usd"))
    summed = folded.group_by("application").agg(pl.col("net_saving_usd").sum())
    return summed.sort("net_saving_usd", "application"), rest


def _figure(per_app: pl.DataFrame) -> dict:
    values = per_app["net_saving_usd"].to_list()
    fig = go.Figure(
        go.Bar(
            y=labels(per_app["application"].to_list()),
            x=[round(v, 2) for v in values],
            orientation="h",
            marker_color=["#009E73" if v >= 0 else "#D55E00" for v in values],
            text=[signed_usd(v) for v in values],
            textposition="auto",
            hovertemplate="%{y}: %{text} net<extra></extra>",
        )
    )
    fig.update_layout(
        **layout(
            max(220, 60 + 36 * per_app.height), showlegend=False, xaxis={"title": "net saving (USD)", "tickprefix": "$"}
        )
    )
    fig.update_layout(margin={"l": 20, "r": 20, "t": 20, "b": 50})
    fig.update_yaxes(automargin=True)
    grid(fig)
    return figure_dict(fig)


def cache_savings(inputs: ReportInputs) -> Section | None:
    """Net saving of prompt caching per application, when `daily_cache_economics` exists."""
    df = inputs.cache
    if df is None or df.is_empty() or "application" not in df.columns:
        return None
    col = next((c for c in SAVING_COLUMNS if c in df.columns), None)
    col = col or next((c for c in df.columns if "saving" in c and c.endswith("_usd")), None)
    if col is None:
        return None
    per_app, rest = savings_by_application(df, col)
    named = per_app.filter(pl.col("application") != OTHERS)
    named = named if named.height else per_app
    total = float(per_app["net_saving_usd"].sum() or 0.0)
    best, worst = named.row(named.height - 1, named=True), named.row(0, named=True)
    finding = (
        f"Prompt caching {'saved' if total >= 0 else 'cost'} {usd(abs(total))} net; "
        f"{best['application']} saved the most ({usd(best['net_saving_usd'])})"
    )
    if worst["net_saving_usd"] < 0:
        finding += f"; {worst['application']} lost {usd(-worst['net_saving_usd'])} (writes not paying back)"
    return Section(
        key="cache_savings",
        question="Is prompt caching paying off?",
        finding=finding + ".",
        figure=_figure(per_app),
        data=per_app.with_columns(pl.col("net_saving_usd").round(2)),
        note=f"{rest:,} more applications are summed as {OTHERS}." if rest else "",
    )
