"""The reviewed map from billing names to `base_model_id`: usage-type model names, Marketplace products.

A bill never names a model id. First-party rows carry a billing name inside the usage type
(`Claude4.6Sonnet`), mantle rows a model id (`openai.gpt-oss-120b`), Marketplace rows only a product name
(`Claude Haiku 4.5 (Amazon Bedrock Edition)`). The map is explicit data with a `source` per row, because a
fuzzy match that picks the wrong model produces a reconciliation that balances between two different models,
while an unmapped row produces a question (docs/formats/billing-exports.md §4.2). Rows marked `REC` were inferred from
the naming pattern and never seen in a bill; they can only ever match the exact string they list.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import polars as pl

BUNDLED_MAP = Path(__file__).parent / "data" / "billing_model_names.csv"
NAME_KINDS = ("usage_type_model", "mantle_model", "marketplace_product")
MAP_COLUMNS = ("billing_name", "name_kind", "base_model_id", "source")


class BillingNameMapError(ValueError):
    """The billing-name map file is malformed (names the file, the line and the problem)."""


@dataclass(frozen=True)
class BillingNameMap:
    """Lookups by name kind; `rows` keeps file order, so reverse lookups prefer the first (canonical) name."""

    rows: pl.DataFrame

    def lookup(self, name_kind: str, billing_name: str | None) -> str | None:
        """The `base_model_id` for an exact billing name, or None (never a near match)."""
        if billing_name is None:
            return None
        return self._index.get((name_kind, billing_name.strip()))

    def names_for(self, base_model_id: str) -> dict[str, str]:
        """The first billing name of each kind that maps to `base_model_id` (used by the sample generator)."""
        out: dict[str, str] = {}
        for name, kind, model, _ in self.rows.iter_rows():
            if model == base_model_id:
                out.setdefault(kind, name)
        return out

    @cached_property
    def _index(self) -> dict[tuple[str, str], str]:
        return {(kind, name): model for name, kind, model, _ in self.rows.iter_rows()}

    def frame(self) -> pl.DataFrame:
        """The map as a frame keyed on (`name_kind`, `billing_name`), for joins."""
        return self.rows.select("name_kind", "billing_name", "base_model_id")


def _read_map(path: Path) -> pl.DataFrame:
    try:
        df = pl.read_csv(path, schema={c: pl.String for c in MAP_COLUMNS})
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise BillingNameMapError(f"{path}: cannot read the billing-name map: {exc}") from exc
    df = df.with_columns(pl.col(c).str.strip_chars() for c in MAP_COLUMNS)
    for i, (name, kind, model, source) in enumerate(df.iter_rows(), start=2):
        where = f"{path}:{i}"
        if not name or not model:
            raise BillingNameMapError(f"{where}: billing_name and base_model_id must not be empty")
        if kind not in NAME_KINDS:
            raise BillingNameMapError(f"{where}: name_kind {kind!r} is not one of {', '.join(NAME_KINDS)}")
        if not source:
            raise BillingNameMapError(f"{where}: every mapping needs a source (where the name was seen)")
    dupes = df.group_by("name_kind", "billing_name").len().filter(pl.col("len") > 1)
    if dupes.height:
        first = dupes.row(0, named=True)
        raise BillingNameMapError(
            f"{path}: billing name {first['billing_name']!r} ({first['name_kind']}) is listed more than once"
        )
    return df


@lru_cache(maxsize=8)
def load_billing_name_map(extra: str | None = None) -> BillingNameMap:
    """The bundled map, plus `extra` (same columns) whose rows win over bundled rows with the same name.

    `extra` is for a team that sees a new billing name before the bundled map knows it.
    """
    bundled = _read_map(BUNDLED_MAP)
    if extra:
        override = _read_map(Path(extra))
        bundled = pl.concat(
            [override, bundled.join(override, on=["name_kind", "billing_name"], how="anti")], how="vertical"
        )
    return BillingNameMap(bundled)
