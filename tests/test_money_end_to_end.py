"""Shape-dependent prices end to end: every money case, through `bedrock-ledger run` on one day of logs in
Bedrock's S3 layout and a CUR 2.0 Parquet bill shaped as AWS writes it (`data/BILLING_PERIOD=YYYY-MM/…`).

One CLI run serves the whole module (module-scoped fixture); each test reads the written Parquet tables and checks
one figure of the list, with the arithmetic beside it. Rates are the bundled catalog's
(docs/formats/pricing-rules.md §3.4-§3.6); the bill's rates are what AWS would charge for the same usage.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import schemas, warehouse
from pipeline.cli import run_cli
from pipeline.config import CONFIG_ENV, load_config
from tests.helpers import gz_lines, log_key, make_record, write_config

pytestmark = pytest.mark.slow  # one whole CLI run per module, shared by its tests

DAY = "2026-03-10"
ACCT = "111122223333"
REGION = "us-east-1"
SONNET45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA2 = "amazon.nova-2-lite-v1:0"
PT_ARN = f"arn:aws:bedrock:{REGION}:{ACCT}:provisioned-model/abc123xyz"
IDLE_ARN = f"arn:aws:bedrock:{REGION}:{ACCT}:provisioned-model/idle0000zz"
MP_SONNET = "Claude Sonnet 4.5 (Amazon Bedrock Edition)"
MP_CODE = "8ak2v0bq3z1m5x7c9d4e6f0gh"  # an opaque Marketplace product code, as CUR 2.0 shows them


def _who(user: str, cost_center: str) -> dict[str, Any]:
    """Identity and request metadata of a caller (the default metadata keys `userId` / `costCenter`)."""
    return {
        "identity": {"arn": f"arn:aws:sts::{ACCT}:assumed-role/app/{user}"},
        "requestMetadata": {"userId": user, "costCenter": cost_center},
    }


def _records() -> list[dict[str, Any]]:
    t = f"{DAY}T10:%02d:00Z"
    return [
        # (1) long context: in-Region Sonnet 4.5, 250K input + 2K output tokens (InvokeModel, Anthropic body).
        make_record(
            "r-long",
            t % 0,
            operation="InvokeModel",
            modelId=SONNET45,
            input={"inputTokenCount": 250_000, "inputBodyJson": {"anthropic_version": "bedrock-2023-05-31"}},
            output={
                "outputTokenCount": 2_000,
                "outputBodyJson": {
                    "usage": {"input_tokens": 250_000, "output_tokens": 2_000},
                    "stop_reason": "end_turn",
                },
            },
            **_who("ann", "research"),
        ),
        # (2) cache TTLs: global Sonnet 4.5 via Converse, 20K 5-minute + 30K 1-hour writes (usage.cacheDetails).
        make_record(
            "r-ttl",
            t % 1,
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
            **_who("ann", "research"),
        ),
        # (3) Provisioned Throughput: calls logged under the provisioned-model ARN (alice 900K tokens, bob 300K).
        make_record(
            "r-pt-alice",
            t % 2,
            modelId=PT_ARN,
            input={"inputTokenCount": 600_000},
            output={"outputTokenCount": 300_000, "outputBodyJson": {"stopReason": "end_turn"}},
            **_who("alice", "search"),
        ),
        make_record(
            "r-pt-bob",
            f"{DAY}T15:00:00Z",
            modelId=PT_ARN,
            input={"inputTokenCount": 200_000},
            output={"outputTokenCount": 100_000, "outputBodyJson": {"stopReason": "end_turn"}},
            **_who("bob", "ops"),
        ),
        # (4) an image: Titan Image Generator G1, 2 premium 512x512 variations of an image. (Nova Canvas is
        # not used: the catalog has no flat per-image rate for it, its price depends on size and quality.)
        make_record(
            "r-image",
            t % 3,
            operation="InvokeModel",
            modelId="amazon.titan-image-generator-v1",
            input={
                "inputTokenCount": 0,
                "inputBodyJson": {
                    "taskType": "IMAGE_VARIATION",
                    "imageVariationParams": {"text": "a lighthouse", "images": ["<base64>"]},
                    "imageGenerationConfig": {"numberOfImages": 2, "quality": "premium", "width": 512, "height": 512},
                },
            },
            output={"outputTokenCount": 0},
            **_who("dora", "design"),
        ),
        # (5) a small bucket: Nova Micro, 10,000 input + 100 output tokens.
        make_record(
            "r-micro",
            t % 4,
            modelId="amazon.nova-micro-v1:0",
            input={"inputTokenCount": 10_000},
            output={"outputTokenCount": 100, "outputBodyJson": {"stopReason": "end_turn"}},
            **_who("eve", "support"),
        ),
        # (6) Titan Text Express: carl 1M input tokens, bea 1M output tokens, and cid one call whose 10
        # cache-write tokens have no catalog rate (Titan lists none), so that call is unpriced.
        make_record(
            "r-titan-in",
            t % 5,
            modelId="amazon.titan-text-express-v1",
            input={"inputTokenCount": 1_000_000},
            output={"outputTokenCount": 0, "outputBodyJson": {"stopReason": "end_turn"}},
            **_who("carl", "sales"),
        ),
        make_record(
            "r-titan-out",
            t % 6,
            modelId="amazon.titan-text-express-v1",
            input={"inputTokenCount": 0},
            output={"outputTokenCount": 1_000_000, "outputBodyJson": {"stopReason": "end_turn"}},
            **_who("bea", "legal"),
        ),
        make_record(
            "r-titan-unpriced",
            t % 7,
            modelId="amazon.titan-text-express-v1",
            input={"inputTokenCount": 0, "cacheWriteInputTokenCount": 10},
            output={"outputTokenCount": 0, "outputBodyJson": {"stopReason": "end_turn"}},
            **_who("cid", "ops"),
        ),
    ]


def _bill_rows() -> list[dict[str, Any]]:
    """(usage_type, amount, unit, rate, cost, resource_id, marketplace?) of the day's bill, with the arithmetic."""
    pt = "USE1-Nova2.0Lite-ProvisionedThroughput-NoCommit-ModelUnits"
    rows = [
        # (1) long context, Marketplace units = 1M tokens: 0.25 × $6.60 = $1.65; 0.002 × $24.75 = $0.0495.
        ("USE1-MP:USE1_input_tokens_long_ctx_standard-Units", 0.25, "Units", 6.6, 1.65, "", True),
        ("USE1-MP:USE1_output_tokens_long_ctx_standard-Units", 0.002, "Units", 24.75, 0.0495, "", True),
        # (2) global Sonnet 4.5: 0.001 × $3 = $0.003; 0.00032 × $15 = $0.0048; 5m writes 0.02 × $3.75 = $0.075;
        # 1h writes 0.03 × $6 = $0.18.
        ("USE1-MP:USE1_InputTokenCount_Global-Units", 0.001, "Units", 3.0, 0.003, "", True),
        ("USE1-MP:USE1_OutputTokenCount_Global-Units", 0.00032, "Units", 15.0, 0.0048, "", True),
        ("USE1-MP:USE1_CacheWriteInputTokenCount_Global-Units", 0.02, "Units", 3.75, 0.075, "", True),
        ("USE1-MP:USE1_CacheWrite1hInputTokenCount_Global-Units", 0.03, "Units", 6.0, 0.18, "", True),
        # (3) PT: one model unit all day on each ARN, 24 hours × $60.50 = $1,452.00 each.
        (pt, 24.0, "hour", 60.5, 1452.0, PT_ARN, False),
        (pt, 24.0, "hour", 60.5, 1452.0, IDLE_ARN, False),
        # (4) 2 images × $0.008 = $0.016.
        ("USE1-TitanImageGeneratorG1-I2I-512-Premium", 2.0, "image", 0.008, 0.016, "", False),
        # (5) Nova Micro billed at $0.0000385/1K (+10% over the catalog's $0.000035): 10 × 0.0000385 = $0.000385;
        # output at the catalog rate 0.1 × $0.00014 = $0.000014.
        ("USE1-NovaMicro-input-tokens", 10.0, "1K tokens", 0.0000385, 0.000385, "", False),
        ("USE1-NovaMicro-output-tokens", 0.1, "1K tokens", 0.00014, 0.000014, "", False),
        # (6) Titan Text Express: 1,000 × $0.0002 = $0.20 input; 1,000 × $0.0006 = $0.60 output.
        ("USE1-TitanTextG1-Express-input-tokens", 1000.0, "1K tokens", 0.0002, 0.2, "", False),
        ("USE1-TitanTextG1-Express-output-tokens", 1000.0, "1K tokens", 0.0006, 0.6, "", False),
    ]
    start = dt.datetime.fromisoformat(DAY)
    out = []
    for usage_type, amount, unit, rate, cost, rid, mp in rows:
        out.append(
            {
                "bill_bill_type": "Anniversary",
                "bill_billing_entity": "AWS Marketplace" if mp else "AWS",
                "bill_billing_period_start_date": dt.datetime(2026, 3, 1),
                "bill_billing_period_end_date": dt.datetime(2026, 4, 1),
                "bill_invoice_id": "",
                "bill_invoicing_entity": "Amazon Web Services, Inc.",
                "bill_payer_account_id": ACCT,
                "identity_line_item_id": f"li-{len(out):04d}",
                "identity_time_interval": f"{DAY}T00:00:00Z/2026-03-11T00:00:00Z",
                "line_item_usage_account_id": ACCT,
                "line_item_line_item_type": "Usage",
                "line_item_usage_start_date": start,
                "line_item_usage_end_date": start + dt.timedelta(days=1),
                "line_item_product_code": MP_CODE if mp else "AmazonBedrock",
                "line_item_usage_type": usage_type,
                "line_item_operation": "Usage",
                "line_item_availability_zone": "",
                "line_item_resource_id": rid,
                "line_item_usage_amount": amount,
                "line_item_currency_code": "USD",
                "line_item_unblended_rate": f"{rate:.12g}",  # a string in CUR 2.0
                "line_item_unblended_cost": cost,
                "line_item_net_unblended_cost": cost,
                "line_item_line_item_description": f"{usage_type} on {DAY}",
                "line_item_legal_entity": "Anthropic, PBC" if mp else "Amazon Web Services, Inc.",
                "product_region_code": REGION,
                "product_servicecode": "" if mp else "AmazonBedrock",
                "pricing_unit": unit,
                "product": [("product_name", MP_SONNET if mp else "Amazon Bedrock"), ("region", REGION)],
                "resource_tags": [],
            }
        )
    return out


def _write_bill(root: Path) -> None:
    rows = _bill_rows()
    str_map = pa.map_(pa.string(), pa.string())
    columns: dict[str, pa.Array] = {}
    for name in rows[0]:
        values = [r[name] for r in rows]
        if name in ("product", "resource_tags"):
            columns[name] = pa.array(values, type=str_map)
        elif isinstance(values[0], dt.datetime):
            columns[name] = pa.array(values, type=pa.timestamp("ms"))
        elif isinstance(values[0], float):
            columns[name] = pa.array(values, type=pa.float64())
        else:
            columns[name] = pa.array(values, type=pa.string())
    folder = root / "cur2" / "data" / "BILLING_PERIOD=2026-03"
    folder.mkdir(parents=True)
    pq.write_table(pa.table(columns), folder / "cur2-00001.snappy.parquet")


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, pl.DataFrame]]:
    """One `bedrock-ledger run` of DAY over the logs and the bill; the day's tables as written."""
    tmp = tmp_path_factory.mktemp("money")
    logs = tmp / "logs"
    key = logs / log_key(ACCT, REGION, f"{DAY}T10:05:00")
    key.parent.mkdir(parents=True)
    key.write_bytes(gz_lines(_records()))
    _write_bill(tmp / "bill")
    home = tmp / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    config = write_config(
        tmp,
        start_date="2026-03-01",
        sources={"invocation_logs": {"s3": [str(logs)]}, "billing": [{"uri": str(tmp / "bill"), "format": "cur2"}]},
        attribution={
            "provisioned_models": {
                PT_ARN: {"model_id": NOVA2, "tags": {"costCenter": "search"}},
                IDLE_ARN: {"model_id": NOVA2, "tags": {"costCenter": "ranking", "applicationId": "reranker"}},
            }
        },
    )
    saved = {k: os.environ.get(k) for k in ("DAGSTER_HOME", CONFIG_ENV)}
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        code = run_cli(["run", "-c", str(config), "--start", DAY, "--end", DAY])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert code == 0
    wh = load_config(config).warehouse
    yield {
        t: warehouse.read_partition(wh, t, DAY)
        for t in ("priced_invocations", "billing_line_items", "cost_reconciliation", "chargeback")
    }


def _recon(tables: dict[str, pl.DataFrame], **where: Any) -> dict[str, Any]:
    rows = tables["cost_reconciliation"].filter(*[pl.col(k) == v for k, v in where.items()])
    assert rows.height == 1, (where, tables["cost_reconciliation"])
    return rows.row(0, named=True)


def _priced(tables: dict[str, pl.DataFrame], request_id: str) -> dict[str, Any]:
    return tables["priced_invocations"].filter(pl.col("request_id") == request_id).row(0, named=True)


def test_long_context_call_is_priced_and_reconciled(tables: dict[str, pl.DataFrame]) -> None:
    # In-Region Sonnet 4.5 above 200K: 250000 × $0.0066/1K + 2000 × $0.02475/1K = 1.65 + 0.0495 = $1.6995
    # (the standard tier would be 250000 × 0.0033/1K + 2000 × 0.0165/1K = $0.858).
    r = _priced(tables, "r-long")
    assert (r["context_tier"], r["total_cost_usd"]) == ("long", pytest.approx(1.6995, abs=1e-9))
    # The bill's long-context input row (0.25M tokens, $1.65) meets the call: matched, not two half-buckets.
    rec = _recon(tables, base_model_id=SONNET45, context_tier="long", usage_kind="input")
    assert (rec["status"], rec["logged_tokens"]) == ("matched", 250_000)
    assert rec["estimated_cost_usd"] == pytest.approx(1.65) and rec["billed_cost_usd"] == pytest.approx(1.65)
    out = _recon(tables, base_model_id=SONNET45, context_tier="long", usage_kind="output")
    assert out["status"] == "matched" and out["billed_cost_usd"] == pytest.approx(0.0495)


def test_cache_writes_by_ttl(tables: dict[str, pl.DataFrame]) -> None:
    # Global Sonnet 4.5: 1000 × 0.003/1K + 320 × 0.015/1K + 20000 × 0.00375/1K + 30000 × 0.006/1K
    # = 0.003 + 0.0048 + 0.075 + 0.18 = $0.2628 (all 50K at the 5-minute rate would be $0.1953).
    r = _priced(tables, "r-ttl")
    assert r["total_cost_usd"] == pytest.approx(0.2628, abs=1e-9)
    assert (r["cache_write_1h_input_tokens"], r["cache_write_1h_cost_usd"]) == (30_000, pytest.approx(0.18))
    five = _recon(tables, base_model_id=SONNET45, usage_kind="cache_write", routing="global")
    hour = _recon(tables, base_model_id=SONNET45, usage_kind="cache_write_1h", routing="global")
    # 5m: 20,000 tokens, $0.075 on both sides; 1h: 30,000 tokens, $0.18 on both sides.
    assert (five["status"], five["logged_tokens"], five["billed_tokens"]) == ("matched", 20_000, 20_000)
    assert five["billed_cost_usd"] == pytest.approx(0.075) and five["estimated_cost_usd"] == pytest.approx(0.075)
    assert (hour["status"], hour["logged_tokens"], hour["billed_tokens"]) == ("matched", 30_000, 30_000)
    assert hour["billed_cost_usd"] == pytest.approx(0.18) and hour["estimated_cost_usd"] == pytest.approx(0.18)


def test_provisioned_throughput_is_reconciled_by_its_arn(tables: dict[str, pl.DataFrame]) -> None:
    rec = _recon(tables, usage_kind="provisioned", resource_id=PT_ARN)
    assert (rec["status"], rec["base_model_id"]) == ("matched", NOVA2)
    # 24 model-unit hours × $60.50 = $1,452; served 600K + 300K + 200K + 100K = 1,200,000 tokens;
    # effective $1,452 / 1.2M tokens = $1,210 per 1M tokens.
    assert rec["provisioned_hours"] == 24.0
    assert rec["billed_cost_usd"] == pytest.approx(1452.0)
    assert rec["served_tokens"] == 1_200_000
    assert rec["effective_usd_per_1m_tokens"] == pytest.approx(1210.0)
    # On demand (Nova 2 Lite in-Region $0.00033 / $0.00275 per 1K): 800,000 × 0.00033/1K + 400,000 × 0.00275/1K
    # = 0.264 + 1.1 = $1.364, so the commitment is not paying off at this volume.
    assert rec["on_demand_equivalent_usd"] == pytest.approx(1.364)
    assert "not paying off" in rec["explanation"]
    # The calls never turn into token rows of the ARN (no missing_in_bill of their tokens), and the bill is not
    # `missing_in_logs` ("capacity sat idle").
    nova = tables["cost_reconciliation"].filter(pl.col("base_model_id") == NOVA2)
    assert set(nova["usage_kind"]) == {"provisioned"}
    assert set(nova["status"]) == {"matched", "idle_capacity"}


def test_provisioned_cost_goes_to_its_callers_and_idle_capacity_to_its_owner(tables: dict[str, pl.DataFrame]) -> None:
    cb = tables["chargeback"]
    cost = {r["user"]: r["billed_cost_usd"] for r in cb.iter_rows(named=True)}
    # alice 900,000 / 1,200,000 = 75% → $1,089; bob 300,000 / 1,200,000 = 25% → $363.
    assert cost["alice"] == pytest.approx(1089.0)
    assert cost["bob"] == pytest.approx(363.0)
    # The second ARN is billed 24 hours with no call: idle capacity, charged to its config tags.
    idle = _recon(tables, usage_kind="provisioned", resource_id=IDLE_ARN)
    assert (idle["status"], idle["provisioned_hours"], idle["served_tokens"]) == ("idle_capacity", 24.0, 0)
    owner = cb.filter(pl.col("cost_center") == "ranking").row(0, named=True)
    assert (owner["application"], owner["billed_cost_usd"]) == ("reranker", pytest.approx(1452.0))
    assert cb.filter(pl.col("cost_center") == schemas.UNALLOCATED)["billed_cost_usd"].sum() == pytest.approx(0.0)


def test_image_is_reconciled_at_its_per_image_price(tables: dict[str, pl.DataFrame]) -> None:
    # 2 images × $0.008 = $0.016 estimated and billed.
    assert _priced(tables, "r-image")["total_cost_usd"] == pytest.approx(0.016)
    rec = _recon(tables, usage_kind="image")
    assert rec["base_model_id"] == "amazon.titan-image-generator-v1"
    assert (rec["status"], rec["estimated_cost_usd"], rec["billed_cost_usd"]) == (
        "matched",
        pytest.approx(0.016),
        pytest.approx(0.016),
    )


def test_unit_rate_change_on_a_small_bucket_is_a_price_mismatch(tables: dict[str, pl.DataFrame]) -> None:
    # 10,000 tokens: catalog 10 × $0.000035 = $0.00035, billed $0.000385: $0.000035 apart (far inside the $0.01
    # cost tolerance), but the unit rate is 10% above the catalog's (> 0.5%).
    rec = _recon(tables, base_model_id="amazon.nova-micro-v1:0", usage_kind="input")
    assert rec["status"] == "price_mismatch"
    assert "billed rate is $0.0000385/1K vs catalog $0.0000350/1K (+10.0%)" in rec["explanation"], rec["explanation"]
    assert "$0.0000350 over the estimate" in rec["explanation"], rec["explanation"]


def test_one_unpriced_call_moves_no_other_teams_cost(tables: dict[str, pl.DataFrame]) -> None:
    assert _priced(tables, "r-titan-unpriced")["priced"] is False
    cb = tables["chargeback"]
    cost = {r["user"]: r["billed_cost_usd"] for r in cb.iter_rows(named=True)}
    # Bucket billed $0.80. carl $0.20 and bea $0.60 estimated; cid's 10 unpriced tokens weigh 10 × ($0.80 / 2M
    # tokens) = $0.000004. carl = 0.80 × 0.2 / 0.800004, bea = 0.80 × 0.6 / 0.800004 (token weights would give
    # both $0.40, moving $0.20 from bea to carl).
    assert cost["carl"] == pytest.approx(0.8 * 0.2 / 0.800004)
    assert cost["bea"] == pytest.approx(0.8 * 0.6 / 0.800004)
    assert cost["cid"] == pytest.approx(0.8 * 0.000004 / 0.800004)
    # Nothing is billed for cid's 10 cache-write tokens; the row says they have no price (not "$0.00 estimated").
    gap = _recon(tables, base_model_id="amazon.titan-text-express-v1", usage_kind="cache_write")
    assert gap["status"] == "missing_in_bill" and "(no catalog price)" in gap["explanation"], gap["explanation"]
    # Chargeback sums to the invoice's usage lines to the cent.
    invoice = tables["billing_line_items"]["unblended_cost_usd"].sum()
    assert round(cb["billed_cost_usd"].sum(), 2) == round(invoice, 2)
    assert round(invoice, 2) == round(
        1.65 + 0.0495 + 0.003 + 0.0048 + 0.075 + 0.18 + 2 * 1452 + 0.016 + 0.000399 + 0.8, 2
    )
