"""Prices from AWS's own Price List: read the Bedrock products, map them to catalog rows, merge them into a catalog.

The Price List names products by display name and usage type, never by model id, so a product is mapped the way a
bill row is: the usage-type grammar (`pipeline.billing.usage_types`) gives region, token kind, routing, tier and a
billing model name, and the reviewed billing-name map (`billing_model_names.csv`) turns that name into a
`base_model_id`. A product that does not map is listed with its reason, never guessed. Synced rows key on base
model + region + routing (+ tier, context tier, unit); the matcher reaches them from every id form of that model.

The merge keeps history: a changed price closes the open row (`effective_to` = the day before the new price) and
opens a new one; a product whose price did not change changes nothing; rows from other sources are never deleted.
Rows are written back as they were read, so a sync changes exactly the lines it has to (see docs/pricing.md).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.billing.model_names import BillingNameMap, load_billing_name_map
from pipeline.billing.usage_types import parse_usage_type
from pipeline.pricing.catalog import (
    OPTIONAL_COLUMNS,
    PRICE_COLUMNS,
    REQUIRED_COLUMNS,
    PriceCatalogError,
    PriceRow,
    RowKey,
    _overlap_errors,
    _parse_row,
)

SERVICE_CODES: tuple[str, ...] = ("AmazonBedrock", "AmazonBedrockFoundationModels", "AmazonBedrockService")
"""The Price List offers that carry Bedrock prices: first-party models, Marketplace-sold models, and the service's
own features (guardrails and the like)."""
SOURCE_PREFIX = "aws-price-list:"
KIND_COLUMNS: dict[str, str] = {
    "input": "input_per_1k_usd",
    "output": "output_per_1k_usd",
    "cache_read": "cache_read_per_1k_usd",
    "cache_write": "cache_write_per_1k_usd",
    "cache_write_1h": "cache_write_1h_per_1k_usd",
}
GUARDRAIL_POLICIES: dict[str, str] = {
    "contentpolicy": "content",
    "deniedtopicpolicy": "denied_topic",
    "topicpolicy": "denied_topic",
    "wordpolicy": "word",
    "sensitiveinformationpolicy": "sensitive_information",
    "contextualgroundingpolicy": "contextual_grounding",
    "automatedreasoningpolicy": "automated_reasoning",
}
"""Guardrail policy words in a usage type -> the policy in `guardrail:<policy>` catalog ids."""
_REL_TOL = 1e-9


class PriceListError(RuntimeError):
    """The Price List could not be read (names the service code and the cause)."""


@dataclass(frozen=True)
class Offer:
    """One priced dimension of one Price List product, as AWS publishes it."""

    service_code: str
    sku: str
    usage_type: str
    region: str | None
    product_name: str | None  # `servicename` (Marketplace products carry the model only here)
    unit: str
    usd: float
    description: str
    publication: str  # YYYY-MM-DD of the offer's `publicationDate`
    effective: dt.date | None  # the OnDemand term's `effectiveDate`


@dataclass(frozen=True)
class Unmapped:
    """A product (or one of its prices) that did not become a catalog row, and why."""

    service_code: str
    usage_type: str
    region: str | None
    product_name: str | None
    reason: str


@dataclass
class Mapped:
    """The catalog rows a Price List read gives (as CSV records), and what did not map."""

    records: list[dict[str, str]] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    offers: int = 0


@dataclass
class MergeResult:
    """A catalog after a merge: its CSV header and records, and which keys opened, changed or stayed the same."""

    header: list[str]
    records: list[dict[str, str]]
    opened: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def touched(self) -> int:
        return len(self.opened) + len(self.changed)


# --- reading the Price List -----------------------------------------------------------------------------------


def fetch_products(
    service_codes: Iterable[str] = SERVICE_CODES, endpoint_region: str = "us-east-1", client: Any = None
) -> Iterator[tuple[str, str]]:
    """(service code, product JSON string) for every product of each offer, page by page (`GetProducts`).

    The endpoint is AWS's (`pricing.endpoint_region`) unless `AWS_ENDPOINT_URL_PRICING` or `AWS_ENDPOINT_URL` points
    elsewhere (a test fake). Credentials come from the standard chain; `pricing:GetProducts` is all it needs.
    """
    if client is None:
        from pipeline import aws

        client = aws.client("pricing", region=endpoint_region)
    for code in service_codes:
        try:
            for page in client.get_paginator("get_products").paginate(ServiceCode=code, FormatVersion="aws_v1"):
                for item in page.get("PriceList", []):
                    yield code, item
        except Exception as exc:  # botocore raises many kinds; the person needs the offer and the cause
            raise PriceListError(
                f"Price List offer {code}: {type(exc).__name__}: {exc} (check credentials allow pricing:GetProducts"
                f" and that the endpoint Region is us-east-1 or ap-south-1)"
            ) from exc


def _date(value: Any) -> dt.date | None:
    text = str(value or "")[:10]
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def parse_products(products: Iterable[tuple[str, str | Mapping[str, Any]]]) -> Iterator[Offer | Unmapped]:
    """Each product's OnDemand price dimensions as `Offer`s; a product that cannot be read comes back `Unmapped`.

    Shape (Price List `aws_v1`): `{"product": {"sku", "attributes": {"usagetype", "regionCode", "servicename",
    ...}}, "terms": {"OnDemand": {<term>: {"effectiveDate", "priceDimensions": {<dim>: {"unit", "description",
    "pricePerUnit": {"USD": "0.0000600000"}}}}}}, "publicationDate": ...}`.
    """
    for code, raw in products:
        try:
            doc = json.loads(raw) if isinstance(raw, str | bytes) else dict(raw)
            attrs = doc["product"]["attributes"]
        except (ValueError, KeyError, TypeError) as exc:
            yield Unmapped(code, "", None, None, f"unreadable product ({type(exc).__name__}: {exc})")
            continue
        usage_type = str(attrs.get("usagetype") or "")
        region = attrs.get("regionCode") or None
        name = attrs.get("servicename") or attrs.get("model") or None
        published = _date(doc.get("publicationDate"))
        publication = published.isoformat() if published else ""
        terms = (doc.get("terms") or {}).get("OnDemand") or {}
        if not terms:
            yield Unmapped(code, usage_type, region, name, "no OnDemand term (reserved or commitment pricing only)")
            continue
        for term in terms.values():
            for dim in (term.get("priceDimensions") or {}).values():
                text = (dim.get("pricePerUnit") or {}).get("USD")
                try:
                    usd = float(str(text))
                except (TypeError, ValueError):
                    yield Unmapped(code, usage_type, region, name, f"price {text!r} is not a USD number")
                    continue
                if math.isnan(usd) or math.isinf(usd) or usd < 0:
                    yield Unmapped(code, usage_type, region, name, f"price {text!r} is not a usable USD rate")
                    continue
                yield Offer(
                    service_code=code,
                    sku=str(doc["product"].get("sku") or term.get("sku") or ""),
                    usage_type=usage_type,
                    region=region,
                    product_name=name,
                    unit=str(dim.get("unit") or ""),
                    usd=usd,
                    description=str(dim.get("description") or ""),
                    publication=publication,
                    effective=_date(term.get("effectiveDate")),
                )


# --- mapping products to catalog rows -------------------------------------------------------------------------


def _per_1k_tokens(offer: Offer, grammar: str) -> float | None:
    """The offer's price per 1,000 tokens, or None when its unit is not a token count we know."""
    unit = offer.unit.strip().lower()
    if unit in ("1k tokens", "1k token", "thousand tokens"):
        return offer.usd
    if unit in ("1m tokens", "1m token", "million tokens"):
        return offer.usd / 1000.0
    if unit == "units" and grammar == "marketplace":  # Marketplace token dimensions are priced per 1M tokens
        return offer.usd / 1000.0
    return None


def _per_unit(offer: Offer) -> float:
    """A non-token price per one unit: `1K …` units are divided down."""
    unit = offer.unit.strip().lower()
    return offer.usd / 1000.0 if unit.startswith(("1k ", "1k-", "thousand ")) else offer.usd


def _guardrail_policy(usage_type: str) -> str | None:
    squashed = usage_type.lower().replace("-", "").replace("_", "")
    for word, policy in GUARDRAIL_POLICIES.items():
        if word in squashed:
            return policy
    return None


def _model_for(offer: Offer, grammar: str, model_name: str | None, names: BillingNameMap) -> str | None:
    if grammar == "first_party":
        return names.lookup("usage_type_model", model_name)
    if grammar == "mantle":
        return names.lookup("mantle_model", model_name)
    if grammar == "marketplace":
        return names.lookup("marketplace_product", offer.product_name)
    return None


def _rerank_name(usage_type: str) -> str | None:
    """The billing model name of a rerank usage type (`USW2-AmazonRerank-v1-search-units` -> `AmazonRerank-v1`)."""
    lower = usage_type.lower()
    for marker in ("-search-units", "-search_units", "-searchunits", "_search_units"):
        cut = lower.find(marker)
        if cut > 0:
            head = usage_type[:cut]
            return head.split("-", 1)[1] if "-" in head else None
    return None


def map_offers(
    offers: Iterable[Offer | Unmapped],
    names: BillingNameMap | None = None,
    long_thresholds: Mapping[str, int] | None = None,
) -> Mapped:
    """Catalog rows (CSV records keyed base model + region + routing + tier + context tier + unit) from offers.

    `long_thresholds` gives the prompt size above which a model's long-context rate applies (the Price List prices
    the long tier but does not say where it starts); a long-context price for a model without one is listed.
    Two different prices for the same row and column (image sizes, qualities) are listed, never picked from.
    """
    names = names or load_billing_name_map()
    thresholds = dict(long_thresholds or {})
    out = Mapped()
    cells: dict[RowKey, dict[str, list[Offer]]] = {}
    for offer in offers:
        if isinstance(offer, Unmapped):
            out.unmapped.append(offer)
            continue
        out.offers += 1

        def skip(reason: str, o: Offer = offer) -> None:
            out.unmapped.append(Unmapped(o.service_code, o.usage_type, o.region, o.product_name, reason))

        if offer.usd == 0:
            skip("list price 0: never used as a rate")
            continue
        parsed = parse_usage_type(offer.usage_type)
        region = offer.region or parsed.region
        if not region:
            skip("no region (neither regionCode nor a known usage-type prefix)")
            continue
        if parsed.region and offer.region and parsed.region != offer.region:
            skip(f"usage-type prefix says {parsed.region}, regionCode says {offer.region}")
            continue
        lower = offer.usage_type.lower()
        policy = _guardrail_policy(offer.usage_type) if "polic" in lower else None
        rerank = _rerank_name(offer.usage_type)
        if policy:
            key: RowKey = (f"guardrail:{policy}", region, None, "standard", "standard", "text_unit")
            cells.setdefault(key, {}).setdefault("per_unit_usd", []).append(offer)
            continue
        if rerank:
            model = names.lookup("usage_type_model", rerank)
            if not model:
                skip(f"rerank model name {rerank!r} is not in billing_model_names.csv")
                continue
            key = (model, region, None, "standard", "standard", "query")
            cells.setdefault(key, {}).setdefault("per_unit_usd", []).append(offer)
            continue
        kind = parsed.usage_kind
        if kind == "provisioned":
            skip("Provisioned Throughput: billed per model-unit hour and commitment, not a per-call price")
            continue
        if parsed.tier in ("reserved", "custom_model"):
            skip(f"{parsed.tier} tier: not an on-demand list rate")
            continue
        if kind not in KIND_COLUMNS and kind != "image":
            skip(parsed.note or f"usage kind {kind}: not priced per call")
            continue
        model = _model_for(offer, parsed.grammar, parsed.model_name, names)
        if not model:
            what = offer.product_name if parsed.grammar == "marketplace" else parsed.model_name
            skip(f"billing name {what!r} ({parsed.grammar}) is not in billing_model_names.csv")
            continue
        if parsed.context_tier == "long" and model not in thresholds:
            skip(f"long-context price for {model}, whose threshold (prompt tokens) the catalog does not know")
            continue
        if kind == "image" and parsed.grammar != "first_party":
            skip("per-image Marketplace dimension (input images a caller sends): the logs do not count them")
            continue
        routings: tuple[str, ...] = ("global",) if parsed.routing == "global" else ("in_region", "geo")
        for routing in routings:
            if kind == "image":
                key = (model, region, routing, parsed.tier, "standard", "image")
                cells.setdefault(key, {}).setdefault("per_unit_usd", []).append(offer)
                continue
            rate = _per_1k_tokens(offer, parsed.grammar)
            if rate is None:
                skip(f"unit {offer.unit!r} is not a token count this sync knows")
                break
            key = (model, region, routing, parsed.tier, parsed.context_tier, "token")
            cells.setdefault(key, {}).setdefault(KIND_COLUMNS[kind], []).append(offer)
    for key, columns in sorted(cells.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        record = _record(key, columns, thresholds, out)
        if record is not None:
            out.records.append(record)
    return out


def _record(
    key: RowKey, columns: dict[str, list[Offer]], thresholds: Mapping[str, int], out: Mapped
) -> dict[str, str] | None:
    model, region, routing, tier, context_tier, unit = key
    rec = {c: "" for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)}
    rec.update(model_id=model, region=region, routing=routing or "", tier=tier, context_tier=context_tier)
    rec["unit"] = unit
    every: list[Offer] = []
    for column, offers in columns.items():
        if unit == "token":
            values = {round(_per_1k_tokens(o, parse_usage_type(o.usage_type).grammar) or 0.0, 15) for o in offers}
        else:
            values = {round(_per_unit(o), 15) for o in offers}
        if len(values) > 1:
            for o in offers:
                out.unmapped.append(
                    Unmapped(
                        o.service_code,
                        o.usage_type,
                        o.region,
                        o.product_name,
                        f"{len(values)} different prices for {model} {region} {column} (size, quality or another "
                        "dimension the logs do not show)",
                    )
                )
            return None
        rec[column] = _fmt(values.pop())
        every.extend(offers)
    if context_tier == "long":
        rec["min_input_tokens"] = str(thresholds[model])
    latest = max(every, key=lambda o: (o.publication, o.service_code))
    effective = max((o.effective for o in every if o.effective), default=None)
    rec["effective_from"] = (effective or dt.date.today()).isoformat()
    # An offer without a publicationDate is dated by its term's effective date, so the source keeps its
    # `aws-price-list:<serviceCode>@<YYYY-MM-DD>` form (pipeline/pricing/README.md) and a re-sync reads the same.
    rec["source"] = f"{SOURCE_PREFIX}{latest.service_code}@{latest.publication or rec['effective_from']}"
    return rec


def _fmt(value: float) -> str:
    """A rate as a plain decimal (`0.0000825`, never `8.25e-05`), like the rest of the catalog."""
    text = f"{value:.15f}".rstrip("0").rstrip(".")
    return text or "0"


# --- merging into a catalog -----------------------------------------------------------------------------------


def read_records(path: str | os.PathLike[str]) -> tuple[list[str], list[dict[str, str]]]:
    """A price CSV's header and records as written (strings), validated by the catalog's own parser."""
    p = Path(path)
    if not p.is_file():
        return [*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS], []
    with p.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in reader.fieldnames or []]
        records = [{k.strip(): (v or "") for k, v in r.items() if k is not None} for r in reader]
    _rows(records, str(p))
    return header, records


def _rows(records: list[dict[str, str]], name: str) -> list[PriceRow]:
    rows, errors = [], []
    for i, rec in enumerate(records, start=2):
        try:
            rows.append(_parse_row(rec, "catalog", name, i, optional_from=True))
        except ValueError as exc:
            errors.append(f"{name}: line {i}: {exc}")
    errors.extend(_overlap_errors(rows))
    if errors:
        raise PriceCatalogError("invalid price file:\n  " + "\n  ".join(errors[:20]))
    return rows


def _same_prices(a: PriceRow, b: PriceRow) -> bool:
    for c in PRICE_COLUMNS:
        x, y = a.prices[c], b.prices[c]
        if (x is None) != (y is None):
            # The catalog fills a Claude 1-hour write rate on load; an empty synced column is not a change.
            if c == "cache_write_1h_per_1k_usd":
                continue
            return False
        if x is not None and y is not None and not math.isclose(x, y, rel_tol=_REL_TOL, abs_tol=1e-15):
            return False
    return a.min_input_tokens == b.min_input_tokens


def merge_records(header: list[str], existing: list[dict[str, str]], fetched: list[dict[str, str]]) -> MergeResult:
    """Merge fetched rows into a catalog's records, keeping history and every other row as it was.

    Per key: no row yet -> the fetched row opens from its effective date; the latest row has the same prices ->
    nothing changes; otherwise the latest row is closed the day before the new price starts (at the earliest the
    day after the old one started) and the fetched row opens. Idempotent: merging the same rows again changes nothing.
    """
    cols = list(header) + [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c not in header]
    records = [dict(r) for r in existing]
    rows = _rows(records, "catalog")
    latest: dict[RowKey, int] = {}
    for i, row in enumerate(rows):
        j = latest.get(row.key)
        if j is None or rows[j].effective_from < row.effective_from:
            latest[row.key] = i
    result = MergeResult(header=cols, records=records)
    added: list[dict[str, str]] = []
    for rec in fetched:
        new = _parse_row(rec, "synced", "price list", 0, optional_from=False)
        label = f"{new.model_id}|{new.region}|{new.routing or '*'}|{new.tier}|{new.context_tier}|{new.unit}"
        found = latest.get(new.key)
        if found is None:
            added.append(rec)
            result.opened.append(label)
            continue
        i = found
        old = rows[i]
        if _same_prices(old, new):
            result.unchanged += 1
            continue
        start = max(new.effective_from, old.effective_from + dt.timedelta(days=1))
        if old.effective_to is not None:
            start = max(start, old.effective_to + dt.timedelta(days=1))
        else:
            records[i]["effective_to"] = (start - dt.timedelta(days=1)).isoformat()
            rows[i] = dataclasses.replace(old, effective_to=start - dt.timedelta(days=1))
            result.closed.append(f"{label} from {old.effective_from}")
        added.append({**rec, "effective_from": start.isoformat()})
        result.changed.append(label)
    result.records = records + added
    return result


def write_records(path: str | os.PathLike[str], header: list[str], records: list[dict[str, str]]) -> None:
    """Write a price CSV atomically (a reader never sees half a file)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for rec in records:
            writer.writerow({c: rec.get(c, "") for c in header})
    os.replace(tmp, p)


def long_context_thresholds(records: Iterable[PriceRow]) -> dict[str, int]:
    """Per model id (and its bare form), the `min_input_tokens` of its long-context rows in a catalog."""
    from pipeline.normalize.model_ids import split_geo

    out: dict[str, int] = {}
    for r in records:
        if r.context_tier == "long" and r.min_input_tokens is not None:
            out.setdefault(r.model_id, r.min_input_tokens)
            out.setdefault(split_geo(r.model_id)[1], r.min_input_tokens)
    return out


@dataclass
class SyncReport:
    """What one sync did: the merge, what did not map, and where the catalog was written."""

    out: str
    merge: MergeResult
    unmapped: list[Unmapped]
    offers: int


def sync_catalog(
    out: str | os.PathLike[str],
    products: Iterable[tuple[str, str | Mapping[str, Any]]] | None = None,
    endpoint_region: str = "us-east-1",
    names: BillingNameMap | None = None,
) -> SyncReport:
    """Read the Price List (or `products`), map it, merge it into the price CSV at `out` and write it back.

    `out` may not exist yet (a fresh synced catalog under the warehouse). Long-context thresholds come from the
    bundled catalog and from `out` itself.
    """
    from pipeline.pricing.catalog import BUNDLED_PRICES, read_price_file

    header, existing = read_records(out)
    known = read_price_file(BUNDLED_PRICES, origin="catalog") + _rows(existing, str(out))
    mapped = map_offers(
        parse_products(products if products is not None else fetch_products(endpoint_region=endpoint_region)),
        names,
        long_context_thresholds(known),
    )
    merge = merge_records(header, existing, mapped.records)
    if merge.touched or not Path(out).is_file():
        write_records(out, merge.header, merge.records)
    return SyncReport(out=str(out), merge=merge, unmapped=mapped.unmapped, offers=mapped.offers)
