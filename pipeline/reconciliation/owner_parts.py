"""Owner parts: a day's per-owner tables built a share of the owners at a time.

Callers put who they are in request metadata, so a day can have as many owners (cost center × application × user)
as calls. `chargeback` and `focus_chargeback` are built and written in parts, each the complete rows of a fixed
share of the owners chosen by a hash of the owner: every owner's rows land in exactly one part, whichever frame
they come from (logged calls, bill rows, rules), so per-owner sums and checks hold part by part, and memory holds
one part, never every owner. A small day is one part.
"""

from __future__ import annotations

import polars as pl

from pipeline import schemas
from pipeline.attribution.bill_tags import PARTIES
from pipeline.vocabulary import Frame, as_lazy


def owner_hash() -> pl.Expr:
    """A fixed hash of a row's owner (cost center, application, user; null read as `unattributed`)."""
    return pl.struct([pl.col(p).fill_null(schemas.UNATTRIBUTED) for p in PARTIES]).hash(seed=0)


def owners_in_part(parts: int, part: int) -> pl.Expr:
    """Whether a row's owner falls in `part` of `parts` (always true with one part)."""
    if parts == 1:
        return pl.lit(True)
    return (owner_hash() % parts) == part


def part_count(priced: Frame, owners_per_part: int) -> int:
    """How many parts of about `owners_per_part` owners the day's logged callers make (HyperLogLog estimate: only
    the number of parts depends on it, never which rows are written)."""
    owners = as_lazy(priced).select(owner_hash().approx_n_unique()).collect(engine="streaming").item()
    return max(1, -(-int(owners or 0) // max(1, owners_per_part)))
