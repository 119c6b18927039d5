"""A sample AWS bill for the demo and the tests: legacy CUR, CUR 2.0 or FOCUS files built from true usage.

The files use the real layouts, column names and usage-type grammars of docs/formats/billing-exports.md, so
the readers are exercised exactly as on a customer's export: Marketplace rows for Anthropic models that AWS
sells through Marketplace (product name `… (Amazon Bedrock Edition)`, `Units` = million tokens), AWS-billed
Claude under `AmazonBedrockService`, everything else under `AmazonBedrock` in `1K tokens`; geographic routing
only in the resource id. The legacy CUR also gets a stale report assembly that its manifest does not name,
because summing every assembly is the classic way to double-count a bill.

With `discrepancies=True` the bill departs from the usage in known ways, listed in the returned sidecar
`injected_discrepancies.json` with the reconciliation status each should produce, so a test can assert that
every status appears and a demo can show them.
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import gzip
import hashlib
import io
import json
import random
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import fsspec
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.aws import storage_options_for
from pipeline.billing.model_names import BillingNameMap, load_billing_name_map
from pipeline.billing.readers import athena_column_name
from pipeline.billing.usage_types import REGION_PREFIX
from pipeline.schemas import DType
from pipeline.vocabulary import GUARDRAIL_POLICIES

BillFormat = Literal["cur", "cur2", "focus"]
EXPORT_NAMES: dict[str, str] = {
    "cur": "bedrock-ledger-cur",
    "cur2": "bedrock-ledger-cur2",
    "focus": "bedrock-ledger-focus",
}
SIDECAR = "injected_discrepancies.json"

USAGE_SCHEMA: dict[str, DType] = {
    "date": pl.Date,
    "account_id": pl.String,
    "region": pl.String,
    "base_model_id": pl.String,
    "usage_kind": pl.String,
    "routing": pl.String,
    "tier": pl.String,
    "tokens": pl.Int64,
    "cost_usd": pl.Float64,
    "profile_id": pl.String,
    "context_tier": pl.String,
}
"""The `usage` frame `write_bill` takes: true usage per day, account, region, model, kind, routing and tier.

`usage_kind` is input|output|cache_read|cache_write (or image, with the image count in `tokens`); `routing` is
the pricing routing in_region|geo|global; `tier` standard|batch|flex|priority; `profile_id` the system
inference-profile id (`us.anthropic…`) for geo rows, else null. `cost_usd` null means "no catalog price": the
bill then uses a fallback rate (AWS bills every model). `usage_kind` may also be `cache_write_1h` (1-hour cache
writes) and `context_tier` (optional, default `standard`) `long` for calls above a long-context threshold."""

LOCATIONS = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-3": "EU (Paris)",
    "eu-central-1": "EU (Frankfurt)",
    "eu-north-1": "EU (Stockholm)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
}
_FALLBACK_RATE_PER_1K = {
    "input": 0.001,
    "output": 0.005,
    "cache_read": 0.0001,
    "cache_write": 0.00125,
    "cache_write_1h": 0.002,
    "image": 40.0,
}
_DASH_KIND = {
    "input": "input-tokens",
    "output": "output-tokens",
    "cache_read": "cache-read-input-token-count",
    "cache_write": "cache-write-input-token-count",
    "cache_write_1h": "cache-write-1h-input-token-count",
}
_MANTLE_KIND = {
    "input": "input-tokens",
    "output": "output-tokens",
    "cache_read": "cache-read-tokens",
    "cache_write": "cache-write-tokens",
    "cache_write_1h": "cache-write-1h-tokens",
}
_MP_KIND = {
    "input": "InputTokenCount",
    "output": "OutputTokenCount",
    "cache_read": "CacheReadInputTokenCount",
    "cache_write": "CacheWriteInputTokenCount",
    "cache_write_1h": "CacheWrite1hInputTokenCount",
}
_MP_WORDS = {
    "input": "Input",
    "output": "Output",
    "cache_read": "Cache Read Input",
    "cache_write": "Cache Write Input",
    "cache_write_1h": "Cache Write 1h Input",
}
# Models to bill although never logged (discrepancy c), verbatim billing names first.
_UNLOGGED_CANDIDATES = (
    ("mistral.mistral-small-2402-v1:0", 0.001, 0.003),
    ("amazon.titan-text-lite-v1", 0.00015, 0.0002),
    ("amazon.nova-micro-v1:0", 0.000035, 0.00014),
)
AWS_INC = "Amazon Web Services, Inc."
_UNMAPPED_NAME = "Nova3.0Ultra"  # a "new model launch" the billing-name map does not know yet (discrepancy d)
_PT_RATE_PER_HOUR = 60.50  # Nova 2 Lite no-commit rate per model-unit hour (§4.2, aws-price-list:AmazonBedrock)
_PT_MODEL, _PT_NAME = "amazon.nova-2-lite-v1:0", "Nova2.0Lite"


@dataclass
class _Line:
    """One bill row in format-neutral terms; rendered into each export's own columns."""

    day: dt.date
    account: str
    payer: str
    line_type: str
    region: str | None
    usage_type: str
    operation: str
    resource_id: str
    amount: float
    unit: str
    rate: float | None
    cost: float
    description: str
    entity: str = "AWS"
    legal_entity: str = AWS_INC
    product_code: str = "AmazonBedrock"
    servicecode: str = "AmazonBedrock"
    product_name: str = "Amazon Bedrock"
    tax_type: str = ""
    list_cost: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    iam_principal: str = ""  # CUR 2.0 with INCLUDE_IAM_PRINCIPAL_DATA only (see `_with_principals`)
    principal_tags: dict[str, str] = field(default_factory=dict)

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.day, dt.time(), tzinfo=dt.UTC)

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(days=1)

    @property
    def period_start(self) -> dt.date:
        return self.day.replace(day=1)

    @property
    def period_end(self) -> dt.date:
        return (self.period_start + dt.timedelta(days=32)).replace(day=1)


@dataclass(frozen=True)
class _Route:
    """How a model appears on the bill: grammar, names, product and unit."""

    grammar: str  # first_party | mantle | marketplace
    billing_name: str
    product_code: str = "AmazonBedrock"
    product_name: str = "Amazon Bedrock"
    entity: str = "AWS"
    unit: str = "1K tokens"
    scale: int = 1000
    legal_entity: str = AWS_INC
    mapped: bool = True


def _marketplace_code(product_name: str) -> str:
    """An opaque, stable, Marketplace-looking product code (§4.1: one per product, unverified)."""
    digest = int(hashlib.sha256(product_name.encode()).hexdigest(), 16)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    out = []
    for _ in range(25):
        digest, r = divmod(digest, 36)
        out.append(alphabet[r])
    return "".join(out)


def _route(base_model_id: str, names: BillingNameMap) -> _Route:
    """Anthropic models with a Marketplace product bill through Marketplace (§4.1, observed); other
    Anthropic models are AWS-billed under AmazonBedrockService (§4.1); everything else under AmazonBedrock."""
    known = names.names_for(base_model_id)
    anthropic = base_model_id.startswith("anthropic.")
    if "marketplace_product" in known and (anthropic or "usage_type_model" not in known):
        product = known["marketplace_product"]
        seller = "Anthropic, PBC" if anthropic else "AWS Marketplace seller"
        code = _marketplace_code(product)
        return _Route("marketplace", product, code, product, "AWS Marketplace", "Units", 10**6, seller)
    if "usage_type_model" in known and anthropic:
        # 1M tokens: the unit CUDOS 5.9.0 adapted to in 2026 (§4.3); which rows carry it is unverified.
        name = known["usage_type_model"]
        return _Route(
            "first_party",
            name,
            "AmazonBedrockService",
            "Amazon Bedrock Service",
            unit="1M tokens",
            scale=10**6,
        )
    if "usage_type_model" in known:
        return _Route("first_party", known["usage_type_model"])
    if "mantle_model" in known:
        return _Route("mantle", known["mantle_model"])
    # Not in the map (an imported model, a model with no public billing name): bill it under a name derived
    # from the id, which the reader will rightly report as unmapped.
    name = re.sub(r"[^A-Za-z0-9.]+", "-", base_model_id.rsplit("/", 1)[-1]).strip("-")
    return _Route("first_party", name, mapped=False)


def _prefix(region: str) -> str:
    return REGION_PREFIX.get(region, "USE1")


def _usage_type(route: _Route, region: str, kind: str, routing: str, tier: str, context_tier: str = "standard") -> str:
    """The usage type of a row. Long-context rows carry `LongContext` / `long_ctx` (the Marketplace snake-case
    form is seen in Price List parsers, §4.2; the CamelCase placement in the other grammars is assumed)."""
    reg = _prefix(region)
    long = context_tier == "long"
    if kind == "image":
        return f"{reg}-{route.billing_name}-T2I-1024-Standard"
    if route.grammar == "marketplace":
        dim = _MP_KIND[kind] + ("_LongContext" if long else "") + ("_Global" if routing == "global" else "")
        dim += "" if tier == "standard" else "_" + tier.capitalize()
        return f"{reg}-MP:{reg}_{dim}-Units"
    if route.grammar == "mantle":
        parts = [reg, route.billing_name, "mantle", _MANTLE_KIND[kind]] + (["long_ctx"] if long else [])
        return "-".join(parts + (["global"] if routing == "global" else []) + [tier])
    parts = [reg, route.billing_name, _DASH_KIND[kind]] + (["LongContext"] if long else [])
    parts += [tier] if tier in ("flex", "priority") else []
    parts += ["cross-region-global"] if routing == "global" else []
    parts += ["batch"] if tier == "batch" else []
    parts += ["latency-optimized"] if tier == "latency_optimized" else []  # USE1-Claude3-5Haiku-input-tokens-…
    return "-".join(parts)


def _geo_of(region: str) -> str:
    for head, geo in (("us-gov-", "us-gov"), ("us-", "us"), ("eu-", "eu"), ("ap-", "apac"), ("ca-", "ca")):
        if region.startswith(head):
            return geo
    return "us"


def _resource_id(base: str, region: str, account: str, routing: str, profile_id: str | None) -> str:
    if base.startswith("arn:"):
        return base
    if routing == "geo":
        profile = profile_id or f"{_geo_of(region)}.{base}"
        return f"arn:aws:bedrock:{region}:{account}:inference-profile/{profile}"
    if routing == "global":
        return f"arn:aws:bedrock:{region}:{account}:inference-profile/global.{base}"
    return f"arn:aws:bedrock:{region}::foundation-model/{base}"


def _description(route: _Route, usage_type: str, region: str, kind: str, routing: str, rate: float) -> str:
    if route.grammar == "marketplace":
        suffix = {"geo": " Regional CRIS", "global": " Global"}.get(routing, "")
        return f"AWS Marketplace software usage|{region}|Million {_MP_WORDS.get(kind, kind)} Tokens{suffix}"
    short = usage_type.split("-", 1)[1]
    per = {"1K tokens": "1K token", "1M tokens": "1M token"}.get(route.unit, route.unit)
    return f"${rate:.10g} per {per} for {short} in {LOCATIONS.get(region, region)}"


def _usage_line(
    r: dict[str, Any], route: _Route, payer: str, *, token_factor: float = 1.0, price_factor: float = 1.0
) -> _Line:
    kind, tokens = r["usage_kind"], int(r["tokens"])
    # Price per token (per image for images): the catalog's, as the usage was priced, else a fallback.
    each = r["cost_usd"] / tokens if r["cost_usd"] is not None else _FALLBACK_RATE_PER_1K[kind] / 1000
    if kind == "image":
        amount, unit, rate = float(tokens), "image", each * price_factor
    else:
        amount, unit, rate = (
            tokens * token_factor / route.scale,
            route.unit,
            each * route.scale * price_factor,
        )
    ut = _usage_type(route, r["region"], kind, r["routing"], r["tier"], r.get("context_tier") or "standard")
    return _Line(
        day=r["date"],
        account=r["account_id"],
        payer=payer,
        entity=route.entity,
        legal_entity=route.legal_entity,
        line_type="Usage",
        product_code=route.product_code,
        servicecode="" if route.grammar == "marketplace" else route.product_code,
        product_name=route.product_name,
        region=r["region"],
        usage_type=ut,
        operation="InvokeModelInference",
        resource_id=_resource_id(r["base_model_id"], r["region"], r["account_id"], r["routing"], r["profile_id"]),
        amount=amount,
        unit=unit,
        rate=rate,
        cost=rate * amount,
        description=_description(route, ut, r["region"], kind, r["routing"], rate),
        list_cost=0.0 if route.grammar == "marketplace" else rate / price_factor * amount,
    )


def _usage_row(
    day: dt.date, account: str, region: str, model: str, kind: str, tokens: int, cost: float
) -> dict[str, Any]:
    """A usage row (USAGE_SCHEMA) for an in-Region, standard-tier line the generator adds on its own."""
    return {
        "date": day,
        "account_id": account,
        "region": region,
        "base_model_id": model,
        "usage_kind": kind,
        "routing": "in_region",
        "tier": "standard",
        "tokens": tokens,
        "cost_usd": cost,
        "profile_id": None,
    }


def _group(r: dict[str, Any]) -> tuple[Any, ...]:
    """The bucket a discrepancy is injected into: day x account x region x model."""
    return (r["date"], r["account_id"], r["region"], r["base_model_id"])


def _key(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "date": r["date"].isoformat(),
        "account_id": r["account_id"],
        "region": r["region"],
        "base_model_id": r["base_model_id"],
        "usage_kind": r["usage_kind"],
        "routing": r["routing"],
        "tier": r["tier"],
    }


def _normalize_usage(usage: pl.DataFrame) -> pl.DataFrame:
    optional = ("profile_id", "context_tier")
    missing = [c for c in USAGE_SCHEMA if c not in usage.columns and c not in optional]
    if missing:
        raise ValueError(f"usage frame lacks columns {missing}; expected {list(USAGE_SCHEMA)}")
    if "profile_id" not in usage.columns:
        usage = usage.with_columns(pl.lit(None, dtype=pl.String).alias("profile_id"))
    if "context_tier" not in usage.columns:
        usage = usage.with_columns(pl.lit("standard").alias("context_tier"))
    usage = usage.with_columns(pl.col("context_tier").fill_null("standard"))
    keys = [c for c in USAGE_SCHEMA if c not in ("tokens", "cost_usd")]
    return (
        usage.select(pl.col(c).cast(t) for c, t in USAGE_SCHEMA.items())
        .filter(pl.col("tokens") > 0)
        .group_by(keys)
        .agg(
            pl.col("tokens").sum(),
            pl.when(pl.col("cost_usd").is_null().all())
            .then(None)
            .otherwise(pl.col("cost_usd").sum())
            .alias("cost_usd"),
        )
        .sort(keys, nulls_last=True)
    )


def build_lines(
    usage: pl.DataFrame, discrepancies: bool = True, seed: int = 7, payer_account_id: str | None = None
) -> tuple[list[_Line], list[dict[str, Any]]]:
    """The bill's rows (format-neutral) and the list of injected discrepancies."""
    from pipeline.sample import whole_bill

    names = load_billing_name_map()
    usage = _normalize_usage(usage)
    guarded = usage.filter(pl.col("usage_kind").is_in(GUARDRAIL_POLICIES))
    usage = usage.filter(~pl.col("usage_kind").is_in(GUARDRAIL_POLICIES))
    if usage.is_empty():
        return [], []
    rows = usage.to_dicts()
    payer = payer_account_id or min(r["account_id"] for r in rows)
    routes = {m: _route(m, names) for m in sorted({r["base_model_id"] for r in rows})}
    injected: list[dict[str, Any]] = [
        {
            "kind": "unmapped_model_in_usage",
            "expected_status": "unmapped_billing",
            "base_model_id": m,
            "usage_type_model_name": route.billing_name,
            "detail": "model has no billing name in billing_model_names.csv; billed under a derived name",
        }
        for m, route in routes.items()
        if not route.mapped
    ]
    if not discrepancies:
        plain = [_usage_line(r, routes[r["base_model_id"]], payer) for r in rows]
        return plain + whole_bill.guardrail_lines(guarded, plain[0], []), injected
    # Batch-tier rows are batch inference jobs (`pipeline.sample.batch_jobs`): billed exactly, never a
    # discrepancy's target, so each job reconciles against its `-batch` rows.
    batch = [r for r in rows if r["tier"] == "batch"]
    rows = [r for r in rows if r["tier"] != "batch"]
    if not rows:
        return [_usage_line(r, routes[r["base_model_id"]], payer) for r in batch], injected

    rng = random.Random(seed)
    mapped_groups = sorted({_group(r) for r in rows if routes[r["base_model_id"]].mapped})
    # (b) one model billed at +20 % of the catalog rate, on every row.
    # Discrepancies go into buckets the catalog prices, so each shows as its own status (not as `unpriced`).
    unpriced_groups = {_group(r) for r in rows if r.get("cost_usd") is None}
    mapped_groups = [g for g in mapped_groups if g not in unpriced_groups]
    price_model = rng.choice(sorted({g[3] for g in mapped_groups})) if mapped_groups else None
    # (a) one day x account x region x model with 10 % more input tokens billed than logged.
    with_input = {_group(r) for r in rows if r["usage_kind"] == "input"}
    volume = [g for g in mapped_groups if g[3] != price_model and g in with_input]
    volume_group = rng.choice(volume) if volume else None
    # (h) one logged model x day missing from the bill; prefer a model billed on other days.
    days_per_model = Counter(g[3] for g in mapped_groups)
    drop = [g for g in mapped_groups if g != volume_group and g[3] != price_model]
    drop = [g for g in drop if days_per_model[g[3]] > 1] or drop
    drop_group = rng.choice(drop) if drop else None

    # (i) one day x account x region x model with 15 % fewer output tokens billed than logged (calls the logs
    # count that the bill does not, e.g. failed streams logged with partial usage).
    with_output = {_group(r) for r in rows if r["usage_kind"] == "output"}
    fewer = [g for g in mapped_groups if g not in (volume_group, drop_group) and g[3] != price_model]
    fewer = [g for g in fewer if g in with_output]
    fewer_group = rng.choice(fewer) if fewer else None

    lines: list[_Line] = []
    for r in rows:
        if _group(r) == drop_group:
            continue
        factor = 1.10 if _group(r) == volume_group and r["usage_kind"] == "input" else 1.0
        if _group(r) == fewer_group and r["usage_kind"] == "output":
            factor = 0.85
        price = 1.20 if r["base_model_id"] == price_model else 1.0
        lines.append(_usage_line(r, routes[r["base_model_id"]], payer, token_factor=factor, price_factor=price))
    lines += [_usage_line(r, routes[r["base_model_id"]], payer) for r in batch]

    def keys(pick: Any) -> list[dict[str, Any]]:
        return [_key(r) for r in rows if pick(r)]

    if price_model:
        injected.append(
            {
                "kind": "price_change",
                "expected_status": "price_mismatch",
                "base_model_id": price_model,
                "factor": 1.2,
                "keys": keys(lambda r: r["base_model_id"] == price_model and _group(r) != drop_group),
                "detail": "billed rate is 1.2x the catalog rate on every row of this model",
            }
        )
    if volume_group:
        injected.append(
            {
                "kind": "extra_billed_input_tokens",
                "expected_status": "under_logged",
                "factor": 1.1,
                "keys": keys(lambda r: _group(r) == volume_group and r["usage_kind"] == "input"),
                "detail": "10% more input tokens billed than logged (as if some hours of logs were lost)",
            }
        )
    if fewer_group:
        injected.append(
            {
                "kind": "fewer_billed_output_tokens",
                "expected_status": "over_logged",
                "factor": 0.85,
                "keys": keys(lambda r: _group(r) == fewer_group and r["usage_kind"] == "output"),
                "detail": "15% fewer output tokens billed than logged",
            }
        )
    if drop_group:
        injected.append(
            {
                "kind": "dropped_from_bill",
                "expected_status": "missing_in_bill",
                "keys": keys(lambda r: _group(r) == drop_group),
                "detail": "a logged model x day with no bill rows at all",
            }
        )

    anchor = rows[0]
    day, account, region = anchor["date"], anchor["account_id"], anchor["region"]
    lines += _unlogged_model(names, routes, day, account, region, payer, injected)
    lines.append(_unmapped_line(day, account, region, payer, injected))
    credit_target = next((ln for ln in lines if ln.line_type == "Usage" and ln.cost > 0), None)
    if credit_target:
        lines.append(_credit_line(credit_target, injected))
    lines.append(_tax_line(lines, day, account, payer, injected))
    # The sample config names the owner of the provisioned model in its own account and Region, when billed there.
    pt_at = ("111122223333", "us-east-1")
    if any((r["account_id"], r["region"]) == pt_at and r["date"] == day for r in rows):
        account, region = pt_at
    lines.append(_provisioned_line(day, account, region, payer, injected))
    template = next(ln for ln in lines if ln.line_type == "Usage")
    lines += whole_bill.guardrail_lines(guarded, template, injected)
    anchor_line = replace(template, day=anchor["date"], account=anchor["account_id"], region=anchor["region"])
    lines += whole_bill.bill_only_lines(anchor_line, injected)
    return lines, injected


def _unlogged_model(
    names: BillingNameMap,
    routes: dict[str, _Route],
    day: dt.date,
    account: str,
    region: str,
    payer: str,
    injected: list[dict[str, Any]],
) -> list[_Line]:
    """(c) a model billed but never logged: traffic that bypassed logging."""
    for model, rate_in, rate_out in _UNLOGGED_CANDIDATES:
        if model in routes:
            continue
        route = _route(model, names)
        out = []
        for kind, tokens, rate in (("input", 1_234_000, rate_in), ("output", 234_500, rate_out)):
            r = _usage_row(day, account, region, model, kind, tokens, tokens / 1000 * rate)
            out.append(_usage_line(r, route, payer))
            injected.append(
                {
                    "kind": "billed_not_logged",
                    "expected_status": "missing_in_logs",
                    "keys": [_key(r)],
                    "usage_type": out[-1].usage_type,
                    "detail": "a model on the bill that no invocation log mentions",
                }
            )
        return out
    return []


def _unmapped_line(day: dt.date, account: str, region: str, payer: str, injected: list[dict[str, Any]]) -> _Line:
    """(d) a usage type whose billing name the map does not know (a model launched after the map was made)."""
    route = _Route("first_party", _UNMAPPED_NAME, mapped=False)
    r = _usage_row(day, account, region, "unmapped", "input", 800_000, 2.0)
    line = replace(_usage_line(r, route, payer), resource_id="")
    injected.append(
        {
            "kind": "unmapped_usage_type",
            "expected_status": "unmapped_billing",
            "usage_type": line.usage_type,
            "keys": [{**_key(r), "base_model_id": None}],
            "detail": "billing name not in billing_model_names.csv: reported, never guessed",
        }
    )
    return line


def _credit_line(target: _Line, injected: list[dict[str, Any]]) -> _Line:
    """(e) a credit against one usage row: negative cost, no quantity, no unit (§6.2 R12)."""
    amount = -round(max(0.01, 0.1 * target.cost), 6)
    line = replace(
        target,
        line_type="Credit",
        amount=0.0,
        unit="",
        rate=None,
        cost=amount,
        resource_id="",
        description="AWS Activate Credits",
        list_cost=0.0,
    )
    injected.append(
        {
            "kind": "credit",
            "line_item_type": "Credit",
            "date": target.day.isoformat(),
            "account_id": target.account,
            "usage_type": target.usage_type,
            "cost_usd": amount,
            "detail": "kept out of the usage match, reported beside it",
        }
    )
    return line


def _tax_line(lines: list[_Line], day: dt.date, account: str, payer: str, injected: list[dict[str, Any]]) -> _Line:
    """(f) a tax row on the first day. Real tax rows often span the month (§4.12); a one-day period
    keeps it inside the sample's days so the demo shows it."""
    base = sum(ln.cost for ln in lines if ln.account == account and ln.day == day and ln.line_type == "Usage")
    amount = round(max(0.01, 0.08 * base), 2)
    line = _Line(
        day=day,
        account=account,
        payer=payer,
        line_type="Tax",
        region=None,
        usage_type="",
        operation="",
        resource_id="",
        amount=1.0,
        unit="",
        rate=None,
        cost=amount,
        description="Tax for product code AmazonBedrock",
        tax_type="USSalesTax",
        list_cost=0.0,
    )
    injected.append(
        {
            "kind": "tax",
            "line_item_type": "Tax",
            "date": day.isoformat(),
            "account_id": account,
            "cost_usd": amount,
            "detail": "kept out of the usage match, reported beside it",
        }
    )
    return line


def _pt_line(day: dt.date, account: str, region: str, payer: str, arn: str) -> _Line:
    """One model unit of Nova 2 Lite Provisioned Throughput for a whole day: 24 hours × $60.50 = $1,452."""
    ut = f"{_prefix(region)}-{_PT_NAME}-ProvisionedThroughput-NoCommit-ModelUnits"
    hours = 24.0
    return _Line(
        day=day,
        account=account,
        payer=payer,
        line_type="Usage",
        region=region,
        usage_type=ut,
        operation="Usage",
        resource_id=arn,
        amount=hours,
        unit="hour",
        rate=_PT_RATE_PER_HOUR,
        cost=_PT_RATE_PER_HOUR * hours,
        description=f"${_PT_RATE_PER_HOUR:.2f} per hour for {ut.split('-', 1)[1]} in {LOCATIONS.get(region, region)}",
        list_cost=_PT_RATE_PER_HOUR * hours,
    )


def _provisioned_line(day: dt.date, account: str, region: str, payer: str, injected: list[dict[str, Any]]) -> _Line:
    """(g) Provisioned Throughput billed all day on a provisioned model nobody called: 24 model-unit hours,
    `idle_capacity`, charged back to its owner's tags in `attribution.provisioned_models` (the sample config)."""
    from pipeline.sample.world import idle_provisioned_arn  # late: the world module is large

    arn = idle_provisioned_arn(account, region)
    line = _pt_line(day, account, region, payer, arn)
    injected.append(
        {
            "kind": "provisioned_throughput",
            "usage_kind": "provisioned",
            "expected_status": "idle_capacity",
            "date": day.isoformat(),
            "account_id": account,
            "region": region,
            "base_model_id": _PT_MODEL,
            "resource_id": arn,
            "usage_type": line.usage_type,
            "hours": 24.0,
            "detail": "24 model-unit hours x $60.50 = $1,452 billed, never called: idle capacity",
        }
    )
    return line


# ----------------------------------------------------------------------------------------------------------
# Rendering


def _line_item_id(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(52))


def _iso(t: dt.datetime | dt.date) -> str:
    if isinstance(t, dt.datetime):
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{t.isoformat()}T00:00:00Z"


# Legacy CUR CSV headers (§1.2/§1.3 and the verbatim header of §6.1 d).
_CUR_HEADERS = [
    "identity/LineItemId",
    "identity/TimeInterval",
    "bill/InvoiceId",
    "bill/InvoicingEntity",
    "bill/BillingEntity",
    "bill/BillType",
    "bill/PayerAccountId",
    "bill/BillingPeriodStartDate",
    "bill/BillingPeriodEndDate",
    "lineItem/UsageAccountId",
    "lineItem/LineItemType",
    "lineItem/UsageStartDate",
    "lineItem/UsageEndDate",
    "lineItem/ProductCode",
    "lineItem/UsageType",
    "lineItem/Operation",
    "lineItem/AvailabilityZone",
    "lineItem/ResourceId",
    "lineItem/UsageAmount",
    "lineItem/NormalizationFactor",
    "lineItem/NormalizedUsageAmount",
    "lineItem/CurrencyCode",
    "lineItem/UnblendedRate",
    "lineItem/UnblendedCost",
    "lineItem/BlendedRate",
    "lineItem/BlendedCost",
    "lineItem/NetUnblendedCost",
    "lineItem/LineItemDescription",
    "lineItem/TaxType",
    "lineItem/LegalEntity",
    "product/ProductName",
    "product/location",
    "product/region",
    "product/regionCode",
    "product/servicecode",
    "product/usagetype",
    "product/operation",
    "pricing/publicOnDemandCost",
    "pricing/publicOnDemandRate",
    "pricing/unit",
]


def _cur_record(ln: _Line, rng: random.Random) -> dict[str, Any]:
    rate = "" if ln.rate is None else f"{ln.rate:.12g}"
    return {
        "identity/LineItemId": _line_item_id(rng),
        "identity/TimeInterval": f"{_iso(ln.start)}/{_iso(ln.end)}",
        "bill/InvoiceId": "",
        "bill/InvoicingEntity": "Amazon Web Services, Inc.",
        "bill/BillingEntity": ln.entity,
        "bill/BillType": "Anniversary",
        "bill/PayerAccountId": ln.payer,
        "bill/BillingPeriodStartDate": _iso(ln.period_start),
        "bill/BillingPeriodEndDate": _iso(ln.period_end),
        "lineItem/UsageAccountId": ln.account,
        "lineItem/LineItemType": ln.line_type,
        "lineItem/UsageStartDate": _iso(ln.start),
        "lineItem/UsageEndDate": _iso(ln.end),
        "lineItem/ProductCode": ln.product_code,
        "lineItem/UsageType": ln.usage_type,
        "lineItem/Operation": ln.operation,
        "lineItem/AvailabilityZone": "",
        "lineItem/ResourceId": ln.resource_id,
        "lineItem/UsageAmount": ln.amount,
        "lineItem/NormalizationFactor": 0.0,
        "lineItem/NormalizedUsageAmount": 0.0,
        "lineItem/CurrencyCode": "USD",
        "lineItem/UnblendedRate": rate,
        "lineItem/UnblendedCost": ln.cost,
        "lineItem/BlendedRate": rate,
        "lineItem/BlendedCost": ln.cost,
        "lineItem/NetUnblendedCost": ln.cost,
        "lineItem/LineItemDescription": ln.description,
        "lineItem/TaxType": ln.tax_type,
        "lineItem/LegalEntity": ln.legal_entity,
        "product/ProductName": ln.product_name,
        "product/location": LOCATIONS.get(ln.region or "", ln.region or ""),
        "product/region": ln.region or "",
        "product/regionCode": ln.region or "",
        "product/servicecode": ln.servicecode,
        "product/usagetype": ln.usage_type if ln.line_type == "Usage" else "",
        "product/operation": ln.operation,
        "pricing/publicOnDemandCost": ln.cost if ln.list_cost is None else ln.list_cost,
        "pricing/publicOnDemandRate": rate,
        "pricing/unit": ln.unit,
    }


# Product attributes that CUR 2.0 moves into its `product` map (§2.2); the rest stay flat columns.
_CUR2_PRODUCT_MAP = {
    "product/ProductName": "product_name",
    "product/region": "region",
    "product/location": "location",
}


def _cur2_table(lines: list[_Line], rng: random.Random) -> pa.Table:
    """CUR 2.0 (§2.2): the legacy columns under their Parquet names, product attributes in a `product`
    map, tags in `resource_tags` (and `tags`), plus the `cost_category` and `discount` maps."""
    records = [_cur_record(ln, rng) for ln in lines]
    table = _flat_table(records, exclude=set(_CUR2_PRODUCT_MAP))
    str_map = pa.map_(pa.string(), pa.string())
    tags = [sorted(ln.tags.items()) for ln in lines]
    # Empty for Marketplace rows in a real export (§4.3); `pricing_unit` carries the unit.
    table = table.append_column(
        "product_pricing_unit", pa.array(["" if ln.entity == "AWS Marketplace" else ln.unit for ln in lines])
    )
    products = [[(key, rec[h]) for h, key in _CUR2_PRODUCT_MAP.items()] for rec in records]
    table = table.append_column("product", pa.array(products, type=str_map))
    table = table.append_column("resource_tags", pa.array(tags, type=str_map))
    resource_tags = [[(f"resourceTags/{k}", v) for k, v in t] for t in tags]
    table = table.append_column("tags", pa.array(resource_tags, type=str_map))
    table = table.append_column("cost_category", pa.array([[] for _ in lines], type=str_map))
    num_map = pa.map_(pa.string(), pa.float64())
    table = table.append_column("discount", pa.array([[] for _ in lines], type=num_map))
    return _principal_columns(table, lines)


# FOCUS 1.2 with AWS columns, as the CID export query lists them (§3.2).
# fmt: off
_FOCUS_COLUMNS = (
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingAccountType",
    "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart", "CapacityReservationId",
    "CapacityReservationStatus", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency",
    "ChargePeriodEnd", "ChargePeriodStart", "CommitmentDiscountCategory", "CommitmentDiscountId",
    "CommitmentDiscountName", "CommitmentDiscountQuantity", "CommitmentDiscountType",
    "CommitmentDiscountUnit", "CommitmentDiscountStatus", "ConsumedQuantity", "ConsumedUnit",
    "ContractedCost", "ContractedUnitPrice", "EffectiveCost", "InvoiceId", "InvoiceIssuerName",
    "ListCost", "ListUnitPrice", "PricingCategory", "PricingCurrency",
    "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice",
    "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "RegionId", "RegionName",
    "ResourceId", "ResourceName", "ResourceType", "ServiceCategory", "ServiceName", "ServiceSubcategory",
    "SkuId", "SkuMeter", "SkuPriceId", "SkuPriceDetails", "SubAccountId", "SubAccountName",
    "SubAccountType", "Tags", "x_Discounts", "x_Operation", "x_ServiceCode",
)
# fmt: on
_FOCUS_FLOATS = {
    "BilledCost",
    "CommitmentDiscountQuantity",
    "ConsumedQuantity",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "ListCost",
    "ListUnitPrice",
    "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
    "PricingQuantity",
}
_FOCUS_TIMES = {"BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart"}
_FOCUS_CATEGORY = {"Usage": "Usage", "Tax": "Tax", "Credit": "Credit"}


def _focus_table(lines: list[_Line], rng: random.Random) -> pa.Table:
    """FOCUS 1.2 rows. Marketplace rows: empty `x_ServiceCode`, the seller as publisher, ListCost 0 (§3.4)."""
    cols: dict[str, list[Any]] = {c: [] for c in _FOCUS_COLUMNS}
    for ln in lines:
        usage = ln.line_type == "Usage"
        mp = ln.entity == "AWS Marketplace"
        qty = ln.amount if usage else None
        v: dict[str, Any] = {
            "BilledCost": ln.cost,
            "BillingAccountId": ln.payer,
            "BillingAccountName": "sample-payer",
            "BillingAccountType": "Billing Account",
            "BillingCurrency": "USD",
            "BillingPeriodEnd": dt.datetime.combine(ln.period_end, dt.time(), tzinfo=dt.UTC),
            "BillingPeriodStart": dt.datetime.combine(ln.period_start, dt.time(), tzinfo=dt.UTC),
            "ChargeCategory": _FOCUS_CATEGORY.get(ln.line_type, "Adjustment"),
            "ChargeDescription": ln.description,
            "ChargeFrequency": "Usage-Based" if usage else "One-Time",
            "ChargePeriodEnd": ln.end,
            "ChargePeriodStart": ln.start,
            "ConsumedQuantity": qty,
            "ConsumedUnit": ln.unit if usage else None,
            "ContractedCost": ln.cost,
            "ContractedUnitPrice": ln.rate,
            "EffectiveCost": ln.cost,
            "InvoiceIssuerName": "Amazon Web Services, Inc.",
            "ListCost": 0.0 if mp else (ln.cost if ln.list_cost is None else ln.list_cost),
            "ListUnitPrice": None if mp else ln.rate,
            "PricingCategory": "Standard" if usage else None,
            "PricingCurrency": "USD",
            "PricingCurrencyContractedUnitPrice": ln.rate,
            "PricingCurrencyEffectiveCost": ln.cost,
            "PricingCurrencyListUnitPrice": None if mp else ln.rate,
            "PricingQuantity": qty,
            "PricingUnit": (ln.unit or None) if usage else None,
            "ProviderName": "AWS",
            "PublisherName": ln.legal_entity if mp else "AWS",
            "RegionId": ln.region,
            "RegionName": LOCATIONS.get(ln.region or "", ln.region),
            "ResourceId": ln.resource_id or None,
            "ServiceCategory": "AI and Machine Learning",
            "ServiceName": ln.product_name,
            "ServiceSubcategory": "Generative AI",
            "SkuId": _line_item_id(rng)[:12],
            "SkuMeter": ln.usage_type or None,
            "SkuPriceId": _line_item_id(rng)[:16],
            "SkuPriceDetails": [],
            "SubAccountId": ln.account,
            "SubAccountName": f"account-{ln.account[-4:]}",
            "SubAccountType": "Account",
            "Tags": sorted(ln.tags.items()),
            "x_Discounts": [],
            "x_Operation": ln.operation or None,
            "x_ServiceCode": "" if mp else ln.product_code,
        }
        for c in _FOCUS_COLUMNS:
            cols[c].append(v.get(c))
    arrays, fields = [], []
    for c in _FOCUS_COLUMNS:
        if c in _FOCUS_FLOATS:
            t: pa.DataType = pa.float64()
        elif c in _FOCUS_TIMES:
            t = pa.timestamp("us", tz="UTC")
        elif c in ("Tags", "SkuPriceDetails"):
            t = pa.map_(pa.string(), pa.string())
        elif c == "x_Discounts":
            t = pa.map_(pa.string(), pa.float64())
        else:
            t = pa.string()
        arrays.append(pa.array(cols[c], type=t))
        fields.append(pa.field(c, t))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


_TIME_HEADERS = {
    "lineItem/UsageStartDate",
    "lineItem/UsageEndDate",
    "bill/BillingPeriodStartDate",
    "bill/BillingPeriodEndDate",
}
_FLOAT_HEADERS = {
    "lineItem/UsageAmount",
    "lineItem/UnblendedCost",
    "lineItem/BlendedCost",
    "lineItem/NetUnblendedCost",
    "pricing/publicOnDemandCost",
    "lineItem/NormalizationFactor",
    "lineItem/NormalizedUsageAmount",
}


def _flat_table(records: list[dict[str, Any]], exclude: frozenset[str] | set[str] = frozenset()) -> pa.Table:
    """The CSV columns under AWS's Parquet names (§1.2): legacy CUR's Athena layout, CUR 2.0's flat part.

    Rates stay strings, as `line_item_unblended_rate` is in CUR 2.0 (§6.2)."""
    data: dict[str, Any] = {}
    for h in _CUR_HEADERS:
        if h in exclude:
            continue
        vals = [rec[h] for rec in records]
        if h in _TIME_HEADERS:
            times = [dt.datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ") for v in vals]
            data[athena_column_name(h)] = pa.array(times, type=pa.timestamp("ms"))
        elif h in _FLOAT_HEADERS:
            data[athena_column_name(h)] = pa.array([float(v) for v in vals], type=pa.float64())
        else:
            data[athena_column_name(h)] = pa.array([str(v) for v in vals], type=pa.string())
    return pa.table(data)


@dataclass
class _Writer:
    fs: fsspec.AbstractFileSystem
    root: str
    local: bool
    written: list[str] = field(default_factory=list)

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def uri(self, path: str) -> str:
        return path if self.local else self.fs.unstrip_protocol(path)

    def bytes(self, path: str, data: bytes) -> None:
        if self.local:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with self.fs.open(path, "wb") as f:
            f.write(data)
        self.written.append(self.uri(path))

    def json(self, path: str, doc: Any) -> None:
        self.bytes(path, json.dumps(doc, indent=2, default=str).encode())

    def parquet(self, path: str, table: pa.Table) -> None:
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="snappy")
        self.bytes(path, buf.getvalue())


def _by_period(lines: Iterable[_Line]) -> dict[dt.date, list[_Line]]:
    out: dict[dt.date, list[_Line]] = {}
    for ln in lines:
        out.setdefault(ln.period_start, []).append(ln)
    return dict(sorted(out.items()))


def _csv_gz(records: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=_CUR_HEADERS, lineterminator="\n")
    w.writeheader()
    w.writerows(records)
    return gzip.compress(text.getvalue().encode(), mtime=0)


def _write_cur_csv(w: _Writer, lines: list[_Line], rng: random.Random) -> None:
    """`<report>/<yyyymmdd-yyyymmdd>/<assemblyId>/<report>-1.csv.gz` with per-assembly and top-level
    manifests, plus an older assembly that the top-level manifest no longer names (§1.1)."""
    report = EXPORT_NAMES["cur"]
    # Manifest keys are relative to the bucket (local: to `dest`), as AWS writes them.
    bucket, _, key_prefix = ("", "", "") if w.local else w.root.partition("/")
    key_prefix = f"{key_prefix.strip('/')}/" if key_prefix.strip("/") else ""
    columns = [{"category": h.split("/")[0], "name": h.split("/")[1], "type": "String"} for h in _CUR_HEADERS]
    for start, period_lines in _by_period(lines).items():
        end = (start + dt.timedelta(days=32)).replace(day=1)
        range_dir = f"{start:%Y%m%d}-{end:%Y%m%d}"
        records = [_cur_record(ln, rng) for ln in period_lines]
        stale = str(uuid.UUID(int=rng.getrandbits(128)))
        current = str(uuid.UUID(int=rng.getrandbits(128)))
        for assembly, recs in ((stale, records[: max(1, len(records) // 2)]), (current, records)):
            key = f"{report}/{range_dir}/{assembly}/{report}-1.csv.gz"
            w.bytes(w.path(key), _csv_gz(recs))
            manifest = {
                "assemblyId": assembly,
                "account": lines[0].payer,
                "columns": columns,
                "charset": "UTF-8",
                "compression": "GZIP",
                "contentType": "text/csv",
                "reportId": hashlib.sha256(report.encode()).hexdigest()[:32],
                "reportName": report,
                "billingPeriod": {"start": f"{start:%Y%m%d}T000000.000Z", "end": f"{end:%Y%m%d}T000000.000Z"},
                "bucket": bucket,
                "reportKeys": [key_prefix + key],
                "additionalArtifactKeys": [],
            }
            w.json(w.path(f"{report}/{range_dir}/{assembly}/{report}-Manifest.json"), manifest)
        w.json(w.path(f"{report}/{range_dir}/{report}-Manifest.json"), manifest)


def _write_cur_athena(w: _Writer, lines: list[_Line], rng: random.Random) -> None:
    report = EXPORT_NAMES["cur"]
    for start, period_lines in _by_period(lines).items():
        part = f"{report}/{report}/year={start.year}/month={start.month}"
        w.parquet(
            w.path(f"{part}/{report}-00001.snappy.parquet"),
            _flat_table([_cur_record(ln, rng) for ln in period_lines]),
        )
        w.json(
            w.path(f"{part}/{report}-Manifest.json"),
            {"reportName": report, "billingPeriod": f"{start:%Y-%m}"},
        )
    w.parquet(
        w.path(f"{report}/cost_and_usage_data_status/cost_and_usage_data_status.parquet"),
        pa.table({"status": ["READY"]}),
    )


def _write_data_export(w: _Writer, lines: list[_Line], rng: random.Random, fmt: BillFormat) -> None:
    """Data Exports overwrite layout (§2.1): data/BILLING_PERIOD=YYYY-MM/ and metadata/ with a manifest.

    The Data Exports manifest's fields are not documented by AWS; the one written here is illustrative and
    the reader does not depend on it."""
    export = EXPORT_NAMES[fmt]
    for start, period_lines in _by_period(lines).items():
        period = f"BILLING_PERIOD={start:%Y-%m}"
        table = _cur2_table(period_lines, rng) if fmt == "cur2" else _focus_table(period_lines, rng)
        data = w.path(f"{export}/data/{period}/{export}-00001.snappy.parquet")
        w.parquet(data, table)
        w.json(
            w.path(f"{export}/metadata/{period}/{export}-Manifest.json"),
            {
                "exportName": export,
                "billingPeriod": f"{start:%Y-%m}",
                "dataFiles": [w.uri(data)],
                "note": "sample manifest; field names are not AWS's",
            },
        )


def write_bill(
    dest: str,
    usage: pl.DataFrame,
    fmt: BillFormat,
    discrepancies: bool = True,
    seed: int = 7,
    *,
    cur_layout: Literal["csv", "parquet"] = "csv",
    payer_account_id: str | None = None,
    storage_options: dict[str, Any] | None = None,
    principals: pl.DataFrame | None = None,
) -> list[str]:
    """Write a bill for `usage` (see USAGE_SCHEMA) under `dest` (local folder or `s3://`) in `fmt`.

    Returns the files written; the last is `<dest>/injected_discrepancies.json`, which lists what was injected
    and the reconciliation status each item should produce. Point a `BillingSource` at
    `<dest>/<EXPORT_NAMES[fmt]>` (or at `dest`).

    `principals` (USAGE_SCHEMA plus `iam_principal`, the caller's identity ARN) makes a CUR 2.0 bill an export
    with IAM principal data: see `_with_principals`.
    """
    if fmt not in EXPORT_NAMES:
        raise ValueError(f"fmt must be one of {sorted(EXPORT_NAMES)}, not {fmt!r}")
    opts = storage_options if storage_options is not None else storage_options_for(dest)
    fs, root = fsspec.core.url_to_fs(dest, **opts)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    w = _Writer(fs, root, protocol in ("file", "local"))
    lines, injected = build_lines(usage, discrepancies, seed, payer_account_id)
    if principals is not None and fmt == "cur2":  # only CUR 2.0 can carry IAM principal data
        lines = _with_principals(lines, principals, injected, discrepancies)
    rng = random.Random(seed + 1)
    if lines:
        if fmt == "cur" and cur_layout == "csv":
            _write_cur_csv(w, lines, rng)
        elif fmt == "cur":
            _write_cur_athena(w, lines, rng)
        else:
            _write_data_export(w, lines, rng, fmt)
    w.json(
        w.path(SIDECAR),
        {
            "format": fmt,
            "layout": cur_layout if fmt == "cur" else "parquet",
            "export_uri": w.uri(w.path(EXPORT_NAMES[fmt])),
            "seed": seed,
            "discrepancies": injected,
        },
    )
    return w.written


# ----------------------------------------------------------------------------------------------------------
# IAM principal data (CUR 2.0 `INCLUDE_IAM_PRINCIPAL_DATA`, §4.10)

PRINCIPAL_TAGS: tuple[tuple[str, dict[str, str]], ...] = (
    ("arn:aws:sts::*:assumed-role/BEDROCKPLAYGROUNDACCESS/*", {"costCenter": "platform", "team": "ml-enablement"}),
    ("arn:aws:iam::111122223333:user/*", {"costCenter": "sales", "applicationId": "brand-studio"}),
)
"""Principal tags activated for cost allocation, as AWS copies them into `tags` (`iamPrincipal/<key>`): the
playground's people and the image studio's IAM users, whom no principal rule of the demo config covers."""
UNLOGGED_PRINCIPAL_ROLE = "nightly-summarizer"
"""A role whose calls are billed but never logged (discrepancy: a principal billed and not logged)."""


def _principal_tags_for(arn: str) -> dict[str, str]:
    for pattern, tags in PRINCIPAL_TAGS:
        if fnmatch.fnmatchcase(arn, pattern):
            return dict(tags)
    return {}


def _with_principals(
    lines: list[_Line], principals: pl.DataFrame, injected: list[dict[str, Any]], discrepancies: bool
) -> list[_Line]:
    """Split each AWS-billed usage line by the principals whose calls it bills, in proportion to their tokens.

    Marketplace lines keep no principal (whether AWS attributes Marketplace rows is [UNVERIFIED]; the demo shows
    the mixed case). With `discrepancies`, one more principal is billed a share of a line's usage that no log
    shows: its role is `UNLOGGED_PRINCIPAL_ROLE`, with principal tags naming its owner.
    """
    names = load_billing_name_map()
    routes: dict[str, _Route] = {}
    shares: dict[tuple[Any, ...], dict[str, int]] = {}
    for r in principals.filter((pl.col("tokens") > 0) & ~pl.col("usage_kind").is_in(GUARDRAIL_POLICIES)).to_dicts():
        if r["iam_principal"] is None:
            continue
        route = routes.setdefault(r["base_model_id"], _route(r["base_model_id"], names))
        ut = _usage_type(
            route, r["region"], r["usage_kind"], r["routing"], r["tier"], r.get("context_tier") or "standard"
        )
        rid = _resource_id(r["base_model_id"], r["region"], r["account_id"], r["routing"], r["profile_id"])
        key = (r["date"], r["account_id"], r["region"], ut, rid)
        by = shares.setdefault(key, {})
        by[r["iam_principal"]] = by.get(r["iam_principal"], 0) + int(r["tokens"])
    out: list[_Line] = []
    for ln in lines:
        split = shares.get((ln.day, ln.account, ln.region, ln.usage_type, ln.resource_id))
        if ln.line_type != "Usage" or ln.entity == "AWS Marketplace" or not split:
            out.append(ln)
            continue
        total = sum(split.values())
        for arn, tokens in sorted(split.items()):
            amount = ln.amount * tokens / total
            out.append(
                replace(
                    ln,
                    amount=amount,
                    cost=(ln.rate or 0.0) * amount,
                    list_cost=None if ln.list_cost is None else ln.list_cost * tokens / total,
                    iam_principal=arn,
                    principal_tags=_principal_tags_for(arn),
                )
            )
    if discrepancies:
        inputs = [
            ln
            for ln in out
            if ln.iam_principal
            and ln.cost > 0
            and "input-tokens" in ln.usage_type
            and "batch" not in ln.usage_type
            and "-mantle-" not in ln.usage_type
        ]
        target = max(inputs, key=lambda ln: ln.cost, default=None)
        if target is not None:
            arn = f"arn:aws:sts::{target.account}:assumed-role/{UNLOGGED_PRINCIPAL_ROLE}/batch-{target.day:%Y%m%d}"
            amount = target.amount * 0.25
            out.append(
                replace(
                    target,
                    amount=amount,
                    cost=(target.rate or 0.0) * amount,
                    list_cost=None if target.list_cost is None else target.list_cost * 0.25,
                    iam_principal=arn,
                    principal_tags={"costCenter": "platform", "applicationId": UNLOGGED_PRINCIPAL_ROLE},
                )
            )
            injected.append(
                {
                    "kind": "principal_billed_not_logged",
                    "expected_status": "missing_in_logs",
                    "iam_principal": arn,
                    "date": target.day.isoformat(),
                    "account_id": target.account,
                    "region": target.region,
                    "usage_type": target.usage_type,
                    "detail": "a principal billed for calls that no invocation log shows (logging bypassed)",
                }
            )
    return out


def _principal_columns(table: pa.Table, lines: list[_Line]) -> pa.Table:
    """`line_item_iam_principal` and the `iamPrincipal/` tags, when any line names a principal (else unchanged)."""
    if not any(ln.iam_principal for ln in lines):
        return table
    table = table.append_column(
        "line_item_iam_principal", pa.array([ln.iam_principal or None for ln in lines], type=pa.string())
    )
    tags = [
        sorted([(f"resourceTags/{k}", v) for k, v in ln.tags.items()])
        + sorted((f"iamPrincipal/{k}", v) for k, v in ln.principal_tags.items())
        for ln in lines
    ]
    i = table.schema.get_field_index("tags")
    return table.set_column(i, "tags", pa.array(tags, type=pa.map_(pa.string(), pa.string())))
