"""What every asset shows in the UI without its author doing anything: the column schema of its table and
checks that belong to the asset's partition.

Applied to the list of assets in `build_assets`, so an asset added later (in any `defs/` module) gets both as
long as its name is a table in `schemas.TABLES` and its checks are declared with `check_specs`:

- `dagster/column_schema`: the table's columns, types and descriptions from the data contract (`schemas.TABLES`,
  `schemas.DESCRIPTIONS`), keyed by the asset's name. The UI shows it on the asset's Overview tab; notebooks
  and other teams read the same contract.
- Check specs of a partitioned asset are given the asset's `partitions_def`, so each evaluation is recorded for
  the run's partition (the check page shows a status per day) instead of one status for the whole asset.
  Partitioned check specs are a Dagster preview; `preview_allowed` silences exactly that warning, only where
  the definitions are built.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import polars as pl
from dagster import AssetsDefinition, AssetSpec, TableColumn, TableSchema

from pipeline import schemas

COLUMN_SCHEMA = "dagster/column_schema"
_PARTITIONED_CHECK_PREVIEW = r"Specifying a partitions_def on an AssetCheckSpec"


@contextlib.contextmanager
def preview_allowed() -> Iterator[None]:
    """Silence Dagster's preview warning for partitioned check specs (and nothing else) while defining them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PARTITIONED_CHECK_PREVIEW)
        yield


def type_name(dtype: schemas.DType) -> str:
    """A column type as a reader of the Parquet files sees it (`string`, `int64`, `map<string,string>`...)."""
    if dtype == schemas.STR_MAP:
        return "map<string,string>"
    if isinstance(dtype, pl.Datetime):
        zone = f", {dtype.time_zone}" if dtype.time_zone else ""
        return f"timestamp[{dtype.time_unit}{zone}]"
    if isinstance(dtype, pl.List):
        return f"list<{type_name(dtype.inner)}>"
    return str(dtype).lower()


def column_schema(table: str) -> TableSchema | None:
    """The `dagster/column_schema` of a contract table, or None when `table` is not in `schemas.TABLES`."""
    columns = schemas.TABLES.get(table)
    if columns is None:
        return None
    words = schemas.DESCRIPTIONS.get(table, {})
    return TableSchema(
        columns=[
            TableColumn(name=name, type=type_name(dtype), description=words.get(name) or None)
            for name, dtype in columns.items()
        ]
    )


def _with_column_schema(spec: AssetSpec) -> AssetSpec:
    table_schema = column_schema(spec.key.to_user_string())
    if table_schema is None or COLUMN_SCHEMA in (spec.metadata or {}):
        return spec
    return spec.merge_attributes(metadata={COLUMN_SCHEMA: table_schema})


def _with_partitioned_checks(assets_def: AssetsDefinition) -> AssetsDefinition:
    """The same definition with its check specs partitioned like their asset (unpartitioned assets unchanged)."""
    specs = assets_def.node_check_specs_by_output_name
    partitions_defs = {key: assets_def.specs_by_key[key].partitions_def for key in assets_def.keys}
    replaced = {}
    for output_name, spec in specs.items():
        target = partitions_defs.get(spec.asset_key)
        if spec.partitions_def is None and target is not None:
            spec = spec._replace(partitions_def=target)
        replaced[output_name] = spec
    if replaced == dict(specs):
        return assets_def
    # No public API replaces check specs; this is the constructor every AssetsDefinition transform goes through.
    return AssetsDefinition.dagster_internal_init(
        **{**assets_def.get_attributes_dict(), "check_specs_by_output_name": replaced}
    )


def present(defs: Sequence[Any]) -> list[Any]:
    """Every asset with its contract column schema and partitioned checks; other definitions unchanged."""
    out = []
    with preview_allowed():
        for item in defs:
            if isinstance(item, AssetsDefinition) and item.keys:
                item = _with_partitioned_checks(item.map_asset_specs(_with_column_schema))
            out.append(item)
    return out
