"""Are the logs complete: the share of calls the logs hold, per region and UTC hour (when `log_completeness` exists).

Regions come from where the logs were found (AWS's own key layout and the configured discovery), so the rows stay
few; the heatmap still draws at most `TOP_N` of them, the least complete first.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from pipeline.report.chart import TOP_N, Section, figure_dict, labels, layout
from pipeline.report.data import ReportInputs
from pipeline.report.words import pct


def _coverage_grid(df: pl.DataFrame) -> pl.DataFrame | None:
    """Per region and hour: `coverage` (0–1), with `logged` and `counted` when the metrics' counts are there."""
    logged = next((c for c in ("logged_invocations", "log_invocations") if c in df.columns), None)
    metric = next((c for c in ("metric_invocations", "metrics_invocations") if c in df.columns), None)
    if logged and metric:
        # Like the completeness check's day coverage: an hour logging more than the metrics counted (late
        # deliveries) cannot make up for another hour's hole.
        has_metric = pl.col(metric).is_not_null()
        agg = [
            pl.min_horizontal(pl.col(logged).fill_null(0), pl.col(metric)).filter(has_metric).sum().alias("logged"),
            pl.col(metric).filter(has_metric).sum().alias("counted"),
        ]
        cov: pl.Expr = (
            pl.when(pl.col("counted") > 0)
            .then(pl.min_horizontal(pl.col("logged") / pl.col("counted"), pl.lit(1.0)))
            .when(pl.col("logged") > 0)
            .then(1.0)
        )
    elif "coverage" in df.columns:
        agg = [pl.col("coverage").mean().alias("_cov")]
        cov = pl.col("_cov")
    else:
        return None
    grid = (
        df.with_columns(pl.col("hour").cast(pl.Int64), pl.col("region").fill_null("unknown"))
        .group_by("region", "hour")
        .agg(agg)
        .with_columns(cov.alias("coverage"))
        .sort("region", "hour")
    )
    peak = grid["coverage"].drop_nulls().max()
    if isinstance(peak, int | float) and peak > 1.5:
        grid = grid.with_columns(pl.col("coverage") / 100)  # given in percent
    return grid


def _heatmap(grid: pl.DataFrame) -> dict:
    worst = grid.group_by("region").agg(pl.col("coverage").min()).sort("coverage", "region", nulls_last=True)
    regions = sorted(worst.head(TOP_N)["region"].to_list())
    lookup = {(r, h): c for r, h, c in grid.select("region", "hour", "coverage").iter_rows()}
    z = [[None if lookup.get((r, h)) is None else round(lookup[(r, h)] * 100, 1) for h in range(24)] for r in regions]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"{h:02d}" for h in range(24)],
            y=labels(regions),
            zmin=0,
            zmax=100,
            colorscale="Cividis",
            colorbar={"title": "% logged", "ticksuffix": "%"},
            xgap=1,
            ygap=1,
            hovertemplate="%{y} %{x}:00 UTC: %{z:.1f}% of calls logged<extra></extra>",
        )
    )
    fig.update_layout(**layout(max(220, 80 + 36 * len(regions)), xaxis={"title": "hour (UTC)"}))
    fig.update_layout(margin={"l": 20, "r": 20, "t": 20, "b": 50})
    fig.update_yaxes(automargin=True)
    return figure_dict(fig)


def _finding(grid: pl.DataFrame) -> str:
    if "logged" in grid.columns:
        total_logged, total_counted = float(grid["logged"].sum() or 0), float(grid["counted"].sum() or 0)
        overall = min(total_logged / total_counted, 1.0) if total_counted else None
    else:
        mean = grid["coverage"].mean()
        overall = float(mean) if isinstance(mean, int | float) else None
    low = (
        grid.drop_nulls("coverage").sort("coverage", "region", "hour").row(0, named=True)
        if grid["coverage"].drop_nulls().len()
        else None
    )
    finding = f"The logs hold {pct(overall, 1)} of the calls CloudWatch counted"
    if low is not None and low["coverage"] < 0.99:
        return finding + f"; the weakest hour is {low['region']} {low['hour']:02d}:00 UTC at {pct(low['coverage'])}."
    return finding + "; no hour falls below 99%."


def coverage_heatmap(inputs: ReportInputs) -> Section | None:
    """Hour × region share of calls the logs hold (logged ÷ counted by metrics), when `log_completeness` exists."""
    df = inputs.completeness
    if df is None or df.is_empty() or not {"region", "hour"} <= set(df.columns):
        return None
    grid = _coverage_grid(df)
    if grid is None:
        return None
    return Section(
        key="coverage",
        question="Are the logs complete?",
        finding=_finding(grid),
        figure=_heatmap(grid),
        data=grid.select("region", "hour", (pl.col("coverage") * 100).round(1).alias("coverage_pct")),
    )
