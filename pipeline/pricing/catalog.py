"""The price catalog: the bundled CSV of Bedrock on-demand prices plus the user's overrides, validated on load.

A wrong price silently multiplies into every cost figure, so the loader refuses anything doubtful (an unknown
column, a non-numeric or negative price, two rows valid for the same key on the same day) and says which file and
which line. See `pipeline/pricing/README.md` for the columns and how a row is chosen.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipeline.schemas import DType
from pipeline.vocabulary import CONTEXT_TIERS, PRICING_ROUTINGS, SERVICE_TIERS

BUNDLED_PRICES = Path(__file__).with_name("data") / "prices.csv"

REQUIRED_COLUMNS: tuple[str, ...] = (
    "model_id",
    "region",
    "routing",
    "tier",
    "effective_from",
    "effective_to",
    "input_per_1k_usd",
    "output_per_1k_usd",
    "cache_read_per_1k_usd",
    "cache_write_per_1k_usd",
    "source",
)
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "image_per_unit_usd",
    "cache_write_1h_per_1k_usd",
    "context_tier",
    "min_input_tokens",
    "unit",
    "per_unit_usd",
)
"""`image_per_unit_usd`: per generated image, for image models whose price does not depend on size or quality.
`cache_write_1h_per_1k_usd`: 1-hour cache writes. `context_tier` (`standard`, the default, or `long`) and
`min_input_tokens`: a `long` row applies to a call whose input + cache-read + cache-write tokens exceed
`min_input_tokens` (Anthropic's long-context rule). `unit` (`token`, the default; `image`, `query`, `second`,
`text_unit`, `hour`) and `per_unit_usd`: the price of one such unit, for rows not billed per token (rerank queries,
seconds of media, guardrail text units, model-unit hours). Optional so that price files written before them still
load."""

PRICE_COLUMNS: tuple[str, ...] = (
    "input_per_1k_usd",
    "output_per_1k_usd",
    "cache_read_per_1k_usd",
    "cache_write_per_1k_usd",
    "image_per_unit_usd",
    "cache_write_1h_per_1k_usd",
    "per_unit_usd",
)
TOKEN_PRICE_COLUMNS: tuple[str, ...] = PRICE_COLUMNS[:4] + ("cache_write_1h_per_1k_usd",)
UNITS: tuple[str, ...] = ("token", "image", "query", "second", "text_unit", "hour")
"""What one row prices. `token` rows carry per-1K rates; every other unit carries `per_unit_usd` (an `image` row may
use the older `image_per_unit_usd` instead). A guardrail policy is a row with `model_id = guardrail:<policy>`."""


def _source_origin(tag: str) -> str:
    """An origin, with its optional ` (note)` captured as group `tag` (named groups may not repeat in one pattern)."""
    note = rf"(?: \((?P<{tag}>.+)\))?"
    offer = r"aws-price-list:[A-Za-z][A-Za-z0-9]*@\d{4}-\d{2}-\d{2}"
    url = r"https://[A-Za-z0-9.-]+\.[A-Za-z]{2,}(?:/\S*)?"
    return rf"(?:{offer}|{url}){note}"


SOURCE_GRAMMAR = re.compile(
    rf"{_source_origin('note')}|derived:\s*\S.*?; from {_source_origin('derived_note')}|unpublished:\s*\S.*",
    re.DOTALL,
)
"""`source` := origin | `derived:<rule>; from <origin>` | `unpublished:<note>`, where origin :=
`aws-price-list:<ServiceCode>@<YYYY-MM-DD>` or a public `https://` URL, either optionally followed by one
parenthesised note: `https://… (note)`. Required of bundled and synced rows, so anyone can follow a price to where it
was published; a user's override file says it in any words."""
TIERS = SERVICE_TIERS
CLAUDE_1H_WRITE_MULTIPLIER = 2.0
"""docs/formats/pricing-rules.md §3.4: a Claude 1-hour cache write costs 2x input. Fills an empty
`cache_write_1h_per_1k_usd` on an
Anthropic row that has a (5-minute) cache-write rate, so override files written before the column still price
1-hour writes; `source` says so."""
ANY_REGION = "*"
OPEN_START = dt.date(1900, 1, 1)
"""An empty `effective_from` (allowed in overrides) means valid since forever."""

CATALOG_SCHEMA: dict[str, DType] = {
    "model_id": pl.String,
    "region": pl.String,
    "routing": pl.String,  # null = any routing
    "tier": pl.String,
    "effective_from": pl.Date,
    "effective_to": pl.Date,  # inclusive; null = open-ended
    "input_per_1k_usd": pl.Float64,
    "output_per_1k_usd": pl.Float64,
    "cache_read_per_1k_usd": pl.Float64,
    "cache_write_per_1k_usd": pl.Float64,
    "image_per_unit_usd": pl.Float64,
    "cache_write_1h_per_1k_usd": pl.Float64,
    "context_tier": pl.String,  # standard | long
    "min_input_tokens": pl.Int64,  # long rows: applies above this many input + cache tokens
    "unit": pl.String,  # token | image | query | second | text_unit | hour
    "per_unit_usd": pl.Float64,  # non-token rows: USD per unit
    "source": pl.String,
    "origin": pl.String,  # "catalog" (bundled), "synced" (Price List under the warehouse) or "override"
    "file": pl.String,
    "line": pl.Int64,
    "price_id": pl.String,  # what `price_source` says for a call priced at this row
}


class PriceCatalogError(ValueError):
    """A price file that cannot be trusted; the message names the file, the line and the reason."""


RowKey = tuple[str, str, str | None, str, str, str]
"""(model_id, region, routing, tier, context_tier, unit): at most one row per key is valid on any day."""


@dataclass(frozen=True)
class PriceRow:
    """One validated row of a price file, before overrides are applied."""

    model_id: str
    region: str
    routing: str | None
    tier: str
    effective_from: dt.date
    effective_to: dt.date | None
    prices: dict[str, float | None]
    source: str
    origin: str
    file: str
    line: int
    context_tier: str = "standard"
    min_input_tokens: int | None = None
    unit: str = "token"

    @property
    def key(self) -> RowKey:
        return (self.model_id, self.region, self.routing, self.tier, self.context_tier, self.unit)

    @property
    def price_id(self) -> str:
        """Stable name of the row: key plus start date identify it uniquely once overlaps are rejected."""
        where = self.origin if self.origin in ("catalog", "synced") else f"override:{Path(self.file).name}"
        return (
            f"{where}:{self.model_id}|{self.region}|{self.routing or '*'}|{self.tier}|"
            f"{self.effective_from.isoformat() if self.effective_from != OPEN_START else '*'}"
            f"{'|long' if self.context_tier == 'long' else ''}"
            f"{'' if self.unit == 'token' else '|' + self.unit}"
        )

    def overlaps(self, other: PriceRow) -> bool:
        return _overlap(self.effective_from, self.effective_to, other.effective_from, other.effective_to)


def _overlap(a_from: dt.date, a_to: dt.date | None, b_from: dt.date, b_to: dt.date | None) -> bool:
    a_end = a_to or dt.date.max
    b_end = b_to or dt.date.max
    return a_from <= b_end and b_from <= a_end


@dataclass
class PriceCatalog:
    """Validated price rows (bundled rows already trimmed where an override takes over), as a polars frame.

    `rows` has the columns of `CATALOG_SCHEMA`; `files` lists what was loaded, for run metadata.
    """

    rows: pl.DataFrame
    files: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.rows.height

    def models(self) -> set[str]:
        """Every model id with at least one row (for "is this model known at all" checks)."""
        return set(self.rows.get_column("model_id").to_list())


def _parse_price(raw: str, column: str) -> float | None:
    text = raw.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column} {raw!r} is not a number") from None
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{column} {raw!r} is not a finite number")
    if value < 0:
        raise ValueError(f"{column} {raw!r} is negative")
    return value


def _parse_count(raw: str, column: str) -> int | None:
    text = raw.strip()
    if not text:
        return None
    if not text.isdecimal():
        raise ValueError(f"{column} {raw!r} is not a whole number of tokens")
    return int(text)


def _parse_date(raw: str, column: str) -> dt.date | None:
    text = raw.strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{column} {raw!r} is not a date (YYYY-MM-DD)") from None


def source_problem(source: str) -> str | None:
    """Why `source` is not in the agreed form (`SOURCE_GRAMMAR`), or None when it is.

    Checked for the bundled catalog (by its test) and for synced rows (on load); a user's overrides stay free text.
    """
    match = SOURCE_GRAMMAR.fullmatch(source)
    note = next((n for n in (match.groupdict().values() if match else ()) if n is not None), None)
    if match is None or (note is not None and not _one_group(note)):
        return (
            f"source {source!r} is not aws-price-list:<ServiceCode>@<YYYY-MM-DD>, a public https:// URL (either may"
            " end in one ' (note)'), derived:<rule>; from <one of those>, or unpublished:<note>"
        )
    return None


def _one_group(note: str) -> bool:
    """`a (b); c` is one note; `a) (b` would be two parenthesised groups glued together."""
    depth = 0
    for ch in note:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def _parse_row(rec: dict[str, str], origin: str, file: str, line: int, optional_from: bool) -> PriceRow:
    model_id = rec["model_id"].strip()
    if not model_id:
        raise ValueError("model_id is empty")
    region = rec["region"].strip()
    if not region:
        raise ValueError("region is empty (use * for any region)")
    routing = rec["routing"].strip() or None
    if routing is not None and routing not in PRICING_ROUTINGS:
        raise ValueError(f"routing {routing!r} is not one of {', '.join(PRICING_ROUTINGS)} (or empty for any)")
    tier = rec["tier"].strip() or "standard"
    if tier not in TIERS:
        raise ValueError(f"tier {tier!r} is not one of {', '.join(TIERS)}")
    eff_from = _parse_date(rec["effective_from"], "effective_from")
    if eff_from is None:
        if not optional_from:
            raise ValueError("effective_from is empty")
        eff_from = OPEN_START
    eff_to = _parse_date(rec["effective_to"], "effective_to")
    if eff_to is not None and eff_from > eff_to:
        raise ValueError(f"effective_from {eff_from} is after effective_to {eff_to}")
    prices = {c: _parse_price(rec.get(c) or "", c) for c in PRICE_COLUMNS}
    if all(v is None for v in prices.values()):
        raise ValueError("row has no price at all")
    unit = _unit(rec, prices)
    context_tier = (rec.get("context_tier") or "").strip() or "standard"
    if context_tier not in CONTEXT_TIERS:
        raise ValueError(f"context_tier {context_tier!r} is not one of {', '.join(CONTEXT_TIERS)} (or empty)")
    min_input = _parse_count(rec.get("min_input_tokens") or "", "min_input_tokens")
    if context_tier == "long" and min_input is None:
        raise ValueError("a long context_tier row needs min_input_tokens (it applies above that many tokens)")
    if context_tier == "standard" and min_input is not None:
        raise ValueError("min_input_tokens is only for context_tier long (a standard row applies to every size)")
    source = (rec["source"] or "").strip()
    if origin == "synced" and (problem := source_problem(source)):
        raise ValueError(f"{problem} in a synced catalog")
    if (
        prices["cache_write_1h_per_1k_usd"] is None
        and prices["cache_write_per_1k_usd"] is not None
        and prices["input_per_1k_usd"] is not None
        and "anthropic." in model_id
    ):
        prices["cache_write_1h_per_1k_usd"] = prices["input_per_1k_usd"] * CLAUDE_1H_WRITE_MULTIPLIER
        source = f"{source}; cache_write_1h derived: 2x input (Claude 1-hour write rule)".lstrip("; ")
    return PriceRow(
        model_id=model_id,
        region=region,
        routing=routing,
        tier=tier,
        effective_from=eff_from,
        effective_to=eff_to,
        prices=prices,
        source=source,
        origin=origin,
        file=file,
        line=line,
        context_tier=context_tier,
        min_input_tokens=min_input,
        unit=unit,
    )


def _unit(rec: dict[str, str], prices: dict[str, float | None]) -> str:
    """The row's unit: as written, else `image` for a row priced only per image, else `token`; checked against
    the prices the row carries (a per-unit row has `per_unit_usd` and no per-1K rate, a token row the reverse)."""
    unit = (rec.get("unit") or "").strip()
    tokens = any(prices[c] is not None for c in TOKEN_PRICE_COLUMNS)
    if not unit:
        unit = "image" if prices["image_per_unit_usd"] is not None and not tokens else "token"
    if unit not in UNITS:
        raise ValueError(f"unit {unit!r} is not one of {', '.join(UNITS)} (or empty for token)")
    if unit == "token" and prices["per_unit_usd"] is not None:
        raise ValueError("per_unit_usd is for non-token rows: set unit (query, second, text_unit, hour, image)")
    if unit not in ("token", "image"):
        if prices["per_unit_usd"] is None:
            raise ValueError(f"a unit {unit} row needs per_unit_usd (USD per {unit})")
        if tokens or prices["image_per_unit_usd"] is not None:
            raise ValueError(f"a unit {unit} row carries per_unit_usd only, not per-1K token or image rates")
    return unit


def read_price_file(path: str | os.PathLike[str], origin: str = "override") -> list[PriceRow]:
    """Read and validate one price CSV; raise `PriceCatalogError` listing every bad line (file, line, reason).

    Lines are counted as in an editor: the header is line 1, the first data row line 2.
    """
    p = Path(path)
    name = str(p)
    if not p.is_file():
        raise PriceCatalogError(f"{name}: price file not found")
    errors: list[str] = []
    rows: list[PriceRow] = []
    with p.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise PriceCatalogError(f"{name}: line 1: file is empty (expected a header)")
        cols = [h.strip() for h in header]
        known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
        unknown = [c for c in cols if c not in known]
        missing = [c for c in REQUIRED_COLUMNS if c not in cols]
        dupes = sorted({c for c in cols if cols.count(c) > 1})
        problems = []
        if unknown:
            problems.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
        if missing:
            problems.append(f"missing column(s) {', '.join(map(repr, missing))}")
        if dupes:
            problems.append(f"duplicate column(s) {', '.join(map(repr, dupes))}")
        if problems:
            raise PriceCatalogError(
                f"{name}: line 1: bad header: {'; '.join(problems)} (expected {', '.join(REQUIRED_COLUMNS)}"
                f" and optionally {', '.join(OPTIONAL_COLUMNS)})"
            )
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(cols):
                errors.append(f"{name}: line {line}: expected {len(cols)} fields, found {len(values)}")
                continue
            rec = dict(zip(cols, values, strict=True))
            try:
                rows.append(_parse_row(rec, origin, name, line, optional_from=origin == "override"))
            except ValueError as exc:
                errors.append(f"{name}: line {line}: {exc}")
    errors.extend(_overlap_errors(rows))
    if errors:
        shown = errors[:20]
        more = f"\n  … and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise PriceCatalogError("invalid price file:\n  " + "\n  ".join(shown) + more)
    return rows


def _overlap_errors(rows: list[PriceRow]) -> list[str]:
    """Two rows with the same key valid on the same day would make the price ambiguous."""
    by_key: dict[RowKey, list[PriceRow]] = {}
    for r in rows:
        by_key.setdefault(r.key, []).append(r)
    errors = []
    for key_rows in by_key.values():
        key_rows.sort(key=lambda r: r.effective_from)
        for prev, cur in zip(key_rows, key_rows[1:], strict=False):
            if prev.overlaps(cur):
                errors.append(
                    f"{cur.file}: line {cur.line}: validity overlaps line {prev.line} for the same "
                    f"model_id/region/routing/tier/context_tier/unit ({cur.model_id}, {cur.region}, "
                    f"{cur.routing or 'any'}, {cur.tier}, {cur.context_tier}, {cur.unit})"
                )
    return errors


def _subtract(row: PriceRow, covers: list[PriceRow]) -> list[PriceRow]:
    """The parts of `row`'s validity not covered by any of `covers` (an override replaces only the days it names)."""
    pieces: list[tuple[dt.date, dt.date | None]] = [(row.effective_from, row.effective_to)]
    for c in covers:
        nxt: list[tuple[dt.date, dt.date | None]] = []
        for start, end in pieces:
            if not _overlap(start, end, c.effective_from, c.effective_to):
                nxt.append((start, end))
                continue
            if start < c.effective_from:
                nxt.append((start, c.effective_from - dt.timedelta(days=1)))
            if c.effective_to is not None and (end is None or end > c.effective_to):
                nxt.append((c.effective_to + dt.timedelta(days=1), end))
        pieces = nxt
    return [dataclasses.replace(row, effective_from=start, effective_to=end) for start, end in pieces]


def layer_rows(base: list[tuple[PriceRow, str]], upper: list[PriceRow]) -> list[tuple[PriceRow, str]]:
    """`base` (row, price_id) pairs with the days of `upper`'s rows cut out of rows of the same key, plus `upper`."""
    by_key: dict[RowKey, list[PriceRow]] = {}
    for o in upper:
        by_key.setdefault(o.key, []).append(o)
    merged: list[tuple[PriceRow, str]] = []
    for b, pid in base:
        covers = by_key.get(b.key)
        merged.extend((piece, pid) for piece in (_subtract(b, covers) if covers else [b]))
    merged.extend((o, o.price_id) for o in upper)
    return merged


def _to_frame(rows: list[PriceRow], price_ids: list[str]) -> pl.DataFrame:
    data: dict[str, list[object]] = {c: [] for c in CATALOG_SCHEMA}
    for r, pid in zip(rows, price_ids, strict=True):
        data["model_id"].append(r.model_id)
        data["region"].append(r.region)
        data["routing"].append(r.routing)
        data["tier"].append(r.tier)
        data["effective_from"].append(r.effective_from)
        data["effective_to"].append(r.effective_to)
        for c in PRICE_COLUMNS:
            data[c].append(r.prices[c])
        data["context_tier"].append(r.context_tier)
        data["min_input_tokens"].append(r.min_input_tokens)
        data["unit"].append(r.unit)
        data["source"].append(r.source)
        data["origin"].append(r.origin)
        data["file"].append(r.file)
        data["line"].append(r.line)
        data["price_id"].append(pid)
    return pl.DataFrame(data, schema=CATALOG_SCHEMA)


def load_catalog(
    overrides_path: str | os.PathLike[str] | None = None,
    *,
    bundled_path: str | os.PathLike[str] | None = None,
    synced_path: str | os.PathLike[str] | None = None,
) -> PriceCatalog:
    """Load the bundled price CSV, the synced Price List catalog if given (`pricing.sync`), and the user's overrides
    (`pricing.overrides` in ledger.yaml), with that precedence: bundled < synced < overrides.

    Raises `PriceCatalogError` for any invalid line in any file. `bundled_path` exists for tests.
    """
    bundled_file = Path(bundled_path) if bundled_path else BUNDLED_PRICES
    bundled = read_price_file(bundled_file, origin="catalog")
    files = [str(bundled_file)]
    merged = [(b, b.price_id) for b in bundled]
    if synced_path:
        merged = layer_rows(merged, read_price_file(synced_path, origin="synced"))
        files.append(str(synced_path))
    if overrides_path:
        merged = layer_rows(merged, read_price_file(overrides_path, origin="override"))
        files.append(str(overrides_path))
    frame = _to_frame([r for r, _ in merged], [pid for _, pid in merged])
    return PriceCatalog(rows=frame, files=files)
