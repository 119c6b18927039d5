"""Owner parts: a day's per-owner tables built a share of the owners at a time.

Callers put who they are in request metadata, so a day can have as many owners (cost center × application × user)
as calls. `chargeback` and `focus_chargeback` are built and written in parts, each the complete rows of a fixed
share of the owners chosen by a hash of the owner (`aggregates.parts`, keyed by the three parties): every owner's
rows land in exactly one part, whichever frame they come from (logged calls, bill rows, rules), so per-owner sums
and checks hold part by part, and memory holds one part, never every owner. A small day is one part.
"""

from __future__ import annotations

import polars as pl

from pipeline.aggregates import parts
from pipeline.attribution.bill_tags import PARTIES
from pipeline.vocabulary import Frame


def owners_in_part(count: int, part: int) -> pl.Expr:
    """Whether a row's owner (null parties read as `unattributed`) falls in `part` of `count` (always true with
    one part)."""
    return parts.in_part(PARTIES, count, part)


def part_count(priced: Frame, owners_per_part: int) -> int:
    """How many parts of about `owners_per_part` owners the day's logged callers make (an estimate: only the
    number of parts depends on it, never which rows go together)."""
    return parts.part_count(priced, PARTIES, owners_per_part)
