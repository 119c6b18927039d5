"""Build a day's two reports (the day, and the month to date) from the warehouse and write them beside it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from pipeline.aggregates.daily import failed_calls
from pipeline.report.chart import Section
from pipeline.report.data import ReportInputs, load_inputs
from pipeline.report.foresight import foresight_sections
from pipeline.report.render import page
from pipeline.report.sections import all_sections
from pipeline.report.store import ReportKind, report_uri, write_report
from pipeline.report.words import pct
from pipeline.text import escape_for, usd
from pipeline.vocabulary import NO_BILL_CONFIGURED


@dataclass(frozen=True)
class ReportFiles:
    """Where a day's reports went, and the findings that title their charts, escaped for Dagster's markdown (the
    asset's metadata shows them; a cost center named `[approve](https://…)` in a finding must stay text)."""

    daily: str
    month_to_date: str
    findings: dict[ReportKind, dict[str, str]] = field(default_factory=dict)


def _billed_tile(inputs: ReportInputs, billed: float) -> str:
    if not inputs.bill_configured:
        return NO_BILL_CONFIGURED.split(" (")[0]  # "no bill configured": no $0 that reads like a free month
    return usd(billed) if inputs.recon.height else "not in yet"


def _tiles(inputs: ReportInputs) -> list[tuple[str, str]]:
    cc = inputs.by_cost_center.filter(pl.col("date").is_in(inputs.window)) if inputs.by_cost_center.height else None
    calls = int(cc["invocations"].sum() or 0) if cc is not None else 0
    estimated = float(cc["total_cost_usd"].sum() or 0.0) if cc is not None else 0.0
    unpriced = int(cc["unpriced_invocations"].sum() or 0) if cc is not None else 0
    errors = int(cc.select(failed_calls().sum()).item() or 0) if cc is not None else 0  # the tables' error_rate
    billed = float(inputs.recon["billed_cost_usd"].sum() or 0.0) if inputs.recon.height else 0.0
    return [
        ("estimated cost (logs × catalog)", usd(estimated)),
        ("billed usage (AWS bill)", _billed_tile(inputs, billed)),
        ("calls", f"{calls:,}"),
        ("error rate (errors and throttles)", pct(errors / calls, 1) if calls else "n/a"),
        ("unpriced calls", f"{unpriced:,}"),
        ("rejected log records", f"{inputs.rejects:,}"),
    ]


def render_report(
    inputs: ReportInputs,
    plotly_js: str,
    other_link: tuple[str, str] | None = None,
    extra: list[Section] | None = None,
) -> tuple[str, list[Section]]:
    """The HTML of one report and its sections (`extra` after the others: the foresight sections)."""
    sections = all_sections(inputs) + (extra or [])
    if inputs.kind == "daily":
        title = f"Bedrock cost report — {inputs.day:%A %d %B %Y}"
        subtitle = f"UTC day {inputs.day}; cost charts show the {len(inputs.trend)} days to it."
    else:
        title = f"Bedrock cost report — {inputs.day:%B %Y} to date"
        subtitle = f"{inputs.window[0]} to {inputs.day} (UTC), {len(inputs.window)} days."
    links = [other_link] if other_link else []
    return page(title, subtitle, _tiles(inputs), sections, links, plotly_js, dt.datetime.now(dt.UTC)), sections


def build_reports(
    warehouse: str, day: dt.date, start: dt.date | None = None, bill_configured: bool = True
) -> ReportFiles:
    """Write `<warehouse>/reports/date=<day>/daily.html` and `month_to_date.html`; return where and what they say.

    The two pages link to each other by relative name, so the pair can be moved or downloaded together.
    """
    import plotly.offline

    plotly_js = plotly.offline.get_plotlyjs()
    inputs = load_inputs(warehouse, day, start, bill_configured)
    other = {"daily": ("Month to date →", "month_to_date.html"), "month_to_date": ("← This day", "daily.html")}
    uris: dict[ReportKind, str] = {}
    findings: dict[ReportKind, dict[str, str]] = {}
    ahead = foresight_sections(warehouse, day)  # the day's anomalies and savings; the forecast in both reports
    extra = {"daily": ahead, "month_to_date": [x for x in ahead if x.key == "forecast"]}
    for kind, report_inputs in inputs.items():
        html_text, sections = render_report(report_inputs, plotly_js, other[kind], extra[kind])
        uris[kind] = write_report(html_text, report_uri(warehouse, day, kind))
        findings[kind] = {s.key: escape_for(s.finding, "dagster_markdown") for s in sections}
    return ReportFiles(daily=uris["daily"], month_to_date=uris["month_to_date"], findings=findings)
