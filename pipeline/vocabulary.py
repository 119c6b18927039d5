"""The words every stage shares, defined once, and the two helpers every stage needs.

A call's status and routing, a bill line's type, a usage kind, and the status words of reconciliation, budgets and
log completeness mean the same thing in normalization, pricing, aggregation, billing, reconciliation and the report;
when each kept its own list, the lists drifted apart (one copy of the usage line-item types lacked
`FlatRateSubscription`). Import them from here. `tests/test_vocabulary.py` fails when a module under `pipeline/`
defines its own copy, or tests a status column against a word that is not here.
"""

from __future__ import annotations

from typing import NamedTuple

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

SERVICE_TIERS: tuple[str, ...] = ("standard", "batch", "flex", "priority", "latency_optimized")
"""The tiers a call is priced at (`price_catalog.tier`, `priced_invocations.pricing_tier`): a service tier the
request asked for, batch inference, or latency-optimized inference."""
BILLED_TIERS: tuple[str, ...] = (*SERVICE_TIERS, "reserved", "custom_model")
"""The tiers a bill's usage type names (`billing_line_items.tier`): the priced ones, the Reserved tier's
commitments and custom-model usage."""
CONTEXT_TIERS: tuple[str, ...] = ("standard", "long")
"""Prompt-length price tiers (`context_tier`): a long-context rate applies above a model's threshold."""

TOKEN_KINDS: tuple[str, ...] = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
"""Usage kinds counted in tokens. `cache_write_1h` is the 1-hour-TTL part of cache writes, which costs more than
5-minute writes (`billing_line_items.cache_ttl` says which TTL a bill row is)."""

GUARDRAIL_POLICIES: tuple[str, ...] = (
    "topic",
    "content",
    "word",
    "sensitive_information",
    "contextual_grounding",
    "content_image",
    "automated_reasoning",
)
"""Guardrail policies that count units: `invocations.guardrail_<policy>_units`, and the `usage_kind` of a guardrail
bill row (`spend_kind = guardrail`). The log's `sensitiveInformationPolicyUnits` is the bill's
`SensitiveInformationPolicyPaidUnitsConsumed`; the log's `…FreeUnits` (regex-only matches) are never billed."""

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

USAGE_KINDS: tuple[str, ...] = (*TOKEN_KINDS, "image", "provisioned", *GUARDRAIL_POLICIES, "other")
"""`billing_line_items.usage_kind`: what a bill line is for (a guardrail row names its policy)."""

SPEND_KINDS: tuple[str, ...] = (
    "on_demand",
    "batch",
    "provisioned",
    "guardrail",
    "rerank",
    "knowledge_base",
    "agent",
    "flow",
    "data_automation",
    "custom_model",
    "evaluation",
    "cache_storage",
    "other",
)
"""The kind of Bedrock spend a bill row is (`billing_line_items.spend_kind`, `chargeback`, `bill_coverage`). Never
`usage_kind`, which stays the token kind: a batch row is `spend_kind = batch` with `usage_kind = input`."""

CAPACITY_SPEND_KINDS: dict[str, str] = {"provisioned": "Provisioned Throughput"}
"""The spend kinds that are capacity commitments, with the name people know them by: bought per model-unit hour
(or, for the Reserved tier, per tokens-per-minute commitment) and billed whether calls use them or not. Such a
row is explained by the resource it is billed for: *used* when the provisioned model served logged calls that day,
*idle* when it served none (`bill_coverage.capacity_cost_usd`, `idle_capacity_cost_usd`; docs/bill-coverage.md)."""

USAGE_SOURCES: tuple[str, ...] = ("invocation_log", "batch_job", "bill_only")
"""Where the ledger gets the usage that explains a billed dollar: invocation logs, batch job outputs, or nothing
but the bill itself (`chargeback.usage_source`)."""

ENDPOINTS: tuple[str, ...] = ("runtime", "mantle")
"""Which Bedrock endpoint served a bill row: `bedrock-runtime` (covered by invocation logging) or `bedrock-mantle`
(the OpenAI-compatible endpoint, never in invocation logs; `billing_line_items.endpoint`)."""


ALLOCATED_REASONS: tuple[str, ...] = (
    "logged_calls",
    "bill_principal",
    "resource_tags",
    "config_rule",
    "batch_job",
    "provisioned_model_tags",
    "guardrail_traces",
)
"""Why a chargeback row has the owner it has (`chargeback.allocation_reason`, FOCUS `x_AllocationReason`): by the
logged calls' attribution, by the principal the bill names, by the billed resource's tags, by a config rule on the
resource, by its batch job, by `attribution.provisioned_models`, or by the logged calls' guardrail traces."""

UNALLOCATED_REASONS: tuple[str, ...] = ("no_logged_caller", "unmapped_bill_row", "no_owner", "batch_job_untagged")
"""Why a billed dollar stays `unallocated`: a model billed but never logged, a bill row mapped to no model, a
bill-only row with no owner tag, principal or rule, a batch job with no owner anywhere."""


class SpendRule(NamedTuple):
    """One row of the spend-kind mapping: every condition given must hold; empty means any."""

    spend_kind: str
    product_codes: tuple[str, ...] = ()
    usage_kinds: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()  # any of these in the lower-cased usage type


SPEND_KIND_RULES: tuple[SpendRule, ...] = (
    # Product code first: AgentCore bills runtime, gateway, memory and tools under its own code.
    SpendRule("agent", product_codes=("AmazonBedrockAgentCore",)),
    # Features billed under the Bedrock product codes, named in the usage type (CUDOS's grouping order).
    SpendRule("guardrail", markers=("guardrail",)),
    SpendRule("rerank", markers=("search_units", "searchunits", "search-units", "rerank")),
    SpendRule("knowledge_base", markers=("knowledgebase", "knowledge-base", "generatesql", "structuredretrieve")),
    SpendRule("agent", markers=("agentcore", "invokeagent", "bedrockagent")),
    SpendRule("flow", markers=("invokeflow", "bedrockflows")),
    SpendRule("data_automation", markers=("dataautomation", "data-automation")),
    SpendRule("custom_model", markers=("customization", "custommodelimport", "rft-training", "_training")),
    SpendRule("custom_model", tiers=("custom_model",)),
    SpendRule("evaluation", markers=("evaluation",)),
    SpendRule("cache_storage", markers=("cachestorage", "cache-storage", "cache_storage")),
    # Model capacity: Provisioned Throughput model units and the Reserved tier's tokens-per-minute commitments.
    SpendRule("provisioned", usage_kinds=("provisioned",)),
    SpendRule("provisioned", tiers=("reserved",)),
    # Model tokens and images, first party, mantle and Marketplace alike: batch by tier, else on demand.
    SpendRule("batch", usage_kinds=(*TOKEN_KINDS, "image"), tiers=("batch",)),
    SpendRule("on_demand", usage_kinds=(*TOKEN_KINDS, "image")),
)
"""product code × usage_kind × tier × usage-type marker → spend_kind, first match wins; nothing matching is
`other` (video and speech generation, prompt routing and optimization, web grounding, cache validation, tax)."""


def spend_kind_of(product_code: str | None, usage_kind: str | None, tier: str | None, usage_type: str | None) -> str:
    """The `spend_kind` of one bill row by `SPEND_KIND_RULES` (first match), `other` when none matches."""
    lower = (usage_type or "").lower()
    for rule in SPEND_KIND_RULES:
        if rule.product_codes and product_code not in rule.product_codes:
            continue
        if rule.usage_kinds and usage_kind not in rule.usage_kinds:
            continue
        if rule.tiers and tier not in rule.tiers:
            continue
        if rule.markers and not any(m in lower for m in rule.markers):
            continue
        return rule.spend_kind
    return "other"


NO_BILL_CONFIGURED = "no bill configured (sources.billing is empty): nothing to reconcile or allocate"
"""What the billing tables, their checks and the report say for a ledger without a bill, instead of $0 billed."""
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
    "not_logged_by_design",
)
"""`cost_reconciliation.status`: how the logs and the bill compare for one bucket (`reconciliation/reconcile.py`
says when each applies). `matched` agrees within tolerance; `idle_capacity` is Provisioned Throughput billed with no
call on it, a finding about spend rather than a disagreement; `not_logged_by_design` is bedrock-mantle usage, which
invocation logging never records; every other status is a gap to look at."""

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
    "not_logged_by_design",
)
"""`log_completeness.status`: whether the logs hold every call the CloudWatch metrics counted
(`completeness/coverage.py` says when each applies); `not_logged_by_design` marks bedrock-mantle rows, counted by
`AWS/BedrockMantle` and never in invocation logs."""

Frame = pl.DataFrame | pl.LazyFrame
"""What a plain function of ours accepts: a scan (streaming, a large day) or an in-memory frame (tests)."""


def as_lazy(frame: Frame) -> pl.LazyFrame:
    """Accept either frame kind, so callers can pass a scan (streaming) or an in-memory frame (tests)."""
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def is_local(uri: str) -> bool:
    """A local path (or `file://` URL), as opposed to an object-store URL such as `s3://bucket/prefix`."""
    return "://" not in uri or uri.startswith("file://")


BATCH_OWNER_REASONS: tuple[str, ...] = ("job_tags", "name_rule", "bill_principal", "batch_job_untagged")
"""`batch_jobs.attribution_reason`: where a batch inference job's owner came from, in precedence order: the job's
own tags (`ListTagsForResource`), a config rule on the job name (`attribution.batch_job_rules`), the bill's IAM
principal and its `iamPrincipal/` tags for the job's rows, else no owner (`unallocated`). Never the job's
`roleArn`: that is Bedrock's service role, not who submitted the job."""

BATCH_JOB_STATUSES: tuple[str, ...] = (
    "Submitted",
    "Validating",
    "Scheduled",
    "InProgress",
    "Stopping",
    "Completed",
    "PartiallyCompleted",
    "Failed",
    "Stopped",
    "Expired",
)
"""`batch_jobs.status`: a batch inference job's status as the Bedrock API spells it (`ModelInvocationJobStatus`)."""

BATCH_JOB_ENDED: tuple[str, ...] = ("Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired")
"""The job statuses after which its output folder no longer changes (with an `endTime`)."""

BATCH_RECONCILIATION_STATUSES: tuple[str, ...] = (
    "matched",
    "under_logged",
    "over_logged",
    "missing_in_bill",
    "unpriced",
    "pending",
)
"""`batch_jobs.reconciliation_status`, judged over the job's whole [submit, end] window: the same words as
`cost_reconciliation` where they mean the same (`under_logged`: billed more than the job's outputs explain), and
`pending` while the job runs, a day of its window has no bill read yet, or the bill may still change (lag)."""


SPEND_KEYS: tuple[str, ...] = ("product_code", "usage_kind", "tier", "usage_type")
"""The bill-row fields `vocabulary.spend_kind_of` reads."""


def with_spend_kind(rows: Frame) -> pl.LazyFrame:
    """`rows` with `spend_kind` (vocabulary.SPEND_KIND_RULES) and `endpoint`, derived where missing or null.

    A warehouse partition written before these columns existed gets them from its usage types, so every reader
    (reconciliation, chargeback, coverage, FOCUS) can rely on them. Distinct rule inputs are mapped once.
    """
    lazy = as_lazy(rows)
    names = lazy.collect_schema().names()
    for col in (*SPEND_KEYS, "spend_kind", "endpoint"):
        if col not in names:
            lazy = lazy.with_columns(pl.lit(None, dtype=pl.String).alias(col))
    distinct = lazy.filter(pl.col("spend_kind").is_null()).select(SPEND_KEYS).unique().collect()
    if distinct.height:
        kinds = [spend_kind_of(*r) for r in distinct.iter_rows()]
        mapping = distinct.with_columns(pl.Series("_spend_kind", kinds, dtype=pl.String))
        lazy = lazy.join(
            mapping.lazy(), on=list(SPEND_KEYS), how="left", nulls_equal=True, maintain_order="left"
        ).with_columns(pl.coalesce(pl.col("spend_kind"), pl.col("_spend_kind")).alias("spend_kind"))
        lazy = lazy.drop("_spend_kind")
    mantle = pl.col("usage_type").str.contains("-mantle-").fill_null(False)
    derived = pl.when(mantle).then(pl.lit("mantle")).otherwise(pl.lit("runtime"))
    return lazy.with_columns(pl.coalesce(pl.col("endpoint"), derived).alias("endpoint"))
