"""The data contract: column names and polars dtypes of every table the pipeline writes.

Notebooks and other teams read these tables directly (docs/tables.md lists them), so every writer casts its frame to the
schema here before writing (`conform`), and tests compare against it. Add columns at the end; never rename.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
from polars.datatypes import DataTypeClass

from pipeline.vocabulary import (  # noqa: F401  (the contract names them; defined there)
    BUDGET_STATUSES,
    COMPLETENESS_STATUSES,
    GUARDRAIL_POLICIES,
    RECONCILIATION_STATUSES,
    ROUTINGS,
    SAVINGS_SCENARIOS,
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
    # Guardrail units per policy from the response's guardrail trace (0 when absent), and whether a trace was
    # there: the trace is logged only when the caller enabled it, so these are a lower bound of billed units.
    **{f"guardrail_{policy}_units": pl.Int64 for policy in GUARDRAIL_POLICIES},
    "guardrail_trace_present": pl.Boolean,
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
    # The guardrail units of the call's trace, priced per policy (`pricing/guardrails.py`); outside total_cost_usd
    # (a lower bound: the trace is there only when enabled); null when a policy with units has no price.
    "guardrail_cost_usd": pl.Float64,
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
    # The whole bill: what kind of Bedrock spend the row is (vocabulary.SPEND_KINDS) and which endpoint served it
    # (`runtime` | `mantle`; mantle traffic is never in invocation logs).
    "spend_kind": pl.String,
    "endpoint": pl.String,
    # The public on-demand rate per `pricing_unit` as the bill states it (CUR `pricing_public_on_demand_rate`,
    # FOCUS `ListUnitPrice`); null where the export has none. Feeds `bill_list_rates`.
    "list_unit_price_usd": pl.Float64,
    # The row's own granularity (`hourly|daily|monthly`, from its usage period) and how a row longer than a day was
    # spread over its days (`logged`: by the bucket's logged estimated cost; `even`; `none`: not spread).
    "granularity": pl.String,
    "spread_basis": pl.String,
    "invoicing_entity": pl.String,
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
    # The whole bill: the spend kind of the bucket, the endpoint (`mantle` rows are `not_logged_by_design`; part of
    # the key), and for guardrail buckets (`usage_kind` = the policy) the policy units logged and billed.
    "spend_kind": pl.String,
    "endpoint": pl.String,
    "logged_units": pl.Float64,
    "billed_units": pl.Float64,
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
    # The whole bill (key columns): the kind of spend and where the usage that explains it comes from
    # (`invocation_log | batch_job | bill_only`); and why the row has its owner (or stays `unallocated`).
    "spend_kind": pl.String,
    "usage_source": pl.String,
    "allocation_reason": pl.String,
}

# --- Outputs for other tools (FinOps tools, notebooks): FOCUS export, cache economics, cost per user
# ---------------------------

FOCUS_CHARGEBACK: dict[str, DType] = {
    # FOCUS 1.2 columns (names and meanings from the FOCUS specification; docs/outputs.md explains each value).
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
    # The whole bill: the kind of spend, where its usage comes from, why the row has its owner.
    "x_SpendKind": pl.String,
    "x_UsageSource": pl.String,
    "x_AllocationReason": pl.String,
    "InvoiceId": pl.String,
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
    # `runtime` (AWS/Bedrock, ModelId) or `mantle` (AWS/BedrockMantle, Model): mantle calls are never logged.
    "endpoint": pl.String,
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
    # `mantle` rows compare the AWS/BedrockMantle metrics with the bill only (status `not_logged_by_design`).
    "endpoint": pl.String,
}
# Batch inference jobs: not in invocation logs; read from the Bedrock API and the jobs' S3 output folders.
BATCH_JOBS: dict[str, DType] = {
    "date": pl.Date,
    "job_arn": pl.String,
    "job_name": pl.String,
    "account_id": pl.String,
    "region": pl.String,
    "model_id": pl.String,
    "base_model_id": pl.String,
    "routing": pl.String,
    "status": pl.String,
    "submit_time": UTC_US,
    "end_time": UTC_US,
    "records_total": pl.Int64,
    "records_processed": pl.Int64,
    "records_succeeded": pl.Int64,
    "records_failed": pl.Int64,
    "input_tokens": pl.Int64,
    "output_tokens": pl.Int64,
    "input_cost_usd": pl.Float64,
    "output_cost_usd": pl.Float64,
    "total_cost_usd": pl.Float64,
    "priced": pl.Boolean,
    "price_source": pl.String,
    "price_origin": pl.String,
    "user": pl.String,
    "application": pl.String,
    "cost_center": pl.String,
    "environment": pl.String,
    "attribution_reason": pl.String,
    "output_uri": pl.String,
    "billed_cost_usd": pl.Float64,
    "billed_tokens": pl.Int64,
    "reconciliation_status": pl.String,
    "day_share": pl.Float64,
    "token_source": pl.String,
    "unpriced_reason": pl.String,
    "model_invocation_type": pl.String,
    "tags": STR_MAP,
    "iam_principal": pl.String,
    "job_estimated_cost_usd": pl.Float64,
    "job_billed_cost_usd": pl.Float64,
    "reconciliation_note": pl.String,
}

BATCH_JOB_REJECTS: dict[str, DType] = {**REJECTED_RECORDS, "job_arn": pl.String}

_BATCH_JOB_STATUS_TEXT = "the job's status when read, as the Bedrock API spells it (vocabulary.BATCH_JOB_STATUSES)"
_BATCH_JOB_TEXT: dict[str, str] = {
    "date": "UTC day the job ran on (the partition); a job has one row per day of its [submit, end] window",
    "job_arn": "the batch inference job's ARN (model-invocation-job); with date, the row's key",
    "job_name": "the job's name as submitted",
    "account_id": "AWS account the job ran in (from its ARN)",
    "region": "AWS Region the job ran in (from its ARN)",
    "model_id": "model id, inference-profile id or ARN the job was submitted with",
    "base_model_id": "foundation model behind the job; null when unknown",
    "routing": "in_region, geo or global, from the model id's profile prefix",
    "submit_time": "when the job was submitted (UTC)",
    "end_time": "when the job ended (UTC); null while it runs",
    "records_total": "the day's part of the job's records (manifest totalRecordCount, spread by day_share)",
    "records_processed": "the day's part of processedRecordCount",
    "records_succeeded": "the day's part of successRecordCount",
    "records_failed": "the day's part of errorRecordCount",
    "input_tokens": "the day's part of the job's input tokens (manifest inputTokenCount, else summed from records)",
    "output_tokens": "the day's part of the job's output tokens",
    "input_cost_usd": "input tokens at the batch rate; null when unpriced",
    "output_cost_usd": "output tokens at the batch rate; null when unpriced",
    "total_cost_usd": "input + output cost of the day's part; null when unpriced (never $0)",
    "priced": "true when tokens and a batch price are known",
    "price_source": "the catalog row that priced the job (a derived tier says `derived:batch=0.5x standard`)",
    "price_origin": "catalog, override, bill or derived",
    "user": "user the job is attributed to; `unallocated` when the job has no owner anywhere",
    "application": "application the job is attributed to; `unallocated` when no owner",
    "cost_center": "cost center the job is attributed to; `unallocated` when no owner",
    "environment": "environment the job is attributed to; `unallocated` when no owner",
    "attribution_reason": "where the owner came from: job_tags, name_rule, bill_principal or batch_job_untagged",
    "output_uri": "the job's output folder (where its manifest.json.out was found); null when not found",
    "billed_cost_usd": "the day's -batch bill cost of the job's model, account and Region shared out to this job",
    "billed_tokens": "the day's -batch billed tokens shared out to this job",
    "reconciliation_status": "over the window: matched, under_logged, over_logged, missing_in_bill, unpriced, pending",
    "day_share": "share of the job's [submit, end] window on this day; null while it runs",
    "token_source": "where the tokens come from: manifest, records, api (nothing processed) or none",
    "unpriced_reason": "why the row is unpriced (job_running, output_not_found, no_price, ...); null when priced",
    "model_invocation_type": "InvokeModel or Converse: the shape of the records' modelOutput",
    "tags": "the job's own tags (ListTagsForResource), a Parquet map",
    "iam_principal": "the caller a CUR 2.0 bill with IAM principal data names on the job's -batch rows; null if none",
    "job_estimated_cost_usd": "the whole job's estimate at batch rates; null when any day is unpriced",
    "job_billed_cost_usd": "the job's share of the bill over its window (with jobs sharing its bill days)",
    "reconciliation_note": "one sentence: why the job has its reconciliation status and what to check",
}
BATCH_JOBS_DESCRIPTIONS: dict[str, str] = {c: _BATCH_JOB_TEXT.get(c, _BATCH_JOB_STATUS_TEXT) for c in BATCH_JOBS}
BATCH_JOB_REJECTS_DESCRIPTIONS: dict[str, str] = {
    "date": "UTC day whose run quarantined the object (the partition)",
    "source_uri": "the object (manifest, record file, folder) or API call that could not be read",
    "line": "line number in a record file; 0 for a whole object",
    "reason": "why it was quarantined (manifest_not_json, record_not_json, job_not_found, job_tags_unavailable, ...)",
    "raw_excerpt": "what was wrong with it; never a prompt or response (a record line is described, not copied)",
    "job_arn": "the job the object belongs to; null when no job claims it",
}
"""Column descriptions of the batch tables (`schemas.DESCRIPTIONS` takes them where it exists)."""

# The whole bill (bill_coverage): per day, account and spend kind, how much of the bill the ledger explains and owns.
BILL_COVERAGE: dict[str, DType] = {
    "date": pl.Date,
    "account_id": pl.String,
    "spend_kind": pl.String,
    "billed_cost_usd": pl.Float64,
    "estimated_cost_usd": pl.Float64,
    "explained_cost_usd": pl.Float64,
    "attributed_cost_usd": pl.Float64,
    "unallocated_cost_usd": pl.Float64,
    "explained_share": pl.Float64,
    "attributed_share": pl.Float64,
    "unallocated_share": pl.Float64,
    "usage_sources": pl.String,
    "unallocated_reasons": pl.String,
    "capacity_cost_usd": pl.Float64,
    "idle_capacity_cost_usd": pl.Float64,
    "capacity_share": pl.Float64,
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
    "batch_jobs": BATCH_JOBS,
    "batch_job_rejects": BATCH_JOB_REJECTS,
    "bill_coverage": BILL_COVERAGE,
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


# --- column descriptions: what each column holds, for people (the UI's column schema, docs, Glue) ---------------
# A word used by several tables is described once in `_SHARED`; a column whose meaning depends on its table is in
# `_PER_TABLE`, which wins. `DESCRIPTIONS[table][column]` has one line for every column of `TABLES` (a test checks).

_TOKENS = "summed over the row's calls"
_SHARED: dict[str, str] = {
    # the whole bill: guardrails, kinds of spend, where usage comes from
    "guardrail_topic_units": "guardrail denied-topic policy text units the call's trace shows; 0 without a trace",
    "guardrail_content_units": "guardrail content-filter text units the call's trace shows; 0 without a trace",
    "guardrail_word_units": "guardrail word-filter text units the call's trace shows; 0 without a trace",
    "guardrail_sensitive_information_units": "guardrail sensitive-information text units (trace); 0 without one",
    "guardrail_contextual_grounding_units": "guardrail contextual-grounding text units (trace); 0 without one",
    "guardrail_content_image_units": "guardrail image content-filter units the call's trace shows; 0 without a trace",
    "guardrail_automated_reasoning_units": "guardrail automated-reasoning units (trace); 0 without one",
    "guardrail_trace_present": "true when the caller enabled the guardrail trace; without it guardrail units are "
    "not logged, so logged units are a lower bound",
    "guardrail_cost_usd": "the call's guardrail units priced per policy; outside total_cost_usd; null when unpriced",
    "spend_kind": "kind of Bedrock spend: on_demand, batch, provisioned, guardrail, rerank, knowledge_base, agent, "
    "flow, ... (docs/bill-coverage.md)",
    "endpoint": "which Bedrock endpoint served the usage: runtime (bedrock-runtime) or mantle (the OpenAI-compatible "
    "bedrock-mantle, which invocation logging does not cover)",
    "usage_source": "where the ledger learns the usage: invocation_log, batch_job, or bill_only",
    "allocation_reason": "why the row has its owner (logged calls, job tags, resource tags, principal, a rule) or, "
    "for unallocated rows, why none was found",
    "logged_units": "non-token units the logs show for the bucket (guardrail policy units); null for token kinds",
    "billed_units": "non-token units the bill shows for the bucket (guardrail policy units); null for token kinds",
    "x_SpendKind": "kind of Bedrock spend of the row (chargeback.spend_kind)",
    "x_UsageSource": "where the usage is known from: invocation_log, batch_job or bill_only",
    "x_AllocationReason": "why the row has its owner, or why it has none (chargeback.allocation_reason)",
    "explained_cost_usd": "billed cost of the kind that a usage source (logs, batch jobs) accounts for",
    "attributed_cost_usd": "billed cost of the kind that has an owner (a cost center, application or user)",
    "unallocated_cost_usd": "billed cost of the kind that no rule, tag or principal gives an owner",
    "explained_share": "explained_cost_usd over billed_cost_usd; null when nothing is billed",
    "attributed_share": "attributed_cost_usd over billed_cost_usd; null when nothing is billed",
    "unallocated_share": "unallocated_cost_usd over billed_cost_usd; null when nothing is billed",
    "usage_sources": "the usage sources behind the kind's rows, comma-separated",
    "unallocated_reasons": "why the unallocated part has no owner, comma-separated reasons",
    "capacity_cost_usd": "billed cost of capacity commitments (Provisioned Throughput hours, Reserved tier), used "
    "or idle: explained by the provisioned model billed",
    "idle_capacity_cost_usd": "part of capacity_cost_usd on provisioned models that served no logged call that day "
    "(owned by its attribution.provisioned_models tags, else unallocated)",
    "capacity_share": "capacity_cost_usd over billed_cost_usd; null when nothing is billed",
    # keys and who
    "date": "UTC day of the row (the partition)",
    "request_id": "Bedrock's requestId of the call, unique per day",
    "timestamp": "when the call was made (UTC, microseconds)",
    "account_id": "AWS account (12 digits) the usage belongs to",
    "region": "AWS Region the call was made to or billed in",
    "inference_region": "Region that served the call (cross-Region profiles route elsewhere); null when unknown",
    "operation": "API operation (InvokeModel, InvokeModelWithResponseStream, Converse, ConverseStream)",
    "model_id": "model id as the caller passed it (model id, inference-profile id or ARN)",
    "base_model_id": "foundation model behind the call (profile prefixes and ARNs resolved); null when unknown",
    "routing": "how the call was routed: in_region, geo, global, application_profile or provisioned",
    "inference_profile": "inference profile id or ARN the call used; null for a direct model call",
    "identity_arn": "IAM identity ARN of the caller, as logged",
    "principal": "the caller's IAM principal (role or user) without the session part",
    "session_name": "session name of an assumed role; null for IAM users",
    "user": "user the cost is attributed to (request metadata, else the role session or IAM user name)",
    "application": "application the cost is attributed to; `unattributed` when no rule names one",
    "cost_center": "cost center the cost is attributed to; `unattributed` (usage) or `unallocated` (bill) when none",
    "environment": "environment the call is attributed to (production, staging, ...); `unattributed` when none",
    "tags": "key/value tags (a Parquet map)",
    # tokens and calls
    "input_tokens": "uncached input tokens (Bedrock logs only the uncached part)",
    "output_tokens": "output tokens",
    "cache_read_input_tokens": "input tokens read from the prompt cache",
    "cache_write_input_tokens": "input tokens written to the prompt cache (both TTLs)",
    "cache_write_1h_input_tokens": "the part of cache_write_input_tokens written with a 1-hour TTL; 0 when unknown",
    "image_count": "images generated by the call (image models); 0 otherwise",
    "latency_ms": "time from request to the last byte, in milliseconds; null when the log has none",
    "first_byte_latency_ms": "time to the first byte of a streamed answer, in milliseconds; null when not logged",
    "stop_reason": "why the model stopped (end_turn, max_tokens, ...), as the response says",
    "status": "one of " + ", ".join(STATUSES),
    "error_code": "the error's code for a failed call; null for a success",
    "request_metadata": "the request's requestMetadata key/values (a Parquet map)",
    "source": "where the record was read: s3 or cloudwatch",
    "source_uri": "the object, log stream or file the row was read from",
    "schema_version": "schemaVersion of the log record",
    "service_tier": "the request's serviceTier (latency_optimized when performanceConfig asks for it); null if none",
    "input_body_s3_path": "S3 path of an input body Bedrock offloaded (over 100 KB); null otherwise",
    "output_body_s3_path": "S3 path of an output body Bedrock offloaded (over 100 KB); null otherwise",
    "input_body_redacted": "the prompt with secrets masked, only with retain_bodies: redacted; else null",
    "output_body_redacted": "the response with secrets masked, only with retain_bodies: redacted; else null",
    # money of a call
    "input_cost_usd": "cost of the uncached input tokens at the catalog price (USD)",
    "output_cost_usd": "cost of the output tokens at the catalog price (USD)",
    "cache_read_cost_usd": "cost of the cache reads at the catalog price (USD)",
    "cache_write_cost_usd": "cost of the cache writes, both TTLs, at the catalog price (USD)",
    "cache_write_1h_cost_usd": "the 1-hour-TTL part of the cache write cost (USD)",
    "image_cost_usd": "cost of generated images at the catalog price (USD)",
    "total_cost_usd": "estimated cost at catalog prices (USD); unpriced calls are left out, never $0",
    "priced": "true when a catalog row priced the call; false calls carry no cost",
    "price_source": "the id of the catalog row that priced the call; null when unpriced",
    "price_origin": "where the price came from: catalog, override, bill or derived; null when unpriced",
    "pricing_routing": "the routing the bill prices the call under (a profile call as geo or global)",
    "pricing_tier": "price tier: standard, batch, flex, priority or latency_optimized",
    "unpriced_reason": "why the call has no price (no catalog row, unknown model, ...); null when priced",
    "context_tier": "standard or long: which context tier priced (or billed) the tokens",
    # daily usage
    "invocations": "calls",
    "successes": "calls that succeeded",
    "client_errors": "calls that failed with a client error (4xx, not throttles)",
    "server_errors": "calls that failed with a server error (5xx)",
    "throttles": "throttled calls (logged, or from the AWS/Bedrock metrics where read: see docs/tables.md)",
    "guardrail_interventions": "calls a guardrail intervened in",
    "error_rate": "(client errors + server errors + throttles) ÷ calls: the one error rate of the tables and report",
    "cache_cost_usd": "cost of cache reads and writes (USD)",
    "avg_cost_per_invocation_usd": "total_cost_usd ÷ priced calls (USD)",
    "unpriced_invocations": "calls without a price (their cost is left out of the sums)",
    "latency_ms_avg": "mean latency over calls with a latency (ms)",
    "latency_ms_p50": "median latency over calls with a latency (ms, linear interpolation)",
    "latency_ms_p95": "95th percentile latency (ms, linear interpolation)",
    "latency_ms_p99": "99th percentile latency (ms, linear interpolation)",
    "unique_users": "distinct attributed users (unattributed not counted)",
    "avg_cost_per_user_usd": "total_cost_usd ÷ unique_users (USD)",
    # budgets
    "month": "the calendar month (YYYY-MM)",
    "budget_usd": "the cost center's monthly budget from the config (USD); null without one",
    "spend_to_date_usd": "estimated spend from the 1st of the month to the as-of day (USD)",
    "forecast_month_end_usd": "spend to date + spend ÷ days with data × days left; null in a month without data",
    "pct_used": "spend_to_date_usd ÷ budget_usd, in percent",
    "days_elapsed": "days of the month up to the as-of day",
    "days_in_month": "days in the month",
    "first_data_date": "first day of the month with any data (any cost center)",
    "days_with_data": "days from first_data_date to the as-of day, both counted",
    "unpriced_share": "share of the month's calls without a price (spend and forecast are understated above 0)",
    # the bill
    "billing_period": "the bill's month (YYYY-MM)",
    "billing_entity": "who invoices the row: AWS or AWS Marketplace",
    "product_code": "the bill's product code (AmazonBedrock, AmazonBedrockService, a Marketplace product)",
    "product_name": "the bill's product name",
    "usage_type": "the bill's usage type, verbatim (region, model, token kind, tier in AWS's grammar)",
    "resource_id": "the bill's resource id (a provisioned model ARN for Provisioned Throughput); null otherwise",
    "line_item_type": "the bill's line item type (Usage, DiscountedUsage, Tax, Credit, Discount, ...)",
    "usage_kind": "input, output, cache_read, cache_write, cache_write_1h, image, provisioned or other",
    "tier": "price tier: standard, batch, flex, priority or latency_optimized",
    "tokens": "billed tokens (usage scaled by the pricing unit); null for non-token usage",
    "usage_amount": "the bill's usage amount in its own unit",
    "pricing_unit": "the bill's pricing unit (1K tokens, 1M tokens, Units, Hours, ...)",
    "unblended_cost_usd": "the row's list-equivalent cost (USD): what the estimate is compared with",
    "net_cost_usd": "cost after discounts where the bill has it (USD); null otherwise",
    "source_format": "the export the row came from: cur, cur2 or focus",
    "cache_ttl": "cache write TTL: 5m, 1h (30m where a Marketplace dimension says so); null for non-writes",
    "classification_note": "why a row is `other`, or what was assumed to classify it; null when plain",
    "invoice_id": "the invoice the row is on; empty until the month is invoiced",
    "iam_principal": "the IAM principal the bill names for the row (CUR 2.0 with IAM principal data); else null",
    "invoicing_entity": "who invoices the row (bill_invoicing_entity, FOCUS InvoiceIssuerName), e.g. AWS EMEA SARL",
    "granularity": "the bill row's own period: hourly, daily or monthly",
    "spread_basis": "how a row longer than a day was spread over its days: logged (by logged cost), even or none",
    "list_unit_price_usd": "the public on-demand rate per pricing_unit as the bill states it (USD); null if none",
    "rate_per_1k_usd": "that list rate per 1,000 tokens (USD)",
    "first_bill_day": "the first bill day that showed this rate",
    # reconciliation
    "logged_tokens": "tokens in the logs for the row's bucket",
    "billed_tokens": "tokens on the bill for the row's bucket",
    "estimated_cost_usd": "cost estimated from the logs at catalog prices (USD)",
    "billed_cost_usd": "cost on the bill (USD)",
    "cost_delta_usd": "billed − estimated (USD)",
    "cost_delta_pct": "cost_delta_usd ÷ billed cost (a fraction)",
    "volume_variance_usd": "token gap × billed unit price (USD): the part of the delta due to volume",
    "price_variance_usd": "unit price gap × logged tokens (USD): the part of the delta due to price",
    "explanation": "one sentence on what the status means for this row",
    "provisioned_hours": "Provisioned Throughput hours billed (provisioned rows); null otherwise",
    "served_tokens": "tokens logged on the provisioned model (provisioned rows); null otherwise",
    "effective_usd_per_1m_tokens": "billed PT cost ÷ served tokens × 1M (USD); null when nothing was served",
    "on_demand_equivalent_usd": "what the served tokens would cost on demand (USD)",
    "share": "the owner's weight in the day × account bill (estimated cost share)",
    # cache economics
    "invocations_with_cache_read": "calls that read from the prompt cache",
    "invocations_with_cache_write": "calls that wrote to the prompt cache",
    "cache_write_5m_input_tokens": "tokens written with the 5-minute TTL",
    "hit_rate": "cache read ÷ (cache read + uncached input) tokens",
    "reads_per_write": "cache read ÷ cache write tokens: how often a written token was read that day",
    "cache_read_uncached_cost_usd": "what the cache reads would have cost as plain input (USD)",
    "read_saving_usd": "cache_read_uncached_cost_usd − cache_read_cost_usd (USD)",
    "cache_write_5m_cost_usd": "cost of 5-minute cache writes (USD)",
    "write_premium_5m_usd": "5-minute write cost above plain input (USD)",
    "write_premium_1h_usd": "1-hour write cost above plain input (USD)",
    "write_premium_usd": "write_premium_5m_usd + write_premium_1h_usd (USD)",
    "net_saving_usd": "read saving − write premium (USD; negative: caching costs money)",
    "input_per_1k_usd": "input rate used, per 1,000 tokens (USD, averaged over the priced calls)",
    "cache_read_per_1k_usd": "cache read rate used, per 1,000 tokens (USD)",
    "cache_write_per_1k_usd": "5-minute cache write rate used, per 1,000 tokens (USD)",
    "cache_write_1h_per_1k_usd": "1-hour cache write rate used, per 1,000 tokens (USD)",
    "break_even_reads_5m": "reads per written token at which a 5-minute write pays for itself",
    "break_even_reads_1h": "reads per written token at which a 1-hour write pays for itself",
    "recommendation": "what to change about caching, in a sentence; null without writes or prices",
    # cost per user
    "users": "attributed users (unattributed is not a user)",
    "unattributed_cost_usd": "cost of calls without a user (USD)",
    "mean_cost_per_user_usd": "mean cost per user with a priced call (USD)",
    "p50_cost_per_user_usd": "median cost per user (USD)",
    "p90_cost_per_user_usd": "90th percentile cost per user (USD)",
    "p99_cost_per_user_usd": "99th percentile cost per user (USD)",
    "max_cost_per_user_usd": "largest cost of one user (USD)",
    "top_1pct_users": "how many users make the top 1% (at least one)",
    "top_1pct_share": "cost share of the top 1% of users",
    "top_10_share": "cost share of the ten largest users",
    "top_user": "the user with the largest cost",
    "top_user_cost_usd": "that user's cost (USD)",
    "top_users": "the five largest users as `name $cost; ...`",
    # logging configuration
    "logging_enabled": "model invocation logging has an S3 or CloudWatch destination",
    "s3_uri": "the S3 destination of invocation logs; null when none",
    "cloudwatch_log_group": "the CloudWatch Logs destination; null when none",
    "cloudwatch_role_arn": "the role Bedrock uses to write to CloudWatch Logs",
    "large_data_s3_uri": "where CloudWatch delivery puts bodies over 100 KB",
    "text_data_delivery": "text bodies are delivered (an omitted switch is on, as AWS does)",
    "image_data_delivery": "image bodies are delivered",
    "embedding_data_delivery": "embedding bodies are delivered",
    "video_data_delivery": "video bodies are delivered",
    "audio_data_delivery": "audio bodies are delivered",
    "config_source": "observed, carried_forward or earliest_known: how the day's configuration is known",
    "observed_on": "the day the configuration was fetched",
    "observed_at": "when the configuration was fetched (UTC)",
    "role_arn": "the role assumed to read the account; null for the pipeline's own",
    "error": "why the configuration could not be read; null when it was",
    # metrics and completeness
    "hour": "the UTC hour (start) of the row",
    "read_at": "when the metrics were read (UTC)",
    "logged_invocations": "calls in the logs (throttled ones left out, as the metric does)",
    "metric_invocations": "calls the AWS/Bedrock Invocations metric counted",
    "logged_input_tokens": f"input tokens in the logs, {_TOKENS}",
    "metric_input_tokens": "InputTokenCount from the metrics",
    "logged_output_tokens": f"output tokens in the logs, {_TOKENS}",
    "metric_output_tokens": "OutputTokenCount from the metrics",
    "logged_cache_read_input_tokens": "cache read tokens in the logs",
    "metric_cache_read_input_tokens": "cache read tokens from the metrics (the larger of both spellings)",
    "logged_cache_write_input_tokens": "cache write tokens in the logs",
    "metric_cache_write_input_tokens": "cache write tokens from the metrics (the larger of both spellings)",
    "metric_throttles": "InvocationThrottles from the metrics",
    "metric_client_errors": "InvocationClientErrors from the metrics",
    "metric_server_errors": "InvocationServerErrors from the metrics",
    "day_logged_tokens": "the day's logged tokens for account × region × model (repeated per hour: never sum)",
    "day_metric_tokens": "the day's metric tokens for account × region × model (repeated per hour: never sum)",
    "day_billed_tokens": "the day's billed tokens for account × region × model (repeated per hour: never sum)",
    "coverage": "logged ÷ metric invocations (1.0 complete; null without metric calls)",
    "token_coverage": "logged ÷ metric tokens",
    "metric_model_ids": "the metric ModelId values folded into the row",
    "checked_at": "when the comparison was made (UTC)",
    # rejects
    "line": "line number in the source object (1-based); null for an object-level reject",
    "reason": "why the record was rejected",
    "raw_excerpt": "the start of the rejected line (never a prompt or response body)",
}

_SUMMED = (
    "daily_usage_by_model",
    "daily_usage_by_user",
    "daily_usage_by_cost_center",
    "daily_cache_economics",
    "bedrock_metrics",
)
_SUMMED_WORDS = {
    "input_tokens": f"uncached input tokens, {_TOKENS}",
    "output_tokens": f"output tokens, {_TOKENS}",
    "cache_read_input_tokens": f"cache read tokens, {_TOKENS}",
    "cache_write_input_tokens": f"cache write tokens (both TTLs), {_TOKENS}",
    "total_cost_usd": "estimated cost of the priced calls at catalog prices (USD)",
    "input_cost_usd": "cost of the uncached input tokens (USD)",
    "output_cost_usd": "cost of the output tokens (USD)",
}
_PER_TABLE: dict[str, dict[str, str]] = {
    "batch_jobs": BATCH_JOBS_DESCRIPTIONS,
    "batch_job_rejects": BATCH_JOB_REJECTS_DESCRIPTIONS,
    **{table: {k: v for k, v in _SUMMED_WORDS.items() if k in TABLES[table]} for table in _SUMMED},
    "bedrock_metrics": {
        "model_id": "the metric's ModelId dimension",
        "invocations": "Invocations metric, summed over the hour",
        "input_tokens": "InputTokenCount metric, summed over the hour",
        "output_tokens": "OutputTokenCount metric, summed over the hour",
        "cache_read_input_tokens": "cache read token metric (the larger of both spellings)",
        "cache_write_input_tokens": "cache write token metric (the larger of both spellings)",
        "throttles": "InvocationThrottles metric",
        "client_errors": "InvocationClientErrors metric",
        "server_errors": "InvocationServerErrors metric",
    },
    "priced_invocations": {"tags": "the call's attribution tags after precedence (a Parquet map)"},
    "rejected_records": {"source_uri": "the object or log stream the rejected record came from"},
    "billing_line_items": {
        "operation": "the bill's operation column",
        "tags": "the bill row's resource and cost-allocation tags (a Parquet map)",
        "source_uri": "the export file the row was read from",
        "routing": "routing from the usage type: in_region, geo or global",
        "context_tier": "standard or long (long_ctx / LongContext in the usage type)",
    },
    "cost_reconciliation": {
        "status": "one of " + ", ".join(RECONCILIATION_STATUSES),
        "iam_principal": "the caller, where the bill names IAM principals; else null",
    },
    "budget_status": {
        "status": "one of " + ", ".join(BUDGET_STATUSES) + " (warning: 80% used)",
        "date": "the as-of day (the partition)",
        "invocations": "calls of the month to date",
        "unpriced_invocations": "calls of the month to date without a price",
        "forecast_low_usd": "low end of spend_forecast's interval for the month end (USD); null with the run rate",
        "forecast_high_usd": "high end of spend_forecast's interval for the month end (USD); null with the run rate",
        "p_over_budget": "share of spend_forecast's simulated month ends above the budget; null with the run rate",
    },
    "cost_anomalies": {
        "dimension": "what `key` names: cost_center, application, user or model (base model id)",
        "key": "the cost center, application, user or model judged",
        "cost_usd": "the key's estimated spend on the day (USD)",
        "tokens": "the key's input, output and cache tokens on the day",
        "expected_usd": "the usual day: recent level × this weekday's factor (USD); null when not judged",
        "low_usd": "low end of the usual range (band_sigmas robust deviations, log scale) (USD)",
        "high_usd": "high end of the usual range (USD)",
        "score": "robust z-score on the log scale: (ln(cost + 1) − ln(expected + 1)) / spread",
        "severity": "low, medium or high; null for insufficient_history",
        "kind": "spike, drop, new, stopped or insufficient_history (listed, never judged or alerted)",
        "history_days": "days of history behind the judgement: since the key first spent, in the 56-day window",
        "sentence": "the finding in words",
        "ratio": "cost / expected; null when nothing was expected",
    },
    "spend_forecast": {
        "scope": "cost_center or total",
        "key": "the cost center, or `total`",
        "forecast_usd": "median simulated month end (USD)",
        "low_usd": "low end of the interval (USD)",
        "high_usd": "high end of the interval (USD)",
        "interval": "the interval's coverage (foresight.interval, 0.8 by default)",
        "p_over_budget": "share of simulated month ends above the budget (summed budgets for the total); null without",
        "history_days": "days of history the forecast learned from",
        "days_left": "days of the month after the as-of day",
        "run_rate_usd": "the straight run rate's month end, for comparison (USD)",
    },
    "savings_opportunities": {
        "scenario": "one of " + ", ".join(SAVINGS_SCENARIOS),
        "dimension": "total, cost_center or application",
        "key": "the cost center or application, or `total`",
        "share_of_traffic": "the candidate calls' share of the key's estimated cost on the day",
        "current_cost_usd": "the candidate calls' estimated cost as they were made (USD)",
        "alternative_cost_usd": "current cost minus the savings (USD)",
        "savings_usd": "assumed_share_async × (current − repriced cost) for the day (USD)",
        "target_model_id": "the model id the candidates were repriced as (the most common)",
        "target_routing": "the pricing routing of the alternative (the most common)",
        "target_tier": "the service tier of the alternative (the most common)",
        "assumed_share_async": "share of the candidate calls assumed to move to the alternative",
        "rate_source": "the catalog rows that priced the alternative (up to three)",
        "calls": "candidate calls repriced",
        "history_days": "days of calls behind the figure (the day's own)",
        "monthly_savings_usd": "savings_usd × days in the month (USD)",
        "candidates": "which calls the scenario repriced, in words",
    },
    "chargeback": {
        "cost_center": "the owner's cost center; `unallocated` for billed cost no log explains",
        "estimated_cost_usd": "the owner's estimate at catalog prices (USD)",
        "billed_cost_usd": "the owner's share of the bill (USD); sums to the bill per day and account",
    },
    "log_completeness": {
        "status": "one of " + ", ".join(COMPLETENESS_STATUSES),
        "explanation": "what the status means here and what to do",
        "logging_enabled": "the day's logging configuration has a destination for the account and region",
    },
    "daily_user_cost_distribution": {
        "invocations": "calls of the cost center and application",
        "total_cost_usd": "estimated cost of all its calls (USD)",
    },
    "focus_chargeback": {
        "BilledCost": "FOCUS: the invoiced cost; here the owner's allocated share of the billed usage (USD)",
        "BillingAccountId": "FOCUS: billing account; here the usage account",
        "BillingAccountName": "FOCUS: billing account name; null (the bill rows read do not name it)",
        "BillingCurrency": "FOCUS: ISO 4217 currency of the bill: USD",
        "BillingPeriodEnd": "FOCUS: end of the invoice month (exclusive), UTC",
        "BillingPeriodStart": "FOCUS: start of the invoice month, UTC",
        "ChargeCategory": "FOCUS: Usage (tax, credits and refunds are not allocated)",
        "ChargeClass": "FOCUS: Correction or null; null",
        "ChargeDescription": "FOCUS: what the charge is, in words (model, kind, region, owner)",
        "ChargeFrequency": "FOCUS: Usage-Based",
        "ChargePeriodEnd": "FOCUS: end of the charge's day (exclusive), UTC",
        "ChargePeriodStart": "FOCUS: start of the charge's day, UTC",
        "ConsumedQuantity": "FOCUS: usage in its natural unit (tokens, images, hours)",
        "ConsumedUnit": "FOCUS: unit of ConsumedQuantity",
        "ContractedCost": "FOCUS: contracted cost; = BilledCost (no unit price for a mixed row)",
        "ContractedUnitPrice": "FOCUS: contracted unit price; null (a row mixes routings and tiers)",
        "EffectiveCost": "FOCUS: cost after discounts; the allocated net cost where the bill has one",
        "InvoiceIssuerName": "FOCUS: who invoices the row (the bill's invoicing entity)",
        "ListCost": "FOCUS: list cost; = BilledCost (the catalog estimate is x_EstimatedCost)",
        "ListUnitPrice": "FOCUS: list unit price; null (a row mixes routings and tiers)",
        "PricingQuantity": "FOCUS: quantity in the price-list unit (tokens ÷ 1000, images, hours)",
        "PricingUnit": "FOCUS: unit of PricingQuantity (1000 Tokens, Images, Hours, ...)",
        "ProviderName": "FOCUS: who provides the service: AWS",
        "PublisherName": "FOCUS: who produced it: AWS, or the model's seller on AWS Marketplace",
        "RegionId": "FOCUS: the provider's Region code",
        "ResourceId": "FOCUS: the bill rows' resource id when they share one; else null",
        "ServiceCategory": "FOCUS: AI and Machine Learning",
        "ServiceName": "FOCUS: Amazon Bedrock",
        "ServiceSubcategory": "FOCUS: Generative AI",
        "SkuId": "FOCUS: provider SKU; null (the bill rows read do not carry it)",
        "SkuMeter": "FOCUS: the usage type when the rows share one; else null",
        "SubAccountId": "FOCUS: the usage account",
        "Tags": "FOCUS: the owner's cost_center, application, user and environment (a Parquet map)",
        "x_BaseModelId": "the model; null for an unmapped bill row",
        "x_UsageKind": "input, output, cache_read, cache_write, cache_write_1h, image, provisioned or other",
        "x_BilledTokens": "the owner's allocated billed tokens",
        "x_LoggedTokens": "the owner's own logged tokens of that kind",
        "x_EstimatedCost": "the owner's catalog estimate for that kind (USD, public list prices)",
        "x_AllocationShare": "the owner's weight in the bucket",
        "x_AllocationStatus": "allocated, unallocated (billed, no log explains it) or not_billed (BilledCost 0)",
        "x_CostCenter": "the owner's cost center",
        "x_Application": "the owner's application",
        "x_User": "the owner's user",
        "InvoiceId": "FOCUS: the invoice(s) of the bill rows behind the row, comma-separated; null until invoiced",
    },
}

DESCRIPTIONS: dict[str, dict[str, str]] = {
    table: {column: _PER_TABLE.get(table, {}).get(column) or _SHARED.get(column, "") for column in columns}
    for table, columns in TABLES.items()
}
"""One line per column of every table in `TABLES`: shown as column descriptions in the UI (`dagster/column_schema`)
and kept beside the dtypes so a new column comes with its meaning (`tests/test_schemas.py` fails on a blank)."""
