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
    GUARDRAIL_POLICIES,
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
    # The whole bill: the kind of spend, where its usage comes from, why the row has its owner.
    "x_SpendKind": pl.String,
    "x_UsageSource": pl.String,
    "x_AllocationReason": pl.String,
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
