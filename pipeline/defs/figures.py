"""Metadata for people: floats rounded to what a reader can use, nested figures flattened into plottable numbers.

Dagster shows a float metadata value with every digit (`0.013333333333333334`) and plots a numeric value across
partitions only when it is a plain number, not a JSON blob. `for_people` on an asset's body rounds the metadata of
every materialization and check result it yields; `flat_numbers` turns `{"cost_center": 0.12}` into
`share_cost_center` entries that plot; `markdown_table` shows a small frame (top models, reasons) as a table.
This is the one home of the metadata helpers every module under `defs/` uses.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec

from pipeline.text import escape_for, usd

if TYPE_CHECKING:
    import polars as pl

P = ParamSpec("P")

DECIMALS = 4
"""Four decimals: a cent of a cent in USD, a hundredth of a percent in a share."""


def rounded(metadata: Mapping[str, Any], decimals: int = DECIMALS) -> dict[str, Any]:
    """The same metadata with every float rounded (NaN and infinities left alone; other values untouched)."""
    from dagster import FloatMetadataValue, MetadataValue

    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, float) and math.isfinite(value):
            value = round(value, decimals)
        elif isinstance(value, FloatMetadataValue) and value.value is not None and math.isfinite(value.value):
            value = MetadataValue.float(round(value.value, decimals))
        out[key] = value
    return out


def flat_numbers(prefix: str, values: Mapping[str, Any], decimals: int = DECIMALS) -> dict[str, float | int]:
    """`{"a": 0.123456}` as `{f"{prefix}_a": 0.1235}`: one plottable number per entry."""
    out: dict[str, float | int] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        out[f"{prefix}_{key}"] = round(value, decimals) if isinstance(value, float) else value
    return out


def is_money(column: str) -> bool:
    """A column that holds dollars: `*_usd` in the data contract, `*Cost` in FOCUS (`BilledCost`)."""
    return column.endswith("_usd") or column.endswith("Cost")


def _cell(column: str, value: Any) -> str:
    if isinstance(value, float):
        return usd(value) if is_money(column) else f"{value:,.4f}"
    return escape_for(value, "dagster_markdown")


def markdown_table(
    df: pl.DataFrame,
    max_rows: int = 10,
    others: Sequence[str] = (),
    rest: tuple[int, Mapping[str, Any]] | None = None,
) -> str:
    """A small markdown table for asset metadata: the first `max_rows` rows (then how many more), money as
    `usd()`, other floats to four decimals, every other value escaped for Dagster's markdown (a cost center named
    `<a href=…>` or `[x](…)` is text, and a `|` can't split a cell). With `others` (the columns that add up, such
    as calls and cost), the rows past `max_rows` are one last row, "others (N)", holding their sums: a table of
    millions of users stays ten lines and its total still shows. `rest` gives that row's count and sums when
    they were tallied elsewhere (a table computed in parts, `TopTally`), for rows not in `df` at all."""
    if df.is_empty() and not (rest and rest[0]):
        return "_none_"
    more = df.height - max_rows
    tail = df.slice(max_rows) if others else df.clear()
    count = tail.height + (rest[0] if rest else 0)
    sums = {c: tail[c].sum() + (rest[1].get(c, 0) if rest else 0) for c in others if c in tail.columns}
    df = df.head(max_rows)
    header = "| " + " | ".join(escape_for(c, "dagster_markdown") for c in df.columns) + " |"
    sep = "| " + " | ".join("---" for _ in df.columns) + " |"
    rows = []
    for row in df.iter_rows():
        cells = [_cell(column, v) for column, v in zip(df.columns, row, strict=True)]
        rows.append("| " + " | ".join(cells) + " |")
    if count:
        cells = [f"others ({count:,})"] + [_cell(c, sums[c]) if c in sums else "" for c in df.columns[1:]]
        rows.append("| " + " | ".join(cells) + " |")
    elif more > 0:
        rows.append(f"\n_and {more:,} more rows_")
    return "\n".join([header, sep, *rows])


PARTITION_KEY = "partition"
"""Every check result names the day it judges: the UI plots a check's figures by evaluation time, so a backfill of
thirty days shows thirty points at the same minute; this key says which day each point is."""


def _polished(item: Any, partition: str | None = None) -> Any:
    from dagster import AssetCheckResult

    metadata = getattr(item, "metadata", None)
    if isinstance(item, AssetCheckResult):
        if partition is not None:
            metadata = {PARTITION_KEY: partition, **(metadata or {})}
        item = _with_reason(item)
    if not metadata or not hasattr(item, "_replace"):
        return item
    return item._replace(metadata=rounded(metadata))


def _with_reason(result: Any) -> Any:
    """A failed check result without a description gets its one-line reason (`pipeline.check_reasons`), so the UI,
    the CLI and alerts all say why in the same words."""
    from dagster import AssetKey

    from pipeline.check_reasons import reason

    if result.passed or result.description or result.asset_key is None or not result.check_name:
        return result
    key = result.asset_key if isinstance(result.asset_key, AssetKey) else AssetKey.from_coercible(result.asset_key)
    why = reason(key.to_user_string(), result.check_name, None, result.metadata or {})
    return result._replace(description=why)


def _partition_of(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
    """The partition key of the run, from the body's `context` argument (None when not partitioned)."""
    context = kwargs.get("context", args[0] if args else None)
    try:
        return context.partition_key if context is not None and context.has_partition_key else None
    except Exception:  # noqa: BLE001 - a context without partitions (a test's direct call) has none to give
        return None


def for_people(fn: Callable[P, Iterator[Any]]) -> Callable[P, Iterator[Any]]:
    """Decorate an asset's generator body (under `@asset`/`@multi_asset`): every result it yields gets `rounded`
    metadata, and every check result the partition it judges (`PARTITION_KEY`). Dagster reads the parameters and
    annotations through `functools.wraps`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Iterator[Any]:
        partition = _partition_of(args, kwargs)
        for item in fn(*args, **kwargs):
            yield _polished(item, partition)

    return wrapper


def judged(fn: Callable[P, Any]) -> Callable[P, Any]:
    """Decorate a check function (under `@asset_check`): its result gets `rounded` metadata and the partition it
    judges (`PARTITION_KEY`), like the check results of `for_people` bodies."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        return _polished(fn(*args, **kwargs), _partition_of(args, kwargs))

    return wrapper


class TopTally:
    """The largest keys of a table computed in parts, with one "others" row for the rest: per part, the sums of
    `sums` per `key`; the `n` largest by `by` are kept and everything else is counted and summed, so millions of
    keys never reach the metadata (a key's rows must all be in one part, as `aggregates.parts` splits them)."""

    def __init__(self, key: str, sums: Sequence[str], by: str, n: int = 10) -> None:
        self.key, self.sums, self.by, self.n = key, list(sums), by, n
        self._top: pl.DataFrame | None = None
        self._rest_count = 0
        self._rest: dict[str, Any] = dict.fromkeys(self.sums, 0)

    def add(self, part: pl.DataFrame) -> None:
        """Tally one part's rows."""
        import polars as pl

        grouped = part.group_by(self.key).agg(pl.col(c).sum() for c in self.sums)
        both = grouped if self._top is None else pl.concat([self._top, grouped])
        ranked = both.sort(self.by, descending=True, nulls_last=True)
        self._drop(ranked.slice(self.n))
        self._top = ranked.head(self.n)

    def _drop(self, rows: pl.DataFrame) -> None:
        self._rest_count += rows.height
        for c in self.sums:
            self._rest[c] += rows[c].sum() or 0

    def markdown(self) -> str:
        """The top `n` and one "others (N)" row, as `markdown_table` writes it."""
        import polars as pl

        top = self._top if self._top is not None else pl.DataFrame()
        return markdown_table(top, self.n, others=self.sums, rest=(self._rest_count, self._rest))
