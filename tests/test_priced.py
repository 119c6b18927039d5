"""`price_and_attribute` and `live_profiles`: the plain functions behind `priced_invocations`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from pipeline.config import parse_config
from pipeline.pricing import load_catalog
from pipeline.pricing.priced import live_profiles, price_and_attribute
from tests.rows import invocations

HAIKU3 = "anthropic.claude-3-haiku-20240307-v1:0"
APP_ARN = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/abc123"


def _inv(**row: Any) -> pl.DataFrame:
    base = {
        "date": dt.date(2026, 1, 5),
        "model_id": HAIKU3,
        "identity_arn": "arn:aws:sts::111122223333:assumed-role/search-api/alice",
        "input_tokens": 2000,
    }
    return invocations({**base, **row})


def _cfg(**attribution: Any) -> Any:
    return parse_config({"warehouse": "/tmp/wh", "start_date": "2026-01-01", "attribution": attribution})


def test_a_batch_is_priced_and_attributed() -> None:
    cfg = _cfg(principals=[{"match": "arn:aws:sts::*:assumed-role/search-api/*", "tags": {"costCenter": "search"}}])
    out = price_and_attribute(_inv(), cfg, load_catalog(), live={})
    row = out.row(0, named=True)
    assert row["priced"] is True
    assert row["total_cost_usd"] == pytest.approx(2000 * 0.00025 / 1000)
    assert row["cost_center"] == "search"


def test_a_live_profile_gives_its_calls_a_model_and_tags() -> None:
    inv = _inv(model_id=APP_ARN, base_model_id=None, routing="application_profile", inference_profile=APP_ARN)
    live = {APP_ARN: {"model_id": HAIKU3, "tags": {"costCenter": "docs"}}}
    row = price_and_attribute(inv, _cfg(), load_catalog(), live).row(0, named=True)
    assert row["base_model_id"] == HAIKU3
    assert row["priced"] is True
    assert row["cost_center"] == "docs"
    # Without the lookup the same call is unpriced, never $0.
    row = price_and_attribute(inv, _cfg(), load_catalog(), {}).row(0, named=True)
    assert row["priced"] is False
    assert row["total_cost_usd"] is None


def test_no_live_lookup_unless_enabled(tmp_path: Any) -> None:
    assert live_profiles(_cfg(), [str(tmp_path / "x.parquet")]) == {}
    assert live_profiles(_cfg(lookup_inference_profiles=True), []) == {}
