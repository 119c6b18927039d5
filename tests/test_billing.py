"""Billing side of reconciliation: usage-type grammar, token units, the export readers, the sample bill.

Parsing cases are the verbatim strings of docs/formats/billing-exports.md §4.2; the readers are tested on
bills written by `pipeline.sample.bill` in each real layout (locally and through moto's S3) and on small
edited copies for the failure modes a real export can have.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.billing import (
    BillingFormatError,
    athena_column_name,
    billing_day,
    billing_line_items_for_day,
    detect_format,
    load_billing_name_map,
    parse_usage_type,
    parse_usage_types,
    tokens_per_unit,
)
from pipeline.billing.model_names import BillingNameMapError
from pipeline.config import BillingSource
from pipeline.sample.bill import EXPORT_NAMES, SIDECAR, write_bill
from pipeline.schemas import BILLING_LINE_ITEMS

D1, D2 = dt.date(2026, 5, 14), dt.date(2026, 5, 15)
A1, A2 = "111122223333", "444455556666"
HAIKU45 = "anthropic.claude-haiku-4-5-20251001-v1:0"
KEY = ["date", "account_id", "region", "base_model_id", "usage_kind", "routing", "tier"]

# ------------------------------------------------------------------------------------------------------------
# Usage-type grammar: every verbatim example of §4.2, with
# "grammar region model-name kind routing tier" ("-" = no model name: Marketplace names it in the product).

VERBATIM = [
    ("USE1-NovaLite-input-tokens", "first_party us-east-1 NovaLite input in_region standard"),
    ("USE1-NovaLite-output-tokens", "first_party us-east-1 NovaLite output in_region standard"),
    ("USE2-NovaLite-input-tokens", "first_party us-east-2 NovaLite input in_region standard"),
    (
        "USE2-TitanEmbeddingV2-Text-input-tokens",
        "first_party us-east-2 TitanEmbeddingV2-Text input in_region standard",
    ),
    (
        "APN1-TitanEmbeddingsG1-Text-input-tokens",
        "first_party ap-northeast-1 TitanEmbeddingsG1-Text input in_region standard",
    ),
    (
        "USE1-TitanTextG1-Express-output-tokens",
        "first_party us-east-1 TitanTextG1-Express output in_region standard",
    ),
    ("USE1-TitanTextLite-input-tokens", "first_party us-east-1 TitanTextLite input in_region standard"),
    ("USE1-NovaPro-output-tokens", "first_party us-east-1 NovaPro output in_region standard"),
    (
        "USE1-NovaPro-cache-read-input-token-count",
        "first_party us-east-1 NovaPro cache_read in_region standard",
    ),
    (
        "USE1-NovaPro-cache-write-input-token-count",
        "first_party us-east-1 NovaPro cache_write in_region standard",
    ),
    ("USE1-Claude4.6Sonnet-input-tokens", "first_party us-east-1 Claude4.6Sonnet input in_region standard"),
    ("USE1-Claude4.6Opus-output-tokens", "first_party us-east-1 Claude4.6Opus output in_region standard"),
    (
        "USE1-Claude4.6Opus-input-tokens-cross-region-global",
        "first_party us-east-1 Claude4.6Opus input global standard",
    ),
    (
        "USE1-Claude4.6Opus-cache-read-input-token-count-cross-region-global",
        "first_party us-east-1 Claude4.6Opus cache_read global standard",
    ),
    (
        "USE1-Claude4Sonnet-cache-read-input-token-count-cross-region-global",
        "first_party us-east-1 Claude4Sonnet cache_read global standard",
    ),
    ("USE1-Claude2.0-input-tokens", "first_party us-east-1 Claude2.0 input in_region standard"),
    ("USE1-Nova2.0Lite-input-tokens-flex", "first_party us-east-1 Nova2.0Lite input in_region flex"),
    (
        "USE1-GPT-OSS-Safeguard-20B-input-tokens-priority",
        "first_party us-east-1 GPT-OSS-Safeguard-20B input in_region priority",
    ),
    ("USE1-Gemma-3-4B-IT-input-tokens-flex", "first_party us-east-1 Gemma-3-4B-IT input in_region flex"),
    ("USE1-MistralSmall-input-tokens-batch", "first_party us-east-1 MistralSmall input in_region batch"),
    (
        "USE1-GPT-OSS-Safeguard-120B-output-tokens-batch",
        "first_party us-east-1 GPT-OSS-Safeguard-120B output in_region batch",
    ),
    ("USE1-gpt-oss-120b-input-tokens-batch", "first_party us-east-1 gpt-oss-120b input in_region batch"),
    (
        "USE1-Nova2.0Lite-input-tokens-cross-region-global-batch",
        "first_party us-east-1 Nova2.0Lite input global batch",
    ),
    (
        "USE1-Nova2.0Pro-text-input-tokens-priority-cross-region-global",
        "first_party us-east-1 Nova2.0Pro input global priority",
    ),
    (
        "USE1-Nova2.0Lite-input-tokens-custom-model",
        "first_party us-east-1 Nova2.0Lite input in_region custom_model",
    ),
    (
        "USE1-Nova2.0Lite-ProvisionedThroughput-NoCommit-ModelUnits",
        "first_party us-east-1 Nova2.0Lite provisioned in_region standard",
    ),
    (
        "USW2-Llama3-1-70B-ProvisionedThroughput-NoCommit-ModelUnits",
        "first_party us-west-2 Llama3-1-70B provisioned in_region standard",
    ),
    ("USE1-NovaCanvas-T2I-1024-Premium", "first_party us-east-1 NovaCanvas image in_region standard"),
    ("USE1-NovaPro-Customization-Training", "first_party us-east-1 NovaPro other in_region standard"),
    ("USE1-Nova2.0Lite-nova-grounding", "first_party us-east-1 Nova2.0Lite other in_region standard"),
    (
        "EU-Qwen3-VL-235B-A22B-input-tokens",
        "first_party eu-west-1 Qwen3-VL-235B-A22B input in_region standard",
    ),
    (
        "EU-Nova2.0Lite-input-tokens-cross-region-global",
        "first_party eu-west-1 Nova2.0Lite input global standard",
    ),
    # the mantle endpoint
    (
        "USE1-openai.gpt-oss-120b-mantle-input-tokens-standard",
        "mantle us-east-1 openai.gpt-oss-120b input in_region standard",
    ),
    (
        "USW2-anthropic.claude-opus-4-8-mantle-cache-write-tokens-global-standard",
        "mantle us-west-2 anthropic.claude-opus-4-8 cache_write global standard",
    ),
    (
        "USW2-anthropic.claude-opus-4-8-mantle-input-tokens-global-standard",
        "mantle us-west-2 anthropic.claude-opus-4-8 input global standard",
    ),
    (
        "USE1-mistral.voxtral-small-24b-2507-mantle-input-tokens-standard",
        "mantle us-east-1 mistral.voxtral-small-24b-2507 input in_region standard",
    ),
    (
        "USE1-xai.grok-4.3-mantle-cache-read-tokens-flex",
        "mantle us-east-1 xai.grok-4.3 cache_read in_region flex",
    ),
    # AWS Marketplace
    ("USW2-MP:USW2_InputTokenCount-Units", "marketplace us-west-2 - input in_region standard"),
    ("USE1-MP:USE1_InputTokenCount-Units", "marketplace us-east-1 - input in_region standard"),
    ("USE1-MP:USE1_OutputTokenCount-Units", "marketplace us-east-1 - output in_region standard"),
    ("USE1-MP:USE1_InputTokenCount_Global-Units", "marketplace us-east-1 - input global standard"),
    ("EU_InputTokenCount", "marketplace eu-west-1 - input in_region standard"),
    ("EUC1_OutputTokenCount", "marketplace eu-central-1 - output in_region standard"),
    ("EUW2_InputTokenCount", "marketplace eu-west-2 - input in_region standard"),
    ("USE1-MP:USE1_CacheReadInputTokenCount-Units", "marketplace us-east-1 - cache_read in_region standard"),
    (
        "USE1-MP:USE1_CacheWrite1hInputTokenCount-Units",
        "marketplace us-east-1 - cache_write_1h in_region standard",
    ),
    ("USE1-MP:USE1_InputTokenCount_Global_Batch-Units", "marketplace us-east-1 - input global batch"),
    ("USE1-MP:USE1_output_tokens_batch-Units", "marketplace us-east-1 - output in_region batch"),
    (
        "USE1-MP:USE1_cache_write_tokens_1h_global_standard-Units",
        "marketplace us-east-1 - cache_write_1h global standard",
    ),
    ("USE1-MP:USE1_input_tokens_standard-Units", "marketplace us-east-1 - input in_region standard"),
    ("USE1-MP:USE1_Reserved_3Month_OutputTPM_Global-Units", "marketplace us-east-1 - other global reserved"),
    (
        "USE1-MP:USE1_ProvisionedThroughput_NoCommit_ModelUnits_Usage-Units",
        "marketplace us-east-1 - provisioned in_region standard",
    ),
    ("USE1-MP:USE1_InputImageCount-Units", "marketplace us-east-1 - image in_region standard"),
    ("USE1-MP:USE1_Cohere_Embed_V4-Units", "marketplace us-east-1 - input in_region standard"),
    ("USE1_input_tokens_standard-Units", "marketplace us-east-1 - input in_region standard"),
    ("USE1_input_tokens_global_standard-Units", "marketplace us-east-1 - input global standard"),
]


@pytest.mark.parametrize(("usage_type", "expected"), VERBATIM)
def test_parse_usage_type_verbatim_examples(usage_type: str, expected: str) -> None:
    p = parse_usage_type(usage_type)
    got = " ".join([p.grammar, str(p.region), p.model_name or "-", p.usage_kind, p.routing, p.tier])
    assert got == expected


@pytest.mark.parametrize(
    ("usage_type", "ttl"),
    [
        ("USE1-NovaPro-cache-write-input-token-count", "5m"),
        ("USE1-MP:USE1_CacheWrite1hInputTokenCount-Units", "1h"),
        ("USE1-MP:USE1_cache_write_tokens_1h_global_standard-Units", "1h"),
        ("USW2-anthropic.claude-opus-4-8-mantle-cache-write-tokens-global-standard", "5m"),
    ],
)
def test_cache_write_ttl(usage_type: str, ttl: str) -> None:
    assert parse_usage_type(usage_type).cache_ttl == ttl


@pytest.mark.parametrize(
    ("resource_id", "routing"),
    [
        # Geo routing shows only in the resource id (§4.5, a verbatim ARN from a real bill).
        (
            "arn:aws:bedrock:eu-west-1:200300400500:inference-profile/eu.anthropic.claude-haiku-4-5-20251001-v1:0",
            "geo",
        ),
        (
            "arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0",
            "geo",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-sonnet-4-6",
            "global",
        ),
        ("arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3d4e5f6", "in_region"),
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0", "in_region"),
        (None, "in_region"),
    ],
)
def test_routing_from_resource_id(resource_id: str | None, routing: str) -> None:
    assert parse_usage_type("USE1-MP:USE1_InputTokenCount-Units", resource_id).routing == routing


def test_usage_type_suffix_wins_over_resource_id() -> None:
    rid = "arn:aws:bedrock:us-east-1:1:inference-profile/us.amazon.nova-2-lite-v1:0"
    assert parse_usage_type("USE1-Nova2.0Lite-input-tokens-cross-region-global", rid).routing == "global"


def test_unrecognised_usage_type_is_kept_as_other() -> None:
    p = parse_usage_type("Widget-Subscription-Fee")
    assert (p.grammar, p.usage_kind, p.region) == ("unknown", "other", None)
    assert parse_usage_type(None).usage_kind == "other"


def test_frame_parser_matches_scalar_parser() -> None:
    cases = [c[0] for c in VERBATIM]
    rid = "arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0"
    df = pl.DataFrame({"usage_type": cases + cases[:3], "resource_id": [None] * len(cases) + [rid] * 3})
    out = parse_usage_types(df)
    assert out.height == df.height
    for row in out.iter_rows(named=True):
        p = parse_usage_type(row["usage_type"], row["resource_id"])
        assert (
            row["usage_kind"],
            row["routing"],
            row["tier"],
            row["model_name"],
            row["usage_type_region"],
        ) == (
            p.usage_kind,
            p.routing,
            p.tier,
            p.model_name,
            p.region,
        )


@pytest.mark.parametrize(
    ("unit", "tokens"),
    [
        ("1K tokens", 1_000),
        ("1M tokens", 1_000_000),
        ("Units", 1_000_000),
        (" 1k Tokens ", 1_000),
        ("hour", None),
        ("", None),
        (None, None),
    ],
)
def test_tokens_per_unit(unit: str | None, tokens: int | None) -> None:
    assert tokens_per_unit(unit) == tokens


@pytest.mark.parametrize(
    ("csv_name", "parquet_name"),
    [
        ("lineItem/UsageType", "line_item_usage_type"),
        ("savingsPlan/SavingsPlanARN", "savings_plan_savings_plan_a_r_n"),
        ("resourceTags/user:CostCenter", "resource_tags_user_cost_center"),
        ("resourceTags/user:costCenter", "resource_tags_user_cost_center"),
        ("lineItem/LegalEntity", "line_item_legal_entity"),
        ("product/regionCode", "product_region_code"),
        ("pricing/unit", "pricing_unit"),
    ],
)
def test_athena_column_names(csv_name: str, parquet_name: str) -> None:
    assert athena_column_name(csv_name) == parquet_name


# ------------------------------------------------------------------------------------------------------------
# The billing-name map


def test_bundled_map_is_explicit_and_sourced() -> None:
    m = load_billing_name_map()
    assert m.lookup("usage_type_model", "NovaLite") == "amazon.nova-lite-v1:0"
    assert m.lookup("marketplace_product", "Claude Haiku 4.5 (Amazon Bedrock Edition)") == HAIKU45
    assert m.lookup("usage_type_model", "Nova") is None  # never a near match
    assert m.rows["source"].str.len_chars().min() > 0


def test_map_rejects_duplicates(tmp_path: Path) -> None:
    extra = tmp_path / "names.csv"
    extra.write_text(
        "billing_name,name_kind,base_model_id,source\n"
        "Foo,usage_type_model,acme.foo-v1,seen in our CUR\n"
        "Foo,usage_type_model,acme.foo-v2,seen in our CUR\n"
    )
    with pytest.raises(BillingNameMapError, match="listed more than once"):
        load_billing_name_map(str(extra))


# ------------------------------------------------------------------------------------------------------------
# Sample bills read back in every format


# Per day and account: region, model, kind, routing, tier, tokens (images: count), $ per 1K (None = unpriced),
# system profile id.
DAILY_USAGE: list[tuple[Any, ...]] = [
    ("us-east-1", "amazon.nova-lite-v1:0", "input", "in_region", "standard", 1_523_456, 0.00006, None),
    ("us-east-1", "amazon.nova-lite-v1:0", "output", "in_region", "standard", 210_500, 0.00024, None),
    ("us-east-1", HAIKU45, "input", "geo", "standard", 812_345, 0.0011, "us." + HAIKU45),
    ("us-east-1", HAIKU45, "cache_read", "geo", "standard", 400_000, 0.00011, "us." + HAIKU45),
    ("us-east-1", HAIKU45, "cache_write", "geo", "standard", 50_000, 0.001375, "us." + HAIKU45),
    ("eu-west-1", "anthropic.claude-sonnet-4-6", "output", "global", "standard", 50_000, 0.015, None),
    ("us-west-2", "meta.llama3-1-8b-instruct-v1:0", "input", "in_region", "batch", 2_000_000, 0.00011, None),
    ("us-east-1", "amazon.nova-canvas-v1:0", "image", "in_region", "standard", 12, 40.0, None),
    ("us-east-1", "acme.mystery-model-v1:0", "input", "in_region", "standard", 1_000, None, None),
]
USAGE_COLUMNS = ["date", "account_id", *KEY[2:], "tokens", "cost_usd", "profile_id"]


def usage_frame() -> pl.DataFrame:
    """True usage for two days and two accounts: Marketplace Claude (geo), AWS-billed Claude (global), Nova,
    batch Llama, a Nova Canvas image count, and a model with no billing name."""
    rows = [
        (
            day,
            acct,
            region,
            model,
            kind,
            routing,
            tier,
            n,
            None if per_1k is None else n / 1000 * per_1k,
            prof,
        )
        for day in (D1, D2)
        for acct in (A1, A2)
        for region, model, kind, routing, tier, n, per_1k, prof in DAILY_USAGE
    ]
    return pl.DataFrame(rows, schema=USAGE_COLUMNS, orient="row")


def read_days(uri: str, fmt: str = "auto", storage_options: dict[str, Any] | None = None) -> pl.DataFrame:
    src = BillingSource(uri=uri, format=fmt)  # type: ignore[arg-type]
    return pl.concat([billing_line_items_for_day(src, d, storage_options) for d in (D1, D2)])


def expected_from_usage(usage: pl.DataFrame, injected: list[dict[str, Any]]) -> dict[tuple, tuple[float, float]]:
    """Per bucket: (quantity, cost) the bill should carry, given the usage and what was injected."""
    out: dict[tuple, tuple[float, float]] = {}
    for r in usage.iter_rows(named=True):
        key = tuple(r[k] for k in KEY)
        cost = r["cost_usd"] if r["cost_usd"] is not None else None
        out[key] = (float(r["tokens"]), cost)  # type: ignore[assignment]

    def k(d: dict[str, Any]) -> tuple:
        return tuple(dt.date.fromisoformat(d[c]) if c == "date" else d[c] for c in KEY)

    for item in injected:
        for key in map(k, item.get("keys", [])):
            if item["kind"] == "dropped_from_bill":
                out.pop(key)
            elif item["kind"] == "extra_billed_input_tokens":
                qty, cost = out[key]
                out[key] = (round(qty * 1.1), cost * 1.1)
            elif item["kind"] == "fewer_billed_output_tokens":
                qty, cost = out[key]
                out[key] = (round(qty * 0.85), cost * 0.85)
            elif item["kind"] == "price_change":
                qty, cost = out[key]
                out[key] = (qty, cost * 1.2)
    return {key: v for key, v in out.items() if key[3] != "acme.mystery-model-v1:0"}


FORMATS = [("cur", "csv"), ("cur", "parquet"), ("cur2", "parquet"), ("focus", "parquet")]


@pytest.mark.parametrize(("fmt", "layout"), FORMATS)
def test_generated_bill_reads_back(tmp_path: Path, fmt: str, layout: str) -> None:
    usage = usage_frame()
    files = write_bill(str(tmp_path), usage, fmt, cur_layout=layout)  # type: ignore[arg-type]
    assert files[-1].endswith(SIDECAR) and all(os.path.exists(f) for f in files)
    injected = json.loads(Path(files[-1]).read_text())["discrepancies"]
    assert detect_format(str(tmp_path)) == fmt

    bill = read_days(str(tmp_path))
    assert bill.schema == pl.Schema(BILLING_LINE_ITEMS)
    assert set(bill["source_format"]) == {fmt}
    assert bill["net_cost_usd"].is_not_null().all()

    # The whole bill's rows beyond logged model tokens (guardrails, mantle, bill-only kinds) are tested on their own.
    whole = {i["usage_type"] for i in injected if i["kind"].startswith("bill_only_")}
    usage_rows = bill.filter(
        (pl.col("line_item_type") == "Usage")
        & (pl.col("usage_kind") != "provisioned")
        & ~pl.col("usage_type").is_in(list(whole))
    )
    mapped = usage_rows.filter(pl.col("base_model_id").is_not_null())
    qty = pl.when(pl.col("usage_kind") == "image").then(pl.col("usage_amount")).otherwise(pl.col("tokens"))
    got = {
        tuple(r[:7]): (r[7], r[8])
        for r in mapped.group_by(KEY).agg(qty.sum().alias("q"), pl.col("unblended_cost_usd").sum()).iter_rows()
    }
    expected = expected_from_usage(usage, injected)
    unlogged = {
        tuple(
            dt.date.fromisoformat(v) if c == "date" else v
            for c, v in zip(KEY, (i["keys"][0][c] for c in KEY), strict=True)
        )
        for i in injected
        if i["kind"] == "billed_not_logged"
    }
    assert set(got) == set(expected) | unlogged
    for key, (q, cost) in expected.items():
        assert got[key][0] == pytest.approx(q), key
        assert got[key][1] == pytest.approx(cost, rel=1e-9), key

    # Each injected item is visible in the bill.
    kinds = {i["kind"] for i in injected}
    assert {
        "price_change",
        "extra_billed_input_tokens",
        "fewer_billed_output_tokens",
        "dropped_from_bill",
        "billed_not_logged",
        "unmapped_usage_type",
        "credit",
        "tax",
        "provisioned_throughput",
        "unmapped_model_in_usage",
    } <= kinds
    unmapped = usage_rows.filter(pl.col("base_model_id").is_null())
    assert set(unmapped["usage_type"]) == {i["usage_type"] for i in injected if i["kind"] == "unmapped_usage_type"} | {
        "USE1-acme.mystery-model-v1-0-input-tokens"
    }
    assert unmapped["tokens"].is_not_null().all()  # kept with their tokens, not dropped
    assert bill.filter(pl.col("line_item_type") == "Tax")["unblended_cost_usd"].gt(0).all()
    credit = bill.filter(pl.col("line_item_type") == "Credit")
    assert credit.height == 1 and credit["unblended_cost_usd"][0] < 0 and credit["tokens"][0] is None
    pt = bill.filter(pl.col("usage_kind") == "provisioned").row(0, named=True)
    assert (pt["usage_amount"], pt["pricing_unit"], pt["tokens"]) == (24.0, "hour", None)
    assert pt["base_model_id"] is not None and ":provisioned-model/" in pt["resource_id"]

    # Routing and units as billed: geo only in the resource id; Marketplace in million-token Units.
    haiku = usage_rows.filter(pl.col("base_model_id") == HAIKU45)
    assert set(haiku["routing"]) == {"geo"} and set(haiku["pricing_unit"]) == {"Units"}
    assert set(haiku["billing_entity"]) == {"AWS Marketplace"}
    assert set(haiku["product_name"]) == {"Claude Haiku 4.5 (Amazon Bedrock Edition)"}
    sonnet = usage_rows.filter(pl.col("base_model_id") == "anthropic.claude-sonnet-4-6")
    assert set(sonnet["product_code"]) == {"AmazonBedrockService"} and set(sonnet["routing"]) == {"global"}
    assert set(usage_rows.filter(pl.col("tier") == "batch")["base_model_id"]) == {"meta.llama3-1-8b-instruct-v1:0"}


def test_bill_without_discrepancies_equals_usage(tmp_path: Path) -> None:
    usage = usage_frame()
    files = write_bill(str(tmp_path), usage, "cur2", discrepancies=False)
    injected = json.loads(Path(files[-1]).read_text())["discrepancies"]
    assert [i["kind"] for i in injected] == ["unmapped_model_in_usage"]
    bill = read_days(str(tmp_path), "cur2")
    assert set(bill["line_item_type"]) == {"Usage"}
    tok = usage.filter(pl.col("usage_kind") != "image")["tokens"].sum()
    assert bill["tokens"].sum() == tok
    # The unpriced model is billed at the generator's fallback rate, $0.001 per 1K input tokens.
    fallback = 4 * 1_000 / 1000 * 0.001
    assert bill["unblended_cost_usd"].sum() == pytest.approx(usage["cost_usd"].sum() + fallback)


def test_billing_day_metrics_and_checks(tmp_path: Path) -> None:
    write_bill(str(tmp_path), usage_frame(), "cur2")
    day = billing_day(BillingSource(uri=str(tmp_path), format="cur2"), D1)
    m = day.metrics
    assert m["files_read"] == 1 and m["rows"] == day.line_items.height
    assert m["unmapped_rows"] >= 1 and m["rate_mismatch_rows"] == 0
    assert m["non_usage_cost_usd"] < 0 or m["non_usage_cost_usd"] > 0  # tax and credit are booked beside usage
    assert day.checks.height == 0


# ------------------------------------------------------------------------------------------------------------
# Through S3 (moto)


@pytest.fixture
def _moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["cur2", "cur"])
def test_read_from_s3(_moto_server: str, tmp_path: Path, fmt: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=_moto_server, region_name="us-east-1").create_bucket(Bucket="billing")
    usage = usage_frame()
    dest = "s3://billing/exports/acme"
    files = write_bill(dest, usage, fmt)  # type: ignore[arg-type]
    assert all(f.startswith("s3://billing/exports/acme/") for f in files)
    write_bill(str(tmp_path), usage, fmt)  # type: ignore[arg-type]
    remote = read_days(f"{dest}/{EXPORT_NAMES[fmt]}")
    local = read_days(str(tmp_path / EXPORT_NAMES[fmt]))
    assert remote["source_uri"].str.starts_with("s3://billing/exports/acme/").all()
    cols = [c for c in BILLING_LINE_ITEMS if c != "source_uri"]
    assert remote.select(cols).equals(local.select(cols))


# ------------------------------------------------------------------------------------------------------------
# Layout rules and bad input


def _cur2_file(root: Path) -> Path:
    return next(root.glob("bedrock-ledger-cur2/data/BILLING_PERIOD=2026-05/*.parquet"))


def _edit_cur2(root: Path, edit: Any) -> Path:
    f = _cur2_file(root)
    pq.write_table(edit(pq.read_table(f)), f)
    return f


def _set(table: pa.Table, name: str, values: list[Any]) -> pa.Table:
    i = table.schema.get_field_index(name)
    return table.set_column(i, name, pa.array(values, type=table.schema.field(name).type))


def _edit_cur_csv(root: Path, edit: Any) -> None:
    """Apply `edit` to the text of every legacy CSV (the current and the stale assembly)."""
    files = list(root.glob("**/bedrock-ledger-cur/*/*/*.csv.gz"))
    assert len(files) == 2
    for f in files:
        f.write_bytes(gzip.compress(edit(gzip.decompress(f.read_bytes()).decode()).encode()))


def test_other_billing_periods_are_never_opened(tmp_path: Path) -> None:
    write_bill(str(tmp_path), usage_frame(), "cur2")
    april = tmp_path / "bedrock-ledger-cur2/data/BILLING_PERIOD=2026-04/bedrock-ledger-cur2-00001.snappy.parquet"
    april.parent.mkdir(parents=True)
    april.write_bytes(b"not parquet at all")
    src = BillingSource(uri=str(tmp_path), format="cur2")
    assert billing_line_items_for_day(src, D1).height > 0
    with pytest.raises(BillingFormatError, match=r"BILLING_PERIOD=2026-04/bedrock-ledger-cur2-00001\.snappy\.parquet"):
        billing_line_items_for_day(src, dt.date(2026, 4, 30))


def test_create_new_mode_reads_only_newest_execution(tmp_path: Path) -> None:
    write_bill(str(tmp_path), usage_frame(), "cur2")
    f = _cur2_file(tmp_path)
    old = f.parent / "2026-05-15T01:00:00.000Z-aaaa" / f.name
    new = f.parent / "2026-05-16T01:00:00.000Z-bbbb" / f.name
    old.parent.mkdir()
    new.parent.mkdir()
    table = pq.read_table(f)
    pq.write_table(table, old)
    pq.write_table(table, new)
    f.unlink()
    one = billing_line_items_for_day(BillingSource(uri=str(tmp_path), format="cur2"), D1)
    assert set(one["source_uri"]) == {str(new)}


def test_legacy_assemblies_without_manifest_are_refused(tmp_path: Path) -> None:
    write_bill(str(tmp_path), usage_frame(), "cur")
    (manifest,) = tmp_path.glob("bedrock-ledger-cur/20260501-20260601/*-Manifest.json")
    manifest.unlink()
    with pytest.raises(BillingFormatError, match="2 report assemblies and no top-level"):
        billing_line_items_for_day(BillingSource(uri=str(tmp_path), format="cur"), D1)


def test_missing_required_column_names_file_and_column(tmp_path: Path) -> None:
    write_bill(str(tmp_path), usage_frame(), "cur2")
    f = _edit_cur2(tmp_path, lambda t: t.drop_columns(["pricing_unit"]))
    with pytest.raises(BillingFormatError) as err:
        billing_line_items_for_day(BillingSource(uri=str(tmp_path), format="cur2"), D1)
    assert str(f) in str(err.value) and "'pricing_unit'" in str(err.value)


def test_missing_csv_column_names_the_csv_header(tmp_path: Path) -> None:
    write_bill(str(tmp_path), usage_frame(), "cur")
    _edit_cur_csv(tmp_path, lambda text: text.replace("lineItem/UsageType,", "lineItem/UsageTypo,", 1))
    with pytest.raises(
        BillingFormatError,
        match=r"\.csv\.gz: missing required column 'line_item_usage_type' "
        r"\(CSV header 'lineItem/UsageType'\)",
    ):
        billing_line_items_for_day(BillingSource(uri=str(tmp_path)), D1)


def test_unknown_pricing_unit_on_token_row_is_an_error(tmp_path: Path) -> None:
    write_bill(str(tmp_path), usage_frame(), "cur2")
    f = _edit_cur2(
        tmp_path,
        lambda t: _set(t, "pricing_unit", ["Tokens" if u == "1K tokens" else u for u in t["pricing_unit"].to_pylist()]),
    )
    with pytest.raises(BillingFormatError) as err:
        billing_line_items_for_day(BillingSource(uri=str(tmp_path), format="cur2"), D1)
    assert str(f) in str(err.value) and "column 'pricing_unit' has unit 'Tokens'" in str(err.value)


def test_unknown_unit_on_a_non_token_row_is_fine(tmp_path: Path) -> None:
    write_bill(str(tmp_path), usage_frame(), "cur2")
    _edit_cur2(
        tmp_path,
        lambda t: _set(t, "pricing_unit", ["Hrs" if u == "hour" else u for u in t["pricing_unit"].to_pylist()]),
    )
    bill = billing_line_items_for_day(BillingSource(uri=str(tmp_path), format="cur2"), D1)
    assert bill.filter(pl.col("usage_kind") == "provisioned")["pricing_unit"].to_list() == ["Hrs"]


def test_non_usd_currency_is_an_error(tmp_path: Path) -> None:
    write_bill(str(tmp_path), usage_frame(), "cur2")
    f = _edit_cur2(tmp_path, lambda t: _set(t, "line_item_currency_code", ["EUR"] * t.num_rows))
    with pytest.raises(BillingFormatError) as err:
        billing_line_items_for_day(BillingSource(uri=str(tmp_path), format="cur2"), D1)
    assert str(f) in str(err.value) and "'line_item_currency_code' has currency 'EUR'" in str(err.value)


@pytest.mark.parametrize(("fmt", "pattern"), [("focus", "data/*/*.parquet"), ("cur", "*/*/*.csv.gz")])
def test_unreadable_file_is_named(tmp_path: Path, fmt: str, pattern: str) -> None:
    write_bill(str(tmp_path), usage_frame(), fmt)  # type: ignore[arg-type]
    files = list((tmp_path / EXPORT_NAMES[fmt]).glob(pattern))
    assert files
    for f in files:
        f.write_bytes(f.read_bytes()[:40])  # truncated, as by an interrupted copy
    with pytest.raises(BillingFormatError, match=rf"^{tmp_path}/{EXPORT_NAMES[fmt]}/.*: cannot read"):
        billing_line_items_for_day(BillingSource(uri=str(tmp_path), format=fmt), D1)  # type: ignore[arg-type]


def test_explicit_format_must_match_the_layout(tmp_path: Path) -> None:
    write_bill(str(tmp_path), usage_frame(), "cur2")
    with pytest.raises(BillingFormatError, match="no legacy CUR layout found"):
        billing_line_items_for_day(BillingSource(uri=str(tmp_path), format="cur"), D1)
    with pytest.raises(BillingFormatError, match=r"missing required column 'ChargePeriodStart' \(FOCUS\)"):
        billing_line_items_for_day(BillingSource(uri=str(tmp_path), format="focus"), D1)


def test_a_period_not_yet_delivered_is_empty_not_an_error(tmp_path: Path) -> None:
    write_bill(str(tmp_path), usage_frame(), "cur2")
    day = billing_day(BillingSource(uri=str(tmp_path), format="cur2"), dt.date(2026, 6, 1))
    assert day.line_items.height == 0 and day.metrics["files_read"] == 0
    assert day.line_items.schema == pl.Schema(BILLING_LINE_ITEMS)


def test_non_numeric_csv_amount_is_named(tmp_path: Path) -> None:
    write_bill(str(tmp_path), usage_frame(), "cur", discrepancies=False)
    _edit_cur_csv(tmp_path, lambda text: text.replace(",1523.456,", ",1523.456 tokens,"))
    with pytest.raises(BillingFormatError, match=r"\.csv\.gz: column 'lineItem/UsageAmount' has a non-numeric value"):
        billing_line_items_for_day(BillingSource(uri=str(tmp_path)), D1)


def test_rate_mismatch_is_flagged_not_raised(tmp_path: Path) -> None:
    write_bill(str(tmp_path), usage_frame(), "cur2")

    def bump(t: pa.Table) -> pa.Table:
        costs = t["line_item_unblended_cost"].to_pylist()
        types = t["line_item_usage_type"].to_pylist()
        i = types.index("USE1-NovaLite-input-tokens")
        costs[i] += 5.0
        return _set(t, "line_item_unblended_cost", costs)

    _edit_cur2(tmp_path, bump)
    day = billing_day(BillingSource(uri=str(tmp_path), format="cur2"), D1)
    assert day.metrics["rate_mismatch_rows"] == 1
    row = day.checks.row(0, named=True)
    assert row["check"] == "rate_times_amount_mismatch" and row["usage_type"] == "USE1-NovaLite-input-tokens"


def test_filters_to_bedrock_rows(tmp_path: Path) -> None:
    write_bill(str(tmp_path), usage_frame(), "cur2", discrepancies=False)

    def add_foreign(t: pa.Table) -> pa.Table:
        rows = t.slice(0, 2).to_pylist()
        rows[0].update(line_item_product_code="AmazonEC2", line_item_usage_type="USE1-BoxUsage:t3.micro")
        rows[1].update(
            bill_billing_entity="AWS Marketplace",
            line_item_product_code="abcdefghijklmnopqrstu",
            product=[("product_name", "Some SaaS Product"), ("region", "us-east-1")],
        )
        return pa.concat_tables([t, pa.Table.from_pylist(rows, schema=t.schema)])

    _edit_cur2(tmp_path, add_foreign)
    bill = billing_line_items_for_day(BillingSource(uri=str(tmp_path), format="cur2"), D1)
    assert "USE1-BoxUsage:t3.micro" not in bill["usage_type"].to_list()
    assert "Some SaaS Product" not in bill["product_name"].to_list()


def test_tags_from_each_format(tmp_path: Path) -> None:
    cur2 = tmp_path / "cur2"
    write_bill(str(cur2), usage_frame(), "cur2", discrepancies=False)
    tags = pa.array(
        [[("user_cost_center", "cc-4711"), ("user_application", "")]], type=pa.map_(pa.string(), pa.string())
    )
    _edit_cur2(
        cur2,
        lambda t: t.set_column(
            t.schema.get_field_index("resource_tags"), "resource_tags", pa.concat_arrays([tags] * t.num_rows)
        ),
    )
    got = billing_line_items_for_day(BillingSource(uri=str(cur2), format="cur2"), D1)["tags"][0].to_list()
    assert got == [{"key": "user_cost_center", "value": "cc-4711"}]  # empty values dropped

    legacy = tmp_path / "cur"
    write_bill(str(legacy), usage_frame(), "cur", discrepancies=False)

    def add_tag_column(text: str) -> str:
        head, *rows = text.splitlines()
        return "\n".join([head + ",resourceTags/user:CostCenter"] + [r + ",cc-4711" for r in rows])

    _edit_cur_csv(legacy, add_tag_column)
    got = billing_line_items_for_day(BillingSource(uri=str(legacy)), D1)["tags"][0].to_list()
    assert got == [{"key": "user_cost_center", "value": "cc-4711"}]

    focus = tmp_path / "focus"
    write_bill(str(focus), usage_frame(), "focus", discrepancies=False)
    (f,) = focus.glob("bedrock-ledger-focus/data/*/*.parquet")
    t = pq.read_table(f)
    ftags = pa.array([[("user:CostCenter", "cc-4711")]] * t.num_rows, type=pa.map_(pa.string(), pa.string()))
    pq.write_table(t.set_column(t.schema.get_field_index("Tags"), "Tags", ftags), f)
    got = billing_line_items_for_day(BillingSource(uri=str(focus)), D1)["tags"][0].to_list()
    assert got == [{"key": "user_cost_center", "value": "cc-4711"}]


def test_focus_correction_rows_are_not_usage(tmp_path: Path) -> None:
    write_bill(str(tmp_path), usage_frame(), "focus", discrepancies=False)
    (f,) = tmp_path.glob("bedrock-ledger-focus/data/*/*.parquet")
    t = pq.read_table(f)
    pq.write_table(_set(t, "ChargeClass", ["Correction"] + [None] * (t.num_rows - 1)), f)
    bill = billing_line_items_for_day(BillingSource(uri=str(tmp_path), format="focus"), D1)
    assert bill["line_item_type"].to_list().count("Correction") == 1


def test_no_export_layout_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BillingFormatError, match="no billing export layout found"):
        detect_format(str(tmp_path))
