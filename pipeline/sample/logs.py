"""Seeded generator of Bedrock model-invocation logs that look exactly like what AWS delivers.

Why this exists: the pipeline has to be tested, demoed and benchmarked without anybody's real logs, and the
hard parts of real logs are the irregular ones (spec `bedrock-invocation-logs.md`): four operations with
provider-native bodies, latency hidden in different places, uncached-only `inputTokenCount`, two field orders,
offloaded >100 KB bodies, late deliveries landing in the next hour's (or day's) folder, guardrail and error
records, duplicates across S3 and CloudWatch. All of that is produced here, deterministically from a seed:
the same options always give byte-identical objects, and `GenerationSummary` says exactly which unique
request ids each UTC day must yield, so tests can check the pipeline finds all of them and nothing else.

Three independent random streams per day (plan, delivery, faults) keep a change in one knob from reshuffling
the rest: turning on faults or CloudWatch does not change which calls were made or what they cost.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import gzip
import math
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import fsspec
import orjson

from pipeline.sample.catalog import (
    ACCOUNTS,
    CLOUDWATCH_STREAM,
    DEFAULT_LOG_GROUP,
    DEFAULT_LOG_ROOT,
    INFERENCE_REGIONS,
    MODELS,
    OLD_FIELD_ORDER_ACCOUNTS,
    REGIONS,
    WORKLOADS,
    ModelSpec,
    ModelUse,
    Workload,
    expected_cost_center,
)

OFFLOAD_BYTES = 100 * 1024
"""Bodies larger than this go to a `data/` sidecar object instead of inline JSON (spec §2.3)."""

PERMISSION_MARKER = "amazon-bedrock-logs-permission-check"
OPERATIONS = ("InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream")
ERROR_STATUS = {
    "ValidationException": "client_error",
    "ThrottlingException": "throttled",
    "ModelTimeoutException": "server_error",
    "InternalServerException": "server_error",
    "ServiceUnavailableException": "server_error",
}
CW_MAX_EVENTS = 10_000
CW_MAX_BYTES = 1_048_576
CW_EVENT_OVERHEAD = 26
CW_MAX_SPAN_MS = 24 * 3600 * 1000 - 1


@dataclass(frozen=True)
class LogGenOptions:
    """What to generate. Defaults give ~3 days x 2,000 calls of clean logs, ~2-3 KB per record.

    Fault knobs are absolute counts over the whole run, spread over the days. Injected faults never remove a
    true record: a malformed line is a cut copy of a record that is also intact in the same file, and a
    truncated file is a cut re-delivery of a file that exists intact, so the expected unique records per day do
    not depend on how much of a broken file a reader salvages. `unknown_schema_records` adds records with
    `schemaVersion: "2.0"` and fresh request ids; they are *not* counted as expected records.

    `cloudwatch_share` of calls go only to CloudWatch Logs; when it is > 0, another `cloudwatch_overlap` share
    goes to both destinations (what AWS does when both are configured) to exercise cross-source dedup.
    `cloudwatch_accounts` limits CloudWatch delivery to some accounts (default: all listed ones).

    `body_kb` is the average prompt + answer text per call; records come out about 1.5x that (envelope, stream
    chunks, embedding vectors). Token counts follow each workload's profile and do not depend on it, so costs
    stay the same whatever the body size.
    """

    start: dt.date
    days: int = 3
    records_per_day: int = 2000
    accounts: tuple[str, ...] = ACCOUNTS
    regions: tuple[str, ...] = REGIONS
    seed: int = 7
    body_kb: float = 2.0
    malformed_lines: int = 0
    truncated_files: int = 0
    duplicate_deliveries: int = 0
    unknown_schema_records: int = 0
    late_fraction: float = 0.02
    records_per_file: int = 200
    cloudwatch_share: float = 0.0
    cloudwatch_overlap: float = 0.05
    cloudwatch_accounts: tuple[str, ...] | None = None
    cloudwatch_log_group: str = DEFAULT_LOG_GROUP
    undelivered: tuple[tuple[str, str, int, int], ...] = ()
    """(account, region, start, end) epoch-second windows whose calls are never delivered to any log (a logging
    gap): they stay in `iter_records` (they happened, are billed and counted by metrics) but not in the logs."""

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("days must be >= 1")
        if self.records_per_day < 0:
            raise ValueError("records_per_day must be >= 0")
        if self.records_per_file < 1:
            raise ValueError("records_per_file must be >= 1")
        if self.body_kb <= 0:
            raise ValueError("body_kb must be > 0")
        for name in ("late_fraction", "cloudwatch_share", "cloudwatch_overlap"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {v}")
        if self.cloudwatch_share + self.cloudwatch_overlap > 1.0:
            raise ValueError("cloudwatch_share + cloudwatch_overlap must not exceed 1")
        for name in ("malformed_lines", "truncated_files", "duplicate_deliveries", "unknown_schema_records"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        unknown_acc = set(self.accounts) - set(ACCOUNTS)
        if unknown_acc:
            raise ValueError(f"unknown sample accounts {sorted(unknown_acc)}; the world has {list(ACCOUNTS)}")
        unknown_reg = set(self.regions) - set(REGIONS)
        if unknown_reg:
            raise ValueError(f"unknown sample regions {sorted(unknown_reg)}; the world has {list(REGIONS)}")

    @property
    def dates(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(self.days)]


@dataclass
class GenerationSummary:
    """What was written, and the ground truth a reader must recover.

    `expected_request_ids[d]` is the set of unique, valid request ids whose record `timestamp` falls on UTC day
    `d`, over S3 and CloudWatch together (faults and duplicates excluded). `day_totals[d]` holds the true counts
    per status and token sums for that day. Byte and file counts include everything written (sidecars, markers,
    duplicates, truncated copies).
    """

    dest: str
    records: int = 0
    records_per_day: dict[dt.date, int] = field(default_factory=dict)
    expected_request_ids: dict[dt.date, set[str]] = field(default_factory=dict)
    day_totals: dict[dt.date, dict[str, int]] = field(default_factory=dict)
    s3_records: int = 0
    files: int = 0
    bytes: int = 0
    log_keys: list[str] = field(default_factory=list)
    sidecars: int = 0
    sidecar_keys: list[str] = field(default_factory=list)
    marker_keys: list[str] = field(default_factory=list)
    late_records: int = 0
    cross_hour_records: int = 0
    cross_day_records: int = 0
    malformed_lines: int = 0
    unknown_schema_records: int = 0
    unknown_schema_request_ids: list[str] = field(default_factory=list)
    truncated_files: int = 0
    truncated_keys: list[str] = field(default_factory=list)
    duplicate_files: int = 0
    duplicate_records: int = 0
    cloudwatch_records: list[dict[str, Any]] = field(default_factory=list)
    cloudwatch_only: int = 0
    cloudwatch_overlap: int = 0
    cloudwatch_events: int = 0

    @property
    def expected_unique_per_day(self) -> dict[dt.date, int]:
        return {d: len(ids) for d, ids in self.expected_request_ids.items()}


@dataclass
class _Call:
    """One planned invocation: every random decision that matters for usage and cost, before any body text."""

    request_id: str
    ts: int
    workload: Workload
    account: str
    region: str
    model: ModelSpec
    model_id: str
    operation: str
    identity_arn: str
    status: str
    error_code: str | None
    input_tokens: int
    output_tokens: int
    cache_read: int
    cache_write: int
    images: int
    quality: str
    hit_max: bool
    max_tokens: int
    latency_ms: int | None
    first_byte_ms: int | None
    inference_region: str | None
    request_metadata: dict[str, str] | None
    oversize: bool
    prompt_tokens: int
    turns: int
    old_format: bool
    cache_write_1h: int = 0  # the 1-hour-TTL part of cache_write
    latency_optimized: bool = False  # `performanceConfig.latency = optimized` in a Converse request

    def cost_usd(self) -> float:
        """Approximate on-demand cost from the catalog's copied prices (0 when the model has no price)."""
        m = self.model
        if m.image_usd:
            return self.images * m.image_usd.get(self.quality, 0.0) if self.status == "success" else 0.0
        if m.input_per_1k is None:
            return 0.0
        cr = m.cache_read_per_1k if m.cache_read_per_1k is not None else m.input_per_1k
        cw = m.cache_write_per_1k if m.cache_write_per_1k is not None else m.input_per_1k
        return (
            self.input_tokens * m.input_per_1k
            + self.output_tokens * (m.output_per_1k or 0.0)
            + self.cache_read * cr
            + self.cache_write * cw
        ) / 1000.0


# ---------------------------------------------------------------------------------------------------------------
# Planning: which calls happen, with what tokens, status and latency
# ---------------------------------------------------------------------------------------------------------------


def _lognormal(rng: random.Random, mean: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(max(mean, 1e-9)) - sigma * sigma / 2, sigma)


def _uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _active(opts: LogGenOptions) -> list[tuple[Workload, tuple[tuple[str, float], ...]]]:
    """Workloads that run in the selected accounts/regions, each with its Regions narrowed to the selection."""
    out = []
    for wl in WORKLOADS:
        if wl.account not in opts.accounts:
            continue
        regions = tuple((r, w) for r, w in wl.regions if r in opts.regions)
        if regions:
            out.append((wl, regions))
    return out


_EMBED_MEAN = {"search": 24.0, "sales": 60.0}


def _plan_day(opts: LogGenOptions, day: dt.date) -> list[_Call]:
    """All calls of one UTC day, sorted by time. Uses only the day's plan RNG, so days are independent."""
    rng = random.Random(f"{opts.seed}:plan:{day.isoformat()}")
    active = _active(opts)
    if not active or opts.records_per_day == 0:
        return []
    day_start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
    picks = rng.choices(active, weights=[wl.weight for wl, _ in active], k=opts.records_per_day)
    calls = [_plan_call(rng, wl, regions, day_start) for wl, regions in picks]
    calls.sort(key=lambda c: (c.ts, c.request_id))
    return calls


LONG_CONTEXT_MODELS = frozenset(
    {"anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-20250514-v1:0"}
)
LONG_CONTEXT_SHARE = 0.005
"""Share of Sonnet 4/4.5 calls whose prompt exceeds 200K tokens (priced at the long-context tier)."""
CACHE_1H_SHARE = 0.25
"""Share of Claude cache writes made with the 1-hour TTL."""
LATENCY_OPTIMIZED_MODELS = frozenset(
    {
        "amazon.nova-pro-v1:0",
        "meta.llama3-1-70b-instruct-v1:0",
        "meta.llama3-1-405b-instruct-v1:0",
        "anthropic.claude-3-5-haiku-20241022-v1:0",
    }
)
LATENCY_OPTIMIZED_SHARE = 0.15
"""Share of Converse calls to a latency-optimized model (spec §3.6) that ask for it."""


def _price_shapes(
    request_id: str, model: ModelSpec, operation: str, input_tokens: int, cache_write: int
) -> tuple[int, int, bool]:
    """(input tokens, 1-hour cache writes, latency-optimized) for the calls whose price depends on their shape.

    Drawn from a generator seeded by the request id, not from the day's stream, so that adding these shapes left
    every other call of the sample exactly as it was.
    """
    side = random.Random(request_id)
    if model.base_model_id in LONG_CONTEXT_MODELS and side.random() < LONG_CONTEXT_SHARE:
        input_tokens = side.randint(200_001, 420_000)
    one_hour = 0
    if model.family == "anthropic" and cache_write > 0 and side.random() < CACHE_1H_SHARE:
        one_hour = cache_write if side.random() < 0.5 else cache_write // 2
    latency = (
        model.base_model_id in LATENCY_OPTIMIZED_MODELS
        and operation in ("Converse", "ConverseStream")
        and side.random() < LATENCY_OPTIMIZED_SHARE
    )
    return input_tokens, one_hour, latency


def _plan_call(
    rng: random.Random,
    wl: Workload,
    regions: tuple[tuple[str, float], ...],
    day_start: int,
) -> _Call:
    request_id = _uuid4(rng)
    hour = rng.choices(range(24), weights=wl.hours)[0]
    ts = day_start + hour * 3600 + rng.randrange(3600)
    region = rng.choices([r for r, _ in regions], weights=[w for _, w in regions])[0]
    use: ModelUse = rng.choices(wl.models, weights=[m.weight for m in wl.models])[0]
    model = MODELS[use.model]
    operation = use.operation
    account = wl.account

    if wl.role:
        identity = f"arn:aws:sts::{account}:assumed-role/{wl.role}/{rng.choice(wl.sessions)}"
        iam_user = None
    else:
        iam_user = rng.choice(wl.iam_users)
        identity = f"arn:aws:iam::{account}:user/{iam_user}"

    metadata: dict[str, str] | None = None
    if rng.random() < wl.metadata_share:
        base = wl.alt_metadata if (wl.alt_metadata and rng.random() < wl.alt_share) else wl.metadata
        metadata = {}
        if iam_user is not None:
            metadata["userId"] = iam_user
        elif wl.user_pool:
            metadata["userId"] = rng.choice(wl.user_pool)
        metadata.update(base)

    family = model.family
    input_tokens = output_tokens = cache_read = cache_write = images = 0
    quality = "standard"
    hit_max = False
    oversize = False
    if family == "titan_embed":
        input_tokens = max(2, int(_lognormal(rng, _EMBED_MEAN.get(wl.domain, 380.0), 0.5)))
    elif family == "nova_canvas":
        images = rng.choices((1, 2, 3, 4), weights=(70, 15, 10, 5))[0]
        quality = "premium" if rng.random() < 0.15 else "standard"
    else:
        input_tokens = max(5, int(_lognormal(rng, wl.input_mean, wl.input_sigma)))
        output_tokens = max(1, int(_lognormal(rng, wl.output_mean, wl.output_sigma)))
        if output_tokens >= wl.max_tokens:
            output_tokens, hit_max = wl.max_tokens, True
        if rng.random() < wl.oversize_rate:
            oversize = True
            input_tokens = rng.randint(28_000, 42_000)
        if model.supports_cache and wl.cache_prefix > 0:
            prefix = int(wl.cache_prefix * rng.uniform(0.95, 1.05))
            if rng.random() < wl.cache_hit:
                cache_read = prefix
                if family == "anthropic" and rng.random() < 0.3:
                    cache_write = max(1, int(_lognormal(rng, 450, 0.5)))
            elif family == "anthropic":
                cache_write = prefix
            # Nova misses log no cache write: the price catalog has no Nova cache-write rate, and an
            # unpriced bucket would make the demo's costs ambiguous.

    # Status: errors first (throttles follow load), then guardrail interventions on eligible calls.
    peak = max(wl.hours)
    p_throttle = 0.004 + 0.012 * (wl.hours[hour] / peak) ** 2
    p_timeout = 0.002 + (0.004 if output_tokens > 1500 else 0.0)
    thresholds = (
        ("ValidationException", 0.006),
        ("ThrottlingException", p_throttle),
        ("ModelTimeoutException", p_timeout),
        ("InternalServerException", 0.0015),
        ("ServiceUnavailableException", 0.0015),
    )
    r = rng.random()
    error_code = None
    acc = 0.0
    for code, p in thresholds:
        acc += p
        if r < acc:
            error_code = code
            break
    guard_draw = rng.random()
    status = ERROR_STATUS[error_code] if error_code else "success"
    guardrail_ok = operation in ("Converse", "ConverseStream") or (operation == "InvokeModel" and family == "anthropic")
    eligible = status == "success" and guardrail_ok and family not in ("titan_embed", "nova_canvas")
    if eligible and guard_draw < wl.guardrail_rate:
        status = "guardrail_intervened"

    ttfb = int(_lognormal(rng, 300 + 0.03 * (input_tokens + cache_write) + 0.002 * cache_read, 0.35))
    gen_ms = int(output_tokens * model.ms_per_token * rng.uniform(0.8, 1.3))
    latency_ms: int | None = None
    first_byte_ms: int | None = None
    if status == "success":
        latency_ms = ttfb + gen_ms
        if family == "titan_embed":
            latency_ms = int(_lognormal(rng, 45 + input_tokens * 0.1, 0.3))
        elif family == "nova_canvas":
            latency_ms = int(images * rng.uniform(3500, 9000))
        first_byte_ms = ttfb
    elif status == "guardrail_intervened":
        latency_ms = int(rng.uniform(150, 650))
    inference_region = None
    ir_draw = rng.choice(INFERENCE_REGIONS[model.geo]) if model.geo else None
    if status == "success" and ir_draw:
        inference_region = ir_draw
    prompt_tokens = input_tokens  # sizes the logged prompt text even when the call logged no usage
    input_tokens, cache_write_1h, latency_optimized = _price_shapes(
        request_id, model, operation, input_tokens, cache_write
    )
    if status != "success":
        input_tokens = output_tokens = cache_read = cache_write = cache_write_1h = 0

    turns = 1 + (rng.randint(1, 3) if rng.random() < wl.multi_turn else 0)
    return _Call(
        request_id=request_id,
        ts=ts,
        workload=wl,
        account=account,
        region=region,
        model=model,
        model_id=model.logged_id(account, region),
        operation=operation,
        identity_arn=identity,
        status=status,
        error_code=error_code,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read=cache_read,
        cache_write=cache_write,
        images=images,
        quality=quality,
        hit_max=hit_max,
        max_tokens=wl.max_tokens,
        latency_ms=latency_ms,
        first_byte_ms=first_byte_ms,
        inference_region=inference_region,
        request_metadata=metadata,
        oversize=oversize,
        prompt_tokens=prompt_tokens,
        turns=turns,
        old_format=account in OLD_FIELD_ORDER_ACCOUNTS,
        cache_write_1h=cache_write_1h,
        latency_optimized=latency_optimized,
    )


def estimate_spend(opts: LogGenOptions) -> dict[str, dict[str, float]]:
    """Approximate spend per month (`YYYY-MM`) and cost center, with the attribution precedence of README.md.

    Used to size the demo budgets; it needs no bodies, so it is cheap even for many days.
    """
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for day in opts.dates:
        month = day.strftime("%Y-%m")
        for c in _plan_day(opts, day):
            cc = expected_cost_center(c.identity_arn, c.model_id, c.request_metadata)
            out[month][cc] += c.cost_usd()
    return {m: dict(v) for m, v in out.items()}


# ---------------------------------------------------------------------------------------------------------------
# Text: plausible prompts and answers per domain (sizes follow `body_kb`, not the token counts)
# ---------------------------------------------------------------------------------------------------------------

_SLOTS: dict[str, tuple[str, ...]] = {
    "product": (
        "TrailRunner 3 hiking boots",
        "AeroLite rain jacket",
        "Summit 45L backpack",
        "Glacier insulated bottle",
        "Ridge carbon trekking poles",
        "Basecamp 2-person tent",
        "Nimbus down sleeping bag",
        "Coastline kayak paddle",
    ),
    "plan": ("Starter", "Team", "Business", "Enterprise"),
    "company": (
        "Northwind Traders",
        "Contoso Logistics",
        "Fabrikam Health",
        "Tailspin Toys",
        "Wingtip Partners",
        "Adatum Energy",
        "Litware Labs",
    ),
    "person": ("Jordan Miller", "Sam Rivera", "Alex Novak", "Taylor Brooks", "Morgan Lee", "Casey Nguyen"),
    "city": ("Denver", "Seattle", "Austin", "Munich", "Lyon", "Milan", "Prague", "Toronto"),
    "feature": (
        "single sign-on",
        "audit logs",
        "usage exports",
        "role-based access control",
        "outgoing webhooks",
        "API rate limits",
        "data residency",
    ),
    "topic": (
        "retrieval-augmented generation",
        "prompt caching",
        "4-bit quantization",
        "evaluation harnesses",
        "contrastive pre-training",
        "speculative decoding",
        "long-context attention",
    ),
    "lang": ("Python", "TypeScript", "SQL", "Go", "Rust"),
    "country": ("Portugal", "Kenya", "Chile", "Vietnam", "Norway", "Canada"),
    "style": ("watercolor", "flat vector", "isometric 3D", "retro poster", "soft pastel", "photorealistic"),
    "subject": (
        "a hiker watching sunrise over alpine lakes",
        "a fox reading a map in a forest",
        "a lighthouse in a winter storm",
        "a city bike lane in spring",
        "a campfire under the milky way",
    ),
    "month": ("March", "April", "June", "September", "November"),
}


def _slot_values(rng: random.Random) -> dict[str, str]:
    """One coherent set of names and numbers per record, so a prompt talks about one order, one customer."""
    vals = {k: rng.choice(v) for k, v in _SLOTS.items()}
    vals.update(
        order=f"#{rng.randint(1_000_000, 9_999_999)}",
        amount=f"${rng.randint(40, 4800):,}.{rng.randint(0, 99):02d}",
        n=str(rng.randint(2, 60)),
        seats=str(rng.randint(10, 900)),
        rating=f"{rng.uniform(3.4, 4.9):.1f}",
        reviews=str(rng.randint(12, 4200)),
        price=f"${rng.randint(19, 420)}.{rng.choice(('00', '95', '99'))}",
        sec=f"{rng.randint(1, 12)}.{rng.randint(1, 9)}",
        days=str(rng.choice((14, 30, 45, 60, 90))),
        year=str(rng.randint(2016, 2025)),
        first=rng.choice(_SLOTS["person"]).split()[0],
    )
    return vals


_CORPUS: dict[str, dict[str, tuple[str, ...]]] = {
    "search": {
        "system": (
            "You are the product search assistant for Example Outdoor Co. Rank the candidate products for the "
            "shopper's query and explain the top three picks in one sentence each. Only use facts that appear "
            "in the candidates; if nothing fits, say so and suggest a broader query.",
        ),
        "user": (
            "Shopper query: waterproof boots for wide feet, budget around {price}.",
            "Shopper query: lightweight gear for a {n}-day trek near {city}.",
            "Shopper query: gift ideas for someone who just started camping.",
            "Shopper query: something like the {product} but cheaper.",
        ),
        "context": (
            "Candidate: {product}, rated {rating}/5 from {reviews} reviews, {price}, ships from {city}.",
            "Candidate notes: customers mention the fit runs slightly narrow and the sole grips well on wet rock.",
            "Candidate: {product}, in stock in {n} colours, free returns within {days} days.",
            "Review excerpt: 'Used it for {n} days in the rain around {city} and stayed completely dry.'",
            "Inventory: {n} units available in the {city} warehouse; next restock expected in {month}.",
        ),
        "answer": (
            "The {product} is the best match: it is waterproof, rated {rating}/5, and within the stated budget.",
            "As a second option, shoppers with wide feet consistently praise the roomy toe box.",
            "If weight matters most, the lighter model saves about {n}0 grams per pair.",
            "None of the candidates is cheaper than {price} with the same rating, so I kept the ranking by fit.",
        ),
    },
    "support": {
        "system": (
            "You are Example Cloud's support assistant. Be concise and friendly. Follow the refund policy: "
            "refunds are possible within {days} days of the invoice date, never promise credits above $500, "
            "and escalate anything about security, data loss or legal requests to a human agent. Always quote "
            "the order number you looked at. Do not reveal internal notes.",
        ),
        "user": (
            "Customer message: Hi, my invoice for order {order} shows {amount} but our {plan} plan should be "
            "cheaper. Can you check what happened?",
            "Customer message: Since yesterday our team cannot log in with {feature}. Is there an outage?",
            "Customer message: Please cancel order {order}; we ordered the wrong plan by mistake.",
            "Customer message: How do I export last month's usage for our finance team in {city}?",
        ),
        "context": (
            "Ticket history: customer verified via the email on file; account created in {year}; {n} seats.",
            "Agent note: the {plan} plan was upgraded mid-cycle, which creates a prorated line on the invoice.",
            "Previous reply: we applied a one-time credit of {amount} in {month}; no further credits are due.",
            "Status page: no incident reported for {feature} in the last {days} days.",
            "Billing record: order {order}, amount {amount}, paid by card, invoice sent to the billing contact.",
        ),
        "answer": (
            "Thanks for reaching out, and sorry for the confusion. I checked order {order}.",
            "The difference comes from a prorated charge after the upgrade to the {plan} plan on the 14th.",
            "You can download the usage export from Settings > Billing > Exports; it covers the last {days} days.",
            "I have not found any incident for {feature}; could you share the exact error message you see?",
            "I've passed this to a human agent, who will reply within one business day.",
        ),
    },
    "docs": {
        "system": (
            "You answer questions from sales representatives using only the product documentation excerpts "
            "provided. Cite the section number for every statement. If the documentation does not cover the "
            "question, say that it does not.",
        ),
        "user": (
            "Question: Does the {plan} plan include {feature}, and how is it enabled?",
            "Question: A prospect at {company} asks whether we support {feature} with data residency in the EU.",
            "Question: What is the maximum number of seats on the {plan} plan before we need a custom contract?",
        ),
        "context": (
            "Admin guide, section {sec}: To enable {feature}, open Settings > Security and select 'Configure'.",
            "Pricing sheet, section {sec}: the {plan} plan includes up to {seats} seats and standard support.",
            "Release notes {year}: {feature} is now generally available in all commercial regions.",
            "Security whitepaper, section {sec}: customer data is encrypted at rest with per-tenant keys.",
        ),
        "answer": (
            "Yes. According to section {sec}, {feature} is included in the {plan} plan.",
            "It is enabled under Settings > Security by an administrator (section {sec}).",
            "The documentation does not state a seat limit beyond {seats}; please check with deal desk.",
        ),
    },
    "sales": {
        "system": (
            "You are a sales copilot for the EMEA team. Write in a warm, professional tone, keep emails under "
            "200 words, and never quote discounts that are not in the CRM notes.",
        ),
        "user": (
            "Draft a follow-up email to {person} at {company} about renewing the {plan} plan before {month}.",
            "Summarise the last three calls with {company} and list open questions.",
            "Suggest an agenda for a 30-minute demo of {feature} for {company}'s team in {city}.",
        ),
        "context": (
            "CRM note: {company} has {seats} seats; renewal due in {month}; main concern is the price of {feature}.",
            "Call summary: {person} asked about {feature} and wants a reference customer in {city}.",
            "CRM note: approved discount for multi-year renewal is {n} percent; legal review takes about {days} days.",
        ),
        "answer": (
            "Hi {first}, thank you again for your time last week.",
            "As discussed, renewing the {plan} plan before {month} keeps your current pricing for all {seats} seats.",
            "I'd be happy to set up a short session on {feature} with our solutions team.",
            "Open questions: reference customer in {city}; timeline for legal review; onboarding plan.",
        ),
    },
    "rag": {
        "system": ("You write faithful, compact summaries of internal documents for the knowledge base.",),
        "user": (
            "Summarise the following document in five bullet points for the knowledge base.",
            "Extract the key obligations and dates from this contract excerpt.",
        ),
        "context": (
            "Section {sec}. Payment terms. Invoices are payable within {days} days of the invoice date.",
            "Section {sec}. Late payments accrue interest of one percent per month on the outstanding amount.",
            "Section {sec}. Either party may terminate this agreement with {days} days' written notice.",
            "Section {sec}. The supplier shall keep customer data within the agreed region at all times.",
            "Section {sec}. Service credits are the customer's sole remedy for missed availability targets.",
            "Section {sec}. This agreement renews automatically for successive twelve-month terms.",
            "Section {sec}. Support requests are answered within {n} business hours for severity one issues.",
        ),
        "answer": (
            "- Invoices are due within {days} days; late payments accrue interest.",
            "- Either party can terminate with {days} days' notice.",
            "- Customer data stays in the agreed region.",
            "- Service credits are the only remedy for missed availability.",
            "- The agreement renews every twelve months unless cancelled.",
        ),
    },
    "research": {
        "system": ("You are a careful research assistant. State uncertainty explicitly and prefer primary sources.",),
        "user": (
            "Explain the trade-offs of {topic} for a production {lang} service.",
            "Write a {lang} function that deduplicates records by id and keeps the latest timestamp.",
            "Compare {topic} with a simpler baseline and propose an evaluation plan.",
            "Review this abstract and list its three weakest claims.",
        ),
        "context": (
            "Abstract: We study {topic} on {n} public benchmarks and report a consistent gain over strong baselines.",
            "Our method reduces latency by {n} percent at equal quality, measured on a single accelerator.",
            "Limitations: results were obtained on English data only and may not transfer to other languages.",
            "Appendix {sec}: hyper-parameters were tuned on the validation split with {n} random restarts.",
        ),
        "answer": (
            "There are three main trade-offs to consider with {topic}.",
            "First, it adds operational complexity: you need monitoring for quality drift.",
            "Second, the gains reported in papers are measured on benchmarks that differ from production traffic.",
            "A reasonable evaluation plan compares both variants on a held-out sample of real requests.",
            "Here is a {lang} sketch that keeps the newest record per id using a single pass over the input.",
        ),
    },
    "playground": {
        "system": ("You are a helpful assistant.",),
        "user": (
            "what is the capital of {country}?",
            "Write a haiku about {topic}.",
            "Translate 'where is the train station' into German, French and Italian.",
            "Give me three name ideas for an outdoor gear newsletter.",
        ),
        "context": ("Keep it short.", "Answer in one paragraph.", "Use plain language."),
        "answer": (
            "Here is a short answer.",
            "Sure! Here are a few ideas you might like.",
            "Wo ist der Bahnhof? / Où est la gare ? / Dov'è la stazione?",
        ),
    },
    "image": {
        "system": ("",),
        "user": (
            "Illustration of {subject} in {style} style, soft morning light, for a spring campaign banner",
            "Product shot of the {product} on a mossy rock, {style} style, shallow depth of field",
        ),
        "context": ("",),
        "answer": ("",),
    },
}


def _compose(rng: random.Random, pool: tuple[str, ...], vals: Mapping[str, str], n_chars: int, sep: str) -> str:
    """Sentences from `pool` (slots filled) until about `n_chars` characters."""
    parts: list[str] = []
    size = 0
    while size < n_chars:
        s = rng.choice(pool).format_map(vals)
        parts.append(s)
        size += len(s) + len(sep)
    return sep.join(parts)


@dataclass
class _Texts:
    system: str
    turns: list[tuple[str, str]]  # (role, text), last is the user's
    answer: str

    @property
    def user(self) -> str:
        return self.turns[-1][1]


def _texts(rng: random.Random, c: _Call, body_kb: float) -> _Texts:
    corpus = _CORPUS[c.workload.domain]
    vals = _slot_values(rng)
    budget = body_kb * 1024
    in_chars = int(min(max(_lognormal(rng, budget * 0.45, 0.45), 40), budget * 4))
    if c.oversize:
        in_chars = c.prompt_tokens * 4
    out_chars = int(min(max(_lognormal(rng, budget * 0.25, 0.45), 20), max(c.output_tokens * 4, 20)))
    system = rng.choice(corpus["system"]).format_map(vals)
    turns: list[tuple[str, str]] = []
    for _ in range(c.turns - 1):
        turns.append(("user", rng.choice(corpus["user"]).format_map(vals)))
        turns.append(("assistant", rng.choice(corpus["answer"]).format_map(vals)))
    head = rng.choice(corpus["user"]).format_map(vals)
    context = _compose(rng, corpus["context"], vals, max(in_chars - len(head) - len(system), 0), "\n")
    turns.append(("user", f"{head}\n\n{context}" if context.strip() else head))
    answer = _compose(rng, corpus["answer"], vals, out_chars, " ")
    return _Texts(system=system, turns=turns, answer=answer)


def _chunks(rng: random.Random, text: str) -> list[str]:
    """Split an answer into stream deltas the way token streams look: a few words each, spaces leading.

    Real streams have one delta per token or two; we keep one per ~40 characters (at most 48) so streamed
    records stay near the configured body size.
    """
    max_pieces = min(48, max(3, len(text) // 40))
    words = text.split(" ")
    per = max(1, math.ceil(len(words) / max_pieces))
    pieces = []
    i = 0
    while i < len(words):
        step = max(1, per + rng.randint(-1, 1)) if per > 1 else 1
        piece = " ".join(words[i : i + step])
        pieces.append(piece if i == 0 else " " + piece)
        i += step
    return pieces or [""]


# ---------------------------------------------------------------------------------------------------------------
# Bodies: provider-native request/response shapes (spec §5) and the Converse shape (§4.4)
# ---------------------------------------------------------------------------------------------------------------


def _temperature(rng: random.Random) -> float:
    return rng.choice((0, 0.2, 0.5, 0.7, 1))


def _anthropic_usage(c: _Call) -> dict[str, Any]:
    usage = {"input_tokens": c.input_tokens}
    if c.model.supports_cache:
        usage["cache_creation_input_tokens"] = c.cache_write
        usage["cache_read_input_tokens"] = c.cache_read
        if c.cache_write_1h:
            usage["cache_creation"] = {
                "ephemeral_5m_input_tokens": c.cache_write - c.cache_write_1h,
                "ephemeral_1h_input_tokens": c.cache_write_1h,
            }
    usage["output_tokens"] = c.output_tokens
    return usage


def _invocation_metrics(c: _Call) -> dict[str, int]:
    m = {
        "inputTokenCount": c.input_tokens,
        "outputTokenCount": c.output_tokens,
        "invocationLatency": c.latency_ms or 0,
        "firstByteLatency": c.first_byte_ms or 0,
    }
    if c.model.family == "anthropic" and c.model.supports_cache:
        m["cacheReadInputTokenCount"] = c.cache_read
        m["cacheWriteInputTokenCount"] = c.cache_write
    return m


def _msg_id(rng: random.Random, prefix: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "".join(rng.choice(alphabet) for _ in range(24))


def _llama_prompt(t: _Texts) -> str:
    out = ["<|begin_of_text|>"]
    if t.system:
        out.append(f"<|start_header_id|>system<|end_header_id|>\n\n{t.system}<|eot_id|>")
    for role, text in t.turns:
        out.append(f"<|start_header_id|>{role}<|end_header_id|>\n\n{text}<|eot_id|>")
    out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(out)


def _guardrail_trace(rng: random.Random, chars: int, converse: bool) -> dict[str, Any]:
    """The guardrail trace: InvokeModel bodies carry `actionReason` + `input` (spec E7), Converse responses
    carry `inputAssessment` (spec §4.5)."""
    assessment = {
        "h28wrktbwagn": {
            "contentPolicy": {
                "filters": [
                    {
                        "action": "BLOCKED",
                        "confidence": "HIGH",
                        "detected": True,
                        "filterStrength": "HIGH",
                        "type": rng.choice(("MISCONDUCT", "VIOLENCE", "INSULTS", "PROMPT_ATTACK")),
                    }
                ]
            },
            "invocationMetrics": {
                "guardrailCoverage": {"textCharacters": {"guarded": chars, "total": chars}},
                "guardrailProcessingLatency": rng.randint(90, 320),
                "usage": {
                    "contentPolicyImageUnits": 0,
                    "contentPolicyUnits": max(1, math.ceil(chars / 1000)),
                    "contextualGroundingPolicyUnits": 0,
                    "sensitiveInformationPolicyFreeUnits": 0,
                    "sensitiveInformationPolicyUnits": 0,
                    "topicPolicyUnits": 0,
                    "wordPolicyUnits": 0,
                },
            },
        }
    }
    if converse:
        return {"guardrail": {"inputAssessment": assessment}}
    return {"guardrail": {"actionReason": "Guardrail blocked.", "input": assessment}}


_GUARDRAIL_MESSAGE = "Sorry, I can't help with that request. Please contact a human agent for assistance."


def _converse_bodies(rng: random.Random, c: _Call, t: _Texts) -> tuple[dict[str, Any], dict[str, Any] | None]:
    system: list[dict[str, Any]] = [{"text": t.system}]
    if c.cache_read or c.cache_write:
        system.append({"cachePoint": {"type": "default"}})
    req: dict[str, Any] = {
        "messages": [{"role": role, "content": [{"text": text}]} for role, text in t.turns],
        "system": system,
        "inferenceConfig": {"maxTokens": c.max_tokens, "temperature": _temperature(rng)},
    }
    if c.model.family == "anthropic" and rng.random() < 0.3:
        req["additionalModelRequestFields"] = {"top_k": 250}
    if c.latency_optimized:
        req["performanceConfig"] = {"latency": "optimized"}
    if c.workload.guardrail_rate > 0:
        req["guardrailConfig"] = {
            "guardrailIdentifier": "gr7xk2m9q4ab",
            "guardrailVersion": "3",
            "trace": "enabled",
        }
    if c.status in ERROR_STATUS.values():
        return req, None
    if c.status == "guardrail_intervened":
        resp: dict[str, Any] = {
            "output": {"message": {"role": "assistant", "content": [{"text": _GUARDRAIL_MESSAGE}]}},
            "stopReason": "guardrail_intervened",
            "metrics": {"latencyMs": c.latency_ms},
            "usage": {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0},
            "trace": _guardrail_trace(rng, len(t.user), converse=True),
        }
        return req, resp
    usage: dict[str, Any] = {"inputTokens": c.input_tokens}
    if c.model.supports_cache:
        usage["cacheReadInputTokens"] = c.cache_read
        usage["cacheWriteInputTokens"] = c.cache_write
        if c.cache_write_1h:
            five = c.cache_write - c.cache_write_1h
            usage["cacheDetails"] = [
                *([{"ttl": "5m", "inputTokens": five}] if five else []),
                {"ttl": "1h", "inputTokens": c.cache_write_1h},
            ]
    usage["outputTokens"] = c.output_tokens
    usage["totalTokens"] = c.input_tokens + c.cache_read + c.cache_write + c.output_tokens
    resp = {
        "output": {"message": {"role": "assistant", "content": [{"text": t.answer}]}},
        "stopReason": "max_tokens" if c.hit_max else "end_turn",
        "metrics": {"latencyMs": c.latency_ms},
        "usage": usage,
    }
    return req, resp


def _anthropic_bodies(rng: random.Random, c: _Call, t: _Texts) -> tuple[dict[str, Any], Any]:
    req: dict[str, Any] = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": c.max_tokens}
    if c.cache_read or c.cache_write:
        req["system"] = [{"type": "text", "text": t.system, "cache_control": {"type": "ephemeral"}}]
    else:
        req["system"] = t.system
    req["messages"] = [{"role": role, "content": [{"type": "text", "text": text}]} for role, text in t.turns]
    req["temperature"] = _temperature(rng)
    if rng.random() < 0.4:
        req["top_p"] = 0.999
        req["top_k"] = 250
    if c.status in ERROR_STATUS.values():
        return req, None
    if c.status == "guardrail_intervened":
        return req, {
            "amazon-bedrock-guardrailAction": "INTERVENED",
            "amazon-bedrock-trace": _guardrail_trace(rng, len(t.user), converse=False),
            "content": [{"text": _GUARDRAIL_MESSAGE, "type": "text"}],
            "role": "assistant",
            "type": "message",
        }
    stop = "max_tokens" if c.hit_max else "end_turn"
    model = c.model.response_model
    if c.operation == "InvokeModel":
        return req, {
            "id": _msg_id(rng, "msg_bdrk_01"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": t.answer}],
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": _anthropic_usage(c),
        }
    start_usage = {k: v for k, v in _anthropic_usage(c).items() if k != "output_tokens"}
    start_usage["output_tokens"] = 1
    chunks: list[Any] = [
        {
            "type": "message_start",
            "message": {
                "id": _msg_id(rng, "msg_bdrk_01"),
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": model,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    chunks += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
        for p in _chunks(rng, t.answer)
    ]
    chunks += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": c.output_tokens},
        },
        {"type": "message_stop", "amazon-bedrock-invocationMetrics": _invocation_metrics(c)},
    ]
    return req, chunks


def _llama_bodies(rng: random.Random, c: _Call, t: _Texts) -> tuple[dict[str, Any], Any]:
    imported = c.model.family == "imported_llama"
    prompt = f"{t.system}\n\n{t.user}" if imported else _llama_prompt(t)
    req = {"prompt": prompt, "max_gen_len": c.max_tokens, "temperature": _temperature(rng), "top_p": 0.9}
    if c.status != "success":
        return req, None
    stop = "length" if c.hit_max else "stop"
    if c.operation == "InvokeModel":
        if imported:
            return req, {
                "generation": t.answer,
                "generation_token_count": c.output_tokens,
                "stop_reason": stop,
                "prompt_token_count": c.input_tokens,
            }
        return req, {
            "generation": t.answer,
            "prompt_token_count": c.input_tokens,
            "generation_token_count": c.output_tokens,
            "stop_reason": stop,
        }
    pieces = _chunks(rng, t.answer)
    chunks: list[Any] = []
    for i, p in enumerate(pieces):
        chunks.append(
            {
                "generation": p,
                "prompt_token_count": c.input_tokens if i == 0 else None,
                "generation_token_count": max(1, round(c.output_tokens * (i + 1) / (len(pieces) + 1))),
                "stop_reason": None,
            }
        )
    chunks.append(
        {
            "generation": "",
            "prompt_token_count": None,
            "generation_token_count": c.output_tokens,
            "stop_reason": stop,
            "amazon-bedrock-invocationMetrics": _invocation_metrics(c),
        }
    )
    return req, chunks


def _nova_bodies(rng: random.Random, c: _Call, t: _Texts) -> tuple[dict[str, Any], Any]:
    system: list[dict[str, Any]] = [{"text": t.system}]
    if c.cache_read:
        system.append({"cachePoint": {"type": "default"}})
    req = {
        "schemaVersion": "messages-v1",
        "system": system,
        "messages": [{"role": role, "content": [{"text": text}]} for role, text in t.turns],
        "inferenceConfig": {"maxTokens": c.max_tokens, "temperature": _temperature(rng), "topP": 0.9},
    }
    if c.status != "success":
        return req, None
    stop = "max_tokens" if c.hit_max else "end_turn"
    usage = {
        "inputTokens": c.input_tokens,
        "outputTokens": c.output_tokens,
        "totalTokens": c.input_tokens + c.output_tokens + c.cache_read + c.cache_write,
        "cacheReadInputTokenCount": c.cache_read,
        "cacheWriteInputTokenCount": c.cache_write,
    }
    if c.operation == "InvokeModel":
        return req, {
            "output": {"message": {"content": [{"text": t.answer}], "role": "assistant"}},
            "stopReason": stop,
            "usage": usage,
        }
    chunks: list[Any] = [{"messageStart": {"role": "assistant"}}]
    chunks += [{"contentBlockDelta": {"delta": {"text": p}, "contentBlockIndex": 0}} for p in _chunks(rng, t.answer)]
    chunks += [
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": stop}},
        {
            "metadata": {"usage": usage, "metrics": {}, "trace": {}},
            "amazon-bedrock-invocationMetrics": _invocation_metrics(c),
        },
    ]
    return req, chunks


def _generic_bodies(rng: random.Random, c: _Call, t: _Texts) -> tuple[dict[str, Any], Any]:
    req = {
        "prompt": f"<s>[INST] {t.system}\n\n{t.user} [/INST]",
        "max_tokens": c.max_tokens,
        "temperature": 0.7,
    }
    if c.status != "success":
        return req, None
    return req, {"outputs": [{"text": t.answer, "stop_reason": "length" if c.hit_max else "stop"}]}


def _embedding(rng: random.Random, dim: int) -> list[float]:
    v = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [round(x / norm, 5) for x in v]


def _embed_bodies(rng: random.Random, c: _Call, t: _Texts, body_kb: float) -> tuple[dict[str, Any], Any]:
    text = t.user if c.workload.domain != "search" else t.user.split("\n")[0]
    text = text[: max(40, c.prompt_tokens * 5)]
    dim = 1024 if body_kb >= 8 else (512 if body_kb >= 4 else 256)
    req: dict[str, Any] = {"inputText": text, "dimensions": dim, "normalize": True}
    by_type = rng.random() < 0.3
    if by_type:
        req["embeddingTypes"] = ["float"]
    if c.status != "success":
        return req, None
    vec = _embedding(rng, dim)
    resp: dict[str, Any] = {"embedding": vec, "inputTextTokenCount": c.input_tokens}
    if by_type:
        resp["embeddingsByType"] = {"float": vec}
    return req, resp


def _fake_png(rng: random.Random) -> str:
    """A base64 'image' over 100 KB that compresses well (periodic bytes), so sidecars stay small on disk."""
    raw_len = rng.randint(78_000, 120_000)
    period = rng.randbytes(48)
    raw = b"\x89PNG\r\n\x1a\n" + (period * (raw_len // 48 + 1))[: raw_len - 8]
    return base64.b64encode(raw).decode("ascii")


def _canvas_bodies(rng: random.Random, c: _Call, t: _Texts) -> tuple[dict[str, Any], Any]:
    side = rng.choice((512, 768, 1024, 1024, 1024))
    req = {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": t.user.split("\n")[0][:1000]},
        "imageGenerationConfig": {
            "numberOfImages": c.images,
            "quality": c.quality,
            "width": side,
            "height": side,
            "cfgScale": rng.choice((6.5, 7.0, 8.0)),
            "seed": rng.randint(0, 858_993_459),
        },
    }
    if c.status != "success":
        return req, None
    return req, {"images": [_fake_png(rng) for _ in range(c.images)]}


def _bodies(rng: random.Random, c: _Call, t: _Texts, body_kb: float) -> tuple[dict[str, Any], Any]:
    family = c.model.family
    if c.operation in ("Converse", "ConverseStream"):
        return _converse_bodies(rng, c, t)
    if family == "anthropic":
        return _anthropic_bodies(rng, c, t)
    if family in ("llama", "imported_llama"):
        return _llama_bodies(rng, c, t)
    if family == "nova":
        return _nova_bodies(rng, c, t)
    if family == "titan_embed":
        return _embed_bodies(rng, c, t, body_kb)
    if family == "nova_canvas":
        return _canvas_bodies(rng, c, t)
    return _generic_bodies(rng, c, t)


# ---------------------------------------------------------------------------------------------------------------
# Records: the log envelope in either field order, with offloading of >100 KB bodies
# ---------------------------------------------------------------------------------------------------------------


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _hour_prefix(account: str, region: str, ts_ms: int) -> str:
    t = time.gmtime(ts_ms // 1000)
    return f"AWSLogs/{account}/BedrockModelInvocationLogs/{region}/{time.strftime('%Y/%m/%d/%H', t)}"


def _gz(data: bytes) -> bytes:
    """Gzip with a zero mtime and no file name, so identical content gives identical bytes."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def _render(c: _Call, opts: LogGenOptions, root_uri: str) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """The record exactly as Bedrock would write it, plus any `data/` sidecars (relative key, gzip bytes)."""
    rng = random.Random(f"{opts.seed}:body:{c.request_id}")
    texts = _texts(rng, c, opts.body_kb)
    req, resp = _bodies(rng, c, texts, opts.body_kb)
    sidecars: list[tuple[str, bytes]] = []
    data_prefix = f"{_hour_prefix(c.account, c.region, c.ts * 1000)}/data/{c.request_id}"

    inp: dict[str, Any] = {"inputContentType": "application/json"}
    req_bytes = orjson.dumps(req)
    if len(req_bytes) > OFFLOAD_BYTES:
        key = f"{data_prefix}_input.json.gz"
        sidecars.append((key, _gz(req_bytes)))
        inp["inputBodyS3Path"] = f"{root_uri}/{key}"
    else:
        inp["inputBodyJson"] = req

    success = c.status == "success"
    guard = c.status == "guardrail_intervened"
    with_counts = success or (guard and c.operation != "InvokeModel")
    if c.model.family == "nova_canvas" and success:
        inp["inputTokenCount"] = 0
    elif with_counts:
        inp["inputTokenCount"] = c.input_tokens
        if c.cache_read or c.cache_write or (c.model.supports_cache and not c.old_format):
            inp["cacheReadInputTokenCount"] = c.cache_read
            inp["cacheWriteInputTokenCount"] = c.cache_write

    out: dict[str, Any] | None = None
    if resp is not None:
        out = {"outputContentType": "application/json"}
        resp_bytes = orjson.dumps(resp)
        if len(resp_bytes) > OFFLOAD_BYTES:
            key = f"{data_prefix}_output.json.gz"
            sidecars.append((key, _gz(resp_bytes)))
            out["outputBodyS3Path"] = f"{root_uri}/{key}"
        else:
            out["outputBodyJson"] = resp
        if with_counts:
            out["outputTokenCount"] = c.output_tokens

    ts = _iso(c.ts)
    identity = {"arn": c.identity_arn}
    rec: dict[str, Any]
    if c.old_format:
        rec = {
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": ts,
            "accountId": c.account,
            "identity": identity,
            "region": c.region,
            "requestId": c.request_id,
            "operation": c.operation,
            "modelId": c.model_id,
        }
        if c.error_code:
            rec["errorCode"] = c.error_code
        rec["input"] = inp
        if out is not None:
            rec["output"] = out
        if c.request_metadata:
            rec["requestMetadata"] = dict(c.request_metadata)
        if c.inference_region:
            rec["inferenceRegion"] = c.inference_region
    else:
        rec = {
            "timestamp": ts,
            "accountId": c.account,
            "region": c.region,
            "requestId": c.request_id,
            "operation": c.operation,
            "modelId": c.model_id,
        }
        if c.error_code:
            rec["errorCode"] = c.error_code
        rec["input"] = inp
        if out is not None:
            rec["output"] = out
        rec["identity"] = identity
        if c.request_metadata:
            rec["requestMetadata"] = dict(c.request_metadata)
        rec["schemaType"] = "ModelInvocationLog"
        rec["schemaVersion"] = "1.0"
        if c.inference_region:
            rec["inferenceRegion"] = c.inference_region
    return rec, sidecars


def _root_uri(dest: str) -> str:
    """Where sidecar paths point: the `s3://` URI as given, or the absolute local folder."""
    dest = dest.rstrip("/")
    if "://" in dest and not dest.startswith("file://"):
        return dest
    return os.path.abspath(dest.removeprefix("file://"))


def iter_records(opts: LogGenOptions, root_uri: str = DEFAULT_LOG_ROOT) -> Iterator[dict[str, Any]]:
    """The true invocation-log records, day by day in time order, exactly as they would be delivered to
    `root_uri` (which only matters for the `inputBodyS3Path`/`outputBodyS3Path` of offloaded bodies).

    No faults, no duplicates; the same records `write_logs` writes for the same options.
    """
    root = _root_uri(root_uri)
    for day in opts.dates:
        for c in _plan_day(opts, day):
            yield _render(c, opts, root)[0]


# ---------------------------------------------------------------------------------------------------------------
# Delivery: batching into S3 objects, late deliveries, faults, CloudWatch split
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _Batch:
    account: str
    region: str
    file_ms: int
    lines: list[bytes]
    name_hex: str
    truncate_at: float | None = None  # fraction of the gzip bytes kept
    ts_ms: list[int] = field(default_factory=list)
    copy: bool = False  # a re-delivery (duplicate or truncated) of another object

    @property
    def key(self) -> str:
        t = time.gmtime(self.file_ms // 1000)
        name = f"{time.strftime('%Y%m%dT%H%M%S', t)}{self.file_ms % 1000:03d}Z_{self.name_hex}.json.gz"
        return f"{_hour_prefix(self.account, self.region, self.file_ms)}/{name}"


def _batch_stream(
    rng: random.Random, account: str, region: str, items: list[tuple[int, bytes]], per_file: int
) -> list[_Batch]:
    """Group one (account, Region) stream into delivered objects: each record lands 20-90 s after its
    timestamp, as in the real keys (spec §2.1), at most `per_file` records per object."""
    batches = []
    i = 0
    while i < len(items):
        ts0 = items[i][0]
        flush_ms = ts0 * 1000 + rng.randint(20_000, 90_000)
        j = i
        lines: list[bytes] = []
        ts_list: list[int] = []
        while j < len(items) and len(lines) < per_file and items[j][0] * 1000 <= flush_ms - 20_000:
            lines.append(items[j][1])
            ts_list.append(items[j][0] * 1000)
            j += 1
        batches.append(_Batch(account, region, flush_ms, lines, f"{rng.getrandbits(64):016x}", ts_ms=ts_list))
        i = j
    return batches


def _share(total: int, index: int, parts: int) -> int:
    """Spread `total` fault injections over `parts` days as evenly as possible."""
    return total // parts + (1 if index < total % parts else 0)


class _Sink:
    """Writes objects to a local folder (plain files) or any fsspec URL (batched `pipe`, concurrent on s3fs)."""

    def __init__(self, dest: str, storage_options: Mapping[str, Any] | None) -> None:
        self.root_uri = _root_uri(dest)
        self.local = "://" not in self.root_uri
        self.fs: Any = None
        self.root = self.root_uri
        if not self.local:
            options = {"skip_instance_cache": True, **dict(storage_options or {})}  # env may have changed
            self.fs, self.root = fsspec.core.url_to_fs(self.root_uri, **options)
            self.root = self.root.rstrip("/")
        self.pending: dict[str, bytes] = {}
        self.bytes = 0

    def put(self, key: str, data: bytes) -> None:
        self.bytes += len(data)
        if self.local:
            path = Path(self.root, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        else:
            self.pending[f"{self.root}/{key}"] = data
            if len(self.pending) >= 500:
                self.flush()

    def flush(self) -> None:
        if self.pending:
            self.fs.pipe(self.pending)
            self.pending = {}


def write_logs(dest: str, opts: LogGenOptions, storage_options: Mapping[str, Any] | None = None) -> GenerationSummary:
    """Write the S3 delivery layout (spec §2) under `dest` (local folder or `s3://bucket/prefix`).

    Objects: `AWSLogs/<acct>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/<YYYYMMDD>T<HHMMSSmmm>Z_<16hex>.json.gz`
    (gzip NDJSON, folder = delivery hour), `.../HH/data/<requestId>_{input,output}.json.gz` sidecars, and
    zero-byte `amazon-bedrock-logs-permission-check` markers. Records routed to CloudWatch are returned in
    `summary.cloudwatch_records` (deliver them with `deliver_cloudwatch`). S3 access uses s3fs, which honours
    `AWS_ENDPOINT_URL` and the standard credential chain; `storage_options` are passed to fsspec.
    """
    sink = _Sink(dest, storage_options)
    summary = GenerationSummary(dest=sink.root_uri)
    cw_accounts = set(opts.cloudwatch_accounts if opts.cloudwatch_accounts is not None else opts.accounts)

    for acct in opts.accounts:
        key = f"AWSLogs/{acct}/BedrockModelInvocationLogs/{PERMISSION_MARKER}"
        sink.put(key, b"")
        summary.marker_keys.append(key)
    sink.put(PERMISSION_MARKER, b"")
    summary.marker_keys.append(PERMISSION_MARKER)

    for day_index, day in enumerate(opts.dates):
        calls = _plan_day(opts, day)
        drng = random.Random(f"{opts.seed}:delivery:{day.isoformat()}")
        frng = random.Random(f"{opts.seed}:faults:{day.isoformat()}")
        ids: set[str] = set()
        totals: Counter[str] = Counter()
        streams: dict[tuple[str, str], list[tuple[int, bytes]]] = defaultdict(list)
        late: list[_Batch] = []
        for c in calls:
            if any(c.account == a and c.region == r and lo <= c.ts < hi for a, r, lo, hi in opts.undelivered):
                continue  # a logging gap: the call happened but no log has it
            rec, sidecars = _render(c, opts, sink.root_uri)
            for key, data in sidecars:
                sink.put(key, data)
                summary.sidecar_keys.append(key)
            ids.add(c.request_id)
            _count(totals, c)
            u = drng.random()
            is_late = drng.random() < opts.late_fraction
            late_ms = drng.randint(180_000, 7_200_000)
            to_cw = opts.cloudwatch_share > 0 and c.account in cw_accounts
            only_cw = to_cw and u < opts.cloudwatch_share
            both = to_cw and not only_cw and u < opts.cloudwatch_share + opts.cloudwatch_overlap
            if only_cw or both:
                summary.cloudwatch_records.append(rec)
                summary.cloudwatch_only += only_cw
                summary.cloudwatch_overlap += both
            if only_cw:
                continue
            line = orjson.dumps(rec)
            summary.s3_records += 1
            if is_late:
                ts_ms = c.ts * 1000
                late.append(
                    _Batch(
                        c.account,
                        c.region,
                        ts_ms + late_ms,
                        [line],
                        f"{drng.getrandbits(64):016x}",
                        ts_ms=[ts_ms],
                    )
                )
                summary.late_records += 1
            else:
                streams[(c.account, c.region)].append((c.ts, line))

        batches: list[_Batch] = []
        for (acct, region), items in sorted(streams.items()):
            batches.extend(_batch_stream(drng, acct, region, items, opts.records_per_file))
        batches.extend(late)
        _inject_faults(frng, opts, day_index, batches, summary)

        for b in batches:
            payload = _gz(b"\n".join(b.lines) + b"\n")
            if b.truncate_at is not None:
                payload = payload[: max(12, int(len(payload) * b.truncate_at))]
                summary.truncated_keys.append(b.key)
            sink.put(b.key, payload)
            summary.log_keys.append(b.key)
            if not b.copy:
                for t in b.ts_ms:
                    summary.cross_hour_records += t // 3_600_000 != b.file_ms // 3_600_000
                    summary.cross_day_records += t // 86_400_000 != b.file_ms // 86_400_000
        sink.flush()

        summary.expected_request_ids[day] = ids
        summary.records_per_day[day] = len(ids)
        summary.records += len(ids)
        summary.day_totals[day] = dict(totals)

    summary.cloudwatch_records.sort(key=lambda r: (r["timestamp"], r["requestId"]))
    summary.cloudwatch_events = len(summary.cloudwatch_records)
    summary.files = len(summary.log_keys)
    summary.sidecars = len(summary.sidecar_keys)
    summary.bytes = sink.bytes
    return summary


def _count(totals: Counter[str], c: _Call) -> None:
    totals["records"] += 1
    totals[c.status] += 1
    totals["input_tokens"] += c.input_tokens
    totals["output_tokens"] += c.output_tokens
    totals["cache_read_input_tokens"] += c.cache_read
    totals["cache_write_input_tokens"] += c.cache_write
    totals["image_count"] += c.images if c.status == "success" else 0
    totals["unpriced"] += not c.model.priced


def _parse_or_none(line: bytes) -> dict[str, Any] | None:
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return rec if isinstance(rec, dict) else None


def _inject_faults(
    rng: random.Random, opts: LogGenOptions, day_index: int, batches: list[_Batch], summary: GenerationSummary
) -> None:
    """Duplicates and truncated re-deliveries first (copies of clean files), then bad lines into originals."""
    originals = [b for b in batches if b.lines]
    if not originals:
        return
    for _ in range(_share(opts.duplicate_deliveries, day_index, opts.days)):
        src = rng.choice(originals)
        batches.append(
            _Batch(
                src.account,
                src.region,
                src.file_ms + rng.randint(300_000, 3_600_000),
                list(src.lines),
                f"{rng.getrandbits(64):016x}",
                ts_ms=list(src.ts_ms),
                copy=True,
            )
        )
        summary.duplicate_files += 1
        summary.duplicate_records += len(src.lines)
    for _ in range(_share(opts.truncated_files, day_index, opts.days)):
        src = rng.choice(originals)
        batches.append(
            _Batch(
                src.account,
                src.region,
                src.file_ms + rng.randint(60_000, 600_000),
                list(src.lines),
                f"{rng.getrandbits(64):016x}",
                truncate_at=rng.uniform(0.4, 0.8),
                ts_ms=list(src.ts_ms),
                copy=True,
            )
        )
        summary.truncated_files += 1
    for _ in range(_share(opts.malformed_lines, day_index, opts.days)):
        dst = rng.choice(originals)
        line = rng.choice(dst.lines)
        cut = line[: rng.randint(max(1, len(line) // 4), len(line) - 1)]
        dst.lines.insert(rng.randint(0, len(dst.lines)), cut)
        summary.malformed_lines += 1
    for _ in range(_share(opts.unknown_schema_records, day_index, opts.days)):
        dst = rng.choice(originals)
        rec = _parse_or_none(rng.choice(dst.lines)) or _parse_or_none(dst.lines[-1]) or {}
        if "requestId" not in rec:  # picked injected cut lines only; take the first intact one
            rec = next(r for r in map(_parse_or_none, dst.lines) if r and "requestId" in r)
        rec["requestId"] = _uuid4(rng)
        rec["schemaVersion"] = "2.0"
        dst.lines.insert(rng.randint(0, len(dst.lines)), orjson.dumps(rec))
        summary.unknown_schema_records += 1
        summary.unknown_schema_request_ids.append(rec["requestId"])


# ---------------------------------------------------------------------------------------------------------------
# CloudWatch Logs delivery
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class CloudWatchPutResult:
    """How many events CloudWatch accepted; events older than 14 days (or >2 h ahead) are rejected by AWS."""

    log_group: str
    region: str
    events: int = 0
    accepted: int = 0
    rejected: int = 0
    requests: int = 0


def _record_ms(rec: Mapping[str, Any]) -> int:
    t = dt.datetime.strptime(rec["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


def _cw_batches(events: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for ev in events:
        ev_size = len(ev["message"].encode("utf-8")) + CW_EVENT_OVERHEAD
        if batch and (
            len(batch) >= CW_MAX_EVENTS
            or size + ev_size > CW_MAX_BYTES
            or ev["timestamp"] - batch[0]["timestamp"] > CW_MAX_SPAN_MS
        ):
            yield batch
            batch, size = [], 0
        batch.append(ev)
        size += ev_size
    if batch:
        yield batch


def put_cloudwatch(
    records: Iterable[Mapping[str, Any]],
    log_group: str = DEFAULT_LOG_GROUP,
    region: str = "us-east-1",
    client: Any = None,
) -> CloudWatchPutResult:
    """Deliver records as Bedrock does: one event per record in stream `aws/bedrock/modelinvocations`, event
    timestamp = record `timestamp` in ms, message = compact JSON. Creates group and stream if missing; sends
    time-sorted batches within PutLogEvents limits (10,000 events, 1 MB, 24 h span)."""
    client = client or boto3.client("logs", region_name=region)
    for create, kwargs in (
        (client.create_log_group, {"logGroupName": log_group}),
        (client.create_log_stream, {"logGroupName": log_group, "logStreamName": CLOUDWATCH_STREAM}),
    ):
        with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
            create(**kwargs)
    events = sorted(
        ({"timestamp": _record_ms(r), "message": orjson.dumps(r).decode("utf-8")} for r in records),
        key=lambda e: e["timestamp"],
    )
    result = CloudWatchPutResult(log_group, region, events=len(events))
    for batch in _cw_batches(events):
        resp = client.put_log_events(logGroupName=log_group, logStreamName=CLOUDWATCH_STREAM, logEvents=batch)
        result.requests += 1
        info = resp.get("rejectedLogEventsInfo") or {}
        rejected = 0
        if "tooNewLogEventStartIndex" in info:
            rejected += len(batch) - info["tooNewLogEventStartIndex"]
        old_end = max(info.get("tooOldLogEventEndIndex", -1), info.get("expiredLogEventEndIndex", -1))
        rejected += old_end + 1
        result.rejected += rejected
        result.accepted += len(batch) - rejected
    return result


def deliver_cloudwatch(
    records: Iterable[Mapping[str, Any]] | GenerationSummary,
    log_group: str = DEFAULT_LOG_GROUP,
    client_factory: Callable[[str], Any] | None = None,
) -> list[CloudWatchPutResult]:
    """Send records to `log_group` in each record's own Region (`summary.cloudwatch_records` if given a
    summary). `client_factory(region)` builds the logs client; default boto3 with the ambient config."""
    recs = records.cloudwatch_records if isinstance(records, GenerationSummary) else list(records)
    by_region: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in recs:
        by_region[r["region"]].append(r)
    results = []
    for region in sorted(by_region):
        client = client_factory(region) if client_factory else None
        results.append(put_cloudwatch(by_region[region], log_group, region, client))
    return results


def generate_sample(
    dest: str,
    start: dt.date,
    days: int = 3,
    records_per_day: int = 2000,
    *,
    seed: int = 7,
    body_kb: float = 2.0,
    faults: bool = True,
    cloudwatch_share: float = 0.0,
    deliver_to_cloudwatch: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    **extra: Any,
) -> GenerationSummary:
    """One call for the CLI and the demo: realistic logs with (by default) a few of every fault.

    `faults=True` injects per run: 2 malformed lines per day, one truncated re-delivery, one duplicate
    delivery per day and one unknown-schema record; explicit counts in `extra` win. With
    `deliver_to_cloudwatch`, the CloudWatch share is also put to CloudWatch Logs (events older than 14 days
    are rejected by AWS; the result counts are in `summary.cloudwatch_events`).
    """
    fault_opts: dict[str, Any] = {}
    if faults:
        fault_opts = {
            "malformed_lines": 2 * days,
            "truncated_files": 1,
            "duplicate_deliveries": days,
            "unknown_schema_records": 1,
        }
    fault_opts.update(extra)
    opts = LogGenOptions(
        start=start,
        days=days,
        records_per_day=records_per_day,
        seed=seed,
        body_kb=body_kb,
        cloudwatch_share=cloudwatch_share,
        **fault_opts,
    )
    summary = write_logs(dest, opts, storage_options)
    if deliver_to_cloudwatch and summary.cloudwatch_records:
        results = deliver_cloudwatch(summary, opts.cloudwatch_log_group)
        summary.cloudwatch_events = sum(r.accepted for r in results)
    return summary
