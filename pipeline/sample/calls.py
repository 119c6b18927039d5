"""Call planning: which invocations happen on a sample day, with what tokens, status, latency and cost.

Every decision that changes usage or cost is drawn here, from the day's own plan stream, before any body text
exists (`bodies.py` renders text from a separate stream; `delivery.py` decides timing and faults from two more).
So a change to bodies, delivery or faults never changes which calls were made or what they cost.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass

from pipeline.sample.world import (
    ACCOUNTS,
    DEFAULT_LOG_GROUP,
    INFERENCE_REGIONS,
    MODELS,
    OLD_FIELD_ORDER_ACCOUNTS,
    PLANTED,
    REGIONS,
    WORKLOADS,
    ModelSpec,
    ModelUse,
    Workload,
    expected_cost_center,
    model_prices,
)

OPERATIONS = ("InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream")
ERROR_STATUS = {
    "ValidationException": "client_error",
    "ThrottlingException": "throttled",
    "ModelTimeoutException": "server_error",
    "InternalServerException": "server_error",
    "ServiceUnavailableException": "server_error",
}


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
    plant_day: dt.date | None = None
    """With a plant day, every day also has the `PLANTED` workloads' calls: the spike, the new spender and the
    stop happen on that day (the demo's `--history-days` sets it to the last day)."""
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
class Call:
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
        """Approximate on-demand cost at the price catalog's standard rates (0 when the model has no price)."""
        prices = model_prices(self.model)
        if prices is None:
            return 0.0
        if prices.per_image:
            return self.images * prices.per_image.get(self.quality, 0.0) if self.status == "success" else 0.0
        return (
            self.input_tokens * prices.input_per_1k
            + self.output_tokens * prices.output_per_1k
            + self.cache_read * prices.cache_read_per_1k
            + self.cache_write * prices.cache_write_per_1k
        ) / 1000.0


def lognormal(rng: random.Random, mean: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(max(mean, 1e-9)) - sigma * sigma / 2, sigma)


def uuid4_from(rng: random.Random) -> str:
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


def plan_day(opts: LogGenOptions, day: dt.date) -> list[Call]:
    """All calls of one UTC day, sorted by time. Uses only the day's plan RNG, so days are independent."""
    rng = random.Random(f"{opts.seed}:plan:{day.isoformat()}")
    active = _active(opts)
    if not active or opts.records_per_day == 0:
        return []
    day_start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
    picks = rng.choices(active, weights=[wl.weight for wl, _ in active], k=opts.records_per_day)
    calls = [_plan_call(rng, wl, regions, day_start) for wl, regions in picks]
    if opts.plant_day is not None:
        calls.extend(_planted_calls(opts, day, day_start))
    calls.sort(key=lambda c: (c.ts, c.request_id))
    return calls


def _planted_calls(opts: LogGenOptions, day: dt.date, day_start: int) -> list[Call]:
    """The `PLANTED` workloads' calls of one day, from their own stream (the rest of the day is unchanged)."""
    assert opts.plant_day is not None
    rng = random.Random(f"{opts.seed}:plant:{day.isoformat()}")
    calls = []
    for planted in PLANTED:
        wl = planted.workload
        regions = tuple((r, w) for r, w in wl.regions if r in opts.regions)
        if wl.account not in opts.accounts or not regions:
            continue
        for _ in range(planted.calls_on(day, opts.plant_day, opts.records_per_day)):
            calls.append(_plan_call(rng, wl, regions, day_start))
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
"""Share of Converse calls to a latency-optimized model (docs/formats/pricing-rules.md §3.6) that ask for it."""


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
) -> Call:
    request_id = uuid4_from(rng)
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
        input_tokens = max(2, int(lognormal(rng, _EMBED_MEAN.get(wl.domain, 380.0), 0.5)))
    elif family == "nova_canvas":
        images = rng.choices((1, 2, 3, 4), weights=(70, 15, 10, 5))[0]
        quality = "premium" if rng.random() < 0.15 else "standard"
    else:
        input_tokens = max(5, int(lognormal(rng, wl.input_mean, wl.input_sigma)))
        output_tokens = max(1, int(lognormal(rng, wl.output_mean, wl.output_sigma)))
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
                    cache_write = max(1, int(lognormal(rng, 450, 0.5)))
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

    ttfb = int(lognormal(rng, 300 + 0.03 * (input_tokens + cache_write) + 0.002 * cache_read, 0.35))
    gen_ms = int(output_tokens * model.ms_per_token * rng.uniform(0.8, 1.3))
    latency_ms: int | None = None
    first_byte_ms: int | None = None
    if status == "success":
        latency_ms = ttfb + gen_ms
        if family == "titan_embed":
            latency_ms = int(lognormal(rng, 45 + input_tokens * 0.1, 0.3))
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
    return Call(
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
    """Approximate spend per month (`YYYY-MM`) and cost center, with the attribution precedence of
    docs/pricing-and-attribution.md.

    Used to size the demo budgets; it needs no bodies, so it is cheap even for many days.
    """
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for day in opts.dates:
        month = day.strftime("%Y-%m")
        for c in plan_day(opts, day):
            cc = expected_cost_center(c.identity_arn, c.model_id, c.request_metadata)
            out[month][cc] += c.cost_usd()
    return {m: dict(v) for m, v in out.items()}
