"""Deduplication on `request_id` while the day streams: the first delivery of a call wins, in source order.

Why streaming: the `invocations` partition is written while the day is still being parsed, so a part's rows must
be judged as soon as the part arrives, against every row kept before it, without holding those rows. What is
held is one 64-bit hash of each kept row's `request_id` and which part it came from (the spill parts stay on disk
until the day is written): 12 bytes a row, 48 MB for 4M rows.

The hashes sit in a few sorted runs (merged as they grow, like a log-structured merge tree, up to `MAX_RUN_ROWS`
so that a merge never holds two copies of everything), so checking a part of k rows against n kept rows costs
k·log n, never a pass over everything kept. A hash match is only a candidate: the earlier part's ids are read
back from its spill and compared, so two different ids that share a hash are both kept, and a duplicate is
dropped only when the ids are equal. Candidates are rare (true
re-deliveries, and a collision about once in 10^12 pairs), so the exact comparison costs nothing measurable.

A dropped delivery that disagrees with the kept one on what the call was (`FINGERPRINT`) is a conflict: counted,
with up to ten example ids, for the `request_id_consistent` check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

HASH_SEED = 0x1ED6E2
FINGERPRINT = (
    "model_id",
    "timestamp",
    "status",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "cache_write_1h_input_tokens",
    "image_count",
)
"""What two deliveries of one `request_id` must agree on to be the same call delivered twice; a later delivery
that differs is a conflict (counted and shown by the `request_id_consistent` check; the first still wins)."""
MAX_EXAMPLES = 10
MAX_RUN_ROWS = 1 << 20
"""Runs stop merging at this size: a merge holds both inputs and the output at once (36 MB at this size)."""


@dataclass
class FirstDelivery:
    """The rows kept so far (as id hashes and the part of each) and what deduplication dropped.

    Feed it every part of the day in source order with `keep`; it returns the part's rows that are first
    deliveries. Parts must stay on disk until the last `keep`: a candidate's earlier row is read back from its part.
    """

    dropped: int = 0
    conflicts: int = 0
    examples: list[str] = field(default_factory=list)
    _parts: list[str] = field(default_factory=list)
    _runs: list[pl.DataFrame] = field(default_factory=list)

    def keep(self, frame: pl.DataFrame, part: str) -> pl.DataFrame:
        """The rows of `frame` (read from the spill part `part`, rows in file order) that are first deliveries."""
        seq = len(self._parts)
        self._parts.append(part)
        if frame.height == 0:
            return frame
        hashes = id_hashes(frame["request_id"])
        candidate = hashes.is_duplicated()
        for run in self._runs:
            candidate = candidate | _in_run(run["h"], hashes)
        if candidate.any():
            keep = self._resolve(frame, hashes, candidate)
            frame = frame.filter(keep)
            hashes = hashes.filter(keep)
        if hashes.len():
            run = pl.DataFrame({"h": hashes, "part": pl.repeat(seq, hashes.len(), dtype=pl.UInt32, eager=True)})
            self._add_run(run.sort("h"))
        return frame

    def _resolve(self, frame: pl.DataFrame, hashes: pl.Series, candidate: pl.Series) -> pl.Series:
        """Keep mask of `frame`: exact comparison of the candidates' ids with the earlier rows that share a hash."""
        positions = candidate.arg_true()
        cand_hashes = hashes.gather(positions).unique().sort()
        known = self._earlier_rows(cand_hashes)  # id -> fingerprint of every earlier kept row with such a hash
        candidates = _with_fingerprint(frame[positions])
        ids, prints = candidates["request_id"].to_list(), candidates["fp"].to_list()
        drop: list[int] = []
        for pos, rid, fp in zip(positions.to_list(), ids, prints, strict=True):
            if rid in known:
                drop.append(pos)
                self.dropped += 1
                if known[rid] != fp:
                    self.conflicts += 1
                    if len(self.examples) < MAX_EXAMPLES:
                        self.examples.append(rid)
            else:
                known[rid] = fp
        return pl.int_range(frame.height, eager=True).is_in(pl.Series(drop, dtype=pl.Int64).implode()).not_()

    def _earlier_rows(self, cand_hashes: pl.Series) -> dict[str, int]:
        """Ids and fingerprints of the kept rows of earlier parts whose hash is one of `cand_hashes` (sorted)."""
        seqs: set[int] = set()
        for run in self._runs:
            h = run["h"]
            lo = h.search_sorted(cand_hashes, side="left")
            hi = h.search_sorted(cand_hashes, side="right")
            for a, b in zip(lo.to_list(), hi.to_list(), strict=True):
                if b > a:
                    seqs.update(run["part"].slice(a, b - a).to_list())
        known: dict[str, int] = {}
        # In source order, the first row of an id is the one kept (a later one in these parts was dropped then).
        for seq in sorted(seqs):
            earlier = pl.read_ipc(self._parts[seq], columns=["request_id", *FINGERPRINT])
            picked = _with_fingerprint(earlier.filter(id_hashes(earlier["request_id"]).is_in(cand_hashes.implode())))
            for rid, fp in zip(picked["request_id"].to_list(), picked["fp"].to_list(), strict=True):
                known.setdefault(rid, fp)
        return known

    def _add_run(self, run: pl.DataFrame) -> None:
        """Add a sorted run; merge the newest runs while the last is at least half the one before it (and the
        result stays under `MAX_RUN_ROWS`), so there are few runs and every row is merged O(log n) times."""
        self._runs.append(run)
        while (
            len(self._runs) >= 2
            and self._runs[-1].height * 2 >= self._runs[-2].height
            and self._runs[-1].height + self._runs[-2].height <= MAX_RUN_ROWS
        ):
            last = self._runs.pop()
            self._runs[-1] = self._runs[-1].merge_sorted(last, key="h")


def id_hashes(ids: pl.Series) -> pl.Series:
    """The 64-bit hash of each id that the runs are sorted by (a function of its own so tests can force
    collisions)."""
    return ids.hash(HASH_SEED)


def _with_fingerprint(rows: pl.DataFrame) -> pl.DataFrame:
    """`request_id` and `fp`, the hash of what a delivery says the call was (`FINGERPRINT`)."""
    return rows.select("request_id", pl.struct(FINGERPRINT).hash(HASH_SEED).alias("fp"))


def _in_run(run: pl.Series, hashes: pl.Series) -> pl.Series:
    """Which of `hashes` occur in the sorted, non-empty `run`."""
    idx = run.search_sorted(hashes, side="left").clip(0, run.len() - 1)
    return run.gather(idx) == hashes
