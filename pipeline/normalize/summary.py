"""What a person sees of one day of `invocations` (counts, tokens, statuses, models), gathered while it is written.

Why: the asset's metadata and checks used to re-read the partition it had just written, a second pass over the
day (decompressing and decoding every row again) that cost about a fifth of the asset's time. Here every batch
is looked at once on its way to the Parquet writer (`SummaryAccumulator.tee`), with small aggregates per batch,
so the summary costs a few group-bys per 65K rows and no re-read. `summarize` gives the same figures from a
frame that is already written, for callers that have no stream.

Distinct request ids are counted from 64-bit hashes (8 bytes a row, 32 MB at 4M rows): the check is meant to
catch a dedup that let a repeat through, and a hash collision (about 1e-6 likely at 4M rows) could only hide
one, never invent one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import polars as pl

TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens")
ERROR_STATUSES = ("client_error", "server_error", "throttled")
BATCH_ROWS = 65_536


@dataclass
class InvocationSummary:
    """The day's figures for the `invocations` metadata and its checks."""

    rows: int
    unique_ids: int
    errors: int
    accounts: int
    regions: int
    input_tokens: int
    output_tokens: int
    negative: int
    by_status: pl.DataFrame
    top_models: pl.DataFrame


def _totals(frame: pl.DataFrame) -> pl.DataFrame:
    """Additive figures of a batch (they sum across batches)."""
    present = [c for c in TOKEN_COLUMNS if c in frame.collect_schema().names()]
    return frame.select(
        pl.len().alias("n"),
        pl.col("status").is_in(list(ERROR_STATUSES)).sum().alias("errors"),
        pl.col("input_tokens").sum().alias("input_tokens"),
        pl.col("output_tokens").sum().alias("output_tokens"),
        (pl.any_horizontal([pl.col(c) < 0 for c in present]).sum() if present else pl.lit(0)).alias("negative"),
    )


def _counts_table(counts: Counter[str | None], key: str, value: str) -> pl.DataFrame:
    """A count per key, largest first (ties by key, so the table is the same on every run)."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], "" if kv[0] is None else kv[0]))
    return pl.DataFrame(
        {key: [k for k, _ in items], value: [v for _, v in items]}, schema={key: pl.String, value: pl.UInt32}
    )


@dataclass
class SummaryAccumulator:
    """Collects an `InvocationSummary` from the batches written, one batch at a time."""

    rows: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    negative: int = 0
    accounts: set[str | None] = field(default_factory=set)
    regions: set[str | None] = field(default_factory=set)
    statuses: Counter[str | None] = field(default_factory=Counter)
    models: Counter[str | None] = field(default_factory=Counter)
    id_hashes: list[pl.Series] = field(default_factory=list)

    def observe(self, batch: pl.DataFrame) -> None:
        """Add one batch's figures."""
        if batch.height == 0:
            return
        t = _totals(batch).row(0, named=True)
        self.rows += t["n"]
        self.errors += t["errors"]
        self.input_tokens += int(t["input_tokens"] or 0)
        self.output_tokens += int(t["output_tokens"] or 0)
        self.negative += t["negative"]
        self.accounts.update(batch["account_id"].unique().to_list())
        self.regions.update(batch["region"].unique().to_list())
        self.statuses.update(dict(batch["status"].value_counts().iter_rows()))
        self.models.update(dict(batch["base_model_id"].value_counts().iter_rows()))
        self.id_hashes.append(batch["request_id"].hash())

    def tee(self, batches: Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        """The batches unchanged, each observed as it passes (wrap the stream handed to the writer)."""
        for batch in batches:
            self.observe(batch)
            yield batch

    def result(self) -> InvocationSummary:
        """The summary of everything observed."""
        unique = pl.concat(self.id_hashes).n_unique() if self.id_hashes else 0
        return InvocationSummary(
            rows=self.rows,
            unique_ids=unique,
            errors=self.errors,
            accounts=len(self.accounts - {None}),
            regions=len(self.regions - {None}),
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            negative=self.negative,
            by_status=_counts_table(self.statuses, "status", "len"),
            top_models=_counts_table(self.models, "base_model_id", "invocations"),
        )


def summarize(inv: pl.LazyFrame | pl.DataFrame) -> InvocationSummary:
    """The same summary from a whole frame (for a partition already written, or in tests), batch by batch."""
    acc = SummaryAccumulator()
    for batch in inv.lazy().collect_batches(chunk_size=BATCH_ROWS):
        acc.observe(batch)
    return acc.result()
