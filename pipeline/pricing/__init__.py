"""Pricing: the bundled Bedrock price catalog (plus user overrides) and the per-invocation cost engine."""

from pipeline.pricing.catalog import PriceCatalog, PriceCatalogError, load_catalog
from pipeline.pricing.match import price_invocations, profile_models_from_config, unpriced_summary

__all__ = [
    "PriceCatalog",
    "PriceCatalogError",
    "load_catalog",
    "price_invocations",
    "profile_models_from_config",
    "unpriced_summary",
]
