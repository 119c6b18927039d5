"""The billing side of reconciliation: read AWS billing exports (legacy CUR, CUR 2.0, FOCUS) into
`billing_line_items`. Plain functions on polars frames; the Dagster assets call `billing_line_items_for_day`
(or `billing_day` when they also want the checks and metrics)."""

from pipeline.billing.line_items import (
    BillingDay,
    billing_day,
    billing_line_items_for_day,
    classify,
    token_scale,
    tokens_per_unit,
)
from pipeline.billing.model_names import BillingNameMap, BillingNameMapError, load_billing_name_map
from pipeline.billing.readers import (
    BillingFormatError,
    BillingRead,
    athena_column_name,
    detect_format,
    read_bedrock_rows,
)
from pipeline.billing.usage_types import ParsedUsageType, parse_usage_type, parse_usage_types

__all__ = [
    "BillingDay",
    "BillingFormatError",
    "BillingNameMap",
    "BillingNameMapError",
    "BillingRead",
    "ParsedUsageType",
    "athena_column_name",
    "billing_day",
    "billing_line_items_for_day",
    "classify",
    "detect_format",
    "load_billing_name_map",
    "parse_usage_type",
    "parse_usage_types",
    "read_bedrock_rows",
    "token_scale",
    "tokens_per_unit",
]
