"""Parse Bedrock `line_item_usage_type` strings into region, token kind, routing, tier and billing model name.

The bill has no model ids: the model, the token kind and the price-relevant suffixes are all packed into the
usage type, in three grammars (docs/formats/billing-exports.md §4.2):

- first party / AWS-billed ("dash"): `USE1-Claude4.6Opus-cache-read-input-token-count-cross-region-global`
- the "mantle" endpoint: `USW2-anthropic.claude-opus-4-8-mantle-cache-write-tokens-global-standard`
- AWS Marketplace: `USE1-MP:USE1_InputTokenCount_Global-Units` (no model name at all: the model is only in
  the product name, `Claude Haiku 4.5 (Amazon Bedrock Edition)`)

Token kinds follow the order of AWS's own CUDOS dashboard ("Bedrock UsageType Group", first match wins), so
our numbers stay consistent with the dashboards a FinOps team already looks at. Geographic cross-Region
routing has no usage-type suffix; it shows only in `line_item_resource_id` (an `inference-profile/us.…`
ARN), so routing needs the resource id too.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache

import polars as pl

from pipeline.normalize.model_ids import resolve_model_id
from pipeline.schemas import DType
from pipeline.vocabulary import BILLED_TIERS, GUARDRAIL_POLICIES, TOKEN_KINDS

# AWS billing region codes (§4.2). eu-west-1 is the bare `EU`; one reconciler
# also maps `EUW1`, never seen in a bill. The first code per region is the one the sample generator writes.
REGION_CODES: dict[str, str] = {
    "USE1": "us-east-1",
    "USE2": "us-east-2",
    "USW1": "us-west-1",
    "USW2": "us-west-2",
    "CAN1": "ca-central-1",
    "CAN2": "ca-west-1",
    "MXC1": "mx-central-1",
    "SAE1": "sa-east-1",
    "AFS1": "af-south-1",
    "APE1": "ap-east-1",
    "APN1": "ap-northeast-1",
    "APN2": "ap-northeast-2",
    "APN3": "ap-northeast-3",
    "APS1": "ap-southeast-1",
    "APS2": "ap-southeast-2",
    "APS3": "ap-south-1",
    "APS4": "ap-southeast-3",
    "APS5": "ap-south-2",
    "APS6": "ap-southeast-4",
    "APS7": "ap-southeast-5",
    "APS8": "ap-southeast-7",
    "EU": "eu-west-1",
    "EUW1": "eu-west-1",
    "EUW2": "eu-west-2",
    "EUW3": "eu-west-3",
    "EUC1": "eu-central-1",
    "EUC2": "eu-central-2",
    "EUN1": "eu-north-1",
    "EUS1": "eu-south-1",
    "EUS2": "eu-south-2",
    "ILC1": "il-central-1",
    "MEC1": "me-central-1",
    "MES1": "me-south-1",
    "UGW1": "us-gov-west-1",
    "UGE1": "us-gov-east-1",
    "CNN1": "cn-north-1",
    "CNW1": "cn-northwest-1",
}
REGION_PREFIX: dict[str, str] = {}
for _code, _region in REGION_CODES.items():
    REGION_PREFIX.setdefault(_region, _code)

TIERS = BILLED_TIERS

_PREFIX = re.compile(r"^(?P<code>[A-Z]{2,4}[0-9]?)-(?P<rest>.+)$")
_MARKETPLACE = re.compile(r"^(?P<code>[A-Z]{2,4}[0-9]?)-MP:(?P<dim>.+)$")
# Generation-5 Price List style seen without the `<REG>-MP:` head, and dimensions as an analyst printed them.
_BARE_DIMENSION = re.compile(r"^(?P<code>[A-Z]{2,4}[0-9]?)_(?P<dim>.+)$")
_MANTLE = re.compile(r"^(?P<model>[a-z0-9-]+\..+?)-mantle-(?P<tail>.+)$")

# Where the billing model name ends in a dash-grammar usage type: the first of these markers.
_NAME_END_MARKERS = (
    "-input-image-token",
    "-input-token",
    "-output-token",
    "-cache-read",
    "-cache-write",
    "-ProvisionedThroughput",
    "-Customization",
    "-RFT-",
    "-Reserved",
    "-nova-grounding",
    "-CustomModelImport",
    "-T2I-",
    "-I2I-",
    "-T2V",
    "-I2V",
)
# Lower-case modality words that sit in the token-kind part (`Nova2.0Pro-text-input-tokens`); `-Text` with a
# capital belongs to a model name (`TitanEmbeddingV2-Text`) and is kept.
_MODALITY_SUFFIX = re.compile(r"-(text|image|audio|video|speech)$")

_OTHER_MARKERS = (
    "custommodelimport",
    "customization",
    "rft-training",
    "_training",
    "guardrail",
    "evaluation",
    "invokeflow",
    "bedrockflows",
    "optimizeprompt",
    "prompt-routing",
    "nova-grounding",
    "generatesql",
    "structuredretrieve",
    "search_units",
    "searchunits",
    "dataautomation",
    "agentcore",
)
_VIDEO_MARKERS = ("novareel", "i2v", "t2v")
_IMAGE_MARKERS = ("novacanvas", "imagegenerator", "created_image", "imagecount", "-t2i-", "-i2i-")


@dataclass(frozen=True)
class ParsedUsageType:
    """What one usage type says about a bill row. `model_name` is the key into the billing-name map."""

    usage_type: str
    grammar: str  # first_party | mantle | marketplace | unknown
    region_code: str | None
    region: str | None
    model_name: str | None  # None for Marketplace rows: their model is in the product name
    usage_kind: str  # input | output | cache_read | cache_write | image | provisioned | other
    routing: str  # in_region | geo | global
    tier: str  # standard | batch | flex | priority | latency_optimized | reserved | custom_model
    cache_ttl: str | None = None  # 5m | 1h (| 30m, seen only in a Price List parser) for cache writes
    dimension: str | None = None  # Marketplace dimension, e.g. InputTokenCount_Global
    context_tier: str = "standard"  # standard | long (`long_ctx` / `LongContext` usage types)
    unit: str | None = None  # tokens | images | model_unit_hours | text_units; None for `other`
    note: str | None = None  # why a row is `other`, or what was assumed (billing_line_items.classification_note)
    endpoint: str = "runtime"  # runtime | mantle: which endpoint served the row (mantle is never in the logs)


_GUARDRAIL_POLICY = re.compile(r"guardrail[-_]?(?P<policy>[a-z]+?)policy(?P<image>image)?(?P<paid>paid|free)?units")


def guardrail_policy(lower: str) -> str | None:
    """The policy a guardrail usage type bills (`…-Guardrail-SensitiveInformationPolicyPaidUnitsConsumed` ->
    `sensitive_information`; docs/formats/billing-exports.md §4.2.1), None when it is not a guardrail row or names
    no known policy. Free units (regex-only sensitive-information matches) are not a billed policy: None."""
    m = _GUARDRAIL_POLICY.search(lower)
    if not m or m.group("paid") == "free":
        return None
    folded = {p.replace("_", ""): p for p in GUARDRAIL_POLICIES}
    return folded.get(m.group("policy") + (m.group("image") or ""))


def _kind(lower: str) -> tuple[str, str | None]:
    """Token kind in CUDOS order (§4.2): specific families first, the generic input/output last; a guardrail
    row's kind is its policy."""
    if "guardrail" in lower and (policy := guardrail_policy(lower)):
        return policy, None
    if "modelunits" in lower or "provisionedthroughput" in lower:
        return "provisioned", None
    if "reserved" in lower:  # Reserved tier bills tokens-per-minute capacity, not tokens.
        return "other", None
    if any(m in lower for m in _OTHER_MARKERS):
        return "other", None
    if any(m in lower for m in _VIDEO_MARKERS):
        return "other", None
    if any(m in lower for m in _IMAGE_MARKERS):
        return "image", None
    if "sonic" in lower:
        return "other", None
    if any(m in lower for m in ("cacheread", "cache-read", "cache_read")):
        return "cache_read", None
    if any(m in lower for m in ("cachewrite", "cache-write", "cache_write")):
        ttl = "1h" if "1h" in lower else "30m" if "30m" in lower else "5m"
        return ("cache_write_1h" if ttl == "1h" else "cache_write"), ttl
    if "input" in lower:
        return "input", None
    if "output" in lower:
        return "output", None
    if "embed" in lower:  # Marketplace embedding dimensions (`Cohere_Embed_V4`) bill input only.
        return "input", None
    return "other", None


# Why a usage type is deliberately `other` (kept, never matched against token logs): first match wins.
_OTHER_NOTES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("reserved",), "Reserved tier: billed per tokens-per-minute capacity and month, not per token"),
    (("guardrail",), "Guardrails policy units: billed per text unit, not a model invocation"),
    (("search_units", "searchunits", "search-units"), "rerank search units: billed per query, not per token"),
    (("cachestorage",), "prompt-cache storage: billed by stored tokens over time, logs have no counterpart"),
    (("cachevalidation",), "prompt-cache validation count: no counterpart in invocation logs"),
    (("sonic",), "Nova Sonic speech/text tokens: bidirectional streams, not reconciled against invocation logs"),
    (_VIDEO_MARKERS, "video generation: billed per second of video, not per token"),
    (
        ("custommodelimport", "customization", "rft-training", "_training"),
        "model customization or import: training, storage or import hours",
    ),
    (
        (
            "evaluation",
            "invokeflow",
            "bedrockflows",
            "optimizeprompt",
            "prompt-routing",
            "nova-grounding",
            "generatesql",
            "structuredretrieve",
            "dataautomation",
            "agentcore",
        ),
        "Bedrock feature outside model inference (flows, agents, evaluation, grounding, data automation)",
    ),
)
_LONG_CONTEXT = ("long_ctx", "long-ctx", "longcontext", "long-context")


def _note(lower: str, kind: str, grammar: str, region_code: str | None, ttl: str | None) -> str | None:
    """The reason a row is classified `other`, or an assumption a reader should know about."""
    if kind in GUARDRAIL_POLICIES:
        return (
            f"Guardrails {kind.replace('_', ' ')} policy units: billed per text unit, reconciled with the log's trace"
        )
    if kind == "other":
        for markers, note in _OTHER_NOTES:
            if any(m in lower for m in markers):
                return note
        return "usage type not recognised by any known grammar: kept, reported, never guessed"
    notes = []
    if region_code is None:
        notes.append("no region prefix in the usage type: region taken from the product region")
    if grammar == "marketplace" and kind != "other":
        notes.append("Marketplace dimension: the model comes from the product name")
    if ttl == "30m":
        notes.append("30-minute cache write (seen only in a Price List parser): compared with 5-minute writes")
    if "-input-image-token" in lower:
        notes.append("image input tokens: assumed logged and priced as input tokens (UNVERIFIED)")
    return "; ".join(notes) or None


def _unit(kind: str) -> str | None:
    if kind in TOKEN_KINDS:
        return "tokens"
    if kind in GUARDRAIL_POLICIES:
        return "text_units"
    return {"image": "images", "provisioned": "model_unit_hours"}.get(kind)


def _tier(lower: str) -> str:
    if "reserved" in lower:
        return "reserved"
    if re.search(r"[-_]batch(?:[-_]|$)", lower):
        return "batch"
    if re.search(r"[-_]flex(?:[-_]|$)", lower):
        return "flex"
    if re.search(r"[-_]priority(?:[-_]|$)", lower):
        return "priority"
    if "latency-optimized" in lower or "latency_optimized" in lower or "latencyoptimized" in lower:
        return "latency_optimized"
    if "-custom-model" in lower:
        return "custom_model"
    return "standard"


def _routing_from_usage_type(lower: str) -> str | None:
    if "cross-region-global" in lower or re.search(r"[-_]global(?:[-_]|$)", lower):
        return "global"
    if "cross-region-geo" in lower:  # seen only in a third-party type definition (§4.5), unverified
        return "geo"
    return None


@lru_cache(maxsize=4096)
def routing_from_resource_id(resource_id: str | None) -> str | None:
    """`geo`/`global` when the resource id is a system inference-profile ARN (`inference-profile/us.…`)."""
    if not resource_id or ":inference-profile/" not in resource_id:
        return None
    routing = resolve_model_id(resource_id).routing
    return routing if routing in ("geo", "global") else None


def _dash_model_name(rest: str) -> str:
    cut = min((i for i in (rest.find(m) for m in _NAME_END_MARKERS) if i > 0), default=-1)
    name = rest[:cut] if cut > 0 else rest
    return _MODALITY_SUFFIX.sub("", name)


@lru_cache(maxsize=16384)
def parse_usage_type(usage_type: str | None, resource_id: str | None = None) -> ParsedUsageType:
    """Parse one usage type; `resource_id` (the row's `line_item_resource_id`) is only used for routing.

    Never raises: a string no grammar recognises comes back as grammar `unknown`, kind `other`, so the row is
    kept and reported rather than dropped.
    """
    raw = (usage_type or "").strip()
    lower = raw.lower()
    region_code: str | None = None
    model_name: str | None = None
    dimension: str | None = None

    mp = _MARKETPLACE.match(raw)
    bare = _BARE_DIMENSION.match(raw) if not mp else None
    if mp or (bare and bare.group("code") in REGION_CODES):
        m = mp or bare
        assert m is not None
        region_code = m.group("code")
        dim = m.group("dim")
        dim = re.sub(r"-Units$", "", dim)
        head = re.match(r"^([A-Z]{2,4}[0-9]?)_(.+)$", dim)
        if head and head.group(1) in REGION_CODES:
            dim = head.group(2)
        grammar, dimension = "marketplace", dim
    else:
        p = _PREFIX.match(raw)
        rest = raw
        if p and p.group("code") in REGION_CODES:
            region_code, rest = p.group("code"), p.group("rest")
        mantle = _MANTLE.match(rest)
        if mantle:
            grammar, model_name = "mantle", mantle.group("model")
        elif rest:
            grammar, model_name = "first_party", _dash_model_name(rest)
        else:
            grammar = "unknown"

    kind, ttl = _kind(lower) if raw else ("other", None)
    if grammar == "first_party" and kind == "other" and not region_code:
        grammar = "unknown"
    routing = _routing_from_usage_type(lower) or routing_from_resource_id(resource_id) or "in_region"
    long_ctx = kind in TOKEN_KINDS and any(m in lower for m in _LONG_CONTEXT)
    return ParsedUsageType(
        usage_type=raw,
        grammar=grammar,
        region_code=region_code,
        region=REGION_CODES.get(region_code) if region_code else None,
        model_name=model_name,
        usage_kind=kind,
        routing=routing,
        tier=_tier(lower),
        cache_ttl=ttl,
        dimension=dimension,
        context_tier="long" if long_ctx else "standard",
        unit=_unit(kind),
        note=_note(lower, kind, grammar, region_code, ttl) if raw else "no usage type (tax or adjustment row)",
        endpoint="mantle" if grammar == "mantle" else "runtime",
    )


_PARSED_SCHEMA: dict[str, DType] = {
    "usage_type": pl.String,
    "resource_id": pl.String,
    "grammar": pl.String,
    "region_code": pl.String,
    "usage_type_region": pl.String,
    "model_name": pl.String,
    "usage_kind": pl.String,
    "routing": pl.String,
    "tier": pl.String,
    "cache_ttl": pl.String,
    "dimension": pl.String,
    "context_tier": pl.String,
    "classification_note": pl.String,
    "endpoint": pl.String,
}


def parse_usage_types(
    df: pl.DataFrame, usage_type_col: str = "usage_type", resource_id_col: str | None = "resource_id"
) -> pl.DataFrame:
    """`df` with the parsed fields added as columns (`usage_type_region` for the prefix's region).

    A day of a large bill has millions of rows but only hundreds of distinct (usage type, resource id) pairs,
    so each pair is parsed once in Python and joined back, rather than running regexes per row.
    """
    has_rid = resource_id_col is not None and resource_id_col in df.columns
    keys = [usage_type_col, resource_id_col] if resource_id_col is not None and has_rid else [usage_type_col]
    distinct = df.select(keys).unique()
    rows = []
    for rec in distinct.iter_rows():
        ut = rec[0]
        rid = rec[1] if has_rid else None
        p = asdict(parse_usage_type(ut, rid))
        rows.append(
            {
                "usage_type": ut,
                "resource_id": rid,
                "grammar": p["grammar"],
                "region_code": p["region_code"],
                "usage_type_region": p["region"],
                "model_name": p["model_name"],
                "usage_kind": p["usage_kind"],
                "routing": p["routing"],
                "tier": p["tier"],
                "cache_ttl": p["cache_ttl"],
                "dimension": p["dimension"],
                "context_tier": p["context_tier"],
                "classification_note": p["note"],
                "endpoint": p["endpoint"],
            }
        )
    parsed = pl.DataFrame(rows, schema=_PARSED_SCHEMA)
    rename = {"usage_type": usage_type_col}
    if has_rid:
        rename["resource_id"] = resource_id_col  # type: ignore[assignment]
    else:
        parsed = parsed.drop("resource_id")
    parsed = parsed.rename(rename)
    out_cols = [c for c in parsed.columns if c not in keys]
    base = df.drop([c for c in out_cols if c in df.columns])
    return base.join(parsed, on=keys, how="left", nulls_equal=True)
