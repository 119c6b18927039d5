"""Seeded generator of Bedrock model-invocation logs that look exactly like what AWS delivers: the entry point.

Why this exists: the pipeline has to be tested, demoed and benchmarked without anybody's real logs, and the
hard parts of real logs are the irregular ones (docs/formats/invocation-logs.md): four operations with
provider-native bodies, latency hidden in different places, uncached-only `inputTokenCount`, two field orders,
offloaded >100 KB bodies, late deliveries landing in the next hour's (or day's) folder, guardrail and error
records, duplicates across S3 and CloudWatch. All of that is produced deterministically from a seed: the same
options always give byte-identical objects, and `GenerationSummary` says exactly which unique request ids each
UTC day must yield, so tests can check the pipeline finds all of them and nothing else.

The work is done in rooms, each with its own random stream per day so a change in one knob does not reshuffle
the rest (turning on faults or CloudWatch does not change which calls were made or what they cost):
`world` (accounts, models, teams, workloads) → `calls` (planning) → `bodies` (provider bodies, the record) →
`delivery` (S3 layout via `layout`, faults, CloudWatch). This module is the stable import for callers.
"""

from __future__ import annotations

from pipeline.sample.bodies import iter_records
from pipeline.sample.calls import OPERATIONS, LogGenOptions, estimate_spend
from pipeline.sample.delivery import (
    CW_MAX_BYTES,
    CW_MAX_EVENTS,
    CloudWatchPutResult,
    GenerationSummary,
    deliver_cloudwatch,
    generate_sample,
    put_cloudwatch,
    write_logs,
)
from pipeline.sample.layout import PERMISSION_MARKER

__all__ = [
    "CW_MAX_BYTES",
    "CW_MAX_EVENTS",
    "OPERATIONS",
    "PERMISSION_MARKER",
    "CloudWatchPutResult",
    "GenerationSummary",
    "LogGenOptions",
    "deliver_cloudwatch",
    "estimate_spend",
    "generate_sample",
    "iter_records",
    "put_cloudwatch",
    "write_logs",
]
