"""Write a day's table and describe it, one way for every asset.

Every table asset ends the same: its frame goes to the warehouse partition and its materialization carries the
row count, the partition's path and the asset's own figures (totals, shares, small tables), rounded for people
(`figures.rounded`). Before this helper each module wrote that block itself and only half of them rounded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dagster import MaterializeResult, MetadataValue

from pipeline import warehouse
from pipeline.defs.figures import rounded

if TYPE_CHECKING:
    import polars as pl


def described(table: str, rows: int, path: str, figures: Mapping[str, Any] | None = None) -> MaterializeResult:
    """The materialization of `table` already written to `path`: row count, path, then `figures`, rounded."""
    metadata = {"dagster/row_count": rows, "path": MetadataValue.path(path), **(figures or {})}
    return MaterializeResult(asset_key=table, metadata=rounded(metadata))


def publish(
    df: pl.DataFrame, wh: str, table: str, day: dt.date, figures: Mapping[str, Any] | None = None
) -> MaterializeResult:
    """Write `df` as `table`'s partition for `day` in warehouse `wh` and describe it (`described`)."""
    path = warehouse.write_partition(df, wh, table, day)
    return described(table, df.height, path, figures)
