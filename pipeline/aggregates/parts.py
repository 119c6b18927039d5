"""A day's per-caller tables computed a part at a time, so memory follows the part, not the number of callers.

`userId` and `applicationId` come from callers: a consumer SaaS puts its end users' ids in request metadata, so a
day can have as many users or applications as calls. A table whose grain includes one of them (per user, per
application) is computed over a fixed share of those keys at a time: rows are put in a part by a fixed hash of
the key, so every group of the table is wholly in one part and the parts, written one after another, are the
table. A day with few keys is one part and pays nothing for it; a part's filter costs one more read of the key
column per part (CPU, not memory).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import polars as pl

from pipeline import schemas
from pipeline.vocabulary import Frame, as_lazy

KEYS_PER_PART = 100_000
"""Distinct keys (users, applications) a part holds, about: at a million a day, ten parts."""


def part_count(frame: Frame, keys: Sequence[str], keys_per_part: int = KEYS_PER_PART) -> int:
    """How many parts `frame` needs for about `keys_per_part` distinct `keys` each (HyperLogLog estimate: only the
    number of parts depends on it, never which rows go together)."""
    estimate = as_lazy(frame).select(_key(keys).hash(seed=0).approx_n_unique()).collect(engine="streaming").item()
    return max(1, -(-int(estimate or 0) // max(1, keys_per_part)))


def in_part(keys: Sequence[str], parts: int, part: int) -> pl.Expr:
    """Whether a row falls in `part` of `parts` by a fixed hash of its `keys`. A missing key is hashed as
    `unattributed`, the value every per-caller table gives it, so a call without a user and one whose user is
    literally `unattributed` (one group in the table) are in the same part."""
    if parts == 1:
        return pl.lit(True)
    return (_key(keys).hash(seed=0) % parts) == part


def by_parts(
    frame: Frame,
    keys: Sequence[str],
    build: Callable[[pl.LazyFrame], pl.DataFrame],
    keys_per_part: int = KEYS_PER_PART,
) -> Iterator[pl.DataFrame]:
    """`build` over each part of `frame` (split by `keys`), in turn: the parts of one table, for
    `warehouse.write_partition` to write as they come. One part when the day has few keys."""
    lazy = as_lazy(frame)
    parts = part_count(lazy, keys, keys_per_part)
    for part in range(parts):
        yield build(lazy if parts == 1 else lazy.filter(in_part(keys, parts, part)))


def _key(keys: Sequence[str]) -> pl.Expr:
    filled = [pl.col(k).fill_null(schemas.UNATTRIBUTED) for k in keys]
    return pl.struct(filled) if len(filled) > 1 else filled[0]
