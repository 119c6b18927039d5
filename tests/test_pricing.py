"""Pricing: catalog validation and merge, row choice (date, region, profile, tier) and per-bucket costs.

Expected costs are worked out by hand in each case (tokens x USD per 1K / 1000) from the bundled catalog or a small
catalog written in the test, so a change to the engine or to a price shows up as a readable diff.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipeline import config, schemas
from pipeline.pricing import (
    PriceCatalogError,
    load_catalog,
    price_invocations,
    profile_models_from_config,
    unpriced_summary,
)
from pipeline.pricing.catalog import REQUIRED_COLUMNS, read_price_file
from pipeline.pricing.match import PROVISIONED_SOURCE, id_variants

HEADER = ",".join(REQUIRED_COLUMNS)
APP_ARN = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3d4e5f6"
HAIKU3 = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
D = dt.date(2026, 2, 1)


@pytest.fixture(scope="module")
def bundled():
    return load_catalog()


def inv(*rows: dict[str, Any]) -> pl.DataFrame:
    """An invocations frame from partial rows: defaults fill what a case does not care about."""
    full = []
    for i, r in enumerate(rows):
        model = r.get("model_id", HAIKU3)
        base = {
            "request_id": f"r{i}",
            "date": D,
            "region": "us-east-1",
            "model_id": model,
            "base_model_id": model,
            "routing": "in_region",
            "status": "success",
        }
        full.append({**base, **r})
    return schemas.conform(pl.DataFrame(full, infer_schema_length=None), schemas.INVOCATIONS)


def price_one(catalog, row: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return price_invocations(inv(row), catalog, **kw).row(0, named=True)


def write(tmp_path: Path, name: str, body: str, header: str = HEADER) -> Path:
    p = tmp_path / name
    p.write_text(header + "\n" + body.strip() + "\n")
    return p


# ---------------------------------------------------------------------------------------------------------------
# Row choice and cost against the bundled catalog (numbers as the bundled prices.csv has them)
# ---------------------------------------------------------------------------------------------------------------

BUNDLED_CASES = [
    pytest.param(
        {"model_id": HAIKU3, "input_tokens": 1000, "output_tokens": 500},
        # 1000 x 0.00025/1K = 0.00025 ; 500 x 0.00125/1K = 0.000625
        0.00025,
        0.000625,
        0.000875,
        "in_region",
        id="claude-3-haiku in-region",
    ),
    pytest.param(
        {
            "model_id": "meta.llama3-1-8b-instruct-v1:0",
            "date": dt.date(2024, 8, 1),
            "input_tokens": 1000,
            "output_tokens": 1000,
        },
        # launch price before the cut: 1000 x 0.0003/1K ; 1000 x 0.0006/1K
        0.0003,
        0.0006,
        0.0009,
        "in_region",
        id="llama3.1-8b before price cut",
    ),
    pytest.param(
        {
            "model_id": "meta.llama3-1-8b-instruct-v1:0",
            "date": dt.date(2024, 9, 5),
            "input_tokens": 1000,
            "output_tokens": 1000,
        },
        0.0003,
        0.0006,
        0.0009,
        "in_region",
        id="llama3.1-8b last day of old price",
    ),
    pytest.param(
        {
            "model_id": "meta.llama3-1-8b-instruct-v1:0",
            "date": dt.date(2024, 9, 6),
            "input_tokens": 1000,
            "output_tokens": 1000,
        },
        # new price from 2024-09-06: 1000 x 0.00022/1K twice
        0.00022,
        0.00022,
        0.00044,
        "in_region",
        id="llama3.1-8b first day of new price",
    ),
    pytest.param(
        {
            "model_id": "meta.llama3-8b-instruct-v1:0",
            "region": "eu-west-1",
            "input_tokens": 1000,
            "output_tokens": 1000,
        },
        # eu-west-1 row beats *: 0.00032 / 0.00065
        0.00032,
        0.00065,
        0.00097,
        "in_region",
        id="region-specific row beats *",
    ),
    pytest.param(
        {
            "model_id": "meta.llama3-8b-instruct-v1:0",
            "region": "us-west-2",
            "input_tokens": 1000,
            "output_tokens": 1000,
        },
        # no us-west-2 row: * row 0.0003 / 0.0006
        0.0003,
        0.0006,
        0.0009,
        "in_region",
        id="no regional row falls back to *",
    ),
    pytest.param(
        {
            "model_id": f"us.{SONNET45}",
            "base_model_id": SONNET45,
            "routing": "geo",
            "inference_profile": f"us.{SONNET45}",
            "input_tokens": 1000,
            "output_tokens": 1000,
        },
        # us. profile has its own (regional, +10%) row: 0.0033 / 0.0165
        0.0033,
        0.0165,
        0.0198,
        "geo",
        id="us. profile own row",
    ),
    pytest.param(
        {
            "model_id": f"global.{SONNET45}",
            "base_model_id": SONNET45,
            "routing": "global",
            "inference_profile": f"global.{SONNET45}",
            "input_tokens": 1000,
            "output_tokens": 1000,
        },
        # global. profile is list price: 0.003 / 0.015
        0.003,
        0.015,
        0.018,
        "global",
        id="global. profile own row",
    ),
    pytest.param(
        {
            "model_id": "eu.amazon.nova-pro-v1:0",
            "base_model_id": "amazon.nova-pro-v1:0",
            "routing": "geo",
            "inference_profile": "eu.amazon.nova-pro-v1:0",
            "region": "eu-west-1",
            "input_tokens": 1000,
            "output_tokens": 1000,
        },
        # eu. Nova row (+30%): 0.00105 / 0.0042, not the bare 0.0008 / 0.0032
        0.00105,
        0.0042,
        0.00525,
        "geo",
        id="eu. profile own row (Nova +30%)",
    ),
    pytest.param(
        {
            "model_id": "apac.anthropic.claude-opus-4-6-v1",
            "base_model_id": "anthropic.claude-opus-4-6-v1",
            "routing": "geo",
            "inference_profile": "apac.anthropic.claude-opus-4-6-v1",
            "region": "ap-south-1",
            "input_tokens": 1000,
            "output_tokens": 1000,
        },
        # no apac. row: bare (regional) row 0.0055 / 0.0275, never the global row
        0.0055,
        0.0275,
        0.033,
        "geo",
        id="geo profile without own row -> bare id",
    ),
    pytest.param(
        {"model_id": "anthropic.claude-opus-4-6-v1:0", "input_tokens": 1000, "output_tokens": 0},
        # logged with :0, catalog spells it -v1: 1000 x 0.0055/1K
        0.0055,
        0.0,
        0.0055,
        "in_region",
        id="version suffix variant :0",
    ),
    pytest.param(
        {"model_id": f"{HAIKU3}:200k", "input_tokens": 1000, "output_tokens": 0},
        # context-length suffix stripped: 1000 x 0.00025/1K
        0.00025,
        0.0,
        0.00025,
        "in_region",
        id="context-length suffix stripped",
    ),
    pytest.param(
        {"model_id": f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU3}", "input_tokens": 2000, "output_tokens": 0},
        # foundation-model ARN -> id: 2000 x 0.00025/1K = 0.0005
        0.0005,
        0.0,
        0.0005,
        "in_region",
        id="foundation-model ARN",
    ),
]


@pytest.mark.parametrize(("row", "in_cost", "out_cost", "total", "routing"), BUNDLED_CASES)
def test_bundled_prices(bundled, row, in_cost, out_cost, total, routing) -> None:
    got = price_one(bundled, row)
    assert got["priced"] is True
    assert got["input_cost_usd"] == pytest.approx(in_cost, rel=1e-9, abs=1e-15)
    assert got["output_cost_usd"] == pytest.approx(out_cost, rel=1e-9, abs=1e-15)
    assert got["total_cost_usd"] == pytest.approx(total, rel=1e-9)
    assert got["pricing_routing"] == routing
    assert got["pricing_tier"] == "standard"
    assert got["price_source"].startswith("catalog:")
    assert got["unpriced_reason"] is None


def test_price_source_names_the_row(bundled) -> None:
    got = price_one(bundled, {"model_id": "meta.llama3-8b-instruct-v1:0", "region": "eu-west-1", "input_tokens": 1})
    assert got["price_source"] == "catalog:meta.llama3-8b-instruct-v1:0|eu-west-1|*|standard|2023-01-01"


def test_cache_buckets_priced_separately(bundled) -> None:
    row = {
        "model_id": "anthropic.claude-3-5-sonnet-20241022-v2:0",
        "input_tokens": 1000,
        "output_tokens": 100,
        "cache_read_input_tokens": 2000,
        "cache_write_input_tokens": 400,
    }
    got = price_one(bundled, row)
    assert got["input_cost_usd"] == pytest.approx(1000 * 0.003 / 1000)  # 0.003
    assert got["output_cost_usd"] == pytest.approx(100 * 0.015 / 1000)  # 0.0015
    assert got["cache_read_cost_usd"] == pytest.approx(2000 * 0.0003 / 1000)  # 0.0006
    assert got["cache_write_cost_usd"] == pytest.approx(400 * 0.00375 / 1000)  # 0.0015
    assert got["total_cost_usd"] == pytest.approx(0.003 + 0.0015 + 0.0006 + 0.0015)


def test_nova_cache_rule_in_bundled_catalog(bundled) -> None:
    # eu. Nova Lite has no cache rate in the source: docs/formats/pricing-rules.md §3.4 gives read 0.25x input, write =
    # input.
    row = {
        "model_id": "eu.amazon.nova-lite-v1:0",
        "routing": "geo",
        "inference_profile": "eu.amazon.nova-lite-v1:0",
        "region": "eu-west-1",
        "cache_read_input_tokens": 1000,
        "cache_write_input_tokens": 1000,
    }
    got = price_one(bundled, row)
    assert got["cache_read_cost_usd"] == pytest.approx(0.000078 * 0.25)  # 1000 x 0.0000195/1K
    assert got["cache_write_cost_usd"] == pytest.approx(0.000078)  # 1000 x 0.000078/1K


def test_cache_tokens_without_cache_rate_are_unpriced_not_folded(bundled) -> None:
    # Claude 3 Haiku has no prompt caching on Bedrock: never price its cache tokens at the input rate, never $0.
    got = price_one(bundled, {"model_id": HAIKU3, "input_tokens": 1000, "cache_read_input_tokens": 500})
    assert got["priced"] is False
    assert got["unpriced_reason"] == "no_cache_read_price"
    assert got["input_cost_usd"] is None and got["total_cost_usd"] is None
    assert got["price_source"] is None


def test_unknown_model_is_unpriced_with_null_costs(bundled) -> None:
    got = price_one(bundled, {"model_id": "acme.brand-new-model-v1:0", "input_tokens": 1000, "output_tokens": 10})
    assert got["priced"] is False
    assert got["unpriced_reason"] == "no_price"
    for c in ("input_cost_usd", "output_cost_usd", "cache_read_cost_usd", "cache_write_cost_usd", "total_cost_usd"):
        assert got[c] is None, c
    assert got["price_source"] is None


def test_no_prefix_match_across_families(tmp_path) -> None:
    # sonnet-5-5 must not be priced at sonnet-5's row (they differ only in a trailing -5).
    cat = load_catalog(
        bundled_path=write(tmp_path, "p.csv", "anthropic.claude-sonnet-5,*,,standard,2023-01-01,,1,1,,,s")
    )
    got = price_one(cat, {"model_id": "anthropic.claude-sonnet-5-5", "input_tokens": 1})
    assert got["priced"] is False


def test_provisioned_is_not_priced_as_zero(bundled) -> None:
    row = {
        "model_id": "arn:aws:bedrock:us-east-1:111122223333:provisioned-model/abc123",
        "base_model_id": HAIKU3,
        "routing": "provisioned",
        "input_tokens": 1000,
        "output_tokens": 100,
    }
    got = price_one(bundled, row)
    assert got["priced"] is False
    assert got["total_cost_usd"] is None and got["input_cost_usd"] is None
    assert got["price_source"] == PROVISIONED_SOURCE
    assert got["unpriced_reason"] == "provisioned"


def test_null_token_counts_cost_zero_when_model_priced(bundled) -> None:
    got = price_one(bundled, {"model_id": HAIKU3})
    assert got["priced"] is True
    assert got["total_cost_usd"] == 0.0


# ---------------------------------------------------------------------------------------------------------------
# Application inference profiles
# ---------------------------------------------------------------------------------------------------------------

APP_CASES = [
    pytest.param(
        {f"{APP_ARN}": f"us.{SONNET45}"},
        SONNET45,
        # wraps the us. system profile: its regional row, 2000 x 0.0033/1K = 0.0066
        0.0066,
        "geo",
        id="wraps us. profile",
    ),
    pytest.param(
        {f"{APP_ARN}": f"global.{SONNET45}"},
        SONNET45,
        # wraps the global profile: 2000 x 0.003/1K = 0.006
        0.006,
        "global",
        id="wraps global. profile",
    ),
    pytest.param(
        {f"{APP_ARN}": HAIKU3},
        HAIKU3,
        # wraps a foundation model: in-region, 2000 x 0.00025/1K = 0.0005
        0.0005,
        "in_region",
        id="wraps foundation model",
    ),
    pytest.param(
        None,
        HAIKU3,
        # no mapping given: the normalizer's base_model_id, in-region: 2000 x 0.00025/1K
        0.0005,
        "in_region",
        id="no mapping, base_model_id",
    ),
]


@pytest.mark.parametrize(("profile_models", "base", "total", "routing"), APP_CASES)
def test_application_profile(bundled, profile_models, base, total, routing) -> None:
    row = {
        "model_id": APP_ARN,
        "base_model_id": base,
        "routing": "application_profile",
        "inference_profile": APP_ARN,
        "input_tokens": 2000,
    }
    got = price_one(bundled, row, profile_models=profile_models)
    assert got["priced"] is True
    assert got["total_cost_usd"] == pytest.approx(total)
    assert got["pricing_routing"] == routing


def test_unresolved_application_profile(bundled) -> None:
    row = {
        "model_id": APP_ARN,
        "base_model_id": None,
        "routing": "application_profile",
        "inference_profile": APP_ARN,
        "input_tokens": 2000,
    }
    got = price_one(bundled, row)
    assert got["priced"] is False
    assert got["unpriced_reason"] == "unresolved_application_profile"


def test_profile_models_from_config() -> None:
    cfg = config.parse_config(
        {"attribution": {"inference_profiles": {APP_ARN: {"model_id": f"us.{SONNET45}", "tags": {}}}}}
    )
    assert profile_models_from_config(cfg.attribution) == {APP_ARN: f"us.{SONNET45}"}


# ---------------------------------------------------------------------------------------------------------------
# Synthetic catalog: prefixes, tiers, overrides, images
# ---------------------------------------------------------------------------------------------------------------

SYNTH = """
x.model-v1:0,*,,standard,2023-01-01,,0.001,0.002,,,bare
x.model-v1:0,eu-west-1,,standard,2023-01-01,,0.0012,0.0024,,,bare eu
us.x.model-v1:0,*,,standard,2023-01-01,,0.0011,0.0022,,,us profile
x.model-v1:0,*,global,standard,2023-01-01,,0.0009,0.0018,,,routing-specific global row
x.model-v1:0,*,,batch,2023-01-01,,0.0004,0.0008,,,explicit batch row
"""


@pytest.fixture()
def synth(tmp_path):
    return load_catalog(bundled_path=write(tmp_path, "synth.csv", SYNTH))


SYNTH_CASES = [
    pytest.param({"model_id": "x.model-v1:0"}, 0.001, "in_region", id="bare *"),
    pytest.param({"model_id": "x.model-v1:0", "region": "eu-west-1"}, 0.0012, "in_region", id="bare eu-west-1"),
    pytest.param(
        {
            "model_id": "us.x.model-v1:0",
            "routing": "geo",
            "inference_profile": "us.x.model-v1:0",
            "base_model_id": "x.model-v1:0",
        },
        0.0011,
        "geo",
        id="us. own row",
    ),
    pytest.param(
        {
            "model_id": "eu.x.model-v1:0",
            "routing": "geo",
            "inference_profile": "eu.x.model-v1:0",
            "base_model_id": "x.model-v1:0",
            "region": "eu-west-1",
        },
        0.0012,
        "geo",
        id="eu. without row -> bare, regional row",
    ),
    pytest.param(
        {
            "model_id": "us-gov.x.model-v1:0",
            "routing": "geo",
            "inference_profile": "us-gov.x.model-v1:0",
            "base_model_id": "x.model-v1:0",
        },
        0.001,
        "geo",
        id="us-gov. prefix stripped whole",
    ),
    pytest.param(
        {
            "model_id": "global.x.model-v1:0",
            "routing": "global",
            "inference_profile": "global.x.model-v1:0",
            "base_model_id": "x.model-v1:0",
        },
        0.0009,
        "global",
        id="global. without own row -> routing-specific bare row",
    ),
]


@pytest.mark.parametrize(("row", "rate", "routing"), SYNTH_CASES)
def test_synthetic_prefix_rules(synth, row, rate, routing) -> None:
    got = price_one(synth, {**row, "input_tokens": 1000})
    assert got["input_cost_usd"] == pytest.approx(rate)  # 1000 tokens x rate/1K = rate
    assert got["pricing_routing"] == routing


TIER_CASES = [
    # (service_tier, default_tier, expected input cost for 1000 tokens, price_source suffix, pricing_tier)
    pytest.param(None, "standard", 0.001, "|standard|2023-01-01", "standard", id="null -> default standard"),
    pytest.param("default", "standard", 0.001, "|standard|2023-01-01", "standard", id="'default' = standard"),
    pytest.param("batch", "standard", 0.0004, "|batch|2023-01-01", "batch", id="explicit batch row wins"),
    pytest.param(None, "batch", 0.0004, "|batch|2023-01-01", "batch", id="default_tier batch"),
    # no flex row: 0.5 x 0.001 = 0.0005, and price_source says it was derived
    pytest.param("flex", "standard", 0.0005, " derived:flex=0.5x standard", "flex", id="flex derived"),
    # no priority row: 1.75 x 0.001 = 0.00175
    pytest.param(
        "Priority", "standard", 0.00175, " derived:priority=1.75x standard", "priority", id="priority derived"
    ),
]


@pytest.mark.parametrize(("tier", "default", "cost", "suffix", "pricing_tier"), TIER_CASES)
def test_tiers(synth, tier, default, cost, suffix, pricing_tier) -> None:
    got = price_one(
        synth, {"model_id": "x.model-v1:0", "service_tier": tier, "input_tokens": 1000}, default_tier=default
    )
    assert got["input_cost_usd"] == pytest.approx(cost)
    assert got["price_source"].endswith(suffix)
    assert got["pricing_tier"] == pricing_tier


def test_reserved_tier_is_unpriced(synth) -> None:
    got = price_one(synth, {"model_id": "x.model-v1:0", "service_tier": "reserved", "input_tokens": 1000})
    assert got["priced"] is False and got["unpriced_reason"] == "tier_not_priced"


OVERRIDE = """
x.model-v1:0,*,,standard,2026-01-01,2026-01-31,0.0005,0.001,,,negotiated January
new.model,*,,standard,,,0.01,0.02,,,added model
"""


@pytest.mark.parametrize(
    ("date", "model", "rate", "origin"),
    [
        pytest.param(dt.date(2025, 12, 31), "x.model-v1:0", 0.001, "catalog", id="before override window"),
        pytest.param(dt.date(2026, 1, 15), "x.model-v1:0", 0.0005, "override", id="inside override window"),
        pytest.param(dt.date(2026, 2, 1), "x.model-v1:0", 0.001, "catalog", id="after override window"),
        pytest.param(dt.date(2020, 1, 1), "new.model", 0.01, "override", id="override adds a model"),
    ],
)
def test_override_wins_for_its_days(tmp_path, date, model, rate, origin) -> None:
    cat = load_catalog(write(tmp_path, "overrides.csv", OVERRIDE), bundled_path=write(tmp_path, "synth.csv", SYNTH))
    got = price_one(cat, {"model_id": model, "date": date, "input_tokens": 1000})
    assert got["input_cost_usd"] == pytest.approx(rate)
    assert got["price_source"].startswith(origin)
    if origin == "override":
        assert got["price_source"].startswith("override:overrides.csv:")
    else:
        # the trimmed bundled row still names its CSV row (original start date)
        assert got["price_source"] == "catalog:x.model-v1:0|*|*|standard|2023-01-01"


def test_override_of_bundled_catalog(bundled, tmp_path) -> None:
    path = write(tmp_path, "prices.csv", f"{HAIKU3},*,,standard,2026-01-01,,0.0002,0.001,,,private pricing")
    cat = load_catalog(path)
    got = price_one(cat, {"model_id": HAIKU3, "input_tokens": 1000})
    assert got["input_cost_usd"] == pytest.approx(0.0002)  # 1000 x 0.0002/1K
    assert len(cat) == len(bundled) + 1  # bundled row trimmed to end 2025-12-31, override added


IMAGE_HEADER = HEADER + ",image_per_unit_usd"


def test_image_model_priced_per_image(tmp_path) -> None:
    body = "img.gen-v1,*,,standard,2023-01-01,,,,,,s,0.04\ntext.model,*,,standard,2023-01-01,,0.001,0.002,,,s,"
    cat = load_catalog(bundled_path=write(tmp_path, "p.csv", body, header=IMAGE_HEADER))
    out = price_invocations(
        inv(
            {"model_id": "img.gen-v1", "image_count": 3, "input_tokens": 12},  # prompt tokens are not billed
            {"model_id": "text.model", "image_count": 2, "input_tokens": 1000},  # input images billed as tokens
        ),
        cat,
    )
    img, text = out.row(0, named=True), out.row(1, named=True)
    assert img["priced"] and img["image_cost_usd"] == pytest.approx(3 * 0.04)  # 0.12
    assert img["total_cost_usd"] == pytest.approx(0.12)
    assert text["priced"] and text["image_cost_usd"] == 0.0
    assert text["total_cost_usd"] == pytest.approx(0.001)  # 1000 x 0.001/1K


def test_shape_order_and_schema_preserved(bundled) -> None:
    frame = inv(
        {"model_id": "acme.unknown", "input_tokens": 5},
        {"model_id": HAIKU3, "input_tokens": 1000},
        {
            "model_id": f"us.{SONNET45}",
            "routing": "geo",
            "inference_profile": f"us.{SONNET45}",
            "base_model_id": SONNET45,
            "input_tokens": 1000,
        },
    )
    out = price_invocations(frame, bundled)
    assert out["request_id"].to_list() == ["r0", "r1", "r2"]
    assert out["priced"].to_list() == [False, True, True]
    conformed = schemas.conform(out, schemas.PRICED_INVOCATIONS)
    for c in ("input_cost_usd", "total_cost_usd", "priced", "price_source", "pricing_routing", "pricing_tier"):
        assert conformed[c].dtype == schemas.PRICED_INVOCATIONS[c]
    again = price_invocations(out, bundled)  # re-pricing a priced frame replaces, never duplicates, columns
    assert again.columns == out.columns


def test_empty_frame(bundled) -> None:
    out = price_invocations(schemas.empty(schemas.INVOCATIONS), bundled)
    assert out.height == 0 and "total_cost_usd" in out.columns


def test_unpriced_summary(bundled) -> None:
    frame = inv(
        {"model_id": "acme.a", "input_tokens": 10, "output_tokens": 5},
        {"model_id": "acme.a", "input_tokens": 1},
        {"model_id": "acme.b", "input_tokens": 100},
        {"model_id": HAIKU3, "input_tokens": 100},
        {"model_id": "arn:aws:bedrock:us-east-1:111122223333:provisioned-model/x", "routing": "provisioned"},
    )
    summary = unpriced_summary(price_invocations(frame, bundled))
    assert summary.to_dicts() == [
        {"model_id": "acme.a", "reason": "no_price", "calls": 2, "tokens": 16},
        {"model_id": "acme.b", "reason": "no_price", "calls": 1, "tokens": 100},
    ]


@pytest.mark.parametrize(
    ("logged", "expected"),
    [
        ("anthropic.claude-opus-4-6-v1:0", ["anthropic.claude-opus-4-6-v1", "anthropic.claude-opus-4-6"]),
        (
            "anthropic.claude-opus-4-7",
            ["anthropic.claude-opus-4-7:0", "anthropic.claude-opus-4-7-v1", "anthropic.claude-opus-4-7-v1:0"],
        ),
        ("anthropic.claude-instant-v1:2:100k", ["anthropic.claude-instant-v1:2"]),
        (
            "anthropic.claude-sonnet-4-5[1m]",
            [
                "anthropic.claude-sonnet-4-5",
                "anthropic.claude-sonnet-4-5:0",
                "anthropic.claude-sonnet-4-5-v1",
                "anthropic.claude-sonnet-4-5-v1:0",
            ],
        ),
    ],
)
def test_id_variants(logged, expected) -> None:
    assert id_variants(logged) == expected


# ---------------------------------------------------------------------------------------------------------------
# Catalog validation: each error names the file and the line
# ---------------------------------------------------------------------------------------------------------------

GOOD = "a.model,*,,standard,2023-01-01,,0.001,0.002,,,src"


@pytest.mark.parametrize(
    ("header", "body", "line", "reason"),
    [
        pytest.param(
            HEADER.replace(",source", ""),
            "a.model,*,,standard,2023-01-01,,0.001,0.002,,",
            1,
            "missing column",
            id="missing column",
        ),
        pytest.param(HEADER + ",discount", GOOD + ",0.1", 1, "unknown column", id="unknown column"),
        pytest.param(
            HEADER,
            GOOD + "\nb.model,*,,standard,2023-01-01,,abc,0.002,,,src",
            3,
            "is not a number",
            id="non-numeric price",
        ),
        pytest.param(
            HEADER, "b.model,*,,standard,2023-01-01,,-0.001,0.002,,,src", 2, "is negative", id="negative price"
        ),
        pytest.param(
            HEADER, "b.model,*,,standard,2024-05-01,2024-04-30,0.001,0.002,,,src", 2, "is after", id="from after to"
        ),
        pytest.param(
            HEADER,
            "b.model,*,,standard,2024-01-01,2024-06-30,0.001,0.002,,,a\n"
            "b.model,*,,standard,2024-06-30,,0.002,0.002,,,b",
            3,
            "overlaps line 2",
            id="overlap",
        ),
        pytest.param(HEADER, "b.model,*,,standard,01/02/2024,,0.001,0.002,,,src", 2, "is not a date", id="bad date"),
        pytest.param(
            HEADER, "b.model,*,,reserved,2023-01-01,,0.001,0.002,,,src", 2, "tier 'reserved'", id="unknown tier"
        ),
        pytest.param(
            HEADER, "b.model,*,regional,standard,2023-01-01,,0.001,0.002,,,src", 2, "routing", id="unknown routing"
        ),
        pytest.param(HEADER, "b.model,*,,standard,2023-01-01,,,,,,src", 2, "no price", id="no price"),
        pytest.param(
            HEADER, "b.model,,,standard,2023-01-01,,0.001,0.002,,,src", 2, "region is empty", id="empty region"
        ),
        pytest.param(HEADER, "b.model,*,,standard,2023-01-01,,0.001", 2, "expected 11 fields", id="short row"),
    ],
)
def test_catalog_validation(tmp_path, header, body, line, reason) -> None:
    path = write(tmp_path, "bad-prices.csv", body, header=header)
    with pytest.raises(PriceCatalogError) as err:
        read_price_file(path, origin="catalog")
    msg = str(err.value)
    assert "bad-prices.csv" in msg
    assert f"line {line}:" in msg
    assert reason in msg


def test_override_file_errors_name_the_override(tmp_path) -> None:
    path = write(tmp_path, "my-overrides.csv", "b.model,*,,standard,,,0.001,x,,,src")
    with pytest.raises(PriceCatalogError, match=r"my-overrides\.csv: line 2: output_per_1k_usd 'x'"):
        load_catalog(path)


def test_bundled_catalog_is_valid_and_complete(bundled) -> None:
    rows = bundled.rows
    assert rows.height >= 324  # every source row, plus dated history and images
    assert rows.filter(pl.col("origin") != "catalog").height == 0
    # §3.6 latency-optimized rows, and the tier rates AWS publishes for Nova 2 Lite (no multiplier needed there)
    assert set(rows["tier"].unique()) == {"standard", "latency_optimized", "batch", "flex", "priority"}
    assert set(rows.filter(pl.col("tier").is_in(["batch", "flex", "priority"]))["model_id"]) == {
        f"{p}amazon.nova-2-lite-v1:0" for p in ("", "us.", "eu.", "apac.", "global.")
    }
    assert rows["routing"].null_count() == rows.height
    # a few anchors from docs/formats/pricing-rules.md
    haiku = rows.filter((pl.col("model_id") == HAIKU3) & (pl.col("region") == "*")).row(0, named=True)
    assert (haiku["input_per_1k_usd"], haiku["output_per_1k_usd"]) == (0.00025, 0.00125)
    assert haiku["cache_read_per_1k_usd"] is None  # no prompt caching for Claude 3 Haiku on Bedrock
