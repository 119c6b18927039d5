"""The report's sections: each answers one question with one chart, a finding in words and the chart's data.

Plain functions from polars frames to a `Section` (a plotly figure as a dict, the rows it draws, and the finding
that titles it), so they are testable without a browser or Dagster. Colours are the Okabe-Ito palette (safe for
the common colour-vision deficiencies) with grey for "other"; the heatmap uses cividis. Amounts are rounded for
people: whole dollars from $100 up, cents below.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from pipeline.report.data import MOVER_DAYS, ReportInputs

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"]
OTHER_COLOUR = "#999999"
TOP_SERIES = 7
"""Cost charts stack at most this many series; the rest are summed as `other` (a legend of 30 names is noise)."""
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"


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


# --- words and numbers for people -------------------------------------------------------------------------------


def usd(x: float | None) -> str:
    """$1,234 from $100 up, $12.34 below, <$0.01 for crumbs; a minus sign for negatives."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    sign = "−" if x < 0 else ""
    a = abs(x)
    if a >= 100:
        return f"{sign}${a:,.0f}"
    if 0 < a < 0.005:
        return f"{sign}<$0.01"
    return f"{sign}${a:,.2f}"


def signed_usd(x: float) -> str:
    """An amount of change: +$12.34 / −$12.34."""
    return ("+" if x >= 0 else "") + usd(x)


def pct(x: float | None, digits: int = 0) -> str:
    """A share given as a fraction (0.134 → 13%)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x * 100:,.{digits}f}%"


def short_model(model_id: str | None) -> str:
    """A model id short enough for a legend: no version suffix or release date (`anthropic.claude-3-haiku`)."""
    if not model_id:
        return "unknown"
    if model_id.startswith("arn:"):  # imported or custom model ARNs: the resource name is what people know
        model_id = model_id.rsplit("/", 1)[-1]
    name = re.sub(r"-v\d+(:\d+)?$", "", model_id)
    name = re.sub(r"-\d{8}", "", name)
    return name


def _layout(height: int, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
        "font": {"family": FONT, "size": 13, "color": "#222"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "legend": {"orientation": "h", "y": -0.18, "x": 0},
        "hoverlabel": {"namelength": -1},
    }
    layout.update(extra)
    return layout


def _grid(fig: go.Figure) -> None:
    fig.update_xaxes(showgrid=False, linecolor="#888", ticks="outside")
    fig.update_yaxes(gridcolor="#e5e5e5", zerolinecolor="#888")


def _figure_dict(fig: go.Figure) -> dict[str, Any]:
    """The figure as plain JSON values (plotly's encoder turns arrays and dates into lists and strings)."""
    return json.loads(fig.to_json())


# --- cost per day, stacked ---------------------------------------------------------------------------------------


def _top_names(df: pl.DataFrame, key: str, n: int = TOP_SERIES) -> list[str]:
    totals = df.group_by(key).agg(pl.col("cost").sum()).sort(["cost", key], descending=[True, False])
    names = totals[key].to_list()
    return names if len(names) <= n + 1 else names[:n]


def movers(daily: pl.DataFrame, key: str, day: dt.date, top: int = 5) -> pl.DataFrame:
    """The biggest changes in cost: the 7 days ending `day` against the 7 days before, by absolute change."""
    this_start = day - dt.timedelta(days=MOVER_DAYS - 1)
    prev_start = this_start - dt.timedelta(days=MOVER_DAYS)
    if daily.is_empty():
        return pl.DataFrame(
            schema={key: pl.String, "last_7_days": pl.Float64, "previous_7_days": pl.Float64, "change": pl.Float64}
        )
    period = (
        pl.when(pl.col("date") >= this_start)
        .then(pl.lit("last_7_days"))
        .when(pl.col("date") >= prev_start)
        .then(pl.lit("previous_7_days"))
    )
    grouped = (
        daily.filter(pl.col("date").is_between(prev_start, day))
        .with_columns(period.alias("period"))
        .group_by(key, "period")
        .agg(pl.col("total_cost_usd").fill_null(0.0).sum())
    )
    wide = grouped.pivot(on="period", index=key, values="total_cost_usd")
    for col in ("last_7_days", "previous_7_days"):
        if col not in wide.columns:
            wide = wide.with_columns(pl.lit(0.0).alias(col))
    return (
        wide.with_columns(pl.col("last_7_days", "previous_7_days").fill_null(0.0))
        .with_columns((pl.col("last_7_days") - pl.col("previous_7_days")).alias("change"))
        .with_columns(
            pl.when(pl.col("previous_7_days") > 0)
            .then(pl.col("change") / pl.col("previous_7_days"))
            .otherwise(None)
            .alias("change_pct")
        )
        .sort(pl.col("change").abs(), key, descending=[True, False])
        .head(top)
        .select(key, "last_7_days", "previous_7_days", "change", "change_pct")
    )


def _mover_words(mv: pl.DataFrame, key: str, label: Any = str) -> str:
    if mv.is_empty() or abs(mv["change"][0]) < 0.005:
        return "no change worth noting against the previous week"
    r = mv.row(0, named=True)
    rel = f" ({'+' if r['change'] >= 0 else ''}{pct(r['change_pct'])})" if r["change_pct"] is not None else " (new)"
    return f"biggest move vs the previous week: {label(r[key])} {signed_usd(r['change'])}{rel}"


def cost_by(inputs: ReportInputs, key: str) -> Section:
    """Stacked daily cost by cost center or by model over the trend window, and the top movers."""
    daily = inputs.by_cost_center if key == "cost_center" else inputs.by_model
    label = short_model if key == "base_model_id" else str
    noun = "cost center" if key == "cost_center" else "model"
    trend = (
        daily.filter(pl.col("date").is_in(inputs.trend))
        .group_by("date", key)
        .agg(pl.col("total_cost_usd").fill_null(0.0).sum().alias("cost"))
        .sort("date", key)
        if daily.height
        else pl.DataFrame(schema={"date": pl.Date, key: pl.String, "cost": pl.Float64})
    )
    top = _top_names(trend, key)
    series = trend.with_columns(
        pl.when(pl.col(key).is_in(top)).then(pl.col(key)).otherwise(pl.lit("other")).alias("series")
    )
    series = series.group_by("date", "series").agg(pl.col("cost").sum()).sort("date", "series")
    fig = go.Figure()
    names = [*top, *(["other"] if "other" in set(series["series"]) else [])]
    for i, name in enumerate(names):
        part = series.filter(pl.col("series") == name)
        colour = OTHER_COLOUR if name == "other" else OKABE_ITO[i % len(OKABE_ITO)]
        fig.add_bar(
            x=[d.isoformat() for d in part["date"]],
            y=[round(v, 2) for v in part["cost"]],
            name=label(name) if name != "other" else "other",
            marker_color=colour,
            hovertemplate=f"{label(name) if name != 'other' else 'other'}<br>%{{x}}: $%{{y:,.2f}}<extra></extra>",
        )
    fig.update_layout(
        **_layout(380, barmode="stack", yaxis={"title": "cost (USD, estimated)", "tickprefix": "$"}),
        xaxis={"type": "date", "tickformat": "%b %d"},
    )
    _grid(fig)
    total = float(trend["cost"].sum() or 0.0)
    days = len(inputs.trend)
    span = "the last day" if days == 1 else f"the last {days} days" if inputs.kind == "daily" else "this month so far"
    mv = movers(daily, key, inputs.day) if daily.height else movers(pl.DataFrame(), key, inputs.day)
    if total <= 0:
        finding = f"No estimated cost over {span}."
    else:
        lead = trend.group_by(key).agg(pl.col("cost").sum()).sort("cost", key, descending=[True, False]).row(0)
        finding = (
            f"{label(lead[0])} spent the most of any {noun}: {usd(lead[1])} of {usd(total)} over {span} "
            f"({pct(lead[1] / total)}); {_mover_words(mv, key, label)}."
        )
    movers_table = mv.rename({key: noun})
    return Section(
        key=f"cost_by_{key}",
        question=f"Where did the money go, by {noun}?",
        finding=finding,
        figure=_figure_dict(fig),
        data=series.rename({"series": noun}).select(pl.col("date"), pl.col(noun), pl.col("cost").round(2)),
        tables=[(f"Top movers: the 7 days to {inputs.day} against the 7 days before", movers_table)],
    )


# --- the bill bridge ---------------------------------------------------------------------------------------------

VOLUME_PARTS = {
    "missing_in_logs": "unlogged usage",
    "unmapped_billing": "unmapped bill rows",
    "missing_in_bill": "not yet billed",
}
VOLUME_OTHER = "token gaps"
PRICE_PARTS = {"unpriced": "unpriced calls", "provisioned": "provisioned hours"}
PRICE_OTHER = "rate differences"


def bridge_parts(recon: pl.DataFrame) -> tuple[float, float, pl.DataFrame]:
    """Estimated and billed totals and the bridge's labelled parts (`step`, `part`, `usd`).

    The parts sum exactly (to float error) to billed − estimated: each row's gap (billed − estimated, an absent
    estimate counting as $0) is split into its volume and price variance; the price part takes whatever the two
    stored variances leave (float noise, or a variance the row could not compute), so nothing is lost or added.
    A row with neither variance (provisioned hours, an unpriced bucket) is all volume when one side is missing
    or the bill row is unmapped, else all price. Unmapped and unlogged are labelled parts of the volume step.
    """
    empty = pl.DataFrame(schema={"step": pl.String, "part": pl.String, "usd": pl.Float64})
    if recon.is_empty():
        return 0.0, 0.0, empty
    est = pl.col("estimated_cost_usd").fill_null(0.0)
    billed = pl.col("billed_cost_usd").fill_null(0.0)
    gap = billed - est
    vol, price = pl.col("volume_variance_usd"), pl.col("price_variance_usd")
    volume_status = pl.col("status").is_in([*VOLUME_PARTS, "under_logged", "over_logged"])
    vol_final = (
        pl.when(vol.is_not_null())
        .then(vol)
        .when(price.is_not_null())
        .then(gap - price)
        .when(volume_status)
        .then(gap)
        .otherwise(0.0)
    )
    rows = recon.with_columns(gap.alias("_gap")).with_columns(vol_final.alias("_vol"))
    rows = rows.with_columns((pl.col("_gap") - pl.col("_vol")).alias("_price"))
    vol_label = pl.col("status").replace_strict(VOLUME_PARTS, default=VOLUME_OTHER)
    price_label = (
        pl.when(pl.col("usage_kind") == "provisioned")
        .then(pl.lit(PRICE_PARTS["provisioned"]))
        .when(pl.col("status") == "unpriced")
        .then(pl.lit(PRICE_PARTS["unpriced"]))
        .otherwise(pl.lit(PRICE_OTHER))
    )
    parts = pl.concat(
        [
            rows.select(pl.lit("volume variance").alias("step"), vol_label.alias("part"), pl.col("_vol").alias("usd")),
            rows.select(
                pl.lit("price variance").alias("step"), price_label.alias("part"), pl.col("_price").alias("usd")
            ),
        ]
    )
    order = {
        name: i for i, name in enumerate([*VOLUME_PARTS.values(), VOLUME_OTHER, *PRICE_PARTS.values(), PRICE_OTHER])
    }
    summed = (
        parts.group_by("step", "part")
        .agg(pl.col("usd").sum())
        .with_columns(pl.col("part").replace_strict(order, default=99).alias("_o"))
        .sort("step", "_o", descending=[True, False])
        .drop("_o")
    )
    return float(rows.select(est.sum()).item()), float(rows.select(billed.sum()).item()), summed


def status_table(recon: pl.DataFrame) -> pl.DataFrame:
    """Each reconciliation status with its row count and dollars (estimated, billed, gap)."""
    if recon.is_empty():
        return pl.DataFrame(
            schema={
                "status": pl.String,
                "rows": pl.Int64,
                "estimated": pl.Float64,
                "billed": pl.Float64,
                "gap": pl.Float64,
            }
        )
    return (
        recon.group_by("status")
        .agg(
            pl.len().cast(pl.Int64).alias("rows"),
            pl.col("estimated_cost_usd").fill_null(0.0).sum().alias("estimated"),
            pl.col("billed_cost_usd").fill_null(0.0).sum().alias("billed"),
        )
        .with_columns((pl.col("billed") - pl.col("estimated")).alias("gap"))
        .sort(pl.col("gap").abs(), "status", descending=[True, False])
    )


def bill_bridge(inputs: ReportInputs) -> Section:
    """Estimate → volume variance → price variance → billed, as a waterfall whose labelled parts sum exactly."""
    estimate, billed, parts = bridge_parts(inputs.recon)
    shown = parts.filter(pl.col("usd").abs() >= 0.005)
    x_groups = ["estimate"]
    x_parts = ["estimated from logs"]
    ys = [estimate]
    measures = ["absolute"]
    for step in ("volume variance", "price variance"):
        rows = shown.filter(pl.col("step") == step)
        if rows.is_empty():  # keep the step visible even when it is zero
            rows = pl.DataFrame({"step": [step], "part": ["none"], "usd": [0.0]})
        for r in rows.iter_rows(named=True):
            x_groups.append(step)
            x_parts.append(r["part"])
            ys.append(r["usd"])
            measures.append("relative")
    # Parts under half a cent are not drawn; the billed bar is still the exact total.
    x_groups.append("billed")
    x_parts.append("billed usage")
    ys.append(billed)
    measures.append("total")
    fig = go.Figure(
        go.Waterfall(
            x=[x_groups, x_parts],
            y=[round(v, 4) for v in ys],
            measure=measures,
            text=[usd(v) if m != "relative" else signed_usd(v) for v, m in zip(ys, measures, strict=True)],
            textposition="outside",
            cliponaxis=False,
            connector={"line": {"color": "#888", "dash": "dot"}},
            increasing={"marker": {"color": "#D55E00"}},
            decreasing={"marker": {"color": "#0072B2"}},
            totals={"marker": {"color": "#444444"}},
            hovertemplate="%{x}: %{text}<extra></extra>",
        )
    )
    fig.update_layout(**_layout(440, showlegend=False, yaxis={"title": "USD", "tickprefix": "$"}))
    fig.update_layout(margin={"l": 60, "r": 20, "t": 30, "b": 20})
    fig.update_xaxes(automargin=True)  # room for the parts' labels when a narrow window tilts them
    _grid(fig)
    statuses = status_table(inputs.recon)
    span = f"on {inputs.day}" if inputs.kind == "daily" else f"from {inputs.window[0]} to {inputs.day}"
    delta = billed - estimate
    matched = statuses.filter(pl.col("status") == "matched")
    matched_rows = int(matched["rows"].sum() or 0)
    if inputs.recon.is_empty():
        finding = f"No reconciliation rows {span}: the bill or the logs are not in yet."
    elif abs(delta) < 0.01:
        finding = (
            f"The bill agrees with the estimate {span} ({usd(billed)}); "
            f"{matched_rows} of {inputs.recon.height} rows matched."
        )
    else:
        vol = float(parts.filter(pl.col("step") == "volume variance")["usd"].sum() or 0.0)
        biggest = parts.sort(pl.col("usd").abs(), descending=True).row(0, named=True)
        ratio = delta / estimate if estimate else None
        rel = f" ({'+' if delta >= 0 else ''}{pct(ratio, 1)})" if ratio is not None and abs(ratio) < 10 else ""
        finding = (
            f"The bill is {usd(abs(delta))} {'above' if delta > 0 else 'below'} the estimate {span}{rel}: "
            f"volume {signed_usd(vol)}, price {signed_usd(delta - vol)}; the largest part is "
            f"{biggest['part']} ({signed_usd(biggest['usd'])}). {matched_rows} of {inputs.recon.height} rows matched."
        )
    gaps = (
        inputs.recon.filter(pl.col("status") != "matched")
        .with_columns(
            (pl.col("billed_cost_usd").fill_null(0.0) - pl.col("estimated_cost_usd").fill_null(0.0)).alias("gap")
        )
        .sort(pl.col("gap").abs(), descending=True)
        .head(5)
        .select("date", "status", pl.col("base_model_id").fill_null("(unmapped)"), "usage_kind", "gap", "explanation")
        if inputs.recon.height
        else pl.DataFrame()
    )
    adjustments = float(inputs.non_usage["cost_usd"].sum() or 0.0) if inputs.non_usage.height else 0.0
    note = (
        f"Tax, credits, refunds and fees ({signed_usd(adjustments)}) are not usage and stay outside the bridge."
        if inputs.non_usage.height
        else ""
    )
    data = pl.DataFrame(
        {"step": x_groups, "part": x_parts, "usd": [round(v, 2) for v in ys]},
        schema={"step": pl.String, "part": pl.String, "usd": pl.Float64},
    )
    return Section(
        key="bill_bridge",
        question="Does the bill agree with the logs?",
        finding=finding,
        figure=_figure_dict(fig),
        data=data,
        tables=[("Reconciliation statuses: rows and dollars", statuses), ("Largest gaps", gaps)],
        note=note,
    )


# --- budgets -----------------------------------------------------------------------------------------------------


def budget_burndown(inputs: ReportInputs) -> Section:
    """Per budgeted cost center: spend to date by day, the run-rate forecast to month end, and the budget."""
    day = inputs.day
    month_end = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    budgets = inputs.budgets.filter(pl.col("budget_usd").is_not_null()).sort(
        "pct_used", "cost_center", descending=[True, False]
    )
    data_rows: list[dict[str, Any]] = []
    if budgets.is_empty():
        return Section(
            key="budgets",
            question="Which team will overrun its budget?",
            finding="No budgets are configured (`budgets:` in ledger.yaml), so there is nothing to burn down.",
            figure=None,
            data=pl.DataFrame(),
        )
    names = budgets["cost_center"].to_list()
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    titles = [f"{r['cost_center']}: {r['pct_used']:.0f}% used" for r in budgets.iter_rows(named=True)]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.08, vertical_spacing=0.16)
    daily = inputs.month_by_cost_center
    month_days = [day.replace(day=1) + dt.timedelta(days=i) for i in range(day.day)]
    for i, r in enumerate(budgets.iter_rows(named=True)):
        row, col = i // cols + 1, i % cols + 1
        spend = (
            daily.filter(pl.col("cost_center") == r["cost_center"]).group_by("date").agg(pl.col("total_cost_usd").sum())
            if daily.height
            else pl.DataFrame(schema={"date": pl.Date, "total_cost_usd": pl.Float64})
        )
        by_day = dict(spend.iter_rows())
        cumulative, running = [], 0.0
        for d in month_days:
            running += by_day.get(d) or 0.0
            cumulative.append(round(running, 2))
            data_rows.append(
                {"cost_center": r["cost_center"], "date": d, "series": "spend to date", "usd": round(running, 2)}
            )
        first = i == 0
        xs = [d.isoformat() for d in month_days]
        fig.add_scatter(
            x=xs,
            y=cumulative,
            mode="lines+markers",
            name="spend to date",
            line={"color": "#0072B2", "width": 3},
            marker={"size": 5},
            legendgroup="spend",
            showlegend=first,
            row=row,
            col=col,
            hovertemplate="%{x}: $%{y:,.2f} spent<extra></extra>",
        )
        forecast = float(r["forecast_month_end_usd"] or 0.0)
        fig.add_scatter(
            x=[day.isoformat(), month_end.isoformat()],
            y=[cumulative[-1], round(forecast, 2)],
            mode="lines",
            name="forecast (run rate)",
            line={"color": "#E69F00", "width": 2, "dash": "dash"},
            legendgroup="forecast",
            showlegend=first,
            row=row,
            col=col,
            hovertemplate="%{x}: $%{y:,.2f} forecast<extra></extra>",
        )
        budget = float(r["budget_usd"])
        fig.add_scatter(
            x=[month_days[0].isoformat(), month_end.isoformat()],
            y=[budget, budget],
            mode="lines",
            name="budget",
            line={"color": "#000000", "width": 1.5, "dash": "dot"},
            legendgroup="budget",
            showlegend=first,
            row=row,
            col=col,
            hovertemplate="budget $%{y:,.0f}<extra></extra>",
        )
        data_rows.append(
            {"cost_center": r["cost_center"], "date": month_end, "series": "forecast", "usd": round(forecast, 2)}
        )
        data_rows.append(
            {"cost_center": r["cost_center"], "date": month_end, "series": "budget", "usd": round(budget, 2)}
        )
    fig.update_layout(**_layout(60 + 280 * rows, legend={"orientation": "h", "y": -0.12 / rows, "x": 0}))
    fig.update_layout(margin={"l": 60, "r": 20, "t": 40, "b": 70})
    fig.update_yaxes(tickprefix="$", rangemode="tozero")
    fig.update_xaxes(tickformat="%b %d", range=[month_days[0].isoformat(), month_end.isoformat()])
    _grid(fig)
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
            finding += f" and {more} more cost center{'s are' if more > 1 else ' is'} forecast over budget"
    over = budgets.filter(pl.col("pct_used") >= 100).height
    finding += f". {over} of {budgets.height} budgeted cost centers {'is' if over == 1 else 'are'} over budget."
    unbudgeted = inputs.budgets.filter(pl.col("budget_usd").is_null() & (pl.col("spend_to_date_usd") > 0))
    note = (
        "No budget: "
        + ", ".join(f"{r[0]} ({usd(r[1])})" for r in unbudgeted.select("cost_center", "spend_to_date_usd").iter_rows())
        if unbudgeted.height
        else ""
    )
    return Section(
        key="budgets",
        question="Which team will overrun its budget?",
        finding=finding,
        figure=_figure_dict(fig),
        data=pl.DataFrame(data_rows),
        tables=[
            (
                "Budget status",
                budgets.select(
                    "cost_center", "budget_usd", "spend_to_date_usd", "forecast_month_end_usd", "pct_used", "status"
                ),
            )
        ],
        note=note,
    )


# --- model health ------------------------------------------------------------------------------------------------


def model_health(inputs: ReportInputs) -> Section:
    """Latency p50/p95/p99 and error and throttle rates per model over the report's window."""
    df = inputs.by_model.filter(pl.col("date").is_in(inputs.window)) if inputs.by_model.height else inputs.by_model
    if df.is_empty():
        return Section(
            "model_health", "Are the models fast and reliable?", "No calls in this period.", None, pl.DataFrame()
        )
    w = pl.col("invocations").cast(pl.Float64)

    def weighted(col: str) -> pl.Expr:
        ok = pl.col(col).is_not_null() & pl.col(col).is_not_nan()
        return ((pl.col(col) * w).filter(ok).sum() / w.filter(ok).sum()).alias(col.removeprefix("latency_ms_"))

    health = (
        df.group_by("base_model_id")
        .agg(
            pl.col("invocations").sum(),
            weighted("latency_ms_p50"),
            weighted("latency_ms_p95"),
            weighted("latency_ms_p99"),
            ((pl.col("client_errors") + pl.col("server_errors")).sum() / pl.col("invocations").sum()).alias(
                "error_rate"
            ),
            (pl.col("throttles").sum() / pl.col("invocations").sum()).alias("throttle_rate"),
        )
        .with_columns(pl.col("p50", "p95", "p99").fill_nan(None))
        .sort("invocations", "base_model_id", descending=[False, True])
    )
    names = [short_model(m) for m in health["base_model_id"]]
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=["latency (seconds)", "errors and throttles (% of calls)"],
    )
    for col, colour in (("p50", "#9ecae1"), ("p95", "#4292c6"), ("p99", "#08306b")):
        fig.add_bar(
            y=names,
            x=[None if v is None else round(v / 1000, 2) for v in health[col]],
            orientation="h",
            name=col,
            marker_color=colour,
            row=1,
            col=1,
            hovertemplate=f"%{{y}} {col}: %{{x:.2f}} s<extra></extra>",
        )
    for col, label, colour in (("error_rate", "errors", "#D55E00"), ("throttle_rate", "throttles", "#CC79A7")):
        fig.add_bar(
            y=names,
            x=[round((v or 0.0) * 100, 2) for v in health[col]],
            orientation="h",
            name=label,
            marker_color=colour,
            row=1,
            col=2,
            hovertemplate=f"%{{y}} {label}: %{{x:.2f}}%<extra></extra>",
        )
    fig.update_layout(**_layout(max(300, 60 + 42 * len(names)), barmode="group"))
    fig.update_layout(margin={"l": 20, "r": 20, "t": 40, "b": 60})
    fig.update_yaxes(automargin=True)
    _grid(fig)
    fig.update_xaxes(gridcolor="#e5e5e5")
    slow = health.drop_nulls("p95").sort("p95", descending=True)
    errs = health.sort("error_rate", descending=True)
    parts = []
    if slow.height:
        s = slow.row(0, named=True)
        parts.append(f"{short_model(s['base_model_id'])} is the slowest (p95 {s['p95'] / 1000:.1f} s)")
    e = errs.row(0, named=True)
    parts.append(
        f"{short_model(e['base_model_id'])} fails most often ({pct(e['error_rate'], 1)} of calls)"
        if (e["error_rate"] or 0) > 0
        else "no model returned errors"
    )
    thr = health.sort("throttle_rate", descending=True).row(0, named=True)
    if (thr["throttle_rate"] or 0) > 0:
        parts.append(f"{short_model(thr['base_model_id'])} is throttled most ({pct(thr['throttle_rate'], 1)})")
    table = health.sort("invocations", descending=True).with_columns(
        pl.col("p50", "p95", "p99").round(0), pl.col("error_rate", "throttle_rate").round(4)
    )
    return Section(
        key="model_health",
        question="Are the models fast and reliable?",
        finding="; ".join(parts) + ".",
        figure=_figure_dict(fig),
        data=table,
        note="Latency percentiles across accounts and regions (and days, month to date) are call-weighted means of "
        "the daily percentiles; a model without latency bars logged no latency. Throttles are the logged ones (and "
        "CloudWatch's where metrics are configured).",
    )


# --- completeness heatmap (when log_completeness exists) ---------------------------------------------------------


def coverage_heatmap(inputs: ReportInputs) -> Section | None:
    """Hour × region share of calls the logs hold (logged ÷ counted by metrics), when `log_completeness` exists."""
    df = inputs.completeness
    if df is None or df.is_empty() or not {"region", "hour"} <= set(df.columns):
        return None
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
    regions = sorted(grid["region"].unique().to_list())
    lookup = {(r, h): c for r, h, c in grid.select("region", "hour", "coverage").iter_rows()}
    z = [[None if lookup.get((r, h)) is None else round(lookup[(r, h)] * 100, 1) for h in range(24)] for r in regions]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"{h:02d}" for h in range(24)],
            y=regions,
            zmin=0,
            zmax=100,
            colorscale="Cividis",
            colorbar={"title": "% logged", "ticksuffix": "%"},
            xgap=1,
            ygap=1,
            hovertemplate="%{y} %{x}:00 UTC: %{z:.1f}% of calls logged<extra></extra>",
        )
    )
    fig.update_layout(**_layout(max(220, 80 + 36 * len(regions)), xaxis={"title": "hour (UTC)"}))
    fig.update_layout(margin={"l": 20, "r": 20, "t": 20, "b": 50})
    fig.update_yaxes(automargin=True)
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
        finding += f"; the weakest hour is {low['region']} {low['hour']:02d}:00 UTC at {pct(low['coverage'])}"
    else:
        finding += "; no hour falls below 99%"
    return Section(
        key="coverage",
        question="Are the logs complete?",
        finding=finding + ".",
        figure=_figure_dict(fig),
        data=grid.select("region", "hour", (pl.col("coverage") * 100).round(1).alias("coverage_pct")),
    )


# --- cache savings (when daily_cache_economics exists) -----------------------------------------------------------

SAVING_COLUMNS = ("net_saving_usd", "net_savings_usd", "net_saved_usd", "saving_usd", "savings_usd")


def cache_savings(inputs: ReportInputs) -> Section | None:
    """Net saving of prompt caching per application, when `daily_cache_economics` exists."""
    df = inputs.cache
    if df is None or df.is_empty() or "application" not in df.columns:
        return None
    col = next((c for c in SAVING_COLUMNS if c in df.columns), None)
    col = col or next((c for c in df.columns if "saving" in c and c.endswith("_usd")), None)
    if col is None:
        return None
    per_app = (
        df.group_by(pl.col("application").fill_null("unattributed"))
        .agg(pl.col(col).fill_null(0.0).sum().alias("net_saving_usd"))
        .sort("net_saving_usd", "application")
    )
    fig = go.Figure(
        go.Bar(
            y=per_app["application"].to_list(),
            x=[round(v, 2) for v in per_app["net_saving_usd"]],
            orientation="h",
            marker_color=["#009E73" if v >= 0 else "#D55E00" for v in per_app["net_saving_usd"]],
            text=[signed_usd(v) for v in per_app["net_saving_usd"]],
            textposition="auto",
            hovertemplate="%{y}: %{text} net<extra></extra>",
        )
    )
    fig.update_layout(
        **_layout(
            max(220, 60 + 36 * per_app.height), showlegend=False, xaxis={"title": "net saving (USD)", "tickprefix": "$"}
        )
    )
    fig.update_layout(margin={"l": 20, "r": 20, "t": 20, "b": 50})
    fig.update_yaxes(automargin=True)
    _grid(fig)
    total = float(per_app["net_saving_usd"].sum() or 0.0)
    best = per_app.row(per_app.height - 1, named=True)
    worst = per_app.row(0, named=True)
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
        figure=_figure_dict(fig),
        data=per_app.with_columns(pl.col("net_saving_usd").round(2)),
    )


def all_sections(inputs: ReportInputs) -> list[Section]:
    """Every section, in reading order; the completeness and cache sections only when their tables exist."""
    sections = [
        cost_by(inputs, "cost_center"),
        cost_by(inputs, "base_model_id"),
        bill_bridge(inputs),
        budget_burndown(inputs),
        model_health(inputs),
    ]
    from pipeline.report.bill_coverage import bill_coverage_section

    sections += [
        s for s in (bill_coverage_section(inputs), coverage_heatmap(inputs), cache_savings(inputs)) if s is not None
    ]
    return sections
