"""The `invocations` summary gathered from the write stream equals the one computed over the whole day."""

from __future__ import annotations

import polars as pl

from pipeline import schemas
from pipeline.normalize.summary import SummaryAccumulator, summarize


def _day() -> pl.DataFrame:
    n = 1_000
    frame = pl.DataFrame(
        {
            "request_id": [f"r{i % 997}" for i in range(n)],  # three repeats
            "status": [("success", "throttled", "client_error", "success")[i % 4] for i in range(n)],
            "account_id": [("111122223333", "444455556666")[i % 2] for i in range(n)],
            "region": [("us-east-1", "eu-west-1", None)[i % 3] for i in range(n)],
            "base_model_id": [("m-a", "m-b", "m-c", None, "m-a")[i % 5] for i in range(n)],
            "input_tokens": [i for i in range(n)],
            "output_tokens": [2 * i for i in range(n)],
            "cache_read_input_tokens": [-1 if i == 7 else 0 for i in range(n)],
            "cache_write_input_tokens": [None if i % 10 else 3 for i in range(n)],
        }
    )
    return schemas.conform(frame, schemas.INVOCATIONS)


def test_stream_summary_matches_whole_day() -> None:
    day = _day()
    acc = SummaryAccumulator()
    written = pl.concat(list(acc.tee(day.slice(i, 128) for i in range(0, day.height, 128))))
    assert written.equals(day)  # the tee hands every batch on unchanged
    streamed, whole = acc.result(), summarize(day.lazy())
    for s in (streamed, whole):
        assert s.rows == 1_000 and s.unique_ids == 997
        assert s.errors == 500  # throttled + client_error
        assert s.accounts == 2 and s.regions == 2
        assert s.input_tokens == sum(range(1_000)) and s.output_tokens == 2 * sum(range(1_000))
        assert s.negative == 1
        assert s.by_status.to_dicts()[0] == {"status": "success", "len": 500}
        assert s.top_models.row(0) == ("m-a", 400)
    assert streamed.by_status.equals(whole.by_status) and streamed.top_models.equals(whole.top_models)


def test_empty_stream() -> None:
    acc = SummaryAccumulator()
    assert list(acc.tee([schemas.empty(schemas.INVOCATIONS)])) and acc.result().rows == 0
    assert acc.result().unique_ids == 0 and acc.result().by_status.is_empty()
