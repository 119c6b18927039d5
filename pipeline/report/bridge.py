"""Does the bill agree with the logs: a waterfall from the estimate to the bill whose labelled parts sum exactly.

Decide the parts first (`bridge_parts`, `status_table`: frames only), then draw and explain them (`bill_bridge`).
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from pipeline.report.chart import Section, figure_dict, grid, layout
from pipeline.report.data import ReportInputs
from pipeline.report.words import pct
from pipeline.text import signed_usd, usd
from pipeline.vocabulary import NO_BILL_CONFIGURED

VOLUME_PARTS = {
    "missing_in_logs": "unlogged usage",
    "idle_capacity": "idle capacity",
    "unmapped_billing": "unmapped bill rows",
    "missing_in_bill": "not yet billed",
}
"""Reconciliation statuses that are a volume part of their own, named like the status: Provisioned Throughput hours
billed with no call on the model (`idle_capacity`) are capacity nobody used, not a price."""
VOLUME_OTHER = "token gaps"
QUESTION = "Does the bill agree with the logs?"
PRICE_PARTS = {"unpriced": "unpriced calls", "provisioned": "provisioned hours"}
PRICE_OTHER = "rate differences"


def bridge_parts(recon: pl.DataFrame) -> tuple[float, float, pl.DataFrame]:
    """Estimated and billed totals and the bridge's labelled parts (`step`, `part`, `usd`).

    The parts sum exactly (to float error) to billed − estimated: each row's gap (billed − estimated, an absent
    estimate counting as $0) is split into its volume and price variance; the price part takes whatever the two
    stored variances leave (float noise, or a variance the row could not compute), so nothing is lost or added.
    A row with neither variance (provisioned hours, an unpriced bucket) is all volume when one side is missing,
    the bill row is unmapped or the capacity was idle, else all price. Unmapped, unlogged and idle capacity are
    labelled parts of the volume step; provisioned hours that served calls are a part of the price step.
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
        pl.when(pl.col("status") == "idle_capacity")
        .then(gap)
        .when(vol.is_not_null())
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


def _steps(estimate: float, billed: float, parts: pl.DataFrame) -> pl.DataFrame:
    """The waterfall's bars in order (`step`, `part`, `usd`, `measure`): the estimate, each volume and price part
    of at least half a cent (a zero step still shows as `none`), and the billed total (still the exact total)."""
    shown = parts.filter(pl.col("usd").abs() >= 0.005)
    rows: list[tuple[str, str, float, str]] = [("estimate", "estimated from logs", estimate, "absolute")]
    for step in ("volume variance", "price variance"):
        step_rows = shown.filter(pl.col("step") == step)
        if step_rows.is_empty():  # keep the step visible even when it is zero
            rows.append((step, "none", 0.0, "relative"))
        rows += [(step, r["part"], r["usd"], "relative") for r in step_rows.iter_rows(named=True)]
    rows.append(("billed", "billed usage", billed, "total"))
    return pl.DataFrame(
        rows, schema={"step": pl.String, "part": pl.String, "usd": pl.Float64, "measure": pl.String}, orient="row"
    )


def _waterfall(steps: pl.DataFrame) -> go.Figure:
    ys, measures = steps["usd"].to_list(), steps["measure"].to_list()
    fig = go.Figure(
        go.Waterfall(
            x=[steps["step"].to_list(), steps["part"].to_list()],
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
    fig.update_layout(**layout(440, showlegend=False, yaxis={"title": "USD", "tickprefix": "$"}))
    fig.update_layout(margin={"l": 60, "r": 20, "t": 30, "b": 20})
    fig.update_xaxes(automargin=True)  # room for the parts' labels when a narrow window tilts them
    grid(fig)
    return fig


def _finding(inputs: ReportInputs, estimate: float, billed: float, parts: pl.DataFrame, statuses: pl.DataFrame) -> str:
    span = f"on {inputs.day}" if inputs.kind == "daily" else f"from {inputs.window[0]} to {inputs.day}"
    delta = billed - estimate
    matched_rows = int(statuses.filter(pl.col("status") == "matched")["rows"].sum() or 0)
    if inputs.recon.is_empty():
        return f"No reconciliation rows {span}: the bill or the logs are not in yet."
    if abs(delta) < 0.01:
        return (
            f"The bill agrees with the estimate {span} ({usd(billed)}); "
            f"{matched_rows} of {inputs.recon.height} rows matched."
        )
    vol = float(parts.filter(pl.col("step") == "volume variance")["usd"].sum() or 0.0)
    biggest = parts.sort(pl.col("usd").abs(), descending=True).row(0, named=True)
    ratio = delta / estimate if estimate else None
    rel = f" ({'+' if delta >= 0 else ''}{pct(ratio, 1)})" if ratio is not None and abs(ratio) < 10 else ""
    return (
        f"The bill is {usd(abs(delta))} {'above' if delta > 0 else 'below'} the estimate {span}{rel}: "
        f"volume {signed_usd(vol)}, price {signed_usd(delta - vol)}; the largest part is "
        f"{biggest['part']} ({signed_usd(biggest['usd'])}). {matched_rows} of {inputs.recon.height} rows matched."
    )


def largest_gaps(recon: pl.DataFrame, n: int = 5) -> pl.DataFrame:
    """The `n` reconciliation rows furthest from matching, by absolute gap (billed − estimated)."""
    if not recon.height:
        return pl.DataFrame()
    gap = pl.col("billed_cost_usd").fill_null(0.0) - pl.col("estimated_cost_usd").fill_null(0.0)
    return (
        recon.filter(pl.col("status") != "matched")
        .with_columns(gap.alias("gap"))
        .sort(pl.col("gap").abs(), descending=True)
        .head(n)
        .select("date", "status", pl.col("base_model_id").fill_null("(unmapped)"), "usage_kind", "gap", "explanation")
    )


def bill_bridge(inputs: ReportInputs) -> Section:
    """Estimate → volume variance → price variance → billed, as a waterfall whose labelled parts sum exactly."""
    if not inputs.bill_configured:
        return Section(
            "bill_bridge",
            QUESTION,
            f"{NO_BILL_CONFIGURED[0].upper()}{NO_BILL_CONFIGURED[1:]}.",
            None,
            pl.DataFrame(),
            note="Add the CUR 2.0 or FOCUS export to sources.billing to compare.",
        )
    estimate, billed, parts = bridge_parts(inputs.recon)
    steps = _steps(estimate, billed, parts)
    statuses = status_table(inputs.recon)
    adjustments = float(inputs.non_usage["cost_usd"].sum() or 0.0) if inputs.non_usage.height else 0.0
    note = (
        f"Tax, credits, refunds and fees ({signed_usd(adjustments)}) are not usage and stay outside the bridge."
        if inputs.non_usage.height
        else ""
    )
    return Section(
        key="bill_bridge",
        question=QUESTION,
        finding=_finding(inputs, estimate, billed, parts, statuses),
        figure=figure_dict(_waterfall(steps)),
        data=steps.select("step", "part", pl.col("usd").round(2)),
        tables=[("Reconciliation statuses: rows and dollars", statuses), ("Largest gaps", largest_gaps(inputs.recon))],
        note=note,
    )
