"""The whole bill, classified: every real Bedrock usage type gets a `spend_kind`, a `usage_kind` and an endpoint.

The cases are usage types seen in real bills, Cost Explorer and Price List parsers (docs/bill-coverage.md names the
public sources); each maps by `vocabulary.SPEND_KIND_RULES`. Non-token units pass through unscaled with `tokens` null;
Marketplace `Units` are million tokens only on Marketplace token dimensions.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from pipeline.billing import parse_usage_type
from pipeline.billing.line_items import classify, with_spend_kind
from pipeline.billing.readers import RAW_SCHEMA, BillingFormatError, BillingRead
from pipeline.vocabulary import SPEND_KINDS, USAGE_KINDS, spend_kind_of

MP_CODE = "7g37zhparap7eesm9k78jrzqc"  # Marketplace rows carry an opaque product code

# usage type -> (spend_kind, usage_kind, tier, endpoint)
CASES: dict[str, tuple[str, str, str, str]] = {
    "USE1-Claude4.6Sonnet-input-tokens": ("on_demand", "input", "standard", "runtime"),
    "USE1-Claude4.6Sonnet-output-tokens": ("on_demand", "output", "standard", "runtime"),
    "USE1-Claude4.6Opus-input-tokens": ("on_demand", "input", "standard", "runtime"),
    "USE1-Claude4.6Opus-output-tokens": ("on_demand", "output", "standard", "runtime"),
    "USE1-Claude4.6Opus-input-tokens-cross-region-global": ("on_demand", "input", "standard", "runtime"),
    "USE1-Claude4.6Opus-cache-read-input-token-count-cross-region-global": (
        "on_demand",
        "cache_read",
        "standard",
        "runtime",
    ),
    "USW2-anthropic.claude-opus-4-8-mantle-cache-write-tokens-global-standard": (
        "on_demand",
        "cache_write",
        "standard",
        "mantle",
    ),
    "EUW2-Mistral7B-output-tokens": ("on_demand", "output", "standard", "runtime"),
    "EUW2-Mistral7B-input-tokens": ("on_demand", "input", "standard", "runtime"),
    "EUW2-MistralLarge-output-tokens": ("on_demand", "output", "standard", "runtime"),
    "EUW2-MistralLarge-input-tokens": ("on_demand", "input", "standard", "runtime"),
    "EUW2-Mixtral8x7B-output-tokens": ("on_demand", "output", "standard", "runtime"),
    "EUW2-Mixtral8x7B-input-tokens": ("on_demand", "input", "standard", "runtime"),
    "EUW2-NovaLite-input-tokens": ("on_demand", "input", "standard", "runtime"),
    "EUW2-NovaLite-output-tokens": ("on_demand", "output", "standard", "runtime"),
    "EUW2-NovaMicro-input-tokens": ("on_demand", "input", "standard", "runtime"),
    "EUW2-NovaMicro-output-tokens": ("on_demand", "output", "standard", "runtime"),
    "EUW2-NovaPro-input-tokens": ("on_demand", "input", "standard", "runtime"),
    "EUW2-NovaPro-output-tokens": ("on_demand", "output", "standard", "runtime"),
    "EU-Qwen3-32B-output-tokens-batch": ("batch", "output", "batch", "runtime"),
    "EU-Qwen3-32B-input-tokens-batch": ("batch", "input", "batch", "runtime"),
    "EUW2-Qwen3Coder-30B-A3B-output-tokens": ("on_demand", "output", "standard", "runtime"),
    "EUW2-Qwen3Coder-30B-A3B-input-tokens": ("on_demand", "input", "standard", "runtime"),
    "EUW2-Qwen3-VL-235B-A22B-input-tokens": ("on_demand", "input", "standard", "runtime"),
    "EU_OutputTokenCount": ("on_demand", "output", "standard", "runtime"),
    "EU_InputTokenCount": ("on_demand", "input", "standard", "runtime"),
    "EUC1_OutputTokenCount": ("on_demand", "output", "standard", "runtime"),
    "EUC1_InputTokenCount": ("on_demand", "input", "standard", "runtime"),
    "EUW2_OutputTokenCount": ("on_demand", "output", "standard", "runtime"),
    "EUW2_InputTokenCount": ("on_demand", "input", "standard", "runtime"),
    "EUN1_OutputTokenCount": ("on_demand", "output", "standard", "runtime"),
    "EUN1_InputTokenCount": ("on_demand", "input", "standard", "runtime"),
    "NovaLite-input-tokens": ("on_demand", "input", "standard", "runtime"),
    "NovaLite-output-tokens": ("on_demand", "output", "standard", "runtime"),
    "USE1-Claude2.0-input-tokens": ("on_demand", "input", "standard", "runtime"),
    "USE1-Claude3-5Haiku-input-tokens-latency-optimized": ("on_demand", "input", "latency_optimized", "runtime"),
    "USE1-Claude3Sonnet-input-tokens": ("on_demand", "input", "standard", "runtime"),
    "USE1-GPT-OSS-Safeguard-120B-output-tokens-batch": ("batch", "output", "batch", "runtime"),
    "USE1-GPT-OSS-Safeguard-20B-input-tokens-priority": ("on_demand", "input", "priority", "runtime"),
    "USE1-Gemma-3-4B-IT-input-tokens-flex": ("on_demand", "input", "flex", "runtime"),
    "USE1-Guardrail-AutomatedReasoningPolicyUnitsConsumed": (
        "guardrail",
        "automated_reasoning",
        "standard",
        "runtime",
    ),
    "USE1-Llama3-1-405B-input-tokens": ("on_demand", "input", "standard", "runtime"),
    "USE1-Llama3-2-1B-output-tokens": ("on_demand", "output", "standard", "runtime"),
    "USE1-Llama4-Maverick-17B-input-tokens-batch": ("batch", "input", "batch", "runtime"),
    "USE1-MP:USE1_CacheReadInputTokenCount-Units": ("on_demand", "cache_read", "standard", "runtime"),
    "USE1-MP:USE1_CacheReadInputTokenCount_Global-Units": ("on_demand", "cache_read", "standard", "runtime"),
    "USE1-MP:USE1_CacheStorage-Units": ("cache_storage", "other", "standard", "runtime"),
    "USE1-MP:USE1_CacheValidationCount-Units": ("other", "other", "standard", "runtime"),
    "USE1-MP:USE1_CacheWrite1hInputTokenCount-Units": ("on_demand", "cache_write_1h", "standard", "runtime"),
    "USE1-MP:USE1_CacheWrite1hInputTokenCount_Global-Units": ("on_demand", "cache_write_1h", "standard", "runtime"),
    "USE1-MP:USE1_CacheWrite30mInputTokenCount-Units": ("on_demand", "cache_write", "standard", "runtime"),
    "USE1-MP:USE1_CacheWrite5mInputTokenCount-Units": ("on_demand", "cache_write", "standard", "runtime"),
    "USE1-MP:USE1_CacheWriteInputTokenCount-Units": ("on_demand", "cache_write", "standard", "runtime"),
    "USE1-MP:USE1_InputImageCount-Units": ("on_demand", "image", "standard", "runtime"),
    "USE1-MP:USE1_InputTokenCount-Units": ("on_demand", "input", "standard", "runtime"),
    "USE1-MP:USE1_InputTokenCount_Batch-Units": ("batch", "input", "batch", "runtime"),
    "USE1-MP:USE1_InputTokenCount_Global-Units": ("on_demand", "input", "standard", "runtime"),
    "USE1-MP:USE1_InputTokenCount_Global_Batch-Units": ("batch", "input", "batch", "runtime"),
    "USE1-MP:USE1_InputTokenCount_LatencyOptimized-Units": ("on_demand", "input", "latency_optimized", "runtime"),
    "USE1-MP:USE1_OutputTokenCount-Units": ("on_demand", "output", "standard", "runtime"),
    "USE1-MP:USE1_OutputTokenCount_Global-Units": ("on_demand", "output", "standard", "runtime"),
    "USE1-MP:USE1_ProvisionedThroughput_1MonthCommit_ModelUnits_Usage-Units": (
        "provisioned",
        "provisioned",
        "standard",
        "runtime",
    ),
    "USE1-MP:USE1_cache_write_tokens_1h_standard-Units": ("on_demand", "cache_write_1h", "standard", "runtime"),
    "USE1-MP:USE1_created_image-Units": ("on_demand", "image", "standard", "runtime"),
    "USE1-MP:USE1_search_units-Units": ("rerank", "other", "standard", "runtime"),
    "USE1-MistralSmall-input-tokens-batch": ("batch", "input", "batch", "runtime"),
    "USE1-Nova2.0Lite-input-tokens-cross-region-global-batch": ("batch", "input", "batch", "runtime"),
    "USE1-Nova2.0Pro-input-image-token-count-cross-region-global": ("on_demand", "input", "standard", "runtime"),
    "USE1-Nova2.0Pro-text-input-tokens-priority-cross-region-global": ("on_demand", "input", "priority", "runtime"),
    "USE1-NovaPro-cache-write-input-token-count-custom-model": (
        "custom_model",
        "cache_write",
        "custom_model",
        "runtime",
    ),
    "USE1-NovaSonic-speech-input-tokens": ("other", "other", "standard", "runtime"),
    "USE1-NovaSonic-text-input-tokens": ("other", "other", "standard", "runtime"),
    "USE1-cohere.rerank-english-v3-search-units": ("rerank", "other", "standard", "runtime"),
}

# Usage types of the spend kinds above that no real bill sample shows yet, written by the grammar of their family
# (the Price List's guardrail policies, CUDOS's feature markers); the demo bill uses them.
GRAMMAR_CASES: dict[str, tuple[str, str, str, str]] = {
    "USE1-Guardrail-SensitiveInformationPolicyPaidUnitsConsumed": (
        "guardrail",
        "sensitive_information",
        "standard",
        "runtime",
    ),
    "USE1-Guardrail-ContentPolicyUnitsConsumed": ("guardrail", "content", "standard", "runtime"),
    "USE1-Guardrail-ContentPolicyImageUnitsConsumed": ("guardrail", "content_image", "standard", "runtime"),
    "USE1-Guardrail-TopicPolicyUnitsConsumed": ("guardrail", "topic", "standard", "runtime"),
    "USE1-Guardrail-ContextualGroundingPolicyUnitsConsumed": (
        "guardrail",
        "contextual_grounding",
        "standard",
        "runtime",
    ),
    "USE1-Guardrail-SensitiveInformationPolicyFreeUnitsConsumed": ("guardrail", "other", "standard", "runtime"),
    "USE1-openai.gpt-oss-120b-mantle-input-tokens-standard": ("on_demand", "input", "standard", "mantle"),
    "USE1-NovaPro-Customization-Storage": ("custom_model", "other", "standard", "runtime"),
    "USE1-CustomModelImport-Storage": ("custom_model", "other", "standard", "runtime"),
    "USE1-Evaluations-HumanTasks": ("evaluation", "other", "standard", "runtime"),
    "USE1-InvokeFlow-NodeTransitions": ("flow", "other", "standard", "runtime"),
    "USE1-DataAutomation-Documents": ("data_automation", "other", "standard", "runtime"),
    "USE1-KnowledgeBase-StructuredRetrieve": ("knowledge_base", "other", "standard", "runtime"),
    "USE1-GenerateSQL-Queries": ("knowledge_base", "other", "standard", "runtime"),
    "USE1-NovaLite-input-tokens-Reserved-1Month": ("provisioned", "other", "reserved", "runtime"),
}


def _product_code(usage_type: str) -> str:
    return MP_CODE if "-MP:" in usage_type or "_" in usage_type.split("-")[0] else "AmazonBedrock"


@pytest.mark.parametrize(("usage_type", "expected"), sorted({**CASES, **GRAMMAR_CASES}.items()))
def test_every_usage_type_has_a_spend_kind(usage_type: str, expected: tuple[str, str, str, str]) -> None:
    p = parse_usage_type(usage_type)
    got = (spend_kind_of(_product_code(usage_type), p.usage_kind, p.tier, usage_type), p.usage_kind, p.tier, p.endpoint)
    assert got == expected
    assert got[0] in SPEND_KINDS and got[1] in USAGE_KINDS


def test_agentcore_rows_are_agent_spend_whatever_the_usage_type() -> None:
    assert spend_kind_of("AmazonBedrockAgentCore", "other", "standard", "USE1-Runtime-vCPU-Hours") == "agent"
    # …even one whose words would read as model tokens.
    assert spend_kind_of("AmazonBedrockAgentCore", "input", "standard", "USE1-Memory-input-tokens") == "agent"


def _raw(rows: list[dict[str, object]]) -> BillingRead:
    base = {
        "usage_start": dt.datetime(2026, 5, 14, tzinfo=dt.UTC),
        "billing_period": "2026-05",
        "account_id": "111122223333",
        "billing_entity": "AWS",
        "product_code": "AmazonBedrock",
        "product_name": "Amazon Bedrock",
        "product_region": "us-east-1",
        "line_item_type": "Usage",
        "currency": "USD",
        "tags": [],
        "source_format": "cur2",
        "source_uri": "s3://bill/part-0.parquet",
    }
    frame = pl.DataFrame([{**base, **r} for r in rows], schema=RAW_SCHEMA, orient="row")
    return BillingRead(rows=frame, format="cur2")


def test_non_token_units_pass_through_unscaled() -> None:
    items = classify(
        _raw(
            [
                {
                    "usage_type": "USE1-Guardrail-SensitiveInformationPolicyPaidUnitsConsumed",
                    "usage_amount": 1200.0,
                    "pricing_unit": "Units",
                    "rate": 0.0001,
                    "unblended_cost": 0.12,
                },
                {
                    "usage_type": "USE1-cohere.rerank-english-v3-search-units",
                    "usage_amount": 30.0,
                    "pricing_unit": "Units",
                    "rate": 0.002,
                    "unblended_cost": 0.06,
                },
                {
                    "usage_type": "USE1-MP:USE1_InputTokenCount-Units",
                    "billing_entity": "AWS Marketplace",
                    "product_code": MP_CODE,
                    "product_name": "Claude Haiku 4.5 (Amazon Bedrock Edition)",
                    "usage_amount": 0.5,
                    "pricing_unit": "Units",
                    "rate": 1.0,
                    "unblended_cost": 0.5,
                },
            ]
        )
    ).line_items
    by_type = {r["usage_type"]: r for r in items.iter_rows(named=True)}
    guard = by_type["USE1-Guardrail-SensitiveInformationPolicyPaidUnitsConsumed"]
    assert (guard["spend_kind"], guard["usage_kind"], guard["tokens"]) == ("guardrail", "sensitive_information", None)
    assert (guard["usage_amount"], guard["pricing_unit"]) == (1200.0, "Units")
    rerank = by_type["USE1-cohere.rerank-english-v3-search-units"]
    assert (rerank["spend_kind"], rerank["tokens"], rerank["usage_amount"]) == ("rerank", None, 30.0)
    mp = by_type["USE1-MP:USE1_InputTokenCount-Units"]
    assert (mp["spend_kind"], mp["tokens"], mp["billing_entity"]) == ("on_demand", 500_000, "AWS Marketplace")
    assert set(items["endpoint"]) == {"runtime"}


def test_units_on_a_first_party_token_row_is_not_a_million_tokens() -> None:
    read = _raw(
        [
            {
                "usage_type": "USE1-NovaLite-input-tokens",
                "usage_amount": 2.0,
                "pricing_unit": "Units",
                "unblended_cost": 1.0,
            }
        ]
    )
    with pytest.raises(BillingFormatError, match="Units"):
        classify(read)


def test_mantle_rows_say_their_endpoint() -> None:
    items = classify(
        _raw(
            [
                {
                    "usage_type": "USE1-openai.gpt-oss-120b-mantle-input-tokens-standard",
                    "usage_amount": 512.0,
                    "pricing_unit": "1K tokens",
                    "rate": 0.00015,
                    "unblended_cost": 0.0768,
                }
            ]
        )
    ).line_items
    row = items.row(0, named=True)
    assert (row["endpoint"], row["spend_kind"], row["usage_kind"], row["tokens"]) == (
        "mantle",
        "on_demand",
        "input",
        512_000,
    )


def test_an_old_partition_gets_its_spend_kind_from_its_usage_types() -> None:
    old = pl.DataFrame(
        {
            "product_code": ["AmazonBedrock", "AmazonBedrockAgentCore", "AmazonBedrock"],
            "usage_kind": ["input", "other", "input"],
            "tier": ["batch", "standard", "standard"],
            "usage_type": [
                "USE1-NovaLite-input-tokens-batch",
                "USE1-Gateway-Invocations",
                "USE1-x.y-mantle-input-tokens-flex",
            ],
        }
    )
    out = with_spend_kind(old).collect()
    assert out["spend_kind"].to_list() == ["batch", "agent", "on_demand"]
    assert out["endpoint"].to_list() == ["runtime", "runtime", "mantle"]
