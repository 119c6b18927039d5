"""Shape-dependent prices, bill side: usage types, TTLs and context tiers on the bill, FOCUS cost columns and tags, rate
tolerance, images, unsplit geo, and a chargeback that conserves every cent. Arithmetic is written beside each check.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import schemas
from pipeline.billing import billing_line_items_for_day, load_billing_name_map, parse_usage_type
from pipeline.config import BillingSource, ProvisionedModel, Tolerances
from pipeline.reconciliation import chargeback, non_usage_summary, reconcile
from pipeline.reconciliation.chargeback import round_to_cents
from pipeline.vocabulary import GUARDRAIL_POLICIES  # noqa: E402
from tests.test_reconciliation import (
    ACCT,
    AS_OF,
    NOVA2,
    PT_ARN,
    TOL,
    D,
    bill,
    billing_df,
    inv,
    only,
    priced_df,
    pt_bill,
    pt_call,
)

FIXTURES = Path(__file__).parent / "fixtures"
SONNET45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"


# --- every real usage-type string ------------------------------------------------------------------------------


def _real_usage_types() -> list[dict[str, str]]:
    """Real usage types transcribed from published bills and Price List reads, with what each must parse to."""
    with (FIXTURES / "real_usage_types.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("case", _real_usage_types(), ids=lambda c: c["usage_type"])
def test_every_real_usage_type_is_mapped_or_deliberately_other(case: dict[str, str]) -> None:
    p = parse_usage_type(case["usage_type"])
    names = load_billing_name_map()
    got_model = {
        "first_party": names.lookup("usage_type_model", p.model_name),
        "mantle": names.lookup("mantle_model", p.model_name),
        "marketplace": "(product name)",  # Marketplace rows name the model only in the product name
    }.get(p.grammar)
    assert (p.usage_kind, p.region or "", p.routing, p.tier, p.unit or "", p.cache_ttl or "") == (
        case["usage_kind"],
        case["region"],
        case["routing"],
        case["tier"],
        case["unit"],
        case["cache_ttl"],
    )
    if p.usage_kind == "other" or p.usage_kind in GUARDRAIL_POLICIES:
        assert p.note, "an `other` or guardrail row must say why it is not matched against model tokens"
    else:
        assert got_model == case["base_model_id"], "a usage row must map to its model"


def test_the_fixture_covers_the_strings_the_issue_names() -> None:
    strings = {c["usage_type"] for c in _real_usage_types()}
    assert len(strings) == 73
    for fragment in ("Mistral7B", "MistralLarge", "Mixtral8x7B", "Qwen3Coder-30B-A3B", "Claude3-5Haiku"):
        assert any(fragment in s for s in strings)
    assert any("-input-image-token-count" in s for s in strings)


@pytest.mark.parametrize(
    ("usage_type", "kind", "tier", "ttl"),
    [
        ("USE1-MP:USE1_input_tokens_long_ctx_global_standard-Units", "input", "long", None),
        ("USE1-Claude4Sonnet-input-tokens-LongContext-cross-region-global", "input", "long", None),
        ("USE1-MP:USE1_cache_write_tokens_1h_global_standard-Units", "cache_write_1h", "standard", "1h"),
        (
            "USW2-anthropic.claude-opus-4-8-mantle-cache-write-1h-tokens-global-standard",
            "cache_write_1h",
            "standard",
            "1h",
        ),
        ("USE1-NovaPro-cache-write-input-token-count", "cache_write", "standard", "5m"),
    ],
)
def test_context_tier_and_cache_ttl_from_the_usage_type(usage_type: str, kind: str, tier: str, ttl: str | None) -> None:
    p = parse_usage_type(usage_type)
    assert (p.usage_kind, p.context_tier, p.cache_ttl) == (kind, tier, ttl)


# --- FOCUS: tags as a JSON string, list-equivalent cost, discounts as their own rows ---------------------------


def _focus_file(root: Path, rows: list[dict[str, Any]]) -> None:
    folder = root / "exp" / "data" / "BILLING_PERIOD=2026-01"
    folder.mkdir(parents=True)
    base = {
        "BillingPeriodStart": dt.datetime(2026, 1, 1),
        "ChargePeriodStart": dt.datetime(2026, 1, 10, 10),
        "SubAccountId": ACCT,
        "RegionId": "us-east-1",
        "ChargeCategory": "Usage",
        "ChargeClass": None,
        "PricingUnit": "1K tokens",
        "BillingCurrency": "USD",
        "ResourceId": None,
        "x_Operation": "InvokeModelInference",
    }
    table = pa.Table.from_pylist(
        [{**base, **r} for r in rows],
        schema=pa.schema(
            [
                ("BillingPeriodStart", pa.timestamp("us")),
                ("ChargePeriodStart", pa.timestamp("us")),
                ("SubAccountId", pa.string()),
                ("RegionId", pa.string()),
                ("ChargeCategory", pa.string()),
                ("ChargeClass", pa.string()),
                ("PricingUnit", pa.string()),
                ("BillingCurrency", pa.string()),
                ("ResourceId", pa.string()),
                ("x_Operation", pa.string()),
                ("x_ServiceCode", pa.string()),
                ("ServiceName", pa.string()),
                ("x_UsageType", pa.string()),
                ("PricingQuantity", pa.float64()),
                ("ListCost", pa.float64()),
                ("BilledCost", pa.float64()),
                ("EffectiveCost", pa.float64()),
                ("Tags", pa.string()),
                ("x_Discounts", pa.map_(pa.string(), pa.float64())),
            ]
        ),
    )
    pq.write_table(table, folder / "exp-00001.snappy.parquet")


def test_focus_string_tags_list_cost_and_discounts(tmp_path: Path) -> None:
    _focus_file(
        tmp_path,
        [
            # AWS-billed Nova Pro, private pricing: list 100K × $0.0008/1K = $0.08, billed $0.072 (10% off).
            {
                "x_ServiceCode": "AmazonBedrock",
                "ServiceName": "Amazon Bedrock",
                "x_UsageType": "USE1-NovaPro-input-tokens",
                "PricingQuantity": 100.0,
                "ListCost": 0.08,
                "BilledCost": 0.072,
                "EffectiveCost": 0.072,
                "Tags": '{"costCenter": "search", "application": "docs-bot"}',
            },
            # Marketplace Claude: ListCost 0 (docs/formats/billing-exports.md §3.4); 1,000,000 tokens billed $2.70 with
            # an EDP discount of −$0.30 → list-equivalent $2.70 + $0.30 = $3.00 ($0.003/1K).
            {
                "x_ServiceCode": None,
                "ServiceName": "Claude 3 Haiku (Amazon Bedrock Edition)",
                "x_UsageType": "USE1-MP:USE1_InputTokenCount-Units",
                "PricingUnit": "Units",
                "PricingQuantity": 1.0,
                "ListCost": 0.0,
                "BilledCost": 2.70,
                "EffectiveCost": 2.70,
                "Tags": "NULL",
                "x_Discounts": [("EdpDiscount", -0.30)],
            },
        ],
    )
    items = billing_line_items_for_day(BillingSource(uri=str(tmp_path), format="focus"), D)
    usage = items.filter(pl.col("line_item_type") == "Usage").sort("usage_type")
    discounts = items.filter(pl.col("line_item_type") == "Discount").sort("usage_type")
    assert usage["unblended_cost_usd"].to_list() == pytest.approx([3.00, 0.08])  # sorted: USE1-MP… first
    assert discounts["unblended_cost_usd"].to_list() == pytest.approx([-0.30, -0.008])
    # usage + discounts = BilledCost: $0.08 − $0.008 + $3.00 − $0.30 = $2.772 = $0.072 + $2.70
    assert items["unblended_cost_usd"].sum() == pytest.approx(0.072 + 2.70)
    nova = usage.filter(pl.col("usage_type") == "USE1-NovaPro-input-tokens").row(0, named=True)
    assert {t["key"]: t["value"] for t in nova["tags"]} == {"cost_center": "search", "application": "docs-bot"}
    claude = usage.filter(pl.col("usage_type").str.starts_with("USE1-MP")).row(0, named=True)
    assert claude["tags"] == [] and claude["tokens"] == 1_000_000

    # The estimate ($3.00 at the catalog's $0.003/1K) meets the list-equivalent cost: matched, the discount is a
    # line of its own beside the match, never a price mismatch.
    m1 = "anthropic.claude-3-haiku-20240307-v1:0"
    recon = reconcile(priced_df([inv(input_tokens=1_000_000, cost=3.0, base_model_id=m1)]), items, TOL, AS_OF)
    row = recon.filter(pl.col("base_model_id") == m1).row(0, named=True)
    assert row["status"] == "matched"
    beside = non_usage_summary(items)
    assert beside.filter(pl.col("line_item_type") == "Discount")["cost_usd"].sum() == pytest.approx(-0.308)


# --- rate tolerance, wording, images, unsplit geo ---------------------------------------------------------------


def test_rate_change_on_a_small_bucket_is_a_price_mismatch() -> None:
    # 1,000 tokens: catalog $0.003/1K → $0.003; billed $0.0033/1K → $0.0033 (+10%). The $0.0003 gap is far inside
    # the $0.01 cost tolerance, but the rate differs by 10% > 0.5%: a price change shows at any amount.
    r = only(
        reconcile(
            priced_df([inv(input_tokens=1_000, cost=0.003)]),
            billing_df([bill(tokens=1_000, unblended_cost_usd=0.0033)]),
            TOL,
            AS_OF,
        )
    )
    assert r["status"] == "price_mismatch"
    assert "billed rate is $0.0033/1K vs catalog $0.0030/1K (+10.0%)" in r["explanation"]
    assert "$0.0003 over the estimate" in r["explanation"]
    # Within 0.5%: $0.003015 billed is +0.5% exactly (inclusive) → matched.
    ok = only(
        reconcile(
            priced_df([inv(input_tokens=1_000, cost=0.003)]),
            billing_df([bill(tokens=1_000, unblended_cost_usd=0.003015)]),
            TOL,
            AS_OF,
        )
    )
    assert ok["status"] == "matched"


def test_negative_delta_reads_as_under_the_estimate() -> None:
    # 1,000,000 tokens: estimated $3.00 ($0.003/1K), billed $2.67 ($0.00267/1K): delta −$0.33.
    r = only(
        reconcile(
            priced_df([inv(input_tokens=1_000_000, cost=3.0)]),
            billing_df([bill(tokens=1_000_000, unblended_cost_usd=2.67)]),
            TOL,
            AS_OF,
        )
    )
    assert r["status"] == "price_mismatch"
    assert r["cost_delta_usd"] == pytest.approx(-0.33)
    assert "$0.33 under the estimate" in r["explanation"] and "$-" not in r["explanation"]


def test_images_are_reconciled_at_their_per_image_price() -> None:
    canvas = "amazon.nova-canvas-v1:0"
    # 4 images × $0.04 = $0.16 estimated; the bill charges 4 images $0.16.
    logs = [inv(model_id=canvas, base_model_id=canvas, image_count=2, image_cost_usd=0.08, cost=0.0) for _ in range(2)]
    bills = [
        bill(
            base_model_id=canvas,
            usage_kind="image",
            usage_type="USE1-NovaCanvas-T2I-1024-Standard",
            tokens=None,
            usage_amount=4.0,
            pricing_unit="images",
            unblended_cost_usd=0.16,
        )
    ]
    r = only(reconcile(priced_df(logs), billing_df(bills), TOL, AS_OF))
    assert (r["usage_kind"], r["status"]) == ("image", "matched")
    assert r["estimated_cost_usd"] == pytest.approx(0.16)


def test_bill_without_geo_split_meets_the_geo_calls() -> None:
    # Logged: 1,000 geo + 500 in-Region input tokens at $0.003/1K = $0.0045. The bill has one in-Region row of
    # 1,500 tokens ($0.0045) and no resource id, so it cannot tell geo from in-Region: one matched row, not a
    # missing_in_bill (geo) beside an under_logged (in-Region).
    logs = [inv(pricing_routing="geo", input_tokens=1_000, cost=0.003), inv(input_tokens=500, cost=0.0015)]
    r = only(reconcile(priced_df(logs), billing_df([bill(tokens=1_500, unblended_cost_usd=0.0045)]), TOL, AS_OF))
    assert (r["routing"], r["status"], r["logged_tokens"]) == ("in_region", "matched", 1_500)
    assert "geo and in-Region calls are compared together" in r["explanation"]
    # With a resource id on the bill row, geo stays its own bucket.
    rid = "arn:aws:bedrock:us-east-1:111122223333:foundation-model/" + "anthropic.claude-3-haiku-20240307-v1:0"
    split = reconcile(
        priced_df(logs), billing_df([bill(tokens=1_500, unblended_cost_usd=0.0045, resource_id=rid)]), TOL, AS_OF
    )
    assert sorted(split["routing"].to_list()) == ["geo", "in_region"]


# --- cache TTLs and context tiers in the key --------------------------------------------------------------------


def _with_round2(rows: list[dict[str, Any]], **extra: list[Any]) -> pl.DataFrame:
    """Priced calls with the log side's shape-dependent columns (cache-write TTL split, context tier)."""
    return priced_df(rows).with_columns(pl.Series(k, v) for k, v in extra.items())


def test_five_minute_and_one_hour_writes_reconcile_apart() -> None:
    # Sonnet 4.5, in-Region (+10%): input $0.0033/1K; 5-minute write 1.25× = $0.004125/1K; 1-hour write 2× =
    # $0.0066/1K. One call: 20,000 5-minute + 30,000 1-hour writes → $0.0825 + $0.198 = $0.2805.
    call = inv(
        model_id=SONNET45,
        base_model_id=SONNET45,
        cache_write_input_tokens=50_000,
        cache_write_cost_usd=0.2805,
        cost=0.0,
    )
    logs = _with_round2(
        [call], cache_write_1h_input_tokens=[30_000], cache_write_1h_cost_usd=[0.198], context_tier=["standard"]
    )
    bills = [
        bill(
            base_model_id=SONNET45, usage_kind="cache_write", cache_ttl="5m", tokens=20_000, unblended_cost_usd=0.0825
        ),
        bill(
            base_model_id=SONNET45, usage_kind="cache_write_1h", cache_ttl="1h", tokens=30_000, unblended_cost_usd=0.198
        ),
    ]
    out = reconcile(logs, billing_df(bills), TOL, AS_OF)
    got = {
        r["usage_kind"]: (r["logged_tokens"], r["estimated_cost_usd"], r["status"]) for r in out.iter_rows(named=True)
    }
    assert got["cache_write"] == (20_000, pytest.approx(0.0825), "matched")
    assert got["cache_write_1h"] == (30_000, pytest.approx(0.198), "matched")


def test_ttl_gap_never_advises_a_price_override() -> None:
    # A log that does not split TTLs (no 1-hour columns yet): all 50,000 writes count as 5-minute ($0.20625 at
    # $0.004125/1K). The bill splits 20,000 5-minute and 30,000 1-hour writes.
    call = inv(
        model_id=SONNET45,
        base_model_id=SONNET45,
        cache_write_input_tokens=50_000,
        cache_write_cost_usd=0.20625,
        cost=0.0,
    )
    bills = [
        bill(base_model_id=SONNET45, usage_kind="cache_write", tokens=20_000, unblended_cost_usd=0.0825),
        bill(base_model_id=SONNET45, usage_kind="cache_write_1h", tokens=30_000, unblended_cost_usd=0.198),
    ]
    out = reconcile(priced_df([call]), billing_df(bills), TOL, AS_OF)
    assert {r["usage_kind"]: r["status"] for r in out.iter_rows(named=True)} == {
        "cache_write": "over_logged",
        "cache_write_1h": "missing_in_logs",
    }
    for text in out["explanation"]:
        assert "does not split writes by TTL" in text and "pricing override" not in text


def test_long_context_calls_meet_long_context_bill_rows() -> None:
    # Sonnet 4.5 above 200K input: 2× input. 250,000 tokens × $0.0066/1K = $1.65 on both sides.
    call = inv(model_id=SONNET45, base_model_id=SONNET45, input_tokens=250_000, cost=1.65)
    logs = _with_round2([call], context_tier=["long"])
    billed = bill(
        base_model_id=SONNET45,
        context_tier="long",
        usage_type="USE1-MP:USE1_input_tokens_long_ctx_standard-Units",
        tokens=250_000,
        unblended_cost_usd=1.65,
    )
    r = only(reconcile(logs, billing_df([billed]), TOL, AS_OF))
    assert (r["context_tier"], r["status"]) == ("long", "matched")
    # Without the log side's column every call is `standard`: the long bill row is then its own bucket.
    out = reconcile(priced_df([call]), billing_df([billed]), TOL, AS_OF)
    assert sorted(out["context_tier"].to_list()) == ["long", "standard"]


# --- chargeback ------------------------------------------------------------------------------------------------


def test_one_unpriced_call_does_not_flip_the_bucket() -> None:
    # Bucket billed $10.00. alice: 1,000,000 priced tokens, $3.00 estimated. bob: 1,000,000 priced tokens, $1.00.
    # carol: one unpriced call of 10 tokens. Effective rate = $4.00 / 2,000,000 = $0.000002/token → carol 10 ×
    # 0.000002 = $0.00002. Weights: 3 / 4.00002, 1 / 4.00002, 0.00002 / 4.00002.
    logs = [
        inv(user="alice", input_tokens=1_000_000, cost=3.0),
        inv(user="bob", input_tokens=1_000_000, cost=1.0),
        inv(user="carol", cache_write_input_tokens=10, priced=False),
    ]
    cb = chargeback(priced_df(logs), billing_df([bill(tokens=2_000_010, unblended_cost_usd=10.0)]))
    by_user = dict(zip(cb["user"], cb["billed_cost_usd"], strict=True))
    assert by_user["alice"] == pytest.approx(10 * 3 / 4.00002)
    assert by_user["bob"] == pytest.approx(10 * 1 / 4.00002)
    assert by_user["carol"] == pytest.approx(10 * 0.00002 / 4.00002)
    assert sum(by_user.values()) == pytest.approx(10.0)


def test_chargeback_rounded_to_cents_sums_to_the_invoice() -> None:
    # $10.00 over three equal callers: 3.3333… each. Floors 333 + 333 + 333 = 999 cents; the 1 cent left goes to
    # the largest remainder (ties broken by the keys): 3.34 + 3.33 + 3.33 = 10.00 exactly.
    logs = [inv(user=u, input_tokens=1_000, cost=0.003) for u in ("ann", "ben", "cat")]
    bills = [bill(tokens=3_000, unblended_cost_usd=10.0)]
    cb = chargeback(priced_df(logs), billing_df(bills), round_cents=True)
    assert sorted(cb["billed_cost_usd"].to_list()) == [3.33, 3.33, 3.34]
    assert round(sum(cb["billed_cost_usd"]) * 100) == 1000
    assert cb["share"].sum() == pytest.approx(1.0)


def test_round_to_cents_keeps_every_day_and_account_whole() -> None:
    # 7 rows of $1.4285714… ($10 / 7): floors 142 × 7 = 994 cents; 6 cents go to 6 rows → 1.43 × 6 + 1.42 = 10.00
    rows = pl.DataFrame(
        {
            "date": [D] * 7,
            "account_id": [ACCT] * 7,
            "cost_center": [f"cc{i}" for i in range(7)],
            "application": ["a"] * 7,
            "user": ["u"] * 7,
            "estimated_cost_usd": [0.0] * 7,
            "billed_cost_usd": [10 / 7] * 7,
        }
    )
    out = round_to_cents(rows)
    assert sorted(out["billed_cost_usd"].to_list()) == [1.42] + [1.43] * 6
    assert round(out["billed_cost_usd"].sum(), 2) == 10.0


def test_provisioned_cost_goes_to_its_callers_then_owner_then_unallocated() -> None:
    # $1,452 of PT on the ARN; alice used 900,000 tokens and bob 300,000 → 75% / 25% = $1,089 / $363.
    logs = [
        pt_call(600_000, 300_000, 9, user="alice"),
        pt_call(200_000, 100_000, 10, user="bob", cost_center="ops"),
    ]
    cb = chargeback(priced_df(logs), billing_df([pt_bill()]))
    by_user = dict(zip(cb["user"], cb["billed_cost_usd"], strict=True))
    assert by_user == {"alice": pytest.approx(1089.0), "bob": pytest.approx(363.0)}

    # No caller that day: the config's tags name the owner (same key lists as request metadata).
    models = {PT_ARN: ProvisionedModel(model_id=NOVA2, tags={"costCenter": "search", "applicationId": "ranker"})}
    keys = {"cost_center": ["costCenter"], "application": ["applicationId"], "user": ["userId"]}
    idle = chargeback(priced_df([]), billing_df([pt_bill()]), provisioned_models=models, metadata_keys=keys)
    r = only(idle)
    assert (r["cost_center"], r["application"], r["user"]) == ("search", "ranker", schemas.UNATTRIBUTED)
    assert r["billed_cost_usd"] == pytest.approx(1452.0)

    nobody = only(chargeback(priced_df([]), billing_df([pt_bill()])))
    assert nobody["cost_center"] == schemas.UNALLOCATED and nobody["billed_cost_usd"] == pytest.approx(1452.0)


def test_chargeback_conserves_the_invoice_with_pt_and_tokens_to_the_cent() -> None:
    logs = [
        inv(user="alice", input_tokens=123_457, cost=0.370371),
        inv(user="bob", input_tokens=76_543, cost=0.229629),
        inv(user="carol", input_tokens=1, priced=False),
        pt_call(1_000, 0, 3, user="dave"),
    ]
    bills = [bill(tokens=200_001, unblended_cost_usd=0.61), pt_bill(unblended_cost_usd=1452.0)]
    cb = chargeback(priced_df(logs), billing_df(bills), round_cents=True)
    # invoice usage = $0.61 + $1,452.00 = $1,452.61; the rounded rows sum to it exactly in cents
    assert round(cb["billed_cost_usd"].sum() * 100) == 145261
    assert all(round(v * 100, 6) == round(v * 100) for v in cb["billed_cost_usd"])
    assert Tolerances().round_cents is False


def test_deliberately_other_rows_are_explained_not_sent_to_the_name_map() -> None:
    note = parse_usage_type("USE1-cohere.rerank-english-v3-search-units").note
    row = bill(
        base_model_id=None,
        usage_kind="other",
        usage_type="USE1-cohere.rerank-english-v3-search-units",
        tokens=None,
        usage_amount=12.0,
        pricing_unit="Units",
        unblended_cost_usd=0.24,
        classification_note=note,
    )
    r = only(reconcile(priced_df([]), billing_df([row]), TOL, AS_OF))
    assert r["status"] == "missing_in_logs"
    assert "rerank search units" in r["explanation"] and "billing name map" not in r["explanation"]


def test_latency_optimized_overflow_is_explained() -> None:
    # 1,000 latency-optimized tokens logged ($0.001/1K); the bill shows them at Standard (quota exceeded).
    logs = [inv(pricing_tier="latency_optimized", input_tokens=1_000, cost=0.001)]
    out = reconcile(priced_df(logs), billing_df([bill(tokens=1_000, unblended_cost_usd=0.0008)]), TOL, AS_OF)
    lat = out.filter(pl.col("tier") == "latency_optimized").row(0, named=True)
    assert lat["status"] == "missing_in_bill"
    assert "billed at Standard, which the log cannot show" in lat["explanation"]
