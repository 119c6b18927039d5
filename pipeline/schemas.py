"""The data contract: column names and polars dtypes of every table the pipeline writes.

Notebooks and other teams read these tables directly (README.md lists them), so every writer casts its frame to the
schema here before writing (`conform`), and tests compare against it. Add columns at the end; never rename.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
from polars.datatypes import DataTypeClass

from pipeline.vocabulary import (  # noqa: F401  (the contract names them; defined there)
    COMPLETENESS_STATUSES,
    ROUTINGS,
    STATUSES,
    USAGE_LINE_TYPES,
)

DType = pl.DataType | DataTypeClass
"""A polars dtype as written in a schema: an instance (`pl.Datetime("us", "UTC")`) or a class (`pl.String`, whose
type is polars' `DataTypeClass`); polars' own name for this union is private (`polars._typing.PolarsDataType`)."""

UTC_US = pl.Datetime("us", "UTC")
STR_MAP = pl.List(pl.Struct({"key": pl.String, "value": pl.String}))
"""Maps of strings are stored as a list of key/value structs: Parquet's MAP type, readable by DuckDB and polars."""

UNATTRIBUTED = "unattributed"
UNALLOCATED = "unallocated"

INVOCATIONS: dict[str, DType] = {
    "request_id": pl.String,
    "timestamp": UTC_US,
    "date": pl.Date,
    "account_id": pl.String,
    "region": pl.String,
    "inference_region": pl.String,
    "operation": pl.String,
    "model_id": pl.String,
    "base_model_id": pl.String,
    "routing": pl.String,
    "inference_profile": pl.String,
    "identity_arn": pl.String,
    "principal": pl.String,
    "session_name": pl.String,
    "input_tokens": pl.Int64,
    "output_tokens": pl.Int64,
    "cache_read_input_tokens": pl.Int64,
    "cache_write_input_tokens": pl.Int64,
    "image_count": pl.Int64,
    "latency_ms": pl.Int64,
    "first_byte_latency_ms": pl.Int64,
    "stop_reason": pl.String,
    "status": pl.String,
    "error_code": pl.String,
    "request_metadata": STR_MAP,
    "source": pl.String,
    "source_uri": pl.String,
    "schema_version": pl.String,
    # Beyond the contract's minimum: what a cost engine also needs.
    "service_tier": pl.String,
    "input_body_s3_path": pl.String,
    "output_body_s3_path": pl.String,
    "input_body_redacted": pl.String,
    "output_body_redacted": pl.String,
    # The 1-hour part of cache_write_input_tokens (Anthropic `cache_creation.ephemeral_1h_input_tokens`, Converse
    # `cacheDetails` with ttl 1h); 0 when the log shows none or does not split writes by TTL.
    "cache_write_1h_input_tokens": pl.Int64,
}

REJECTED_RECORDS: dict[str, DType] = {
    "date": pl.Date,
    "source_uri": pl.String,
    "line": pl.Int64,
    "reason": pl.String,
    "raw_excerpt": pl.String,
}

PRICED_INVOCATIONS: dict[str, DType] = {
    **INVOCATIONS,
    "user": pl.String,
    "application": pl.String,
    "cost_center": pl.String,
    "environment": pl.String,
    "tags": STR_MAP,
    "input_cost_usd": pl.Float64,
    "output_cost_usd": pl.Float64,
    "cache_read_cost_usd": pl.Float64,
    "cache_write_cost_usd": pl.Float64,
    "total_cost_usd": pl.Float64,
    "priced": pl.Boolean,
    "price_source": pl.String,
    # Extra: the routing the price (and the bill) uses, after resolving application profiles.
    "pricing_routing": pl.String,
    "pricing_tier": pl.String,
    "image_cost_usd": pl.Float64,
    "unpriced_reason": pl.String,
    # The context tier that priced the call (`long` above the row's threshold) and the 1-hour-write part of
    # cache_write_cost_usd (which stays the total of both TTLs).
    "context_tier": pl.String,
    "cache_write_1h_cost_usd": pl.Float64,
    # Where the price came from: catalog | override | bill | derived (null when unpriced).
    "price_origin": pl.String,
}

_USAGE_METRICS: dict[str, DType] = {
    "invocations": pl.Int64,
    "successes": pl.Int64,
    "client_errors": pl.Int64,
    "server_errors": pl.Int64,
    "throttles": pl.Int64,
    "guardrail_interventions": pl.Int64,
    "error_rate": pl.Float64,
    "input_tokens": pl.Int64,
    "output_tokens": pl.Int64,
    "cache_read_input_tokens": pl.Int64,
    "cache_write_input_tokens": pl.Int64,
    "input_cost_usd": pl.Float64,
    "output_cost_usd": pl.Float64,
    "cache_cost_usd": pl.Float64,
    "total_cost_usd": pl.Float64,
    "avg_cost_per_invocation_usd": pl.Float64,
    "unpriced_invocations": pl.Int64,
    "latency_ms_avg": pl.Float64,
    "latency_ms_p50": pl.Float64,
    "latency_ms_p95": pl.Float64,
    "latency_ms_p99": pl.Float64,
    "unique_users": pl.Int64,
}

DAILY_USAGE_BY_MODEL: dict[str, DType] = {
    "date": pl.Date,
    "account_id": pl.String,
    "region": pl.String,
    "base_model_id": pl.String,
    **_USAGE_METRICS,
}
DAILY_USAGE_BY_USER: dict[str, DType] = {
    "date": pl.Date,
    "user": pl.String,
    "cost_center": pl.String,
    "application": pl.String,
    **_USAGE_METRICS,
}
DAILY_USAGE_BY_COST_CENTER: dict[str, DType] = {
    "date": pl.Date,
    "cost_center": pl.String,
    **_USAGE_METRICS,
    "avg_cost_per_user_usd": pl.Float64,
}

BUDGET_STATUS: dict[str, DType] = {
    "month": pl.String,
    "cost_center": pl.String,
    "budget_usd": pl.Float64,
    "spend_to_date_usd": pl.Float64,
    "forecast_month_end_usd": pl.Float64,
    "pct_used": pl.Float64,
    "status": pl.String,
    "date": pl.Date,
    "days_elapsed": pl.Int64,
    "days_in_month": pl.Int64,
    # The run rate counts the days with data; the unpriced share of calls sits beside the forecast.
    "first_data_date": pl.Date,
    "days_with_data": pl.Int64,
    "invocations": pl.Int64,
    "unpriced_invocations": pl.Int64,
    "unpriced_share": pl.Float64,
    # The month-end forecast comes from `spend_forecast` (weekly pattern, 80 % interval by default).
    "forecast_low_usd": pl.Float64,
    "forecast_high_usd": pl.Float64,
    "p_over_budget": pl.Float64,
}

BILLING_LINE_ITEMS: dict[str, DType] = {
    "date": pl.Date,
    "billing_period": pl.String,
    "account_id": pl.String,
    "region": pl.String,
    "billing_entity": pl.String,
    "product_code": pl.String,
    "product_name": pl.String,
    "usage_type": pl.String,
    "operation": pl.String,
    "resource_id": pl.String,
    "line_item_type": pl.String,
    "usage_kind": pl.String,
    "routing": pl.String,
    "tier": pl.String,
    "base_model_id": pl.String,
    "tokens": pl.Int64,
    "usage_amount": pl.Float64,
    "pricing_unit": pl.String,
    "unblended_cost_usd": pl.Float64,
    "net_cost_usd": pl.Float64,
    "tags": STR_MAP,
    "source_format": pl.String,
    "source_uri": pl.String,
    # Bill side of the shape-dependent prices: cache TTL and context tier of the row, and why a row is `other`.
    "cache_ttl": pl.String,
    "context_tier": pl.String,
    "classification_note": pl.String,
    "invoice_id": pl.String,
    # CUR 2.0 with IAM principal data (INCLUDE_IAM_PRINCIPAL_DATA): the caller's ARN as the bill writes it.
    "iam_principal": pl.String,
    # The public on-demand rate per `pricing_unit` as the bill states it (CUR `pricing_public_on_demand_rate`,
    # FOCUS `ListUnitPrice`); null where the export has none. Feeds `bill_list_rates`.
    "list_unit_price_usd": pl.Float64,
}

BILL_LIST_RATES: dict[str, DType] = {
    "date": pl.Date,
    "base_model_id": pl.String,
    "region": pl.String,
    "usage_kind": pl.String,
    "tier": pl.String,
    "routing": pl.String,
    "context_tier": pl.String,
    "usage_type": pl.String,
    "pricing_unit": pl.String,
    "list_unit_price_usd": pl.Float64,
    "rate_per_1k_usd": pl.Float64,
    "first_bill_day": pl.Date,
    "source_format": pl.String,
}
"""The bill's public list rate per model, region, token kind, tier, routing and context tier, for each bill day:
the second opinion on the catalog (`catalog_matches_bill`) and the price of a model the catalog lacks."""

COST_RECONCILIATION: dict[str, DType] = {
    "date": pl.Date,
    "account_id": pl.String,
    "region": pl.String,
    "base_model_id": pl.String,
    "usage_kind": pl.String,
    "routing": pl.String,
    "tier": pl.String,
    "logged_tokens": pl.Int64,
    "billed_tokens": pl.Int64,
    "estimated_cost_usd": pl.Float64,
    "billed_cost_usd": pl.Float64,
    "cost_delta_usd": pl.Float64,
    "cost_delta_pct": pl.Float64,
    "volume_variance_usd": pl.Float64,
    "price_variance_usd": pl.Float64,
    "status": pl.String,
    "explanation": pl.String,
    # Shape-dependent prices: context tier in the key; Provisioned Throughput rows (usage_kind `provisioned`).
    "context_tier": pl.String,
    "resource_id": pl.String,
    "provisioned_hours": pl.Float64,
    "served_tokens": pl.Int64,
    "effective_usd_per_1m_tokens": pl.Float64,
    "on_demand_equivalent_usd": pl.Float64,
    # Part of the key where the bill names principals (normalized ARN, see reconciliation.principals); else null.
    "iam_principal": pl.String,
}

CHARGEBACK: dict[str, DType] = {
    "date": pl.Date,
    "account_id": pl.String,
    "cost_center": pl.String,
    "application": pl.String,
    "user": pl.String,
    "estimated_cost_usd": pl.Float64,
    "billed_cost_usd": pl.Float64,
    "share": pl.Float64,
}

# --- Outputs for other tools (FinOps tools, notebooks): FOCUS export, cache economics, cost per user
# ---------------------------

FOCUS_CHARGEBACK: dict[str, DType] = {
    # FOCUS 1.2 columns (names and meanings from the FOCUS specification; README explains each value).
    "BilledCost": pl.Float64,
    "BillingAccountId": pl.String,
    "BillingAccountName": pl.String,
    "BillingCurrency": pl.String,
    "BillingPeriodEnd": UTC_US,
    "BillingPeriodStart": UTC_US,
    "ChargeCategory": pl.String,
    "ChargeClass": pl.String,
    "ChargeDescription": pl.String,
    "ChargeFrequency": pl.String,
    "ChargePeriodEnd": UTC_US,
    "ChargePeriodStart": UTC_US,
    "ConsumedQuantity": pl.Float64,
    "ConsumedUnit": pl.String,
    "ContractedCost": pl.Float64,
    "ContractedUnitPrice": pl.Float64,
    "EffectiveCost": pl.Float64,
    "InvoiceIssuerName": pl.String,
    "ListCost": pl.Float64,
    "ListUnitPrice": pl.Float64,
    "PricingQuantity": pl.Float64,
    "PricingUnit": pl.String,
    "ProviderName": pl.String,
    "PublisherName": pl.String,
    "RegionId": pl.String,
    "ResourceId": pl.String,
    "ServiceCategory": pl.String,
    "ServiceName": pl.String,
    "ServiceSubcategory": pl.String,
    "SkuId": pl.String,
    "SkuMeter": pl.String,
    "SubAccountId": pl.String,
    "Tags": STR_MAP,
    # What FOCUS has no column for (x_ prefix, as the specification asks of custom columns).
    "x_BaseModelId": pl.String,
    "x_UsageKind": pl.String,
    "x_BilledTokens": pl.Float64,
    "x_LoggedTokens": pl.Int64,
    "x_EstimatedCost": pl.Float64,
    "x_AllocationShare": pl.Float64,
    "x_AllocationStatus": pl.String,
    "x_CostCenter": pl.String,
    "x_Application": pl.String,
    "x_User": pl.String,
    "date": pl.Date,
}

DAILY_CACHE_ECONOMICS: dict[str, DType] = {
    "date": pl.Date,
    "account_id": pl.String,
    "base_model_id": pl.String,
    "application": pl.String,
    "invocations": pl.Int64,
    "invocations_with_cache_read": pl.Int64,
    "invocations_with_cache_write": pl.Int64,
    "unpriced_invocations": pl.Int64,
    "input_tokens": pl.Int64,
    "cache_read_input_tokens": pl.Int64,
    "cache_write_input_tokens": pl.Int64,
    "cache_write_5m_input_tokens": pl.Int64,
    "cache_write_1h_input_tokens": pl.Int64,
    "hit_rate": pl.Float64,
    "reads_per_write": pl.Float64,
    "cache_read_cost_usd": pl.Float64,
    "cache_read_uncached_cost_usd": pl.Float64,
    "read_saving_usd": pl.Float64,
    "cache_write_5m_cost_usd": pl.Float64,
    "cache_write_1h_cost_usd": pl.Float64,
    "write_premium_5m_usd": pl.Float64,
    "write_premium_1h_usd": pl.Float64,
    "write_premium_usd": pl.Float64,
    "net_saving_usd": pl.Float64,
    "input_per_1k_usd": pl.Float64,
    "cache_read_per_1k_usd": pl.Float64,
    "cache_write_per_1k_usd": pl.Float64,
    "cache_write_1h_per_1k_usd": pl.Float64,
    "break_even_reads_5m": pl.Float64,
    "break_even_reads_1h": pl.Float64,
    "recommendation": pl.String,
}

DAILY_USER_COST_DISTRIBUTION: dict[str, DType] = {
    "date": pl.Date,
    "cost_center": pl.String,
    "application": pl.String,
    "users": pl.Int64,
    "invocations": pl.Int64,
    "unpriced_invocations": pl.Int64,
    "total_cost_usd": pl.Float64,
    "unattributed_cost_usd": pl.Float64,
    "mean_cost_per_user_usd": pl.Float64,
    "p50_cost_per_user_usd": pl.Float64,
    "p90_cost_per_user_usd": pl.Float64,
    "p99_cost_per_user_usd": pl.Float64,
    "max_cost_per_user_usd": pl.Float64,
    "top_1pct_users": pl.Int64,
    "top_1pct_share": pl.Float64,
    "top_10_share": pl.Float64,
    "top_user": pl.String,
    "top_user_cost_usd": pl.Float64,
    "top_users": pl.String,
}

# Completeness: Bedrock's logging configuration per day, hourly `AWS/Bedrock` metrics, and the
# three-way comparison of logs, metrics and bill.
LOGGING_CONFIGURATION: dict[str, DType] = {
    "date": pl.Date,
    "account_id": pl.String,
    "region": pl.String,
    "logging_enabled": pl.Boolean,
    "s3_uri": pl.String,
    "cloudwatch_log_group": pl.String,
    "cloudwatch_role_arn": pl.String,
    "large_data_s3_uri": pl.String,
    "text_data_delivery": pl.Boolean,
    "image_data_delivery": pl.Boolean,
    "embedding_data_delivery": pl.Boolean,
    "video_data_delivery": pl.Boolean,
    "audio_data_delivery": pl.Boolean,
    "config_source": pl.String,
    "observed_on": pl.Date,
    "observed_at": UTC_US,
    "role_arn": pl.String,
    "error": pl.String,
}

_METRIC_COUNTS = (
    "invocations",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "throttles",
    "client_errors",
    "server_errors",
)
BEDROCK_METRICS: dict[str, DType] = {
    "date": pl.Date,
    "account_id": pl.String,
    "region": pl.String,
    "model_id": pl.String,
    "base_model_id": pl.String,
    "hour": pl.Int64,
    **dict.fromkeys(_METRIC_COUNTS, pl.Int64),
    "read_at": UTC_US,
}

_COMPARED = ("invocations", "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens")
LOG_COMPLETENESS: dict[str, DType] = {
    "date": pl.Date,
    "account_id": pl.String,
    "region": pl.String,
    "base_model_id": pl.String,
    "hour": pl.Int64,
    **{f"{side}_{c}": pl.Int64 for c in _COMPARED for side in ("logged", "metric")},
    "metric_throttles": pl.Int64,
    "metric_client_errors": pl.Int64,
    "metric_server_errors": pl.Int64,
    "day_logged_tokens": pl.Int64,
    "day_metric_tokens": pl.Int64,
    "day_billed_tokens": pl.Int64,
    "coverage": pl.Float64,
    "token_coverage": pl.Float64,
    "status": pl.String,
    "explanation": pl.String,
    "logging_enabled": pl.Boolean,
    "config_source": pl.String,
    "metric_model_ids": pl.String,
    "checked_at": UTC_US,
}

# Foresight: what is unusual today, where the month ends, what the same calls would cost another way.
COST_ANOMALIES: dict[str, DType] = {
    "date": pl.Date,
    "dimension": pl.String,  # cost_center | application | user | model
    "key": pl.String,
    "cost_usd": pl.Float64,
    "tokens": pl.Int64,
    "expected_usd": pl.Float64,
    "low_usd": pl.Float64,
    "high_usd": pl.Float64,
    "score": pl.Float64,  # (cost - expected) / robust sigma
    "severity": pl.String,  # low | medium | high; null for insufficient_history
    "kind": pl.String,  # spike | drop | new | stopped | insufficient_history
    "history_days": pl.Int64,
    "sentence": pl.String,
    "ratio": pl.Float64,  # cost / expected (null when nothing was expected)
}

SPEND_FORECAST: dict[str, DType] = {
    "date": pl.Date,
    "scope": pl.String,  # cost_center | total
    "key": pl.String,
    "month": pl.String,
    "spend_to_date_usd": pl.Float64,
    "forecast_usd": pl.Float64,
    "low_usd": pl.Float64,
    "high_usd": pl.Float64,
    "interval": pl.Float64,
    "budget_usd": pl.Float64,
    "p_over_budget": pl.Float64,
    "history_days": pl.Int64,
    "days_left": pl.Int64,
    "run_rate_usd": pl.Float64,  # the straight run rate's month end, for comparison
}

SAVINGS_OPPORTUNITIES: dict[str, DType] = {
    "date": pl.Date,
    "scenario": pl.String,
    "dimension": pl.String,  # total | cost_center | application
    "key": pl.String,
    "share_of_traffic": pl.Float64,  # the candidate calls' share of the key's cost today
    "current_cost_usd": pl.Float64,
    "alternative_cost_usd": pl.Float64,
    "savings_usd": pl.Float64,
    "target_model_id": pl.String,
    "target_routing": pl.String,
    "target_tier": pl.String,
    "assumed_share_async": pl.Float64,  # the share of the candidate calls assumed to move
    "rate_source": pl.String,
    "calls": pl.Int64,
    "history_days": pl.Int64,  # days of priced calls behind the figure (one: today's)
    "monthly_savings_usd": pl.Float64,  # savings_usd × days in the month
    "candidates": pl.String,  # which calls the scenario repriced, in words
}

TABLES: dict[str, dict[str, DType]] = {
    "invocations": INVOCATIONS,
    "rejected_records": REJECTED_RECORDS,
    "priced_invocations": PRICED_INVOCATIONS,
    "daily_usage_by_model": DAILY_USAGE_BY_MODEL,
    "daily_usage_by_user": DAILY_USAGE_BY_USER,
    "daily_usage_by_cost_center": DAILY_USAGE_BY_COST_CENTER,
    "budget_status": BUDGET_STATUS,
    "billing_line_items": BILLING_LINE_ITEMS,
    "bill_list_rates": BILL_LIST_RATES,
    "cost_reconciliation": COST_RECONCILIATION,
    "chargeback": CHARGEBACK,
    "focus_chargeback": FOCUS_CHARGEBACK,
    "daily_cache_economics": DAILY_CACHE_ECONOMICS,
    "daily_user_cost_distribution": DAILY_USER_COST_DISTRIBUTION,
    "logging_configuration": LOGGING_CONFIGURATION,
    "bedrock_metrics": BEDROCK_METRICS,
    "log_completeness": LOG_COMPLETENESS,
    "cost_anomalies": COST_ANOMALIES,
    "spend_forecast": SPEND_FORECAST,
    "savings_opportunities": SAVINGS_OPPORTUNITIES,
}


def empty(schema: dict[str, DType]) -> pl.DataFrame:
    """An empty frame with the table's columns, so a day with no data still writes a readable partition."""
    return pl.DataFrame(schema=schema)


def conform(df: pl.DataFrame, schema: Mapping[str, DType]) -> pl.DataFrame:
    """Select and cast the contract columns in contract order; add missing ones as nulls.

    Extra columns are dropped so the written file is exactly the documented table.
    """
    exprs = []
    for name, dtype in schema.items():
        if name in df.columns:
            exprs.append(pl.col(name).cast(dtype))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return df.select(exprs)


def map_to_dict(entries: list[dict[str, str]] | None) -> dict[str, str]:
    """Turn a stored map (list of key/value structs) back into a dict."""
    return {e["key"]: e["value"] for e in entries or []}


def dict_to_map(d: dict[str, str] | None) -> list[dict[str, str]]:
    """Store a dict of strings as the list of key/value structs used for map columns (keys sorted)."""
    return [{"key": str(k), "value": str(v)} for k, v in sorted((d or {}).items())]
