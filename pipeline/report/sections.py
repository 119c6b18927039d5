"""The report's sections in reading order: each answers one question with one chart, a finding in words and the
chart's data (`chart.Section`).

Each section is a plain function from the report's frames to a `Section`, in its own module, so it is testable
without a browser or Dagster: `cost` (by cost center and by model, with movers), `bridge` (the bill bridge),
`burndown` (budgets), `health` (model latency and errors), `coverage` (log completeness) and `cache` (prompt
caching). `chart` holds what they share (the look, escaping of chart labels, the top-N rule); `words` the
report's own words for numbers.
"""

from __future__ import annotations

from pipeline.report.bill_coverage import bill_coverage_section
from pipeline.report.bridge import bill_bridge
from pipeline.report.burndown import budget_burndown
from pipeline.report.cache import cache_savings
from pipeline.report.chart import Section
from pipeline.report.cost import cost_by
from pipeline.report.coverage import coverage_heatmap
from pipeline.report.data import ReportInputs
from pipeline.report.health import model_health


def all_sections(inputs: ReportInputs) -> list[Section]:
    """Every section, in reading order; the bill-coverage, completeness and cache sections only when their tables
    exist."""
    sections = [
        cost_by(inputs, "cost_center"),
        cost_by(inputs, "base_model_id"),
        bill_bridge(inputs),
        budget_burndown(inputs),
        model_health(inputs),
    ]
    sections += [
        s for s in (bill_coverage_section(inputs), coverage_heatmap(inputs), cache_savings(inputs)) if s is not None
    ]
    return sections
