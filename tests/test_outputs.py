"""Outputs for other tools: golden arithmetic for cache economics and the user cost distribution on hand-made
frames, and the FOCUS export (cost conserved against chargeback, required columns and types validated)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline import schemas
from pipeline.aggregates.cache_economics import cache_economics
from pipeline.aggregates.user_distribution import day_summary, user_cost_distribution
from pipeline.exports.focus import focus_chargeback, focus_conservation, focus_problems
from pipeline.pricing import PriceCatalog
from pipeline.reconciliation import chargeback

DAY = dt.date(2026, 11, 3)
ACCOUNT = "111122223333"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-lite-v1:0"


def _priced(rows: list[dict[str, Any]]) -> pl.DataFrame:
    base = {
        "date": DAY,
        "account_id": ACCOUNT,
        "region": "us-east-1",
        "routing": "in_region",
        "pricing_routing": "in_region",
        "priced": True,
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_write_input_tokens": 0,
        "cache_write_1h_input_tokens": 0,
        "image_count": 0,
        "input_cost_usd": 0.0,
        "output_cost_usd": 0.0,
        "cache_read_cost_usd": 0.0,
        "cache_write_cost_usd": 0.0,
        "cache_write_1h_cost_usd": 0.0,
        "image_cost_usd": 0.0,
        "environment": "production",
    }
    df = pl.DataFrame([{**base, **r} for r in rows], infer_schema_length=None)
    if "model_id" not in df.columns:
        df = df.with_columns(pl.col("base_model_id").alias("model_id"))
    costs = ["input_cost_usd", "output_cost_usd", "cache_read_cost_usd", "cache_write_cost_usd", "image_cost_usd"]
    df = df.with_columns(
        pl.when(pl.col("priced")).then(pl.sum_horizontal(costs)).alias("total_cost_usd"),
        *[pl.when(pl.col("priced")).then(pl.col(c)).alias(c) for c in [*costs, "cache_write_1h_cost_usd"]],
    )
    # The 1-hour columns are kept whether or not the contract has them yet (the money-log branch adds them).
    extra = {"cache_write_1h_input_tokens": pl.Int64, "cache_write_1h_cost_usd": pl.Float64}
    return schemas.conform(df, {**schemas.PRICED_INVOCATIONS, **extra})


# --- cache economics ------------------------------------------------------------------------------------------

RATES = {"input": 0.003, "read": 0.0003, "w5": 0.00375, "w1h": 0.006}  # USD per 1k tokens (Sonnet 4.5)
SONNET_ROW = "catalog:anthropic.claude-sonnet-4-5-20250929-v1:0|*|*|standard|*"
NOVA_ROW = "catalog:amazon.nova-lite-v1:0|*|*|standard|*"


def _catalog(with_1h: bool = True) -> PriceCatalog:
    rows = pl.DataFrame(
        {
            "price_id": [SONNET_ROW, NOVA_ROW],
            "input_per_1k_usd": [RATES["input"], 0.00006],
            "cache_read_per_1k_usd": [RATES["read"], None],
            "cache_write_per_1k_usd": [RATES["w5"], None],
            **({"cache_write_1h_per_1k_usd": [RATES["w1h"], None]} if with_1h else {}),
        }
    )
    return PriceCatalog(rows=rows)


def _cost(tokens: int, rate: float) -> float:
    return tokens * rate / 1000


def _cache_calls() -> pl.DataFrame:
    s = {"base_model_id": SONNET, "price_source": SONNET_ROW}
    return _priced(
        [
            # "chat": 5-minute writes read twice on average.
            {
                **s,
                "application": "chat",
                "input_tokens": 1000,
                "cache_write_input_tokens": 10_000,
                "input_cost_usd": _cost(1000, RATES["input"]),
                "cache_write_cost_usd": _cost(10_000, RATES["w5"]),
            },
            *[
                {
                    **s,
                    "application": "chat",
                    "input_tokens": 500,
                    "cache_read_input_tokens": 10_000,
                    "input_cost_usd": _cost(500, RATES["input"]),
                    "cache_read_cost_usd": _cost(10_000, RATES["read"]),
                }
                for _ in range(2)
            ],
            # An unpriced call counts (calls, tokens) but carries no money.
            {**s, "application": "chat", "input_tokens": 300, "priced": False, "price_source": None},
            # "agent": 1-hour writes read 0.4 times: not paying back.
            {
                **s,
                "application": "agent",
                "cache_write_input_tokens": 20_000,
                "cache_write_1h_input_tokens": 20_000,
                "cache_write_cost_usd": _cost(20_000, RATES["w1h"]),
                "cache_write_1h_cost_usd": _cost(20_000, RATES["w1h"]),
            },
            {
                **s,
                "application": "agent",
                "cache_read_input_tokens": 8_000,
                "cache_read_cost_usd": _cost(8_000, RATES["read"]),
            },
            # "batch": priced at a tier derived from the standard row (half price): rates are halved too.
            {
                **s,
                "application": "batch",
                "price_source": SONNET_ROW + " derived:batch=0.5x standard",
                "input_tokens": 100,
                "cache_write_input_tokens": 1000,
                "cache_write_cost_usd": _cost(1000, RATES["w5"]) / 2,
            },
            # A model without caching and no cache tokens is left out.
            {"base_model_id": NOVA, "price_source": NOVA_ROW, "application": "chat", "input_tokens": 5000},
        ]
    )


def test_cache_economics_golden_arithmetic() -> None:
    econ = cache_economics(_cache_calls(), _catalog())
    assert econ.schema == pl.Schema(schemas.DAILY_CACHE_ECONOMICS)
    assert econ["base_model_id"].to_list() == [SONNET] * 3  # Nova (no cache rate, no cache tokens) left out
    rows = {r["application"]: r for r in econ.iter_rows(named=True)}

    chat = rows["chat"]
    assert (chat["invocations"], chat["unpriced_invocations"]) == (4, 1)
    assert (chat["invocations_with_cache_read"], chat["invocations_with_cache_write"]) == (2, 1)
    assert (chat["input_tokens"], chat["cache_read_input_tokens"], chat["cache_write_input_tokens"]) == (
        2300,
        20_000,
        10_000,
    )
    assert (chat["cache_write_5m_input_tokens"], chat["cache_write_1h_input_tokens"]) == (10_000, 0)
    assert chat["hit_rate"] == pytest.approx(20_000 / 22_300)
    assert chat["reads_per_write"] == pytest.approx(2.0)
    assert chat["cache_read_cost_usd"] == pytest.approx(0.006)
    assert chat["cache_read_uncached_cost_usd"] == pytest.approx(0.06)  # 20k tokens at the input rate
    assert chat["read_saving_usd"] == pytest.approx(0.054)
    assert chat["write_premium_5m_usd"] == pytest.approx(0.0375 - 0.03)
    assert chat["write_premium_1h_usd"] == pytest.approx(0.0)
    assert chat["net_saving_usd"] == pytest.approx(0.054 - 0.0075)
    assert chat["break_even_reads_5m"] == pytest.approx(0.25 / 0.9)
    assert chat["break_even_reads_1h"] == pytest.approx(1.0 / 0.9)
    assert chat["input_per_1k_usd"] == pytest.approx(RATES["input"])
    assert chat["recommendation"] == "Caching pays back: 2.00 reads per write, $0.0465 net saving"

    agent = rows["agent"]
    assert (agent["cache_write_5m_input_tokens"], agent["cache_write_1h_input_tokens"]) == (0, 20_000)
    assert agent["reads_per_write"] == pytest.approx(0.4)
    assert agent["cache_write_1h_cost_usd"] == pytest.approx(0.12)
    assert agent["write_premium_1h_usd"] == pytest.approx(0.12 - 0.06)
    assert agent["read_saving_usd"] == pytest.approx(0.024 - 0.0024)
    assert agent["net_saving_usd"] == pytest.approx(0.0216 - 0.06)
    assert agent["recommendation"] == (
        "1-hour writes not paying back: 0.40 reads per write (break-even 1.11); 5-minute writes would break even "
        "at 0.28 if the prefix is reused within 5 minutes"
    )

    batch = rows["batch"]
    assert batch["input_per_1k_usd"] == pytest.approx(RATES["input"] / 2)
    assert batch["write_premium_5m_usd"] == pytest.approx((_cost(1000, RATES["w5"]) - _cost(1000, RATES["input"])) / 2)
    assert batch["reads_per_write"] == 0.0
    assert batch["recommendation"].startswith("5-minute writes not paying back: 0.00 reads per write")


def test_cache_economics_mixed_ttls_flag_the_1h_writes_that_do_not_pay_back() -> None:
    s = {"base_model_id": SONNET, "price_source": SONNET_ROW, "application": "mixed"}
    calls = _priced(
        [
            {
                **s,
                "cache_write_input_tokens": 3000,
                "cache_write_1h_input_tokens": 1000,
                "cache_write_cost_usd": _cost(2000, RATES["w5"]) + _cost(1000, RATES["w1h"]),
                "cache_write_1h_cost_usd": _cost(1000, RATES["w1h"]),
            },
            {**s, "cache_read_input_tokens": 2400, "cache_read_cost_usd": _cost(2400, RATES["read"])},
        ]
    )
    row = cache_economics(calls, _catalog()).row(0, named=True)
    assert (row["cache_write_5m_input_tokens"], row["cache_write_1h_input_tokens"]) == (2000, 1000)
    assert row["reads_per_write"] == pytest.approx(0.8)
    assert row["write_premium_5m_usd"] == pytest.approx(2000 * (RATES["w5"] - RATES["input"]) / 1000)
    assert row["write_premium_1h_usd"] == pytest.approx(1000 * (RATES["w1h"] - RATES["input"]) / 1000)
    assert row["net_saving_usd"] == pytest.approx(2400 * 0.0027 / 1000 - 0.0015 - 0.003)
    assert row["recommendation"] == (
        "Caching pays back overall ($0.0020 net saving), but at 0.80 reads per write the 1-hour writes do not "
        "(break-even 1.11): prefer 5-minute writes"
    )


def test_cache_economics_without_the_1h_columns_counts_every_write_as_5_minutes() -> None:
    calls = _cache_calls().drop("cache_write_1h_input_tokens", "cache_write_1h_cost_usd")
    econ = cache_economics(calls, _catalog(with_1h=False))
    agent = econ.filter(pl.col("application") == "agent").row(0, named=True)
    assert (agent["cache_write_5m_input_tokens"], agent["cache_write_1h_input_tokens"]) == (20_000, 0)
    assert agent["cache_write_5m_cost_usd"] == pytest.approx(0.12)
    assert agent["break_even_reads_1h"] is None and agent["cache_write_1h_per_1k_usd"] is None
    assert agent["net_saving_usd"] == pytest.approx(0.0216 - 0.06)
    # Reads per write beat the 5-minute break-even, but these writes cost the 1-hour price: the money decides.
    assert agent["recommendation"] == "Caching costs more than it saves ($0.0384 net): 0.40 reads per write"


def test_cache_economics_unpriced_group_has_no_money_and_no_recommendation() -> None:
    calls = _priced(
        [
            {
                "base_model_id": SONNET,
                "application": "x",
                "priced": False,
                "cache_read_input_tokens": 100,
                "cache_write_input_tokens": 100,
            }
        ]
    )
    row = cache_economics(calls, _catalog()).row(0, named=True)
    assert row["hit_rate"] == 1.0 and row["unpriced_invocations"] == 1
    assert row["cache_read_uncached_cost_usd"] is None and row["net_saving_usd"] is None
    assert row["recommendation"] is None


# --- cost per user --------------------------------------------------------------------------------------------


def _user_calls() -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    for i, cost in enumerate([1.0, 2.0, 3.0, 4.0, 10.0], start=1):
        rows.append({"user": f"u{i}", "input_cost_usd": cost / 2})
        rows.append({"user": f"u{i}", "input_cost_usd": cost / 2})
    rows.append({"user": "unattributed", "input_cost_usd": 5.0})
    rows.append({"user": "u6", "priced": False})  # a user with only unpriced calls: counted, not $0
    rows += [{"user": f"v{i:03d}", "cost_center": "big", "input_cost_usd": float(i)} for i in range(1, 151)]
    base = {"base_model_id": SONNET, "cost_center": "cc", "application": "app"}
    return _priced([{**base, **r} for r in rows])


def test_user_cost_distribution_golden_arithmetic() -> None:
    dist = user_cost_distribution(_user_calls())
    assert dist.schema == pl.Schema(schemas.DAILY_USER_COST_DISTRIBUTION)
    rows = {r["cost_center"]: r for r in dist.iter_rows(named=True)}
    cc = rows["cc"]
    assert (cc["users"], cc["invocations"], cc["unpriced_invocations"]) == (6, 12, 1)
    assert cc["total_cost_usd"] == pytest.approx(25.0)
    assert cc["unattributed_cost_usd"] == pytest.approx(5.0)
    assert cc["mean_cost_per_user_usd"] == pytest.approx(4.0)  # over the 5 priced users
    assert cc["p50_cost_per_user_usd"] == pytest.approx(3.0)
    assert cc["p90_cost_per_user_usd"] == pytest.approx(4 + 0.6 * 6)  # linear between the 4th and 5th user
    assert cc["p99_cost_per_user_usd"] == pytest.approx(4 + 0.96 * 6)
    assert cc["max_cost_per_user_usd"] == pytest.approx(10.0)
    assert cc["top_1pct_users"] == 1
    assert cc["top_1pct_share"] == pytest.approx(10 / 20)
    assert cc["top_10_share"] == pytest.approx(1.0)
    assert (cc["top_user"], cc["top_user_cost_usd"]) == ("u5", 10.0)
    assert cc["top_users"] == "u5 $10.00; u4 $4.00; u3 $3.00; u2 $2.00; u1 $1.00"

    big = rows["big"]
    total = 150 * 151 / 2
    assert big["users"] == 150 and big["top_1pct_users"] == 2  # ⌈1.5⌉
    assert big["top_1pct_share"] == pytest.approx((150 + 149) / total)
    assert big["top_10_share"] == pytest.approx(sum(range(141, 151)) / total)
    assert big["p50_cost_per_user_usd"] == pytest.approx(75.5)

    summary = day_summary(dist, _user_calls())
    assert summary["users"] == 155 and summary["groups"] == 2
    assert summary["max_cost_per_user_usd"] == pytest.approx(150.0)
    assert all(isinstance(v, int | float) for v in summary.values())  # numeric: plotted across partitions


# --- FOCUS export ---------------------------------------------------------------------------------------------


def _bill(rows: list[dict[str, Any]]) -> pl.DataFrame:
    base = {
        "date": DAY,
        "account_id": ACCOUNT,
        "region": "us-east-1",
        "line_item_type": "Usage",
        "billing_entity": "AWS",
        "routing": "in_region",
        "tier": "standard",
    }
    return schemas.conform(pl.DataFrame([{**base, **r} for r in rows]), schemas.BILLING_LINE_ITEMS)


def _focus_inputs() -> tuple[pl.DataFrame, pl.DataFrame]:
    priced = _priced(
        [
            # Two callers of Sonnet: alice 3/4 of the estimate, bob 1/4.
            {
                "base_model_id": SONNET,
                "user": "alice",
                "cost_center": "cc1",
                "application": "chat",
                "input_tokens": 1000,
                "output_tokens": 100,
                "input_cost_usd": 0.003,
                "output_cost_usd": 0.0015,
                "cache_write_input_tokens": 1000,
                "cache_write_1h_input_tokens": 1000,
                "cache_write_cost_usd": 0.006,
                "cache_write_1h_cost_usd": 0.006,
                "environment": "production",
            },
            {
                "base_model_id": SONNET,
                "user": "bob",
                "cost_center": "cc2",
                "application": "chat",
                "input_tokens": 1000,
                "input_cost_usd": 0.0035,
                "environment": "dev",
            },
            # Nova is logged but not (yet) billed.
            {
                "base_model_id": NOVA,
                "user": "bob",
                "cost_center": "cc2",
                "application": "chat",
                "input_tokens": 500,
                "input_cost_usd": 0.00003,
            },
        ]
    )
    billing = _bill(
        [
            {
                "base_model_id": SONNET,
                "usage_kind": "input",
                "tokens": 2000,
                "usage_amount": 2.0,
                "pricing_unit": "1K tokens",
                "unblended_cost_usd": 0.006,
                "net_cost_usd": 0.0054,
                "usage_type": "USE1-Claude4.5Sonnet-input-tokens",
                "resource_id": "arn:aws:bedrock:us-east-1::foundation-model/" + SONNET,
            },
            {"base_model_id": SONNET, "usage_kind": "output", "tokens": 100, "unblended_cost_usd": 0.0015},
            {"base_model_id": SONNET, "usage_kind": "cache_write_1h", "tokens": 1000, "unblended_cost_usd": 0.006},
            # A billed model nobody logged: unallocated.
            {"base_model_id": "meta.llama3-1-8b-instruct-v1:0", "usage_kind": "input", "unblended_cost_usd": 0.5},
            # Unmapped bill row (model unknown) in another region: unallocated too.
            {"region": "us-west-2", "usage_kind": "other", "usage_amount": 3.0, "unblended_cost_usd": 0.25},
            # Not usage: left out, as in chargeback.
            {"line_item_type": "Tax", "unblended_cost_usd": 1.0},
            # Marketplace image row for the same bucket, to see the publisher and the unit.
            {
                "base_model_id": SONNET,
                "usage_kind": "image",
                "usage_amount": 2.0,
                "unblended_cost_usd": 0.08,
                "billing_entity": "AWS Marketplace",
            },
        ]
    )
    return priced, billing


def test_focus_export_conserves_chargeback_and_is_valid_focus() -> None:
    priced, billing = _focus_inputs()
    focus = focus_chargeback(priced, billing)
    assert focus_problems(focus) == []
    assert focus.schema == pl.Schema(schemas.FOCUS_CHARGEBACK)
    cb = chargeback(priced, billing)
    assert focus_conservation(focus, cb).is_empty()
    assert focus["BilledCost"].sum() == pytest.approx(cb["billed_cost_usd"].sum())
    assert focus["BilledCost"].sum() == pytest.approx(0.006 + 0.0015 + 0.006 + 0.5 + 0.25 + 0.08)
    assert focus["x_EstimatedCost"].sum() == pytest.approx(cb["estimated_cost_usd"].sum())

    def row(user: str, model: str | None, kind: str) -> dict[str, Any]:
        hit = focus.filter((pl.col("x_User") == user) & (pl.col("x_UsageKind") == kind))
        hit = hit.filter(pl.col("x_BaseModelId").is_null() if model is None else pl.col("x_BaseModelId") == model)
        assert hit.height == 1, (user, model, kind)
        return hit.row(0, named=True)

    # Same weights as chargeback: alice 0.0105 / 0.014 = 3/4 of every billed kind of the Sonnet bucket.
    alice_in = row("alice", SONNET, "input")
    assert alice_in["x_AllocationShare"] == pytest.approx(0.75)
    assert alice_in["BilledCost"] == pytest.approx(0.0045)
    assert alice_in["EffectiveCost"] == pytest.approx(0.0054 * 0.75)  # net cost where the bill has it
    assert alice_in["ListCost"] == alice_in["ContractedCost"] == alice_in["BilledCost"]
    assert alice_in["PricingQuantity"] == pytest.approx(1.5) and alice_in["PricingUnit"] == "1000 Tokens"
    assert alice_in["ConsumedQuantity"] == pytest.approx(1500) and alice_in["ConsumedUnit"] == "Tokens"
    assert alice_in["x_LoggedTokens"] == 1000 and alice_in["x_EstimatedCost"] == pytest.approx(0.003)
    assert alice_in["SkuMeter"] == "USE1-Claude4.5Sonnet-input-tokens"
    assert alice_in["ResourceId"].endswith(SONNET)
    assert alice_in["ChargePeriodStart"] == dt.datetime(2026, 11, 3, tzinfo=dt.UTC)
    assert alice_in["ChargePeriodEnd"] == dt.datetime(2026, 11, 4, tzinfo=dt.UTC)
    assert alice_in["BillingPeriodStart"] == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert alice_in["BillingPeriodEnd"] == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert schemas.map_to_dict(alice_in["Tags"]) == {
        "application": "chat",
        "cost_center": "cc1",
        "environment": "production",
        "user": "alice",
    }
    assert (alice_in["BillingAccountId"], alice_in["SubAccountId"], alice_in["BillingCurrency"]) == (
        ACCOUNT,
        ACCOUNT,
        "USD",
    )
    assert alice_in["ServiceName"] == "Amazon Bedrock" and alice_in["ServiceCategory"] == "AI and Machine Learning"
    bob_1h = row("bob", SONNET, "cache_write_1h")  # bob wrote no cache, but the weights are per bucket
    assert bob_1h["BilledCost"] == pytest.approx(0.0015) and bob_1h["x_LoggedTokens"] == 0
    assert row("alice", SONNET, "cache_write_1h")["x_LoggedTokens"] == 1000
    image = row("alice", SONNET, "image")
    assert (image["PublisherName"], image["PricingUnit"], image["PricingQuantity"]) == ("Anthropic", "Images", 1.5)
    assert alice_in["PublisherName"] == "AWS"

    nova = row("bob", NOVA, "input")
    assert nova["x_AllocationStatus"] == "not_billed" and nova["BilledCost"] == 0.0
    assert nova["x_EstimatedCost"] == pytest.approx(0.00003) and nova["PricingQuantity"] == 0.0
    llama = row("unallocated", "meta.llama3-1-8b-instruct-v1:0", "input")
    assert llama["x_AllocationStatus"] == "unallocated" and llama["BilledCost"] == pytest.approx(0.5)
    unmapped = row("unallocated", None, "other")
    assert (unmapped["RegionId"], unmapped["BilledCost"], unmapped["PricingQuantity"]) == ("us-west-2", 0.25, 3.0)
    assert "an unmapped model" in unmapped["ChargeDescription"]
    assert not focus.filter(pl.col("ChargeCategory") != "Usage").height


def test_focus_validation_names_what_is_wrong() -> None:
    priced, billing = _focus_inputs()
    focus = focus_chargeback(priced, billing)
    assert focus_problems(focus.drop("BillingCurrency")) == ["column BillingCurrency is missing"]
    assert focus_problems(focus.with_columns(pl.col("BilledCost").cast(pl.String))) == [
        "column BilledCost is String, expected Float64"
    ]
    nulled = focus.with_columns(pl.lit(None, dtype=pl.Float64).alias("ListCost"))
    assert "ListCost is null in" in focus_problems(nulled)[0]
    wrong = focus.with_columns(pl.lit("Refund").alias("ChargeCategory"), pl.lit("eur").alias("BillingCurrency"))
    problems = focus_problems(wrong)
    assert any(p.startswith("ChargeCategory not one of") for p in problems)
    assert "BillingCurrency is not an ISO 4217 code" in problems
    no_unit = focus.with_columns(pl.lit(None, dtype=pl.String).alias("PricingUnit"))
    assert any(p.startswith("PricingUnit is null in") for p in focus_problems(no_unit))


def test_focus_export_of_an_empty_day_is_empty_and_valid() -> None:
    focus = focus_chargeback(schemas.empty(schemas.PRICED_INVOCATIONS), schemas.empty(schemas.BILLING_LINE_ITEMS))
    assert focus.is_empty() and focus_problems(focus) == []
    assert math.isclose(float(focus["BilledCost"].sum() or 0.0), 0.0)


def test_focus_export_follows_chargeback_where_chargeback_allocates_otherwise() -> None:
    """Chargeback may allocate beyond the shared weights (provisioned models per ARN, principals named on the bill,
    rounding to cents): each owner's FOCUS rows then take its chargeback total, spread as the weights spread it."""
    priced, billing = _focus_inputs()
    plain = chargeback(priced, billing)
    same = focus_chargeback(priced, billing, plain)
    assert same.drop("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "PricingQuantity").equals(
        focus_chargeback(priced, billing).drop(
            "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "PricingQuantity"
        )
    )
    # Another chargeback: alice gets 0.01 less, the unallocated row 0.05 less, and carol (no logged call) the rest.
    key = ["cost_center", "application", "user"]
    changed = plain.with_columns(
        pl.when(pl.col("user") == "alice")
        .then(pl.col("billed_cost_usd") - 0.01)
        .when(pl.col("user") == "unallocated")
        .then(pl.col("billed_cost_usd") - 0.05)
        .otherwise(pl.col("billed_cost_usd"))
        .alias("billed_cost_usd")
    )
    carol = pl.DataFrame(
        {"date": [DAY], "account_id": [ACCOUNT], "cost_center": ["cc3"], "application": ["ops"], "user": ["carol"]}
    ).with_columns(pl.lit(0.0).alias("estimated_cost_usd"), pl.lit(0.06).alias("billed_cost_usd"))
    changed = pl.concat([changed, schemas.conform(carol, schemas.CHARGEBACK)])
    focus = focus_chargeback(priced, billing, changed)
    assert focus_problems(focus) == []
    assert focus_conservation(focus, changed).is_empty()
    got = focus.group_by(
        pl.col("x_CostCenter").alias("cost_center"),
        pl.col("x_Application").alias("application"),
        pl.col("x_User").alias("user"),
    ).agg(pl.col("BilledCost").sum())
    want = changed.group_by(key).agg(pl.col("billed_cost_usd").sum())
    joined = want.join(got, on=key, how="full", coalesce=True).fill_null(0.0)
    assert (joined["billed_cost_usd"] - joined["BilledCost"]).abs().max() < 1e-12
    carol_rows = focus.filter(pl.col("x_User") == "carol")
    # Spread like the day's model-token bill: the unclassified $0.25 row is bill-only spend with its own owner.
    bill_total = 0.006 + 0.0015 + 0.006 + 0.5 + 0.08
    llama = carol_rows.filter(pl.col("x_BaseModelId") == "meta.llama3-1-8b-instruct-v1:0").row(0, named=True)
    assert llama["BilledCost"] == pytest.approx(0.06 * 0.5 / bill_total)
    assert carol_rows.height == 5 and set(carol_rows["x_AllocationStatus"]) == {"allocated"}
    alice_in = focus.filter((pl.col("x_User") == "alice") & (pl.col("x_UsageKind") == "input")).row(0, named=True)
    alice_total = 0.75 * (0.006 + 0.0015 + 0.006 + 0.08)
    assert alice_in["BilledCost"] == pytest.approx(0.0045 * (alice_total - 0.01) / alice_total)


def test_focus_invoice_issuer_and_invoice_id_come_from_the_bill() -> None:
    """`InvoiceIssuerName` is the bill's invoicing entity and `InvoiceId` its invoice id (FOCUS 1.2 recommends it;
    the FinOps Foundation's validator reports a missing `InvoiceId`); a bucket the bill does not name keeps AWS's
    name, and a month not yet invoiced has no id."""
    priced, billing = _focus_inputs()
    billing = billing.with_columns(
        pl.when(pl.col("base_model_id") == SONNET)
        .then(pl.lit("AWS EMEA SARL"))
        .otherwise(None)
        .alias("invoicing_entity"),
        pl.when(pl.col("base_model_id") == SONNET)
        .then(pl.lit("EUINGB26-123456"))
        .otherwise(pl.lit(""))
        .alias("invoice_id"),
    )
    focus = focus_chargeback(priced, billing)
    assert "InvoiceId" in focus.columns
    sonnet = focus.filter((pl.col("x_BaseModelId") == SONNET) & (pl.col("BilledCost") > 0))
    assert set(sonnet["InvoiceIssuerName"]) == {"AWS EMEA SARL"}
    assert set(sonnet["InvoiceId"]) == {"EUINGB26-123456"}
    others = focus.filter(pl.col("x_BaseModelId") != SONNET)
    assert set(others["InvoiceIssuerName"]) == {"Amazon Web Services, Inc."}
    assert others["InvoiceId"].null_count() == others.height
    assert not focus_problems(focus)


# --- tables of many callers, computed in parts ----------------------------------------------------------------


def _many_callers() -> pl.DataFrame:
    """Calls of 40 users over 25 applications and 3 cost centers, some without a user or application, one whose
    user is literally `unattributed` (the same group as a missing one), with cache traffic and unpriced calls."""
    s = {"base_model_id": SONNET, "price_source": SONNET_ROW}
    rows = []
    for i in range(120):
        rows.append(
            {
                **s,
                "user": None if i % 17 == 0 else "unattributed" if i % 19 == 0 else f"u{i % 40}",
                "application": None if i % 13 == 0 else f"app{i % 25}",
                "cost_center": f"cc{i % 3}",
                "priced": i % 11 != 0,
                "latency_ms": 100 + i,
                "input_tokens": 100 * (i % 7),
                "cache_read_input_tokens": 1000 * (i % 5),
                "cache_write_input_tokens": 500 * (i % 3),
                "input_cost_usd": _cost(100 * (i % 7), RATES["input"]),
                "cache_read_cost_usd": _cost(1000 * (i % 5), RATES["read"]),
                "cache_write_cost_usd": _cost(500 * (i % 3), RATES["w5"]),
            }
        )
    return _priced(rows)


@pytest.mark.parametrize(
    ("keys", "build", "grain"),
    [
        (["application"], "cache", ["date", "account_id", "base_model_id", "application"]),
        (["user"], "usage", ["date", "user", "cost_center", "application"]),
        (["cost_center", "application"], "users", ["date", "cost_center", "application"]),
    ],
)
def test_a_table_computed_in_parts_is_the_whole_table(keys: list[str], build: str, grain: list[str]) -> None:
    """Parts of about four keys each (several parts): every group in exactly one part, the same rows and values."""
    from pipeline.aggregates import usage_by_user
    from pipeline.aggregates.parts import by_parts, part_count

    calls = _many_callers()
    fn = {
        "cache": lambda f: cache_economics(f, _catalog()),
        "usage": usage_by_user,
        "users": user_cost_distribution,
    }[build]
    assert part_count(calls, keys, keys_per_part=4) > 3
    parts = pl.concat(list(by_parts(calls, keys, fn, keys_per_part=4)))
    whole = fn(calls)
    assert parts.select(grain).is_duplicated().sum() == 0
    assert_frame_equal(parts.sort(grain), whole.sort(grain), check_exact=False)
