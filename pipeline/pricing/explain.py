"""`bedrock-ledger prices show`: what a model id costs on a day, and which row says so, in one screen.

A FinOps engineer asking "why did this call cost that" needs the rate per bucket, the row that priced it (its id
is what `priced_invocations.price_source` holds), where that row came from (bundled, synced from the Price List, an
override) and its source, the long-context tier if the model has one, and the other service tiers. The same
matcher that prices the calls answers, so the screen cannot disagree with the table.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipeline.config import LedgerConfig
from pipeline.normalize.model_ids import resolve_model_id
from pipeline.pricing.aliases import load_aliases
from pipeline.pricing.catalog import PriceCatalog, load_catalog
from pipeline.pricing.match import catalog_rates, strip_geo_prefix
from pipeline.vocabulary import SERVICE_TIERS

TIERS = SERVICE_TIERS
LABELS = {
    "input_per_1k_usd": "input",
    "output_per_1k_usd": "output",
    "cache_read_per_1k_usd": "cache read",
    "cache_write_per_1k_usd": "cache write 5m",
    "cache_write_1h_per_1k_usd": "cache write 1h",
}


def rate_per_1m(per_1k: float) -> str:
    """A token rate per 1M tokens with the digits a price list shows (`$0.035`, `$1.10`, `$15`): rates are prices,
    not amounts, so `usd()`'s rounding to cents would hide differences like $0.035 vs $0.04."""
    value = per_1k * 1000.0
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    if "." not in text:
        text += ".00"
    elif len(text.split(".")[1]) == 1:
        text += "0"
    return f"${text}"


def _rates(row: dict[str, object], prefix: str = "") -> str:
    parts = []
    for col, label in LABELS.items():
        v = row.get(prefix + col)
        if isinstance(v, float):
            parts.append(f"{label} {rate_per_1m(v)}")
    img = row.get(prefix + "image_per_unit_usd")
    if isinstance(img, float):
        parts.append(f"image ${img:g} each")
    return " · ".join(parts) or "no per-token rates"


def _row_info(catalog: PriceCatalog, price_source: str) -> tuple[str, str]:
    """(origin, source) of the catalog row a `price_source` names."""
    pid = price_source.split(" derived:")[0]
    hit = catalog.rows.filter(pl.col("price_id") == pid).head(1)
    if hit.is_empty():
        return "?", "?"
    return str(hit["origin"][0]), str(hit["source"][0])


def _bill_lines(cfg: LedgerConfig, base_model_id: str, region: str, routing: str, day: dt.date) -> list[str]:
    """What an earlier bill says this model costs (the rates `price_origin = bill` calls use), if anything."""
    from pipeline.pricing.bill_rates import usable_bill_rates

    rates = usable_bill_rates(cfg.warehouse, day, rerun=True).filter(
        (pl.col("base_model_id") == base_model_id) & (pl.col("region") == region) & (pl.col("routing") == routing)
    )
    if rates.is_empty():
        return ["  No bill has priced it yet (bill_list_rates): its calls stay unpriced until one does."]
    out = ["  Priced from the bill instead (bill_list_rates, price_origin = bill), per 1M tokens:"]
    for r in rates.sort("tier", "usage_kind").iter_rows(named=True):
        out.append(
            f"    {r['tier']} {r['usage_kind']}: {rate_per_1m(r['rate_per_1k_usd'])} "
            f"(bill:{r['usage_type']}|{r['region']}|{r['first_bill_day']})"
        )
    return out


def explain(model_id: str, region: str, day: dt.date, cfg: LedgerConfig | None = None) -> list[str]:
    """The lines `prices show` prints."""
    if cfg is not None:
        from pipeline.pricing.layers import catalog_for

        catalog = catalog_for(cfg)
    else:
        catalog = load_catalog()
    resolved = resolve_model_id(model_id)
    keys = pl.DataFrame(
        {
            "model_id": [model_id] * len(TIERS),
            "base_model_id": [resolved.base_model_id] * len(TIERS),
            "routing": [resolved.routing] * len(TIERS),
            "inference_profile": [resolved.inference_profile] * len(TIERS),
            "region": [region] * len(TIERS),
            "date": [day] * len(TIERS),
            "tier": list(TIERS),
        },
        schema={
            "model_id": pl.String,
            "base_model_id": pl.String,
            "routing": pl.String,
            "inference_profile": pl.String,
            "region": pl.String,
            "date": pl.Date,
            "tier": pl.String,
        },
    )
    rates = {r["tier"]: r for r in catalog_rates(keys, catalog).iter_rows(named=True)}
    std = rates["standard"]
    lines = [f"{model_id} called in {region} on {day} (routing {std['pricing_routing'] or resolved.routing})"]
    alias = load_aliases().get(strip_geo_prefix(model_id))
    if alias:
        lines.append(f"  id form of {alias} (pricing/data/model_aliases.csv)")
    if std["unpriced_reason"]:
        lines.append(
            f"  NOT PRICED ({std['unpriced_reason']}): no catalog row for this id, Region and day. Calls come out "
            "priced = false (never $0), or priced from an earlier bill's list rate (price_origin = bill)."
        )
        if cfg is not None and resolved.base_model_id:
            lines.extend(_bill_lines(cfg, resolved.base_model_id, region, str(std["pricing_routing"]), day))
        lines.append("  Fix: `bedrock-ledger prices sync`, or add a row to the overrides file (pricing.overrides).")
        lines.append(f"  Catalog files: {', '.join(catalog.files)}")
        return lines
    origin, source = _row_info(catalog, str(std["price_source"]))
    lines.append(f"  per 1M tokens: {_rates(std)}")
    lines.append(f"  row:    {str(std['price_source']).split(' derived:region=')[0]}")
    lines.append(f"  from:   {origin} ({'bundled CSV' if origin == 'catalog' else origin}); source: {source}")
    if "derived:region=" in str(std["price_source"]):
        lines.append(
            f"  NOTE:   no {region} row: priced at the any-Region (US list) row, and {region} may cost more "
            "(price_origin = derived). Sync the Price List or add the Region's row."
        )
    if std["long_price_source"]:
        lines.append(
            f"  above {std['long_min_input_tokens']:,} prompt tokens (input + cache), the whole call: "
            f"{_rates(std, 'long_')}"
        )
        lines.append(f"          row {std['long_price_source']}")
    for tier in TIERS[1:]:
        r = rates[tier]
        if r["unpriced_reason"]:
            lines.append(f"  {tier}: not priced")
            continue
        src = str(r["price_source"])
        how = f"derived: {src.split(' derived:')[1].split('=')[1]}" if " derived:" in src else f"row {src}"
        lines.append(f"  {tier}: {_rates(r)} ({how})")
    lines.append(f"  Catalog files: {', '.join(catalog.files)}")
    return lines
