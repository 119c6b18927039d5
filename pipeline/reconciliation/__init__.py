"""Log-to-bill reconciliation and chargeback: plain functions on polars frames, wired as assets elsewhere."""

from pipeline.reconciliation.chargeback import chargeback
from pipeline.reconciliation.reconcile import (
    gaps_over_tolerance,
    non_usage_summary,
    reconcile,
    reconciliation_summary,
)

__all__ = [
    "chargeback",
    "gaps_over_tolerance",
    "non_usage_summary",
    "reconcile",
    "reconciliation_summary",
]
