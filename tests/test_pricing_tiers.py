"""Golden cases for the prices that depend on the call's shape: long-context tiers, 1-hour cache
writes, latency-optimized inference, and overrides that say which routings they cover.

Every expected figure is worked out by hand in the test (tokens x USD per 1K / 1000) from the bundled catalog,
whose rates come from docs/formats/pricing-rules.md §3.4-§3.6.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipeline import schemas
from pipeline.pricing import PriceCatalogError, load_catalog, price_invocations
from pipeline.pricing.catalog import REQUIRED_COLUMNS

SONNET45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
SONNET4 = "anthropic.claude-sonnet-4-20250514-v1:0"
D = dt.date(2026, 2, 1)
HEADER = ",".join(REQUIRED_COLUMNS)
FULL_HEADER = HEADER + ",cache_write_1h_per_1k_usd,context_tier,min_input_tokens"


@pytest.fixture(scope="module")
def bundled():
    return load_catalog()


def inv(*rows: dict[str, Any]) -> pl.DataFrame:
    full = []
    for i, r in enumerate(rows):
        model = r.get("model_id", SONNET45)
        geo = model.split(".", 1)[0] in ("us", "global")
        base = {
            "request_id": f"r{i}",
            "date": D,
            "region": "us-east-1",
            "model_id": model,
            "base_model_id": model.split(".", 1)[1] if geo else model,
            "routing": ("global" if model.startswith("global.") else "geo") if geo else "in_region",
            "status": "success",
        }
        full.append({**base, **r})
    return schemas.conform(pl.DataFrame(full, infer_schema_length=None), schemas.INVOCATIONS)


def price(catalog, *rows: dict[str, Any]) -> list[dict[str, Any]]:
    return price_invocations(inv(*rows), catalog).to_dicts()


# --- Long context (§3.5): Sonnet 4 / 4.5 above 200K input + cache tokens ---------------------------------------


def test_issue_case_250k_sonnet45(bundled) -> None:
    # In-region Sonnet 4.5 (regional rate 0.0033/0.0165). Standard would be 250000*0.0033/1000 + 2000*0.0165/1000
    # = 0.825 + 0.033 = 0.858. Long: 250000*0.0066/1000 + 2000*0.02475/1000 = 1.65 + 0.0495 = 1.6995.
    (r,) = price(bundled, {"input_tokens": 250_000, "output_tokens": 2_000})
    assert r["context_tier"] == "long"
    assert r["total_cost_usd"] == pytest.approx(1.6995, abs=1e-12)
    assert r["price_source"].endswith("|long")


@pytest.mark.parametrize(
    ("tokens", "tier", "cost"),
    [
        # exactly 200,000 is not "more than 200K": 200000 * 0.003 / 1000 = 0.6 (global standard input)
        pytest.param({"input_tokens": 200_000}, "standard", 0.6, id="200000 standard"),
        # 200,001 is: the whole call at 2x input, 200001 * 0.006 / 1000 = 1.200006
        pytest.param({"input_tokens": 200_001}, "long", 1.200006, id="200001 long"),
        # cache tokens count toward the threshold: 150000 + 30000 + 20001 = 200001 > 200000, so
        # 150000*0.006/1000 + 30000*0.0006/1000 + 20001*0.0075/1000 = 0.9 + 0.018 + 0.1500075 = 1.0680075
        pytest.param(
            {"input_tokens": 150_000, "cache_read_input_tokens": 30_000, "cache_write_input_tokens": 20_001},
            "long", 1.0680075, id="cache counts",
        ),
        # the same split one token lower stays standard: 150000*0.003/1000 + 30000*0.0003/1000 + 20000*0.00375/1000
        # = 0.45 + 0.009 + 0.075 = 0.534
        pytest.param(
            {"input_tokens": 150_000, "cache_read_input_tokens": 30_000, "cache_write_input_tokens": 20_000},
            "standard", 0.534, id="cache at threshold",
        ),
        # output is 1.5x in the long tier: 200001*0.006/1000 + 1000*0.0225/1000 = 1.200006 + 0.0225 = 1.222506
        pytest.param({"input_tokens": 200_001, "output_tokens": 1_000}, "long", 1.222506, id="output 1.5x"),
    ],
)  # fmt: skip
def test_long_context_threshold_global_sonnet45(bundled, tokens, tier, cost) -> None:
    (r,) = price(bundled, {"model_id": "global." + SONNET45, **tokens})
    assert (r["context_tier"], r["priced"]) == (tier, True)
    assert r["total_cost_usd"] == pytest.approx(cost, abs=1e-12)


def test_long_context_sonnet4_and_models_without_the_tier(bundled) -> None:
    rows = price(
        bundled,
        # Sonnet 4 in-region 0.003 -> long 0.006: 300000 * 0.006 / 1000 = 1.8
        {"model_id": SONNET4, "input_tokens": 300_000},
        # Sonnet 4.6 has flat pricing (§3.5): 300000 * 0.0033 / 1000 = 0.99
        {"model_id": "anthropic.claude-sonnet-4-6", "input_tokens": 300_000},
        # GovCloud Sonnet 4.5 regional 0.0036 -> long 0.0072 ($7.20 per 1M): 300000 * 0.0072 / 1000 = 2.16
        {"region": "us-gov-west-1", "input_tokens": 300_000},
    )
    assert [r["context_tier"] for r in rows] == ["long", "standard", "long"]
    assert [r["total_cost_usd"] for r in rows] == pytest.approx([1.8, 0.99, 2.16], abs=1e-12)


def test_day_crossing_a_long_context_price_change(bundled, tmp_path: Path) -> None:
    # An override changes the long-context Sonnet 4.5 rate from 2026-03-01 (inclusive) to 0.005 input.
    path = tmp_path / "prices.csv"
    path.write_text(
        FULL_HEADER + f"\n{SONNET45},*,,standard,2026-03-01,,0.005,0.02,0.0005,0.00625,negotiated,0.01,long,200000\n"
    )
    cat = load_catalog(path)
    rows = price(
        cat,
        # 2026-02-28: bundled long row, 250000 * 0.0066 / 1000 = 1.65
        {"date": dt.date(2026, 2, 28), "input_tokens": 250_000},
        # 2026-03-01: the override, 250000 * 0.005 / 1000 = 1.25
        {"date": dt.date(2026, 3, 1), "input_tokens": 250_000},
        # 2026-03-01 below the threshold: the standard row, unchanged, 1000 * 0.0033 / 1000 = 0.0033
        {"date": dt.date(2026, 3, 1), "input_tokens": 1_000},
    )
    assert [r["context_tier"] for r in rows] == ["long", "long", "standard"]
    assert [r["total_cost_usd"] for r in rows] == pytest.approx([1.65, 1.25, 0.0033], abs=1e-12)
    assert rows[0]["price_source"].startswith("catalog:")
    assert rows[1]["price_source"].startswith("override:prices.csv:")


# --- 1-hour cache writes (§3.4) ------------------------------------------------------------------------------------


def test_issue_case_1h_cache_writes(bundled) -> None:
    # Global Sonnet 4.5: input 0.003, output 0.015, 5-minute write 0.00375, 1-hour write 0.006 (2x input).
    # 1000*0.003/1000 + 320*0.015/1000 + 20000*0.00375/1000 + 30000*0.006/1000
    # = 0.003 + 0.0048 + 0.075 + 0.18 = 0.2628 (all 50K at the 5-minute rate would be 0.1953).
    (r,) = price(
        bundled,
        {
            "model_id": "global." + SONNET45,
            "input_tokens": 1_000,
            "output_tokens": 320,
            "cache_write_input_tokens": 50_000,
            "cache_write_1h_input_tokens": 30_000,
        },
    )
    assert r["total_cost_usd"] == pytest.approx(0.2628, abs=1e-12)
    assert r["cache_write_cost_usd"] == pytest.approx(0.255, abs=1e-12)  # both TTLs
    assert r["cache_write_1h_cost_usd"] == pytest.approx(0.18, abs=1e-12)


def test_1h_writes_in_the_long_tier_and_without_a_rate(bundled) -> None:
    rows = price(
        bundled,
        # long tier: 1-hour write 2x the long input (0.012). Context 250000 + 10000 > 200000:
        # 250000*0.006/1000 + 10000*0.012/1000 = 1.5 + 0.12 = 1.62
        {
            "model_id": "global." + SONNET45,
            "input_tokens": 250_000,
            "cache_write_input_tokens": 10_000,
            "cache_write_1h_input_tokens": 10_000,
        },
        # Nova has no 1-hour write rate: unpriced, never folded into the 5-minute rate
        {
            "model_id": "amazon.nova-pro-v1:0",
            "input_tokens": 10,
            "cache_write_input_tokens": 10,
            "cache_write_1h_input_tokens": 10,
        },
    )
    assert rows[0]["total_cost_usd"] == pytest.approx(1.62, abs=1e-12)
    assert rows[0]["cache_write_1h_cost_usd"] == pytest.approx(0.12, abs=1e-12)
    assert (rows[1]["priced"], rows[1]["unpriced_reason"], rows[1]["total_cost_usd"]) == (
        False,
        "no_cache_write_1h_price",
        None,
    )


def test_old_override_file_loads_and_derives_the_claude_1h_rate(tmp_path: Path) -> None:
    # An override file written before the new columns: it loads, every row is standard context, and a Claude row
    # with a cache-write rate gets the 1-hour write at 2x input (0.001 * 2 = 0.002).
    path = tmp_path / "old.csv"
    path.write_text(HEADER + "\nanthropic.claude-private-v1:0,*,,standard,,,0.001,0.005,0.0001,0.00125,deal\n")
    cat = load_catalog(path)
    row = cat.rows.filter(pl.col("model_id") == "anthropic.claude-private-v1:0").row(0, named=True)
    assert (row["context_tier"], row["min_input_tokens"]) == ("standard", None)
    assert row["cache_write_1h_per_1k_usd"] == pytest.approx(0.002)
    assert "2x input" in row["source"]
    # 4000 1-hour writes: 4000 * 0.002 / 1000 = 0.008
    (r,) = price(
        cat,
        {
            "model_id": "anthropic.claude-private-v1:0",
            "cache_write_input_tokens": 4000,
            "cache_write_1h_input_tokens": 4000,
        },
    )
    assert r["total_cost_usd"] == pytest.approx(0.008, abs=1e-12)


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (",,long,", "needs min_input_tokens"),
        (",,standard,1000", "only for context_tier long"),
        (",,huge,", "context_tier 'huge'"),
        (",,long,2e5", "not a whole number"),
    ],
)
def test_context_tier_validation(tmp_path: Path, extra: str, reason: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(FULL_HEADER + "\nx.model,*,,standard,,,0.001,0.002,,,src" + extra + "\n")
    with pytest.raises(PriceCatalogError, match=reason):
        load_catalog(path)


# --- Latency-optimized inference (§3.6) ---------------------------------------------------------------------------


def test_latency_optimized_rates(bundled) -> None:
    rows = price(
        bundled,
        # Llama 3.1 70B latency-optimized 0.0009/0.0009: 1000*0.0009/1000 + 1000*0.0009/1000 = 0.0018
        {
            "model_id": "us.meta.llama3-1-70b-instruct-v1:0",
            "region": "us-east-2",
            "service_tier": "latency_optimized",
            "input_tokens": 1_000,
            "output_tokens": 1_000,
        },
        # the same call at standard: 2000 * 0.00072 / 1000 = 0.00144
        {
            "model_id": "us.meta.llama3-1-70b-instruct-v1:0",
            "region": "us-east-2",
            "input_tokens": 1_000,
            "output_tokens": 1_000,
        },
        # Claude 3.5 Haiku latency-optimized 0.001/0.005 (unverified): 2000*0.001/1000 + 400*0.005/1000 = 0.004
        {
            "model_id": "us.anthropic.claude-3-5-haiku-20241022-v1:0",
            "region": "us-east-2",
            "service_tier": "latency_optimized",
            "input_tokens": 2_000,
            "output_tokens": 400,
        },
        # no latency-optimized row for Claude 3 Haiku: unpriced, never guessed from standard
        {
            "model_id": "anthropic.claude-3-haiku-20240307-v1:0",
            "service_tier": "latency_optimized",
            "input_tokens": 10,
        },
    )
    assert [r["pricing_tier"] for r in rows] == [
        "latency_optimized",
        "standard",
        "latency_optimized",
        "latency_optimized",
    ]
    assert [r["total_cost_usd"] for r in rows[:3]] == pytest.approx([0.0018, 0.00144, 0.004], abs=1e-12)
    assert (rows[3]["priced"], rows[3]["unpriced_reason"]) == (False, "tier_not_priced")


# --- Overrides for a bare id say in their routing column which routings they cover (item 9) -----------------------


@pytest.mark.parametrize(
    ("routing", "geo_rate"),
    [
        ("", 0.002),  # empty = all routings: the us. call takes the override (0.002), not the bundled us. row
        ("in_region", 0.0033),  # only in-region: the us. call keeps the bundled us. row (0.0033)
        ("geo", 0.002),
    ],
)
def test_bare_id_override_covers_geo_ids_by_its_routing(tmp_path: Path, routing: str, geo_rate: float) -> None:
    path = tmp_path / "o.csv"
    path.write_text(HEADER + f"\n{SONNET45},*,{routing},standard,,,0.002,0.01,0.0002,0.0025,private\n")
    cat = load_catalog(path)
    rows = price(cat, {"input_tokens": 1000}, {"model_id": "us." + SONNET45, "input_tokens": 1000})
    # 1000 tokens * rate / 1000 = rate
    in_region_rate = 0.0033 if routing == "geo" else 0.002
    assert [r["total_cost_usd"] for r in rows] == pytest.approx([in_region_rate, geo_rate], abs=1e-12)


# --- End to end: log records on S3 (moto) -> invocations -> priced_invocations ------------------------------------


def test_issue_cases_through_the_assets(tmp_path: Path, aws: str, bucket: str) -> None:
    import boto3

    from pipeline import warehouse
    from pipeline.config import load_config
    from tests.helpers import gz_lines, log_key, make_record, run_day, write_config

    long_call = make_record(
        "r-long",
        "2026-03-10T10:00:00Z",
        operation="InvokeModel",
        modelId=SONNET45,
        input={"inputTokenCount": 250_000, "inputBodyJson": {"anthropic_version": "bedrock-2023-05-31"}},
        output={
            "outputTokenCount": 2_000,
            "outputBodyJson": {"usage": {"input_tokens": 250_000, "output_tokens": 2_000}, "stop_reason": "end_turn"},
        },
    )
    ttl_call = make_record(
        "r-ttl",
        "2026-03-10T10:01:00Z",
        modelId="global." + SONNET45,
        input={"inputTokenCount": 1_000, "cacheReadInputTokenCount": 0, "cacheWriteInputTokenCount": 50_000},
        output={
            "outputTokenCount": 320,
            "outputBodyJson": {
                "stopReason": "end_turn",
                "usage": {
                    "inputTokens": 1_000,
                    "outputTokens": 320,
                    "cacheWriteInputTokens": 50_000,
                    "cacheDetails": [{"ttl": "5m", "inputTokens": 20_000}, {"ttl": "1h", "inputTokens": 30_000}],
                },
            },
        },
    )
    fast_call = make_record(
        "r-fast",
        "2026-03-10T10:02:00Z",
        region="us-east-2",
        modelId="us.amazon.nova-pro-v1:0",
        input={"inputTokenCount": 1_000, "inputBodyJson": {"performanceConfig": {"latency": "optimized"}}},
        output={"outputTokenCount": 500, "outputBodyJson": {"stopReason": "end_turn"}},
    )
    s3 = boto3.client("s3", endpoint_url=aws, region_name="us-east-1")
    s3.put_object(
        Bucket=bucket,
        Key="bedrock/" + log_key("111122223333", "us-east-1", "2026-03-10T10:05:00"),
        Body=gz_lines([long_call, ttl_call, fast_call]),
    )
    cfg = write_config(tmp_path, sources={"invocation_logs": {"s3": [f"s3://{bucket}/bedrock"]}})
    assert run_day(cfg, "2026-03-10", ["invocations", "rejected_records", "priced_invocations"]).success
    priced = warehouse.read_partition(load_config(cfg).warehouse, "priced_invocations", "2026-03-10")
    rows = {r["request_id"]: r for r in priced.to_dicts()}
    # 250000*0.0066/1000 + 2000*0.02475/1000 = 1.6995 (long tier; standard would be 0.858)
    assert (rows["r-long"]["context_tier"], rows["r-long"]["total_cost_usd"]) == ("long", pytest.approx(1.6995))
    # 0.003 + 0.0048 + 0.075 + 0.18 = 0.2628 (all writes at the 5-minute rate would be 0.1953)
    assert rows["r-ttl"]["cache_write_1h_input_tokens"] == 30_000
    assert rows["r-ttl"]["total_cost_usd"] == pytest.approx(0.2628)
    assert rows["r-ttl"]["cache_write_1h_cost_usd"] == pytest.approx(0.18)
    # latency-optimized Nova Pro 0.001/0.004: 1000*0.001/1000 + 500*0.004/1000 = 0.001 + 0.002 = 0.003
    assert rows["r-fast"]["pricing_tier"] == "latency_optimized"
    assert rows["r-fast"]["total_cost_usd"] == pytest.approx(0.003)
