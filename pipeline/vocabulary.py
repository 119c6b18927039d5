"""The words every stage shares, defined once, and the two helpers every stage needs.

A call's status, a bill line's type and a usage kind mean the same thing in normalization, pricing, aggregation,
billing, reconciliation and the report; when each kept its own list, the lists drifted apart (one copy of the usage
line-item types lacked `FlatRateSubscription`). Import them from here. `tests/test_vocabulary.py` fails when a
module under `pipeline/` defines its own copy.
"""

from __future__ import annotations

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

TOKEN_KINDS: tuple[str, ...] = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
"""Usage kinds counted in tokens. `cache_write_1h` is the 1-hour-TTL part of cache writes, which costs more than
5-minute writes (`billing_line_items.cache_ttl` says which TTL a bill row is)."""

USAGE_KINDS: tuple[str, ...] = (*TOKEN_KINDS, "image", "provisioned", "other")
"""`billing_line_items.usage_kind`: what a bill line is for."""

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
