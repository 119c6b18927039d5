"""Completeness: are the logs the whole story? Logging configuration history, drift, and logs vs metrics vs bill."""

from pipeline.completeness.coverage import (
    apply_metric_throttles,
    build_log_completeness,
    day_coverage,
    logged_model_ids,
)
from pipeline.completeness.history import config_drift, config_for_day

__all__ = [
    "apply_metric_throttles",
    "build_log_completeness",
    "config_drift",
    "config_for_day",
    "day_coverage",
    "logged_model_ids",
]
