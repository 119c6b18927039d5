"""The words every stage shares, defined once, and the two helpers every stage needs.

A call's status and routing, a bill line's type, a usage kind, and the status words of reconciliation, budgets and
log completeness mean the same thing in normalization, pricing, aggregation, billing, reconciliation and the report;
when each kept its own list, the lists drifted apart (one copy of the usage line-item types lacked
`FlatRateSubscription`). Import them from here. `tests/test_vocabulary.py` fails when a module under `pipeline/`
defines its own copy, or tests a status column against a word that is not here.
"""

from __future__ import annotations

import polars as pl

STATUSES: tuple[str, ...] = ("success", "client_error", "server_error", "throttled", "guardrail_intervened")
"""`invocations.status`: how a call ended."""

ERROR_STATUSES: tuple[str, ...] = ("client_error", "server_error", "throttled")
"""The statuses counted as errors (`error_rate`). A guardrail intervention is the guardrail doing its job, not a
failed call, so `guardrail_intervened` is deliberately not one of them."""

USAGE_LINE_TYPES: tuple[str, ...] = ("Usage", "DiscountedUsage", "SavingsPlanCoveredUsage", "FlatRateSubscription")
"""Bill line-item types that are consumption, the usage the logs can explain (CID sums usage for these,
docs/formats/billing-exports.md §1.4;
`FlatRateSubscription`: Provisioned Throughput commitments). Every other type (fees, credits, refunds, taxes,
Savings Plan negation) is an adjustment. The bill reader, reconciliation and chargeback all use this one list."""

TOKEN_KINDS: tuple[str, ...] = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
"""Usage kinds counted in tokens. `cache_write_1h` is the 1-hour-TTL part of cache writes, which costs more than
5-minute writes (`billing_line_items.cache_ttl` says which TTL a bill row is)."""

USAGE_KINDS: tuple[str, ...] = (*TOKEN_KINDS, "image", "provisioned", "other")
"""`billing_line_items.usage_kind`: what a bill line is for."""

ANOMALY_SEVERITIES: tuple[str, ...] = ("low", "medium", "high")
"""`cost_anomalies.severity`, least to most severe (`foresight.alert_severity` names one of them)."""

ANOMALY_KINDS: tuple[str, ...] = ("spike", "drop", "new", "stopped", "insufficient_history")
"""`cost_anomalies.kind`. `insufficient_history` rows are keys not judged yet: never an alert."""

ANOMALY_DIMENSIONS: tuple[str, ...] = ("cost_center", "application", "user", "model")
"""`cost_anomalies.dimension`: what a row's `key` names."""

SAVINGS_SCENARIOS: tuple[str, ...] = (
    "global_routing",
    "regional_routing",
    "batch",
    "flex",
    "smaller_model",
    "more_caching",
)
"""`savings_opportunities.scenario`: the ways the same calls could have been bought."""

PRICE_ORIGINS: tuple[str, ...] = ("catalog", "override", "bill", "derived")
"""`priced_invocations.price_origin`: a catalog row (bundled or synced from the Price List), an override row, the
bill's public list rate (a model the catalog lacks), or a rate the catalog derived (a tier multiplier, a `derived:`
source)."""

ROUTINGS: tuple[str, ...] = ("in_region", "geo", "global", "application_profile", "provisioned")
"""`invocations.routing`: how a call reached its model. `geo` and `global` are system cross-Region inference
profiles (`us.X`, `global.X`), `application_profile` a customer's application inference profile (which wraps one
of the others), `provisioned` a Provisioned Throughput model ARN."""

PRICING_ROUTINGS: tuple[str, ...] = ("in_region", "geo", "global")
"""The routings a price and a bill line know (`priced_invocations.pricing_routing`, the price catalog's `routing`,
`billing_line_items.routing`, `cost_reconciliation.routing`). A call through an application profile is priced and
reconciled as the routing of what the profile wraps; Provisioned Throughput is billed by the hour, not per token."""

RECONCILIATION_STATUSES: tuple[str, ...] = (
    "matched",
    "under_logged",
    "over_logged",
    "price_mismatch",
    "missing_in_bill",
    "missing_in_logs",
    "unmapped_billing",
    "unpriced",
    "idle_capacity",
)
"""`cost_reconciliation.status`: how the logs and the bill compare for one bucket (`reconciliation/reconcile.py`
says when each applies). `matched` agrees within tolerance; `idle_capacity` is Provisioned Throughput billed with no
call on it, a finding about spend rather than a disagreement; every other status is a gap to look at."""

BUDGET_STATUSES: tuple[str, ...] = ("no_data", "no_budget", "over_budget", "warning", "forecast_over", "ok")
"""`budget_status.status`, first match wins (`aggregates/budgets.py`): no data this month yet, spend without a
budget, at or over budget, past the warning line, under it but forecast to end the month over, else `ok`."""

BUDGET_ALERT_STATUSES: tuple[str, ...] = ("over_budget", "warning")
"""The budget statuses named as needing attention now (the CLI's summary, the budget alert). `forecast_over` has its
own check and alert, with the forecast in the sentence."""

COMPLETENESS_STATUSES: tuple[str, ...] = (
    "complete",
    "logs_missing",
    "logging_disabled",
    "metrics_missing",
    "delivery_late",
)
"""`log_completeness.status`: whether the logs hold every call the CloudWatch metrics counted
(`completeness/coverage.py` says when each applies)."""

Frame = pl.DataFrame | pl.LazyFrame
"""What a plain function of ours accepts: a scan (streaming, a large day) or an in-memory frame (tests)."""


def as_lazy(frame: Frame) -> pl.LazyFrame:
    """Accept either frame kind, so callers can pass a scan (streaming) or an in-memory frame (tests)."""
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def is_local(uri: str) -> bool:
    """A local path (or `file://` URL), as opposed to an object-store URL such as `s3://bucket/prefix`."""
    return "://" not in uri or uri.startswith("file://")
