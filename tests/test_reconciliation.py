"""Cost reconciliation and chargeback on small constructed cases, with the arithmetic written next to each check."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import schemas
from pipeline.config import Tolerances
from pipeline.reconciliation import (
    chargeback,
    gaps_over_tolerance,
    non_usage_summary,
    reconcile,
    reconciliation_summary,
)

D = dt.date(2026, 1, 10)
AS_OF = dt.date(2026, 1, 20)
ACCT = "111122223333"
M1 = "anthropic.claude-3-haiku-20240307-v1:0"
M2 = "amazon.nova-pro-v1:0"
TOL = Tolerances()  # cost_pct .02, cost_usd .01, tokens_pct .01, billing_lag_days 2
_ids = itertools.count()


def inv(**kw: Any) -> dict[str, Any]:
    """One priced invocation; pass ``cost`` as the input cost of an input-only call (None = unpriced)."""
    row: dict[str, Any] = {
        "request_id": f"r{next(_ids)}",
        "date": D,
        "account_id": ACCT,
        "region": "us-east-1",
        "model_id": M1,
        "base_model_id": M1,
        "routing": "in_region",
        "pricing_routing": "in_region",
        "pricing_tier": "standard",
        "user": "alice",
        "application": "chat",
        "cost_center": "sales",
        "status": "success",
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_write_input_tokens": 0,
        "priced": True,
    }
    cost = kw.pop("cost", 0.0)
    row.update(kw)
    if row["priced"]:
        row.setdefault("input_cost_usd", cost)
        for c in ("output_cost_usd", "cache_read_cost_usd", "cache_write_cost_usd"):
            row.setdefault(c, 0.0)
        row.setdefault(
            "total_cost_usd",
            row["input_cost_usd"] + row["output_cost_usd"] + row["cache_read_cost_usd"] + row["cache_write_cost_usd"],
        )
    return row


def bill(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "date": D,
        "billing_period": "2026-01",
        "account_id": ACCT,
        "region": "us-east-1",
        "line_item_type": "Usage",
        "usage_kind": "input",
        "routing": "in_region",
        "tier": "standard",
        "base_model_id": M1,
        "usage_type": "USE1-Claude3Haiku-input-tokens",
        "pricing_unit": "1K tokens",
        "unblended_cost_usd": 0.0,
        "source_format": "cur2",
    }
    row.update(kw)
    if row.get("tokens") is not None:
        row.setdefault("usage_amount", row["tokens"] / 1000)
    return row


PT_ARN = "arn:aws:bedrock:us-east-1:111122223333:provisioned-model/abc123xyz"
NOVA2 = "amazon.nova-2-lite-v1:0"


def pt_bill(**kw: Any) -> dict[str, Any]:
    """24 model-unit hours of Nova 2 Lite Provisioned Throughput, no commitment: 24 × $60.50 = $1,452."""
    row = bill(
        usage_kind="provisioned",
        routing="in_region",
        tokens=None,
        usage_amount=24.0,
        pricing_unit="hours",
        base_model_id=NOVA2,
        usage_type="USE1-Nova2.0Lite-ProvisionedThroughput-NoCommit-ModelUnits",
        resource_id=PT_ARN,
        unblended_cost_usd=1452.0,
    )
    row.update(kw)
    return row


def frame(rows: list[dict[str, Any]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema)


def priced_df(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return frame(rows, schemas.PRICED_INVOCATIONS)


def billing_df(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return frame(rows, schemas.BILLING_LINE_ITEMS)


def recon_of(logs: list[dict[str, Any]], bills: list[dict[str, Any]], **kw: Any) -> pl.DataFrame:
    out = reconcile(priced_df(logs), billing_df(bills), kw.pop("tol", TOL), kw.pop("as_of", AS_OF))
    assert out.columns == list(schemas.COST_RECONCILIATION)
    assert out.schema == pl.Schema(schemas.COST_RECONCILIATION)
    return out


def only(recon: pl.DataFrame) -> dict[str, Any]:
    assert recon.height == 1, recon
    return recon.row(0, named=True)


# --- one constructed case per status -------------------------------------------------------------------------------

Case = tuple[list[dict[str, Any]], list[dict[str, Any]]]
CASES: dict[str, tuple[Callable[[], Case], str, list[str]]] = {
    # 1,000,000 tokens at $0.003/1K on both sides.
    "matched": (
        lambda: ([inv(input_tokens=1_000_000, cost=3.0)], [bill(tokens=1_000_000, unblended_cost_usd=3.0)]),
        "matched",
        ["within tolerance"],
    ),
    # 1,234,000 billed vs 1,120,000 logged: 114,000 / 1,120,000 = 10.18 % more.
    "under_logged": (
        lambda: ([inv(input_tokens=1_120_000, cost=3.36)], [bill(tokens=1_234_000, unblended_cost_usd=3.702)]),
        "under_logged",
        ["billed 10.2% more input tokens than logged (1,234,000 vs 1,120,000", "logging may be off in us-east-1"],
    ),
    # 1,100,000 logged vs 1,000,000 billed: 10 % more than billed.
    "over_logged": (
        lambda: ([inv(input_tokens=1_100_000, cost=3.3)], [bill(tokens=1_000_000, unblended_cost_usd=3.0)]),
        "over_logged",
        ["logged 10.0% more input tokens than billed (1,100,000 vs 1,000,000)"],
    ),
    # Same tokens; $2.50 estimated ($0.0025/1K) vs $3.00 billed ($0.0030/1K).
    "price_mismatch": (
        lambda: ([inv(input_tokens=1_000_000, cost=2.5)], [bill(tokens=1_000_000, unblended_cost_usd=3.0)]),
        "price_mismatch",
        ["tokens match but billed rate is $0.0030/1K vs catalog $0.0025/1K", "add a pricing override"],
    ),
    # Logged on Jan 10, nothing billed, judged on Jan 20: the bill is final (Jan 10 ≤ Jan 20 − 2).
    "missing_in_bill": (
        lambda: ([inv(input_tokens=5_000, cost=0.015)], []),
        "missing_in_bill",
        ["logged 5,000 input tokens", "check that the billing export covers account 111122223333 in us-east-1"],
    ),
    "missing_in_logs": (
        lambda: ([], [bill(tokens=2_000, unblended_cost_usd=0.006)]),
        "missing_in_logs",
        ["model billed but never logged", "enable model invocation logging in account 111122223333 in us-east-1"],
    ),
    "unmapped_billing": (
        lambda: (
            [],
            [
                bill(
                    base_model_id=None,
                    usage_type="USE1-ShinyNewModel-input-tokens",
                    tokens=3_000,
                    unblended_cost_usd=0.9,
                )
            ],
        ),
        "unmapped_billing",
        ["usage type USE1-ShinyNewModel-input-tokens could not be mapped", "add it to the billing name map"],
    ),
    "unpriced": (
        lambda: ([inv(input_tokens=1_000, priced=False)], [bill(tokens=1_000, unblended_cost_usd=0.003)]),
        "unpriced",
        ["1,000 of 1,000 logged input tokens", "no catalog price"],
    ),
    # bedrock-mantle tokens: never in invocation logs, whatever runtime calls of the same model were logged.
    "not_logged_by_design": (
        lambda: (
            [],
            [
                bill(
                    usage_type="USE1-openai.gpt-oss-120b-mantle-input-tokens-standard",
                    base_model_id="openai.gpt-oss-120b-1:0",
                    tokens=512_000,
                    unblended_cost_usd=0.0768,
                )
            ],
        ),
        "not_logged_by_design",
        ["bedrock-mantle", "invocation logging covers bedrock-runtime only"],
    ),
    # 24 model-unit hours billed ($60.50/h × 24 = $1,452) on a provisioned model nobody called that day.
    "idle_capacity": (
        lambda: ([], [pt_bill()]),
        "idle_capacity",
        ["billed 24.0 model-unit hours ($1,452.00)", "no call used it"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_status_on_a_constructed_case(name: str) -> None:
    make, status, fragments = CASES[name]
    logs, bills = make()
    r = only(recon_of(logs, bills))
    assert r["status"] == status
    for fragment in fragments:
        assert fragment in r["explanation"], r["explanation"]


def test_status_vocabulary_is_exactly_the_contract() -> None:
    from pipeline.reconciliation.reconcile import STATUSES

    assert set(STATUSES) == {c[1] for c in CASES.values()}


def test_unpriced_call_without_pricing_routing_still_meets_its_bill_row() -> None:
    # The pricer may leave pricing_routing/tier null on a call it could not price: the logged routing (a billed
    # one) and tier `standard` stand in, so the bucket is `unpriced`, not a missing_in_bill + missing_in_logs pair.
    logs = [inv(input_tokens=1_000, priced=False, pricing_routing=None, pricing_tier=None)]
    r = only(recon_of(logs, [bill(tokens=1_000, unblended_cost_usd=0.003)]))
    assert (r["status"], r["routing"], r["tier"]) == ("unpriced", "in_region", "standard")


def test_variances_and_delta_arithmetic() -> None:
    r = only(recon_of(*CASES["under_logged"][0]()))
    # billed unit = 3.702 / 1,234,000 = 3e-6; volume = 114,000 × 3e-6 = 0.342; catalog unit = 3.36/1.12M = 3e-6.
    assert (r["logged_tokens"], r["billed_tokens"]) == (1_120_000, 1_234_000)
    assert r["volume_variance_usd"] == pytest.approx(0.342)
    assert r["price_variance_usd"] == pytest.approx(0.0, abs=1e-12)
    assert r["cost_delta_usd"] == pytest.approx(0.342)
    assert r["cost_delta_pct"] == pytest.approx(0.342 / 3.702)

    p = only(recon_of(*CASES["price_mismatch"][0]()))
    # price gap (3e-6 − 2.5e-6) × 1,000,000 = 0.50; no volume gap; delta pct = 0.5 / 3.0
    assert p["volume_variance_usd"] == pytest.approx(0.0)
    assert p["price_variance_usd"] == pytest.approx(0.5)
    assert p["cost_delta_pct"] == pytest.approx(0.5 / 3.0)


def test_missing_sides_are_zero_and_variances_still_add_up() -> None:
    mib = only(recon_of(*CASES["missing_in_bill"][0]()))
    assert (mib["billed_tokens"], mib["billed_cost_usd"]) == (0, 0.0)
    assert mib["cost_delta_usd"] == pytest.approx(-0.015)
    assert mib["cost_delta_pct"] is None  # nothing billed
    assert mib["volume_variance_usd"] == pytest.approx(-0.015)  # the catalog price stands in
    assert mib["price_variance_usd"] == 0.0

    mil = only(recon_of(*CASES["missing_in_logs"][0]()))
    assert (mil["logged_tokens"], mil["estimated_cost_usd"]) == (0, 0.0)
    assert mil["volume_variance_usd"] == pytest.approx(0.006)
    assert mil["price_variance_usd"] == 0.0
    assert mil["cost_delta_pct"] == pytest.approx(1.0)

    unmapped = only(recon_of(*CASES["unmapped_billing"][0]()))
    assert unmapped["base_model_id"] is None

    unpriced = only(recon_of(*CASES["unpriced"][0]()))
    assert unpriced["logged_tokens"] == 1_000
    assert unpriced["estimated_cost_usd"] is None and unpriced["cost_delta_usd"] is None


def test_missing_in_bill_within_billing_lag_says_bill_may_not_be_final() -> None:
    # Jan 19 judged on Jan 20 with a 2-day lag: 19 > 20 − 2 = 18, so the bill may still be arriving.
    r = only(recon_of([inv(date=dt.date(2026, 1, 19), input_tokens=10, cost=0.00003)], []))
    assert r["status"] == "missing_in_bill"
    assert "may not be final yet (billing lag 2 days as of 2026-01-20)" in r["explanation"]
    # Jan 18 is exactly at the edge (18 ≤ 18): final.
    r = only(recon_of([inv(date=dt.date(2026, 1, 18), input_tokens=10, cost=0.00003)], []))
    assert "may not be final" not in r["explanation"]


@pytest.mark.parametrize(
    ("logged", "billed", "status"),
    [
        # token tolerance = 1 % of 100,000 billed = 1,000 tokens, inclusive.
        (99_000, 100_000, "matched"),
        (98_999, 100_000, "under_logged"),
        (101_000, 100_000, "matched"),
        (101_001, 100_000, "over_logged"),
    ],
)
def test_token_tolerance_edges(logged: int, billed: int, status: str) -> None:
    # Same $0.01/1K rate on both sides so only the token check can fail.
    r = only(
        recon_of(
            [inv(input_tokens=logged, cost=logged / 100_000)],
            [bill(tokens=billed, unblended_cost_usd=billed / 100_000)],
        )
    )
    assert r["status"] == status


@pytest.mark.parametrize(
    ("estimated", "billed", "status"),
    [
        (9.80, 10.00, "matched"),  # |0.20| ≤ max(0.01, 2 % × 10.00 = 0.20)
        (9.79, 10.00, "price_mismatch"),  # 0.21 > 0.20
        (10.20, 10.00, "matched"),  # over-estimate by the same margin
        (0.09, 0.10, "matched"),  # |0.01| ≤ max(0.01, 0.002): the absolute floor
        (0.089, 0.10, "price_mismatch"),  # 0.011 > 0.01
    ],
)
def test_cost_tolerance_edges(estimated: float, billed: float, status: str) -> None:
    # The rate tolerance is opened wide here so that only the dollar tolerance decides.
    loose = Tolerances(rate_tolerance_pct=1.0)
    r = only(
        recon_of([inv(input_tokens=1_000, cost=estimated)], [bill(tokens=1_000, unblended_cost_usd=billed)], tol=loose)
    )
    assert r["status"] == status


def test_token_kinds_routing_and_tier_are_separate_buckets() -> None:
    logs = [
        inv(
            input_tokens=1_000,
            output_tokens=200,
            cache_read_input_tokens=500,
            input_cost_usd=0.003,
            output_cost_usd=0.003,
            cache_read_cost_usd=0.00015,
        ),
        inv(pricing_routing="global", input_tokens=1_000, cost=0.0027),
    ]
    bills = [
        bill(tokens=1_000, unblended_cost_usd=0.003),
        bill(usage_kind="output", tokens=200, unblended_cost_usd=0.003),
        bill(usage_kind="cache_read", tokens=500, unblended_cost_usd=0.00015),
        bill(routing="global", tokens=1_000, unblended_cost_usd=0.0027),
    ]
    out = recon_of(logs, bills)
    # no cache_write row: zero logged tokens of a kind make no row (nothing to reconcile)
    assert out.select("usage_kind", "routing").rows() == [
        ("cache_read", "in_region"),
        ("input", "global"),
        ("input", "in_region"),
        ("output", "in_region"),
    ]
    assert set(out["status"]) == {"matched"}


def test_billed_kind_not_in_logs_for_a_logged_model() -> None:
    out = recon_of(
        [inv(input_tokens=1_000, cost=0.003)],
        [
            bill(tokens=1_000, unblended_cost_usd=0.003),
            bill(usage_kind="cache_read", tokens=800, unblended_cost_usd=0.00024),
        ],
    )
    r = out.filter(pl.col("usage_kind") == "cache_read").row(0, named=True)
    assert r["status"] == "missing_in_logs"
    assert "the logs record none" in r["explanation"] and "capture cache-read tokens" in r["explanation"]


def pt_call(tokens_in: int, tokens_out: int, hour: int, **kw: Any) -> dict[str, Any]:
    """A call logged on the provisioned-model ARN: routing provisioned, no base model, not priced per token."""
    return inv(
        model_id=PT_ARN,
        base_model_id=None,
        routing="provisioned",
        pricing_routing="provisioned",
        pricing_tier=None,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        priced=False,
        timestamp=dt.datetime(2026, 1, 10, hour, 5, tzinfo=dt.UTC),
        **kw,
    )


def test_provisioned_throughput_day_with_idle_hours() -> None:
    # Golden: 1 model unit all day = 24 model-unit hours × $60.50 = $1,452.00 (Nova 2 Lite, no commitment).
    # Calls in 6 distinct hours (08..13): 6 calls × (150,000 in + 50,000 out) = 1,200,000 tokens served.
    # Effective rate = $1,452 / 1,200,000 × 1,000,000 = $1,210.00 per 1M tokens.
    # Idle model-unit hours ≈ 24 × (24 − 6) / 24 = 18.0.
    # On demand (catalog, in-Region standard, Nova 2 Lite $0.00033/1K in, $0.00275/1K out):
    #   900,000 × 0.00033/1K + 300,000 × 0.00275/1K = $0.297 + $0.825 = $1.122 → the commitment costs 1,294.1×.
    from pipeline.pricing import load_catalog

    logs = [pt_call(150_000, 50_000, hour) for hour in range(8, 14)]
    out = reconcile(
        priced_df(logs), billing_df([pt_bill()]), TOL, AS_OF, catalog=load_catalog(), provisioned_models=None
    )
    r = only(out)
    assert (r["usage_kind"], r["routing"], r["tier"], r["status"]) == ("provisioned",) * 3 + ("matched",)
    assert (r["resource_id"], r["base_model_id"]) == (PT_ARN, NOVA2)
    assert r["provisioned_hours"] == 24.0
    assert r["billed_cost_usd"] == pytest.approx(1452.0)
    assert r["served_tokens"] == r["logged_tokens"] == 1_200_000
    assert r["billed_tokens"] is None and r["estimated_cost_usd"] is None
    assert r["effective_usd_per_1m_tokens"] == pytest.approx(1210.0)
    assert r["on_demand_equivalent_usd"] == pytest.approx(1.122)
    assert "about 18.0 of the hours had no call (6 active hours)" in r["explanation"]
    assert "$1,210.00 per 1M tokens" in r["explanation"] and "not paying off" in r["explanation"]
    # The PT calls' tokens never become token rows (no missing_in_bill of tokens).
    assert set(out["usage_kind"]) == {"provisioned"}


def test_provisioned_model_from_config_and_idle_day() -> None:
    from pipeline.config import ProvisionedModel

    # A bill row whose usage type names no known model: the config names the base model of the ARN.
    anon = pt_bill(base_model_id=None, usage_type="USE1-Custom-ProvisionedThroughput-NoCommit-ModelUnits")
    models = {PT_ARN: ProvisionedModel(model_id=NOVA2, tags={"costCenter": "search"})}
    r = only(reconcile(priced_df([]), billing_df([anon]), TOL, AS_OF, provisioned_models=models))
    assert (r["status"], r["base_model_id"], r["provisioned_hours"]) == ("idle_capacity", NOVA2, 24.0)
    assert r["served_tokens"] == 0 and r["effective_usd_per_1m_tokens"] is None
    assert "sat idle" in r["explanation"]


def test_non_usage_rows_are_kept_out_and_reported_beside() -> None:
    bills = [
        bill(tokens=1_000_000, unblended_cost_usd=3.0),
        bill(line_item_type="Tax", usage_kind="other", base_model_id=None, unblended_cost_usd=0.6),
        bill(line_item_type="Credit", usage_kind="other", base_model_id=None, unblended_cost_usd=-1.0),
        bill(line_item_type="EdpDiscount", tokens=1_000_000, unblended_cost_usd=-0.3),
        bill(line_item_type="DiscountedUsage", usage_kind="output", tokens=10, unblended_cost_usd=0.00015),
    ]
    out = recon_of([inv(input_tokens=1_000_000, cost=3.0), inv(output_tokens=10, output_cost_usd=0.00015)], bills)
    assert set(out["status"]) == {"matched"}  # the discount did not turn input into a price mismatch
    assert out["billed_cost_usd"].sum() == pytest.approx(3.00015)
    summary = non_usage_summary(billing_df(bills))
    assert summary.columns == ["date", "account_id", "line_item_type", "cost_usd", "line_items"]
    assert dict(summary.select("line_item_type", "cost_usd").iter_rows()) == {
        "Credit": -1.0,
        "EdpDiscount": -0.3,
        "Tax": 0.6,
    }


def test_volume_plus_price_equals_delta_on_every_token_row() -> None:
    logs, bills = [], []
    for name in ("matched", "under_logged", "over_logged", "price_mismatch", "missing_in_bill", "missing_in_logs"):
        lg, bl = CASES[name][0]()
        region = f"r-{name}"  # keep the cases in separate buckets
        logs += [{**x, "region": region} for x in lg]
        bills += [{**x, "region": region} for x in bl]
    out = recon_of(logs, bills)
    assert out.height == 6
    diff = out.select(
        (pl.col("volume_variance_usd") + pl.col("price_variance_usd") - pl.col("cost_delta_usd")).abs().max()
    ).item()
    assert diff < 1e-12


def test_summary_and_gaps_over_tolerance() -> None:
    logs = [
        inv(input_tokens=1_000_000, cost=3.0),
        inv(model_id=M2, base_model_id=M2, date=dt.date(2026, 1, 19), input_tokens=1_000, cost=0.0008),
    ]
    bills = [
        bill(tokens=1_000_000, unblended_cost_usd=3.0),
        bill(base_model_id=None, usage_type="USE1-Mystery-input-tokens", tokens=10, unblended_cost_usd=1.0),
    ]
    out = recon_of(logs, bills)
    s = reconciliation_summary(out)
    assert s["rows"] == 3
    assert s["status_counts"]["matched"] == 1
    assert s["status_counts"]["missing_in_bill"] == 1
    assert s["status_counts"]["unmapped_billing"] == 1
    assert s["status_counts"]["price_mismatch"] == 0
    # matched billed $3.00 of $4.00 billed
    assert s["matched_share_of_billed_cost"] == pytest.approx(0.75)
    assert [g["status"] for g in s["largest_gaps"]] == ["unmapped_billing", "missing_in_bill"]
    assert s["largest_gaps"][0]["gap_usd"] == pytest.approx(1.0)

    gaps = gaps_over_tolerance(out, AS_OF, TOL.billing_lag_days)
    # the Jan 19 missing_in_bill row is inside the lag and left out; the Jan 10 unmapped row is final
    assert gaps["status"].to_list() == ["unmapped_billing"]


def test_empty_inputs_give_an_empty_conformed_table() -> None:
    out = reconcile(schemas.empty(schemas.PRICED_INVOCATIONS), schemas.empty(schemas.BILLING_LINE_ITEMS), TOL, AS_OF)
    assert out.height == 0 and out.schema == pl.Schema(schemas.COST_RECONCILIATION)
    assert reconciliation_summary(out)["matched_share_of_billed_cost"] is None


# --- chargeback ----------------------------------------------------------------------------------------------------


def bill_usage_total(bills: list[dict[str, Any]]) -> dict[tuple[dt.date, str], float]:
    out: dict[tuple[dt.date, str], float] = {}
    for b in bills:
        if b["line_item_type"] in ("Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"):
            key = (b["date"], b["account_id"])
            out[key] = out.get(key, 0.0) + b["unblended_cost_usd"]
    return out


def assert_sums_to_bill(cb: pl.DataFrame, bills: list[dict[str, Any]]) -> None:
    got = {(d, a): v for d, a, v in cb.group_by("date", "account_id").agg(pl.col("billed_cost_usd").sum()).rows()}
    expected = bill_usage_total(bills)
    for key, value in expected.items():
        assert abs(got.get(key, 0.0) - value) <= 1e-9 * max(1.0, abs(value)), (key, got.get(key), value)
        assert round(got.get(key, 0.0), 2) == round(value, 2)  # to the cent
    for key, value in got.items():
        if key not in expected:
            assert value == 0.0


def cb_rows(cb: pl.DataFrame) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["cost_center"], r["application"], r["user"]): r for r in cb.iter_rows(named=True)}


def test_chargeback_allocates_billed_cost_by_estimate_with_unallocated_remainder() -> None:
    logs = [
        inv(input_tokens=1_000, cost=3.0),  # alice/sales: 3 of 4 estimated on M1
        inv(user="bob", cost_center="search", application="finder", input_tokens=1_000, cost=1.0),
        inv(user="carol", model_id=M2, base_model_id=M2, region="us-west-2", input_tokens=10, cost=0.7),  # unbilled
    ]
    bills = [
        bill(tokens=1_000, unblended_cost_usd=5.0),
        bill(usage_kind="output", tokens=100, unblended_cost_usd=3.0),  # M1 total $8.00
        bill(base_model_id=M2, usage_type="USE1-NovaPro-input-tokens", tokens=5, unblended_cost_usd=1.5),  # not logged
        bill(base_model_id=None, usage_type="USE1-Mystery", tokens=5, unblended_cost_usd=0.25),  # unmapped
        bill(line_item_type="Tax", usage_kind="other", base_model_id=None, unblended_cost_usd=0.8),  # excluded
    ]
    cb = chargeback(priced_df(logs), billing_df(bills))
    assert cb.columns == list(schemas.CHARGEBACK) and cb.schema == pl.Schema(schemas.CHARGEBACK)
    rows = cb_rows(cb)
    # M1 $8.00 split 3:1 → alice 6.00, bob 2.00; unallocated = 1.50 (M2 in us-east-1, never logged) + 0.25.
    assert rows[("sales", "chat", "alice")]["billed_cost_usd"] == pytest.approx(6.0)
    assert rows[("search", "finder", "bob")]["billed_cost_usd"] == pytest.approx(2.0)
    un = rows[(schemas.UNALLOCATED,) * 3]
    assert un["billed_cost_usd"] == pytest.approx(1.75) and un["estimated_cost_usd"] == 0.0
    carol = rows[("sales", "chat", "carol")]
    assert (carol["billed_cost_usd"], carol["estimated_cost_usd"]) == (0.0, pytest.approx(0.7))
    # share of the day-account billed total 8.00 + 1.50 + 0.25 = 9.75
    assert rows[("sales", "chat", "alice")]["share"] == pytest.approx(6.0 / 9.75)
    assert cb["share"].sum() == pytest.approx(1.0)
    assert_sums_to_bill(cb, bills)


@pytest.mark.parametrize(
    ("alice", "bob", "alice_share"),
    [
        # Every call unpriced: by tokens, 3,000 vs 1,000 → 75 %.
        (dict(input_tokens=3_000, priced=False), dict(input_tokens=1_000, priced=False), 0.75),
        # One caller unpriced: estimates are not comparable, so tokens: 1,000 vs 3,000 → 25 %.
        (dict(input_tokens=1_000, cost=9.0), dict(input_tokens=3_000, priced=False), 0.25),
        # Priced at $0 (free tier / zero price): tokens again, 1,000 vs 1,000 → 50 %.
        (dict(input_tokens=1_000, cost=0.0), dict(input_tokens=1_000, cost=0.0), 0.5),
        # No tokens at all (all calls failed before generating tokens): by calls, 1 vs 3 → 25 %.
        (dict(status="throttled", priced=False), dict(status="throttled", priced=False), 0.25),
    ],
)
def test_chargeback_allocation_fallbacks(alice: dict[str, Any], bob: dict[str, Any], alice_share: float) -> None:
    bob_calls = 3 if alice.get("status") == "throttled" else 1
    logs = [inv(**alice)] + [inv(user="bob", **bob) for _ in range(bob_calls)]
    bills = [bill(tokens=4_000, unblended_cost_usd=4.0)]
    rows = cb_rows(chargeback(priced_df(logs), billing_df(bills)))
    assert rows[("sales", "chat", "alice")]["billed_cost_usd"] == pytest.approx(4.0 * alice_share)
    assert rows[("sales", "chat", "bob")]["billed_cost_usd"] == pytest.approx(4.0 * (1 - alice_share))
    assert (schemas.UNALLOCATED,) * 3 not in rows


def test_chargeback_keeps_accounts_and_days_apart() -> None:
    d2 = dt.date(2026, 1, 11)
    logs = [inv(input_tokens=10, cost=1.0), inv(account_id="444455556666", input_tokens=10, cost=1.0)]
    bills = [
        bill(tokens=10, unblended_cost_usd=1.1),
        bill(account_id="444455556666", tokens=10, unblended_cost_usd=0.9),
        bill(date=d2, tokens=10, unblended_cost_usd=0.4),  # nothing logged on day 2
    ]
    cb = chargeback(priced_df(logs), billing_df(bills))
    assert cb.select("date", "account_id", "user", "billed_cost_usd").rows() == [
        (D, ACCT, "alice", pytest.approx(1.1)),
        (D, "444455556666", "alice", pytest.approx(0.9)),
        (d2, ACCT, schemas.UNALLOCATED, pytest.approx(0.4)),
    ]
    assert_sums_to_bill(cb, bills)


_USERS = st.sampled_from(["alice", "bob", "carol", schemas.UNATTRIBUTED])
_MODELS = st.sampled_from([M1, M2, "meta.llama3-70b"])
_DAYS = st.sampled_from([D, dt.date(2026, 1, 11)])
_ACCOUNTS = st.sampled_from([ACCT, "444455556666"])
_CENTS = st.integers(min_value=0, max_value=10_000_000).map(lambda c: c / 1_000_000)

_call = st.builds(
    lambda user, model, day, acct, tokens, cost, priced: inv(
        user=user,
        model_id=model,
        base_model_id=model,
        date=day,
        account_id=acct,
        input_tokens=tokens,
        priced=priced,
        **({"cost": cost} if priced else {}),
    ),
    _USERS,
    _MODELS,
    _DAYS,
    _ACCOUNTS,
    st.integers(0, 50_000),
    _CENTS,
    st.booleans(),
)
_bill_row = st.builds(
    lambda model, day, acct, cost, kind: bill(
        base_model_id=model, date=day, account_id=acct, tokens=1, unblended_cost_usd=cost, line_item_type=kind
    ),
    st.one_of(_MODELS, st.none()),
    _DAYS,
    _ACCOUNTS,
    _CENTS,
    st.sampled_from(["Usage", "Usage", "Tax", "Credit"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=st.lists(_call, max_size=25), bills=st.lists(_bill_row, max_size=15))
def test_chargeback_always_sums_to_the_bill(calls: list[dict[str, Any]], bills: list[dict[str, Any]]) -> None:
    cb = chargeback(priced_df(calls), billing_df(bills))
    assert_sums_to_bill(cb, bills)
    assert cb["billed_cost_usd"].min() is None or cb["billed_cost_usd"].min() >= 0.0
    # every priced estimate is carried through, whether billed or not
    est = sum(c["total_cost_usd"] for c in calls if c["priced"])
    assert cb["estimated_cost_usd"].sum() == pytest.approx(est, abs=1e-9)
