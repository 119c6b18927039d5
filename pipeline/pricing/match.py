"""Price each invocation from the catalog: which row applies (model, profile, region, date, tier) and what it costs.

The rules are those of `docs/formats/pricing-rules.md` §5. A day can hold millions of calls but only a handful of
distinct
(model, profile, routing, region, date, tier) keys, so the row choice is made once per distinct key with polars joins
and the costs are then computed column-wise for every call. A call that cannot be priced is `priced = false` with
null costs and an `unpriced_reason`; it is never $0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import polars as pl

from pipeline import config
from pipeline.pricing.aliases import load_aliases
from pipeline.pricing.catalog import ANY_REGION, PRICE_COLUMNS, PriceCatalog
from pipeline.pricing.guardrails import with_guardrail_cost
from pipeline.vocabulary import PRICING_ROUTINGS

GEO_PREFIX = re.compile(r"^(us-gov|us|eu|apac|jp|au|ca|in|global)\.")
"""System (cross-region) inference profile prefixes. `us-gov` comes first so it is not read as `us`."""

TIER_MULTIPLIERS: dict[str, float] = {"batch": 0.5, "flex": 0.5, "priority": 1.75}
"""§3.1/§5.6: applied to the standard row when the catalog has no row for the tier; price_source says so."""

TIER_ALIASES: dict[str, str] = {
    "default": "standard",
    "on_demand": "standard",
    "on-demand": "standard",
    "optimized": "latency_optimized",
}
"""The request field says `default` where the bill and the catalog say `standard`."""

PROVISIONED_SOURCE = "provisioned throughput: billed per model unit hour, not per token"

# unpriced_reason values
REASON_PROVISIONED = "provisioned"
REASON_CUSTOM = "custom_model"
REASON_UNRESOLVED_PROFILE = "unresolved_application_profile"
REASON_NO_PRICE = "no_price"
REASON_TIER = "tier_not_priced"
REASON_IMPLAUSIBLE_COST = "implausible_cost"

COST_COLUMNS: tuple[str, ...] = (
    "input_cost_usd",
    "output_cost_usd",
    "cache_read_cost_usd",
    "cache_write_cost_usd",
    "image_cost_usd",
    "total_cost_usd",
    "cache_write_1h_cost_usd",
)
OUTPUT_COLUMNS: tuple[str, ...] = (
    *COST_COLUMNS,
    "priced",
    "price_source",
    "pricing_routing",
    "pricing_tier",
    "unpriced_reason",
    "context_tier",
    "guardrail_cost_usd",
    "price_origin",
)
CACHE_WRITE_1H = "cache_write_1h_input_tokens"
"""The 1-hour part of `cache_write_input_tokens`; a frame without the column has none (0)."""
_COMBO = ["model_id", "base_model_id", "routing", "inference_profile"]
_KEY = [*_COMBO, "region", "date", "_tier"]
_NEEDED = [
    *_COMBO,
    "region",
    "date",
    "service_tier",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "image_count",
]
_BUCKETS = (  # (token column, catalog price column, cost column, per how many units)
    ("input_tokens", "input_per_1k_usd", "input_cost_usd", 1000.0),
    ("output_tokens", "output_per_1k_usd", "output_cost_usd", 1000.0),
    ("cache_read_input_tokens", "cache_read_per_1k_usd", "cache_read_cost_usd", 1000.0),
    ("_cw_5m", "cache_write_per_1k_usd", "_cw_5m_cost", 1000.0),
    (CACHE_WRITE_1H, "cache_write_1h_per_1k_usd", "cache_write_1h_cost_usd", 1000.0),
)
CONTEXT_TOKENS = ("input_tokens", "cache_read_input_tokens", "cache_write_input_tokens")
"""Anthropic's long-context rule counts the whole prompt: input plus cache reads plus cache writes."""


def strip_geo_prefix(model_id: str) -> str:
    """`us.anthropic.x` -> `anthropic.x`; ids without a profile prefix are returned unchanged."""
    return GEO_PREFIX.sub("", model_id, count=1)


def _arn_resource(value: str) -> tuple[str | None, str]:
    """Split a Bedrock ARN into (resource type, resource id); a plain id comes back as (None, id)."""
    if not value.startswith("arn:"):
        return None, value
    parts = value.split(":", 5)
    if len(parts) < 6:
        return None, value
    rtype, _, rid = parts[5].partition("/")
    return rtype, rid


def id_variants(model_id: str) -> list[str]:
    """Spellings of the same model that logs and price tables disagree on (§5.4), most faithful first.

    Never a prefix match: `…opus-4-5` must not find `…opus-4-55`, nor `sonnet-5` find `sonnet-5-5`.
    """
    out: list[str] = []
    s = re.sub(r"\[[^\]]*\]$", "", model_id)  # client-side tags such as `[1m]`
    if s.count(":") >= 2:  # context-length variant `…-v1:0:48k`
        s = ":".join(s.split(":")[:2])
    out.append(s)
    if s.endswith(":0"):
        out.append(s[:-2])
    elif ":" not in s:
        out.append(s + ":0")
    core = s[:-2] if s.endswith(":0") else s
    if core.endswith("-v1"):
        out.append(core[:-3])
    elif ":" not in core and not re.search(r"-v\d+$", core):
        out.extend([core + "-v1", core + "-v1:0"])
    # Unique, in order, without the id itself.
    return [v for v in dict.fromkeys(out) if v != model_id]


def _resolve_combo(
    model_id: str | None,
    base_model_id: str | None,
    routing: str | None,
    inference_profile: str | None,
    profile_models: Mapping[str, str],
) -> tuple[str | None, list[str], str | None]:
    """(pricing routing, candidate catalog ids in lookup order, reason the call cannot be token-priced).

    For a geo/global call the first candidate is the profile id (`us.X`) and the later ones the bare model
    (`X`); `_select_prices` lets an override row for the bare id that covers the call's routing rank with the
    first (see `_lift`)."""
    rtype, mid = _arn_resource(model_id or "")
    if routing == "provisioned" or rtype == "provisioned-model":
        return "provisioned", [], REASON_PROVISIONED
    if rtype in ("custom-model", "imported-model"):
        # No public price exists for a custom or imported model: only an override keyed by its ARN prices it.
        return "in_region", [model_id or ""], None
    if rtype == "custom-model-deployment":
        return None, [], REASON_CUSTOM
    profile_type, _ = _arn_resource(inference_profile or "")
    is_app = (
        routing == "application_profile"
        or rtype == "application-inference-profile"
        or profile_type == "application-inference-profile"
    )
    if is_app:
        wrapped = None
        for arn in (inference_profile, model_id):
            if arn and arn in profile_models:
                wrapped = profile_models[arn]
                break
        wrapped = wrapped or base_model_id
        if not wrapped:
            return None, [], REASON_UNRESOLVED_PROFILE
        wtype, mid = _arn_resource(wrapped)
        if wtype == "application-inference-profile":
            return None, [], REASON_UNRESOLVED_PROFILE
        geo = GEO_PREFIX.match(mid)
        pricing_routing = ("global" if geo.group(1) == "global" else "geo") if geo else "in_region"
    else:
        if routing in ("geo", "global") and inference_profile:
            mid = _arn_resource(inference_profile)[1]
        geo = GEO_PREFIX.match(mid)
        if routing in PRICING_ROUTINGS:
            pricing_routing = routing
        else:
            pricing_routing = ("global" if geo.group(1) == "global" else "geo") if geo else "in_region"
    if not mid:
        mid = base_model_id or ""
    exact = [mid]
    if GEO_PREFIX.match(mid):
        exact.append(strip_geo_prefix(mid))
    if base_model_id:
        exact.append(_arn_resource(base_model_id)[1])
    aliases = load_aliases()
    geo = GEO_PREFIX.match(mid)
    if geo and strip_geo_prefix(mid) in aliases:  # `global.<short id>` is `global.<model id>`, a price of its own
        exact.insert(1, f"{geo.group(1)}.{aliases[strip_geo_prefix(mid)]}")
    exact.extend([aliases[c] for c in exact if c in aliases])
    candidates: list[str] = []
    for c in exact:
        for v in [c, *id_variants(c)]:
            if v and v not in candidates:
                candidates.append(v)
    return pricing_routing, candidates, None


def _tier_expr(default_tier: str) -> pl.Expr:
    t = pl.col("service_tier").str.strip_chars().str.to_lowercase()
    t = t.replace(TIER_ALIASES)
    return pl.when(t.is_null() | (t == "")).then(pl.lit(default_tier)).otherwise(t)


def _select_prices(keys: pl.DataFrame, catalog: PriceCatalog, profile_models: Mapping[str, str]) -> pl.DataFrame:
    """One standard-context price (`_p_*`) and one long-context price (`_l_*`, with its `_l_min` threshold) or
    none per distinct key: the most specific catalog row of each context tier valid that day."""
    combos = keys.select(_COMBO).unique()
    info: dict[str, list[object]] = {c: [] for c in [*_COMBO, "_pricing_routing", "_block"]}
    cands: dict[str, list[object]] = {c: [] for c in [*_COMBO, "_cand", "_cand_rank"]}
    for row in combos.iter_rows(named=True):
        pricing_routing, candidates, reason = _resolve_combo(
            row["model_id"], row["base_model_id"], row["routing"], row["inference_profile"], profile_models
        )
        for c in _COMBO:
            info[c].append(row[c])
        info["_pricing_routing"].append(pricing_routing)
        info["_block"].append(reason)
        for rank, cand in enumerate(candidates):
            for c in _COMBO:
                cands[c].append(row[c])
            cands["_cand"].append(cand)
            cands["_cand_rank"].append(rank)
    schema = keys.select(_COMBO).schema
    info_df = pl.DataFrame(info, schema={**schema, "_pricing_routing": pl.String, "_block": pl.String})
    cand_df = pl.DataFrame(cands, schema={**schema, "_cand": pl.String, "_cand_rank": pl.Int64})

    rows = catalog.rows
    if "context_tier" not in rows.columns:  # a catalog frame built before context tiers
        rows = rows.with_columns(
            pl.lit("standard").alias("context_tier"), pl.lit(None, pl.Int64).alias("min_input_tokens")
        )
    for c in PRICE_COLUMNS:
        if c not in rows.columns:
            rows = rows.with_columns(pl.lit(None, pl.Float64).alias(c))
    if "origin" not in rows.columns:
        rows = rows.with_columns(pl.lit("catalog").alias("origin"))
    if "unit" in rows.columns:  # per-query, per-second, per-text-unit and hourly rows do not price token calls
        rows = rows.filter(pl.col("unit").is_null() | pl.col("unit").is_in(["token", "image"]))
        rows = rows.with_columns(
            pl.when(pl.col("unit") == "image")
            .then(pl.coalesce("image_per_unit_usd", "per_unit_usd"))
            .otherwise(pl.col("image_per_unit_usd"))
            .alias("image_per_unit_usd")
        )
    else:
        rows = rows.with_columns(pl.lit("token").alias("unit"))
    if "source" not in rows.columns:
        rows = rows.with_columns(pl.lit(None, pl.String).alias("source"))
    cat = rows.select(
        pl.col("model_id").alias("_cand"),
        pl.col("region").alias("_p_region"),
        pl.col("routing").alias("_p_routing"),
        pl.col("tier").alias("_p_tier"),
        pl.col("effective_from").alias("_p_from"),
        pl.col("effective_to").alias("_p_to"),
        *[pl.col(c).alias(f"_p_{c}") for c in PRICE_COLUMNS],
        pl.col("price_id").alias("_p_id"),
        (pl.col("origin") == "override").alias("_p_override"),
        pl.col("origin").replace_strict({"override": 0, "synced": 1}, default=2, return_dtype=pl.Int8).alias("_p_rank"),
        # A model with both a per-token and a per-image row is a token model: its token row prices its calls.
        (pl.col("unit").fill_null("token") != "token").cast(pl.Int8).alias("_p_unit_rank"),
        pl.col("source").fill_null("").str.starts_with("derived").alias("_p_derived"),
        pl.col("context_tier").alias("_p_ctx"),
        pl.col("min_input_tokens").alias("_p_min"),
    )
    keyed = keys.join(info_df, on=_COMBO, how="left", nulls_equal=True)
    standard = _best_rows(keyed, cand_df, cat.filter(pl.col("_p_ctx") != "long"))
    long = _best_rows(keyed, cand_df, cat.filter(pl.col("_p_ctx") == "long")).select(
        *_KEY,
        *[pl.col(f"_p_{c}").alias(f"_l_{c}") for c in PRICE_COLUMNS],
        pl.col("_price_source").alias("_l_price_source"),
        pl.col("_price_origin").alias("_l_price_origin"),
        pl.col("_p_min").alias("_l_min"),
    )
    return keyed.join(standard, on=_KEY, how="left", nulls_equal=True).join(long, on=_KEY, how="left", nulls_equal=True)


def _lift() -> pl.Expr:
    """Rank of a matching row among the candidates, with a bare-id override lifted to the profile id's rank.

    An override row's `routing` says which routings it covers (empty = all): an override for `X` with an empty or
    `geo` routing covers `us.X` calls too, so it must beat the bundled `us.X` row; `in_region` keeps it off them.
    A row that names its routing (every Price List row: base model + region + routing) covers every id form of
    that routing in the same way.
    """
    named = pl.col("_p_override") | pl.col("_p_routing").is_not_null()
    return pl.when(named).then(pl.lit(0, pl.Int64)).otherwise(pl.col("_cand_rank"))


US_COMMERCIAL = ("us-east-1", "us-east-2", "us-west-1", "us-west-2")
FALLBACK_NOTE = " derived:region=1x any-Region row (US list price; the catalog has no {} row)"
"""Marks a call priced at a bare id's any-Region row from a Region that may cost more: GovCloud (about +20%), and
outside the US for models other than Claude (Claude costs the same in every commercial Region). The price stays
(a marked estimate beats none) and `price_origin` says `derived`."""


def _region_fallback() -> pl.Expr:
    bare = ~pl.col("_cand").str.contains(GEO_PREFIX.pattern)
    gov = pl.col("region").str.starts_with("us-gov-") & ~pl.col("_cand").str.starts_with("us-gov.")
    abroad = ~pl.col("region").is_in(US_COMMERCIAL) & bare & ~pl.col("_cand").str.starts_with("anthropic.")
    return (pl.col("_p_region") == ANY_REGION) & ~pl.col("_p_override") & (gov | abroad)


def _best_rows(keyed: pl.DataFrame, cand_df: pl.DataFrame, cat: pl.DataFrame) -> pl.DataFrame:
    """The most specific row of `cat` valid for each key (rules in docs/pricing-and-attribution.md), with tier
    derivation applied."""
    derivable = list(TIER_MULTIPLIERS)
    matches = (
        keyed.filter(pl.col("_block").is_null())
        .join(cand_df, on=_COMBO, how="inner", nulls_equal=True)
        .join(cat, on="_cand", how="inner")
        .filter(
            (pl.col("_p_from") <= pl.col("date"))
            & (pl.col("_p_to").is_null() | (pl.col("date") <= pl.col("_p_to")))
            & ((pl.col("_p_region") == pl.col("region")) | (pl.col("_p_region") == ANY_REGION))
            & (pl.col("_p_routing").is_null() | (pl.col("_p_routing") == pl.col("_pricing_routing")))
            & (
                (pl.col("_p_tier") == pl.col("_tier"))
                | ((pl.col("_p_tier") == "standard") & pl.col("_tier").is_in(derivable))
            )
        )
        .with_columns(
            _eff_rank=_lift(),
            _region_rank=(pl.col("_p_region") == ANY_REGION).cast(pl.Int8),
            _routing_rank=pl.col("_p_routing").is_null().cast(pl.Int8),
            _tier_rank=(pl.col("_p_tier") != pl.col("_tier")).cast(pl.Int8),
            _origin_rank=pl.col("_p_rank"),
        )
        .sort(
            ["_eff_rank", "_region_rank", "_routing_rank", "_tier_rank", "_p_unit_rank", "_origin_rank", "_cand_rank"]
        )
        .unique(subset=_KEY, keep="first", maintain_order=True)
    )
    mult = (
        pl.when(pl.col("_p_tier") == pl.col("_tier"))
        .then(pl.lit(1.0))
        .otherwise(pl.col("_tier").replace_strict(TIER_MULTIPLIERS, default=None, return_dtype=pl.Float64))
    )
    derived_note = pl.format(
        " derived:{}={}x standard",
        pl.col("_tier"),
        pl.col("_tier").replace_strict(
            {k: f"{v:g}" for k, v in TIER_MULTIPLIERS.items()}, default="?", return_dtype=pl.String
        ),
    )
    fallback = _region_fallback()
    best = matches.select(
        *_KEY,
        *[(pl.col(f"_p_{c}") * mult).alias(f"_p_{c}") for c in PRICE_COLUMNS],
        pl.when(pl.col("_p_tier") == pl.col("_tier"))
        .then(pl.col("_p_id"))
        .otherwise(pl.col("_p_id") + derived_note)
        .add(pl.when(fallback).then(pl.format(FALLBACK_NOTE, pl.col("region"))).otherwise(pl.lit("")))
        .alias("_price_source"),
        pl.col("_p_min"),
        pl.when(pl.col("_p_override"))
        .then(pl.lit("override"))
        .when((pl.col("_p_tier") != pl.col("_tier")) | pl.col("_p_derived") | fallback)
        .then(pl.lit("derived"))
        .otherwise(pl.lit("catalog"))
        .alias("_price_origin"),
        pl.lit(True).alias("_matched"),
    )
    return best


def _with_rates(
    base: pl.DataFrame, catalog: PriceCatalog, default_tier: str, profile_models: dict[str, str]
) -> pl.DataFrame:
    """Each call with its tier, its 5-minute cache writes, its context size and the rates of the catalog row that
    prices it (`_p_*`, the long-context row's when the prompt passes that row's threshold), looked up once per
    distinct key."""
    work = base.with_columns(_tier_expr(default_tier).alias("_tier"))
    h1 = pl.col(CACHE_WRITE_1H).fill_null(0) if CACHE_WRITE_1H in base.columns else pl.lit(0, pl.Int64)
    cw = pl.col("cache_write_input_tokens").fill_null(0)
    work = work.with_columns(
        # The 1-hour part can never exceed the total (normalize caps it); 5-minute writes are the rest.
        pl.min_horizontal(h1, cw).alias(CACHE_WRITE_1H + "__"),
    ).with_columns(
        (cw - pl.col(CACHE_WRITE_1H + "__")).alias("_cw_5m"),
        pl.sum_horizontal([pl.col(c).fill_null(0) for c in CONTEXT_TOKENS]).alias("_context_tokens"),
    )
    keys = work.select(_KEY).unique()
    resolved = _select_prices(keys, catalog, profile_models)
    work = work.join(resolved, on=_KEY, how="left", nulls_equal=True, maintain_order="left")
    # Long context: the whole call at the long row's rates when its prompt exceeds the row's threshold.
    is_long = pl.col("_l_min").is_not_null() & (pl.col("_context_tokens") > pl.col("_l_min"))
    work = work.with_columns(
        is_long.alias("_long"),
        *[
            pl.when(is_long).then(pl.col(f"_l_{c}")).otherwise(pl.col(f"_p_{c}")).alias(f"_p_{c}")
            for c in PRICE_COLUMNS
        ],
        pl.when(is_long).then(pl.col("_l_price_source")).otherwise(pl.col("_price_source")).alias("_price_source"),
        pl.when(is_long).then(pl.col("_l_price_origin")).otherwise(pl.col("_price_origin")).alias("_price_origin"),
        pl.when(is_long).then(pl.lit(True)).otherwise(pl.col("_matched")).alias("_matched"),
    )
    return work


def _bucket_costs(max_cost_per_call_usd: float | None) -> tuple[dict[str, pl.Expr], pl.Expr]:
    """Each cost column as an expression (its own token count times its own rate; images per image), and the
    reason a call lacks a price for a bucket it has tokens in (or costs more than `max_cost_per_call_usd`), null
    when it lacks none."""
    image_row = pl.col("_p_image_per_unit_usd").is_not_null()
    missing_rate: pl.Expr = pl.lit(None, dtype=pl.String)
    costs: dict[str, pl.Expr] = {}
    for tok, rate, cost, per in reversed(_BUCKETS):
        n = pl.col(CACHE_WRITE_1H + "__" if tok == CACHE_WRITE_1H else tok).fill_null(0)
        p = pl.col(f"_p_{rate}")
        # An image model's row has no token rates: its token counts (prompt text) are not billed.
        lacks = (n > 0) & p.is_null() & ~image_row
        missing_rate = (
            pl.when(lacks).then(pl.lit(f"no_{rate.removesuffix('_per_1k_usd')}_price")).otherwise(missing_rate)
        )
        costs[cost] = pl.when(n == 0).then(pl.lit(0.0)).otherwise(n.cast(pl.Float64) * p.fill_null(0.0) / per)
    costs["cache_write_cost_usd"] = costs["_cw_5m_cost"] + costs["cache_write_1h_cost_usd"]
    n_img = pl.col("image_count").fill_null(0)
    costs["image_cost_usd"] = (
        pl.when(image_row & (n_img > 0))
        .then(n_img.cast(pl.Float64) * pl.col("_p_image_per_unit_usd"))
        .otherwise(pl.lit(0.0))
    )
    if max_cost_per_call_usd is not None:
        parts_total = pl.sum_horizontal(
            [costs[c] for c in ("input_cost_usd", "output_cost_usd", "cache_read_cost_usd", "image_cost_usd")]
            + [costs["cache_write_cost_usd"]]
        )
        missing_rate = (
            pl.when(missing_rate.is_null() & (parts_total > max_cost_per_call_usd))
            .then(pl.lit(REASON_IMPLAUSIBLE_COST))
            .otherwise(missing_rate)
        )
    return costs, missing_rate


def _unpriced_reason(missing_rate: pl.Expr) -> pl.Expr:
    """Why a call is unpriced, null when it is priced: the reason its model id resolves to no price row
    (`_resolve_combo`), no catalog row for the model, none for its tier, else a bucket's missing rate or an
    implausible cost."""
    return (
        pl.when(pl.col("_block").is_not_null())
        .then(pl.col("_block"))
        .when(pl.col("_matched").is_null() & pl.col("_tier").is_in(["standard", *TIER_MULTIPLIERS]))
        .then(pl.lit(REASON_NO_PRICE))
        .when(pl.col("_matched").is_null())
        .then(pl.lit(REASON_TIER))
        .otherwise(missing_rate)
    )


def price_invocations(
    inv: pl.DataFrame,
    catalog: PriceCatalog,
    default_tier: str = "standard",
    profile_models: Mapping[str, str] | None = None,
    max_cost_per_call_usd: float | None = None,
) -> pl.DataFrame:
    """Return `inv` plus cost columns, `priced`, `price_source`, `pricing_routing`, `pricing_tier`, `unpriced_reason`.

    `profile_models` maps application inference profile ARNs to the model (or system profile) they wrap, so a
    profile copied from `us.X`/`global.X` is priced at that profile's rate; without it `base_model_id` is priced
    as an in-region call. Each cost is its own token count (null counts as 0) times its own rate; a call with
    tokens in a bucket whose rate is missing is unpriced rather than priced at another bucket's rate. A call that
    would cost more than `max_cost_per_call_usd` (`quality.max_cost_per_call_usd`) is kept unpriced with the
    reason `implausible_cost`: a corrupt count or a wrong override, never a price to charge a team.
    """
    missing = [c for c in _NEEDED if c not in inv.columns]
    if missing:
        raise ValueError(f"price_invocations: input frame lacks column(s) {', '.join(missing)}")
    base = inv.drop([c for c in OUTPUT_COLUMNS if c in inv.columns])
    work = _with_rates(base, catalog, default_tier, dict(profile_models or {}))
    costs, missing_rate = _bucket_costs(max_cost_per_call_usd)
    work = work.with_columns(_unpriced_reason(missing_rate).alias("unpriced_reason"))
    priced = pl.col("unpriced_reason").is_null()
    parts = ["input_cost_usd", "output_cost_usd", "cache_read_cost_usd", "cache_write_cost_usd", "image_cost_usd"]
    work = work.with_columns(
        [
            pl.when(priced).then(costs[c]).otherwise(pl.lit(None, dtype=pl.Float64)).alias(c)
            for c in [*parts, "cache_write_1h_cost_usd"]
        ]
    ).with_columns(
        pl.sum_horizontal(parts).alias("total_cost_usd"),
        priced.alias("priced"),
    )
    work = work.with_columns(
        pl.when(pl.col("priced")).then(pl.col("total_cost_usd")).otherwise(None).alias("total_cost_usd"),
        pl.when(pl.col("priced"))
        .then(pl.col("_price_source"))
        .when(pl.col("unpriced_reason") == REASON_PROVISIONED)
        .then(pl.lit(PROVISIONED_SOURCE))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias("price_source"),
        pl.col("_pricing_routing").alias("pricing_routing"),
        pl.col("_tier").alias("pricing_tier"),
        pl.when(pl.col("_long")).then(pl.lit("long")).otherwise(pl.lit("standard")).alias("context_tier"),
        pl.when(pl.col("priced")).then(pl.col("_price_origin")).otherwise(None).alias("price_origin"),
    )
    work = with_guardrail_cost(work)
    return work.select([*base.columns, *OUTPUT_COLUMNS])


def unprice_implausible(priced: pl.DataFrame, max_cost_per_call_usd: float) -> pl.DataFrame:
    """Calls priced above `max_cost_per_call_usd` (by any rate: catalog, override or bill) made unpriced with the
    reason `implausible_cost`, their costs null: `price_invocations` does this for catalog prices, this for a price
    set afterwards."""
    over = (pl.col("priced").fill_null(False) & (pl.col("total_cost_usd") > max_cost_per_call_usd)).fill_null(False)
    costs = [c for c in COST_COLUMNS if c in priced.columns]
    return priced.with_columns(
        *[pl.when(over).then(pl.lit(None, dtype=pl.Float64)).otherwise(pl.col(c)).alias(c) for c in costs],
        pl.when(over).then(pl.lit(False)).otherwise(pl.col("priced")).alias("priced"),
        pl.when(over)
        .then(pl.lit(REASON_IMPLAUSIBLE_COST))
        .otherwise(pl.col("unpriced_reason"))
        .alias("unpriced_reason"),
        pl.when(over).then(pl.lit(None, dtype=pl.String)).otherwise(pl.col("price_source")).alias("price_source"),
        *(
            [pl.when(over).then(pl.lit(None, dtype=pl.String)).otherwise(pl.col("price_origin")).alias("price_origin")]
            if "price_origin" in priced.columns
            else []
        ),
    )


def profile_models_from_config(attribution: config.Attribution) -> dict[str, str]:
    """Application profile ARN -> wrapped model id, from `attribution.inference_profiles` in ledger.yaml."""
    return {arn: p.model_id for arn, p in attribution.inference_profiles.items()}


def unpriced_summary(priced: pl.DataFrame, top: int = 10, include_provisioned: bool = False) -> pl.DataFrame:
    """The models behind unpriced calls, most calls first: what to add to the price overrides.

    Provisioned-throughput calls are left out by default: they are billed by the hour, so no token price
    would ever fix them, and counting them would fail the unpriced-share check for every PT customer.
    """
    df = priced.filter(~pl.col("priced"))
    if "unpriced_reason" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.String).alias("unpriced_reason"))
    if not include_provisioned:
        df = df.filter(pl.col("unpriced_reason").is_null() | (pl.col("unpriced_reason") != REASON_PROVISIONED))
    tokens = pl.sum_horizontal(
        [
            pl.col(c).fill_null(0)
            for c in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens")
        ]
    )
    return (
        df.group_by("model_id", "unpriced_reason")
        .agg(pl.len().cast(pl.Int64).alias("calls"), tokens.sum().cast(pl.Int64).alias("tokens"))
        .sort(["calls", "tokens", "model_id"], descending=[True, True, False], nulls_last=True)
        .head(top)
        .rename({"unpriced_reason": "reason"})
    )


GEO_FOR_REGION: tuple[tuple[str, str], ...] = (
    ("us-gov-", "us-gov"),
    ("us-", "us"),
    ("ca-", "us"),
    ("eu-", "eu"),
    ("ap-northeast-1", "jp"),
    ("ap-southeast-2", "au"),
    ("ap-", "apac"),
)
"""The system-profile prefix a geo call from a Region uses (to look up the catalog row a geo bill row compares to)."""


def profile_id_for(base_model_id: str, routing: str, region: str) -> str | None:
    """`global.X` for global routing, the Region's geo profile (`us.X`, `eu.X`, …) for geo, None in-region."""
    if routing == "global":
        return f"global.{base_model_id}"
    if routing == "geo":
        for head, geo in GEO_FOR_REGION:
            if region.startswith(head):
                return f"{geo}.{base_model_id}"
    return None


def catalog_rates(keys: pl.DataFrame, catalog: PriceCatalog) -> pl.DataFrame:
    """The catalog's rates for each row of `keys` (`model_id, base_model_id, routing, inference_profile, region,
    date, tier`): every price column for standard context, `long_<column>` and `long_min_input_tokens` for the
    long tier, `price_source`, `price_origin`, `pricing_routing`, and `unpriced_reason` when no row applies.
    Used by `prices show` and the bill check; prices no call."""
    k = keys.rename({"tier": "_tier"}).select(_KEY).unique(maintain_order=True)
    out = _select_prices(k, catalog, {})
    return out.select(
        *_KEY,
        *[pl.col(f"_p_{c}").alias(c) for c in PRICE_COLUMNS],
        *[pl.col(f"_l_{c}").alias(f"long_{c}") for c in PRICE_COLUMNS],
        pl.col("_l_min").alias("long_min_input_tokens"),
        pl.col("_price_source").alias("price_source"),
        pl.col("_l_price_source").alias("long_price_source"),
        pl.col("_price_origin").alias("price_origin"),
        pl.col("_pricing_routing").alias("pricing_routing"),
        # The same reason a call would get (no row for the model, none for its tier), before any token counts.
        _unpriced_reason(pl.lit(None, pl.String)).alias("unpriced_reason"),
    ).rename({"_tier": "tier"})
