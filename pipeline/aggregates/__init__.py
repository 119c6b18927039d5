"""Daily usage tables and budget status: plain functions on polars frames, wired as assets elsewhere."""

from pipeline.aggregates.budgets import budget_status
from pipeline.aggregates.daily import totals_agree, usage_by_cost_center, usage_by_model, usage_by_user, usage_lazy

__all__ = [
    "budget_status",
    "totals_agree",
    "usage_by_cost_center",
    "usage_by_model",
    "usage_by_user",
    "usage_lazy",
]
