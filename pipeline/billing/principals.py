"""How much of the bill names its caller: the share of Bedrock usage cost whose row carries an IAM principal.

CUR 2.0 exports made with `INCLUDE_IAM_PRINCIPAL_DATA` carry `line_item_iam_principal` (docs/formats/billing-exports.md
§2.1, §4.10); for those
rows chargeback follows the bill instead of estimating from the logs. The share says how much of the chargeback
the bill decided, and a share of 0 on a CUR 2.0 bill is the hint to turn the option on.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline.vocabulary import USAGE_LINE_TYPES


def principal_coverage(items: pl.DataFrame, top: int = 10) -> dict[str, Any]:
    """Usage cost with and without a principal, the share, distinct principals and the largest unnamed usage types.

    `enabled` is false when no row names a principal (the export lacks the column, or it is legacy CUR / FOCUS).
    """
    usage = items.filter(pl.col("line_item_type").is_in(USAGE_LINE_TYPES))
    if "iam_principal" not in usage.columns:
        usage = usage.with_columns(pl.lit(None, dtype=pl.String).alias("iam_principal"))
    cost = pl.col("unblended_cost_usd").fill_null(0.0)
    named = usage.filter(pl.col("iam_principal").is_not_null())
    unnamed = usage.filter(pl.col("iam_principal").is_null())
    total = float(usage.select(cost.sum()).item()) if usage.height else 0.0
    with_principal = float(named.select(cost.sum()).item()) if named.height else 0.0
    largest = (
        unnamed.group_by("usage_type", "billing_entity")
        .agg(cost.sum().round(6).alias("cost_usd"), pl.len().alias("rows"))
        .sort("cost_usd", descending=True, nulls_last=True)
        .head(top)
    )
    return {
        "enabled": named.height > 0,
        "usage_cost_usd": total,
        "principal_cost_usd": with_principal,
        "principal_cost_share": (with_principal / total) if total else None,
        "principals": int(named["iam_principal"].n_unique()) if named.height else 0,
        "rows_without_principal": unnamed.height,
        "largest_without_principal": largest,
    }
