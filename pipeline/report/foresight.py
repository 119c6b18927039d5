"""The report's foresight sections: what is unusual today, where the month ends, what would be cheaper.

Each reads its own day of `cost_anomalies`, `spend_forecast` and `savings_opportunities` (None when the table was
not written for the day, e.g. a warehouse from before foresight) and titles its chart with the finding.
"""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
import polars as pl

from pipeline import warehouse
from pipeline.foresight import anomalies, forecast, savings
from pipeline.report.chart import OKABE_ITO, TOP_N, Section, figure_dict, grid, label, labels, layout
from pipeline.text import usd

TOP = TOP_N
"""Anomalies and cost centers drawn; the table under the chart lists every row (intervals do not add up, so the
rest is not summed into an `others` bar)."""


def _read(wh: str, table: str, day: dt.date) -> pl.DataFrame | None:
    return warehouse.read_partition(wh, table, day) if warehouse.partition_exists(wh, table, day) else None


WAITING = "insufficient_history"


def _anomalies(wh: str, day: dt.date) -> tuple[pl.DataFrame, int] | None:
    """What the section shows of the day's `cost_anomalies`: every judged row, the `TOP` costliest keys not judged
    yet, and how many of those there are. A day of a million new callers lists a million keys not judged yet;
    only their count and the top are read."""
    if not warehouse.partition_exists(wh, "cost_anomalies", day):
        return None
    scan = warehouse.scan_partitions(wh, "cost_anomalies", [day])
    waiting = pl.col("kind") == WAITING
    judged = scan.filter(~waiting).collect(engine="streaming")
    top = scan.filter(waiting).sort("cost_usd", descending=True, nulls_last=True).head(TOP).collect()
    count = scan.filter(waiting).select(pl.len()).collect().item()
    return pl.concat([judged, top]), int(count)


def _savings(wh: str, day: dt.date) -> pl.DataFrame | None:
    """What the section shows of the day's `savings_opportunities`: the totals and cost centers, and the 20
    largest application rows (a day can have millions of applications), in the table's order."""
    if not warehouse.partition_exists(wh, "savings_opportunities", day):
        return None
    scan = warehouse.scan_partitions(wh, "savings_opportunities", [day])
    apps = pl.col("dimension") == "application"
    kept = scan.filter(~apps).collect()
    top = scan.filter(apps).sort("savings_usd", descending=True, nulls_last=True).head(SAVINGS_ROWS).collect()
    order = pl.col("dimension").replace_strict({"total": 0, "cost_center": 1, "application": 2}, default=3)
    return pl.concat([kept, top]).sort([order, "savings_usd"], descending=[False, True], maintain_order=True)


SAVINGS_ROWS = 20
"""Rows of the savings section's table by cost center and application."""


def _label(dimension: str, key: str) -> str:
    return label(f"{dimension.replace('_', ' ')}: {key}")


def anomalies_section(found: pl.DataFrame, waiting_keys: int | None = None) -> Section:
    """Today's anomalies: each key's spend against its usual range (the band as an error bar); on a day without
    any, the keys still building their history, so the chart shows what will be judged. `waiting_keys`: how many
    keys are not judged yet, when `found` holds only the costliest of them (`_anomalies`)."""
    judged = found.filter(pl.col("kind") != WAITING).head(TOP)
    waiting = found.filter(pl.col("kind") == WAITING).sort("cost_usd", descending=True).head(TOP)
    shown_waiting = found.height - found.filter(pl.col("kind") != WAITING).height
    unseen = max(0, (waiting_keys if waiting_keys is not None else shown_waiting) - shown_waiting)
    fig = go.Figure()
    if judged.height:
        names = [_label(d, k) for d, k in judged.select("dimension", "key").iter_rows()]
        expected = judged["expected_usd"].fill_null(0.0).to_list()
        low = judged["low_usd"].fill_null(0.0).to_list()
        high = judged["high_usd"].fill_null(0.0).to_list()
        fig.add_bar(
            name="usual (band: expected range)",
            y=names,
            x=expected,
            orientation="h",
            marker_color="#cccccc",
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [h - e for h, e in zip(high, expected, strict=True)],
                "arrayminus": [e - lo for e, lo in zip(expected, low, strict=True)],
            },  # fmt: skip
        )
        fig.add_bar(name="today", y=names, x=judged["cost_usd"].to_list(), orientation="h", marker_color=OKABE_ITO[5])
        rows = judged.height
    elif waiting.height:
        names = [_label(d, k) for d, k in waiting.select("dimension", "key").iter_rows()]
        fig.add_bar(
            name="today (not judged yet)", y=names, x=waiting["cost_usd"].to_list(), orientation="h",
            marker_color=OKABE_ITO[4],
        )  # fmt: skip
        rows = waiting.height
    if judged.height or waiting.height:
        fig.update_layout(**layout(120 + 36 * rows, barmode="group", yaxis={"autorange": "reversed"}))
        fig.update_xaxes(title_text="USD today")
        grid(fig)
    table = found.select("dimension", "key", "kind", "severity", "cost_usd", "expected_usd", "low_usd", "high_usd",
                         "history_days", "sentence")  # fmt: skip
    title = anomalies.headline(found)
    if unseen and judged.is_empty():
        title = anomalies.headline(found.clear()) + f" ({shown_waiting + unseen:,} keys still building their history)"
    return Section(
        key="anomalies",
        question="What is unusual today?",
        finding=title if title.endswith(".") else title + ".",
        figure=figure_dict(fig) if judged.height or waiting.height else None,
        data=table,
        note="Each key is compared with its own usual day (weekday pattern × recent level); keys with less history "
        "than foresight.min_history_days are listed, not judged"
        + (f" (the {shown_waiting:,} costliest here; {unseen:,} more in cost_anomalies)." if unseen else "."),
    )


def forecast_section(out: pl.DataFrame) -> Section:
    """Month-end forecast per cost center with its interval, and the budget where there is one."""
    per_cc = out.filter(pl.col("scope") == "cost_center").sort("forecast_usd", descending=True).head(TOP)
    fig = go.Figure()
    if per_cc.height:
        names = labels(per_cc["key"].to_list())
        point = per_cc["forecast_usd"].to_list()
        fig.add_bar(name="spent so far", x=names, y=per_cc["spend_to_date_usd"].to_list(), marker_color=OKABE_ITO[0])
        fig.add_scatter(
            name="month end (interval)",
            x=names,
            y=point,
            mode="markers",
            marker={"color": OKABE_ITO[1], "size": 10},
            error_y={"type": "data", "symmetric": False,
                     "array": [h - p for h, p in zip(per_cc["high_usd"].to_list(), point, strict=True)],
                     "arrayminus": [p - lo for p, lo in zip(point, per_cc["low_usd"].to_list(), strict=True)]},
        )  # fmt: skip
        budgets = per_cc.filter(pl.col("budget_usd").is_not_null())
        if budgets.height:
            fig.add_scatter(
                name="budget",
                x=labels(budgets["key"].to_list()),
                y=budgets["budget_usd"].to_list(),
                mode="markers",
                marker={"symbol": "line-ew-open", "size": 28, "color": "#000000", "line": {"width": 2}},
            )
        fig.update_layout(**layout(360))
        fig.update_yaxes(title_text="USD this month")
        grid(fig)
    return Section(
        key="forecast",
        question="Where does the month end?",
        finding=forecast.headline(out) + ".",
        figure=figure_dict(fig) if per_cc.height else None,
        data=out.select(
            "scope",
            "key",
            "spend_to_date_usd",
            "forecast_usd",
            "low_usd",
            "high_usd",
            "budget_usd",
            "p_over_budget",
            "run_rate_usd",
        ),  # fmt: skip
        note="Days left follow each cost center's weekday pattern and recent level; the interval is the central "
        "share (foresight.interval) of 1,000 simulated rests of the month.",
    )


def savings_section(out: pl.DataFrame) -> Section:
    """What the day's calls would have cost another way, per scenario, as a month of such days."""
    totals = out.filter(pl.col("dimension") == "total").sort("monthly_savings_usd", descending=True)
    fig = go.Figure()
    if totals.height:
        fig.add_bar(
            x=totals["monthly_savings_usd"].to_list(),
            y=labels([s.replace("_", " ") for s in totals["scenario"].to_list()]),
            orientation="h",
            marker_color=OKABE_ITO[2],
            text=[usd(v) for v in totals["monthly_savings_usd"].to_list()],
        )
        fig.update_layout(**layout(100 + 40 * totals.height, yaxis={"autorange": "reversed"}, showlegend=False))
        fig.update_xaxes(title_text="USD a month (today's calls × days in the month)")
        grid(fig)
    per_key = out.filter(pl.col("dimension") != "total").head(20)
    return Section(
        key="savings",
        question="What would the same calls cost another way?",
        finding=savings.headline(out) + ".",
        figure=figure_dict(fig) if totals.height else None,
        data=totals.select("scenario", "calls", "share_of_traffic", "current_cost_usd", "alternative_cost_usd",
                           "savings_usd", "monthly_savings_usd", "assumed_share_async", "candidates", "rate_source"),
        tables=[("By cost center and application", per_key.select(
            "scenario", "dimension", "key", "savings_usd", "monthly_savings_usd", "target_model_id", "target_routing",
            "target_tier"))],
        note="Every figure reprices today's logged calls with the price catalog; tier rates the catalog lacks are "
        "derived (batch and flex at half the standard rate) and rate_source says so.",
    )  # fmt: skip


def foresight_sections(wh: str, day: dt.date) -> list[Section]:
    """The foresight sections for `day`, for those of the three tables the day has."""
    out = []
    found = _anomalies(wh, day)
    if found is not None:
        out.append(anomalies_section(*found))
    fc = _read(wh, "spend_forecast", day)
    if fc is not None:
        out.append(forecast_section(fc))
    sv = _savings(wh, day)
    if sv is not None:
        out.append(savings_section(sv))
    return out
