"""Streaming deduplication (`pipeline.normalize.first_delivery`) against the plain rule: the first delivery of a
request id, in part order then row order, is kept; later ones are dropped, and counted as conflicts when they
disagree with it."""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest

from pipeline import schemas
from pipeline.normalize import first_delivery
from pipeline.normalize.first_delivery import FirstDelivery


def _part(tmp_path: Path, seq: int, ids: list[str], tokens: list[int]) -> tuple[pl.DataFrame, str]:
    """A spill part in the contract's columns: these ids, these input tokens, the rest null."""
    given = {"request_id": pl.Series(ids, dtype=pl.String), "input_tokens": pl.Series(tokens, dtype=pl.Int64)}
    frame = pl.DataFrame(
        [given.get(c, pl.Series(c, [None] * len(ids), dtype=t)).alias(c) for c, t in schemas.INVOCATIONS.items()]
    )
    path = str(tmp_path / f"part-{seq:04d}.arrow")
    frame.write_ipc(path)
    return frame, path


def _reference(parts: list[tuple[list[str], list[int]]]) -> tuple[list[str], int, int]:
    seen: dict[str, int] = {}
    kept: list[str] = []
    dropped = conflicts = 0
    for ids, tokens in parts:
        for rid, tok in zip(ids, tokens, strict=True):
            if rid in seen:
                dropped += 1
                conflicts += seen[rid] != tok
            else:
                seen[rid] = tok
                kept.append(rid)
    return kept, dropped, conflicts


@pytest.mark.parametrize("collide", [False, True], ids=["real-hashes", "every-hash-collides"])
def test_matches_the_plain_rule_over_many_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collide: bool) -> None:
    if collide:  # every id shares one hash: only the exact comparison of ids can tell them apart
        monkeypatch.setattr(first_delivery, "id_hashes", lambda ids: pl.Series([7] * ids.len(), dtype=pl.UInt64))
    monkeypatch.setattr(first_delivery, "MAX_RUN_ROWS", 60)  # runs that merge, and runs that stop merging
    rng = random.Random(5)
    pool = [f"req-{i}" for i in range(300)]
    parts = []
    for _ in range(40):  # enough parts for several merges of the sorted runs
        ids = [rng.choice(pool) if rng.random() < 0.3 else f"new-{rng.random()}" for _ in range(rng.randint(0, 25))]
        parts.append((ids, [rng.choice([1, 1, 1, 2]) for _ in ids]))
    dedup = FirstDelivery()
    kept: list[str] = []
    for seq, (ids, tokens) in enumerate(parts):
        frame, path = _part(tmp_path, seq, ids, tokens)
        kept.extend(dedup.keep(frame, path)["request_id"].to_list())
    want_kept, want_dropped, want_conflicts = _reference(parts)
    assert kept == want_kept
    assert (dedup.dropped, dedup.conflicts) == (want_dropped, want_conflicts)
    assert len(dedup.examples) == min(want_conflicts, first_delivery.MAX_EXAMPLES)
