"""Why a check did not pass, in one line a person can act on: for the CLI's run summary and for alerts.

A check result's own `description` wins (the check knows best). Many results carry their reason only as figures
in their metadata (plotted in the UI), so this module states those figures as a sentence per check; a check it
does not know gets its numbers listed. Plain values in, text out: no Dagster import (metadata values are
unwrapped by `plain`). Money goes through `pipeline.text.usd`, so a $0.42 budget never reads "$0".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pipeline.text import usd

Reason = Callable[[Mapping[str, Any]], str | None]
MAX_CHARS = 400


def plain(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata as plain values: Dagster's metadata value objects unwrapped (`.value`), others as they are."""
    return {key: getattr(value, "value", value) for key, value in (metadata or {}).items()}


def _num(meta: Mapping[str, Any], key: str) -> float | None:
    value = meta.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _count(value: float | None, noun: str) -> str:
    """`1 call`, `2,000 calls`: a count with its noun (plural with an `s`)."""
    n = int(value or 0)
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _first_item(markdown: object) -> str | None:
    """The first `- item` of a markdown list (how some checks list their problems)."""
    for line in str(markdown or "").splitlines():
        if line.startswith("- "):
            return line[2:].strip()
    return None


def _rejects(m: Mapping[str, Any]) -> str | None:
    return (
        f"{_count(_num(m, 'rejected'), 'log record')} rejected, {_share(_num(m, 'reject_share'))} of the day "
        f"(allowed: {_share(_num(m, 'threshold'))}, quality.max_reject_share); rejected_records says why"
    )


def _unpriced(m: Mapping[str, Any]) -> str | None:
    return (
        f"{_count(_num(m, 'unpriced_invocations'), 'call')} ({_share(_num(m, 'unpriced_share'))}) without a price "
        f"(allowed: {_share(_num(m, 'threshold'))}, quality.max_unpriced_share): their cost is left out, never $0; "
        "add their models to pricing.overrides"
    )


def _unattributed(m: Mapping[str, Any]) -> str | None:
    share = _num(m, "unattributed_share_cost_center")
    return (
        f"{_share(share)} of calls carry no cost center (quality.max_unattributed_share): tag them with request "
        "metadata, application inference profile tags or attribution.principals"
    )


def _unmapped(m: Mapping[str, Any]) -> str | None:
    return (
        f"{_count(_num(m, 'unmapped_rows'), 'bill row')} ({usd(_num(m, 'unmapped_cost_usd'))}) naming a model the "
        "billing-name map does not know; kept, reconciled as unmapped"
    )


def _principals(m: Mapping[str, Any]) -> str | None:
    share = _num(m, "principal_cost_share")
    return (
        f"{_share(share)} of usage cost ({usd(_num(m, 'principal_cost_usd'))} of {usd(_num(m, 'usage_cost_usd'))}) "
        "names its IAM principal; the rest is charged by estimate"
    )


def _tolerance(m: Mapping[str, Any]) -> str | None:
    return (
        f"{_count(_num(m, 'gaps_over_tolerance'), 'reconciliation row')} off the bill beyond tolerance "
        "(reconciliation.cost_pct / cost_usd); cost_reconciliation's explanation column says why"
    )


def _coverage(m: Mapping[str, Any]) -> str | None:
    coverage = _num(m, "coverage")
    if coverage is None or coverage != coverage:  # NaN: no metric calls, or metrics not read
        return str(m.get("note") or "") or None
    return (
        f"the logs cover {coverage:.2%} of the calls the AWS/Bedrock metrics count (needed: "
        f"{_share(_num(m, 'threshold'))}, discover.min_coverage): log_completeness shows the hours short"
    )


def _logging_off(m: Mapping[str, Any]) -> str | None:
    pairs = _count(_num(m, "regions_without_logging"), "account and region pair")
    return f"model invocation logging is off in {pairs}: their calls show only in metrics"


def _logging_changed(m: Mapping[str, Any]) -> str | None:
    changes = _count(_num(m, "failing_changes"), "change")
    return f"{changes} to model invocation logging since the previous day that lose data (see before_after)"


def _listed_problem(what: str) -> Reason:
    def reason(m: Mapping[str, Any]) -> str | None:
        first = _first_item(m.get("problems") or m.get("mismatches"))
        return f"{what}: {first}" if first else None

    return reason


REASONS: dict[str, Reason] = {
    "invocations:rejects_within_threshold": _rejects,
    "invocations:request_id_unique": lambda m: f"{_count(_num(m, 'duplicates'), 'request id')} seen twice",
    "invocations:no_negative_tokens": lambda m: (
        f"{_count(_num(m, 'rows_with_negative_tokens'), 'row')} with a negative token count"
    ),
    "priced_invocations:unpriced_share": _unpriced,
    "priced_invocations:unattributed_share": _unattributed,
    "billing_line_items:bill_rows_mapped": _unmapped,
    "billing_line_items:principal_coverage": _principals,
    "cost_reconciliation:within_tolerance": _tolerance,
    "log_completeness:logs_cover_metrics": _coverage,
    "logging_configuration:logging_on_in_every_region": _logging_off,
    "logging_configuration:logging_unchanged_since_previous_day": _logging_changed,
    "daily_usage_by_cost_center:totals_match_priced_invocations": _listed_problem(
        "the usage tables disagree with priced_invocations"
    ),
    "focus_chargeback:focus_valid": _listed_problem("focus_chargeback breaks a FOCUS rule"),
    "focus_chargeback:sums_to_chargeback": lambda m: "focus_chargeback does not sum to chargeback per owner",
    "chargeback:sums_to_bill": lambda m: "chargeback does not sum to the bill for some account (over half a cent)",
    "budget_status:within_budget": lambda m: "a cost center has used 80% or more of its monthly budget",
}


def _numbers(meta: Mapping[str, Any]) -> str:
    """The plain numbers of a result, `name value`, for a check this module has no sentence for."""
    parts = []
    for key, value in meta.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or key.startswith("dagster/"):
            continue
        parts.append(f"{key} {value:,}" if isinstance(value, int) else f"{key} {value:,.4g}")
    return ", ".join(parts[:6])


def reason(asset: str, check: str, description: str | None, metadata: Mapping[str, Any] | None) -> str:
    """One line that says why `asset:check` did not pass (see the module docstring)."""
    meta = plain(metadata or {})
    text = (description or "").strip()
    if not text:
        build = REASONS.get(f"{asset}:{check}")
        try:
            text = (build(meta) if build else None) or ""
        except (TypeError, ValueError):  # an unexpected shape of metadata must not hide the failure
            text = ""
    if not text:
        numbers = _numbers(meta)
        text = f"did not pass ({numbers})" if numbers else "did not pass (open the check in the UI for its figures)"
    line = " ".join(text.split())
    return line if len(line) <= MAX_CHARS else line[: MAX_CHARS - 3] + "..."
