"""Resolve the `modelId` a caller passed into the foundation model it runs and the routing it took.

`modelId` echoes whatever the caller sent (docs/formats/invocation-logs.md §4.7): a base id, a system inference-profile
id with a geo
prefix (`us.`, `eu.`, `global.` …), an inference-profile ARN, a foundation-model ARN, an application inference
profile ARN (opaque: resolved only through configuration), or a provisioned/custom/imported model ARN.
Pricing and the bill both depend on the base model *and* the routing, so both are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Providers seen on Bedrock; a dotted segment right before one of these is a geo prefix.
PROVIDERS = (
    "ai21",
    "amazon",
    "anthropic",
    "cohere",
    "deepseek",
    "google",
    "meta",
    "minimax",
    "mistral",
    "moonshot",
    "moonshotai",
    "nvidia",
    "openai",
    "qwen",
    "stability",
    "twelvelabs",
    "writer",
    "luma",
    "zai",
)
_GEO = re.compile(r"^(?P<geo>[a-z][a-z-]*)\.(?P<rest>(?P<provider>[a-z0-9-]+)\..+)$")
_ARN = re.compile(r"^arn:aws[a-z-]*:bedrock:(?P<region>[a-z0-9-]*):(?P<account>\d*):(?P<type>[a-z-]+)/(?P<id>.+)$")


@dataclass(frozen=True)
class ResolvedModel:
    """What a logged `modelId` means for pricing and grouping."""

    base_model_id: str | None
    routing: str  # in_region | geo | global | application_profile | provisioned
    inference_profile: str | None
    geo: str | None = None


def split_geo(model_id: str) -> tuple[str | None, str]:
    """Split `us.anthropic.x` into (`us`, `anthropic.x`); ids without a geo prefix return (None, id)."""
    m = _GEO.match(model_id)
    if m and m.group("geo") not in PROVIDERS and m.group("provider") in PROVIDERS:
        return m.group("geo"), m.group("rest")
    return None, model_id


@lru_cache(maxsize=65536)
def resolve_model_id(model_id: str, app_profiles: tuple[tuple[str, str], ...] = ()) -> ResolvedModel:
    """Resolve a logged `modelId`.

    `app_profiles` maps application inference profile ARNs to the model id they wrap (from config); it is a
    tuple of pairs so the result can be cached (a day has millions of calls but few distinct ids).
    """
    model_id = model_id.strip()
    arn = _ARN.match(model_id)
    if arn:
        kind, ident = arn.group("type"), arn.group("id")
        if kind == "foundation-model":
            return _from_plain(ident)
        if kind == "inference-profile":
            resolved = _from_plain(ident)
            return ResolvedModel(resolved.base_model_id, resolved.routing, ident, resolved.geo)
        if kind == "application-inference-profile":
            wrapped = dict(app_profiles).get(model_id)
            if wrapped is None:
                return ResolvedModel(None, "application_profile", model_id)
            inner = resolve_model_id(wrapped)
            return ResolvedModel(inner.base_model_id, "application_profile", model_id, inner.geo)
        if kind in ("provisioned-model", "custom-model-deployment"):
            return ResolvedModel(None, "provisioned", model_id)
        # custom-model / imported-model ARNs: on-demand custom models are priced by override on the ARN itself.
        return ResolvedModel(model_id, "in_region", None)
    return _from_plain(model_id)


def _from_plain(model_id: str) -> ResolvedModel:
    geo, base = split_geo(model_id)
    if geo is None:
        return ResolvedModel(base, "in_region", None)
    routing = "global" if geo == "global" else "geo"
    return ResolvedModel(base, routing, model_id, geo)
