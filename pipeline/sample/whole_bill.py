"""The demo bill's spend beyond logged model tokens: guardrails, bedrock-mantle and one bill-only row of each kind.

Guardrail rows bill the policy units the sample's traces show (`usage_kind` = the policy in the usage frame), with
the sensitive-information policy billed a quarter more than traced: standalone `ApplyGuardrail` calls and callers
without trace, which the logs never see (the reconciliation's lower bound). The bill-only rows sit on the sample's
first day, account and Region; some are owned by resource tags, some by the principal the bill names, some by a
rule of the sample config on their resource, and two are built to have no owner at all (an evaluation job and
Marketplace prompt-cache storage), so `bill_coverage` shows what `unallocated` looks like.

Usage types of kinds no published bill shows yet (knowledge-base retrieval, flows, data automation, evaluation,
customization storage, AgentCore) follow their family's grammar; they are the demo's own, marked in
docs/bill-coverage.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import polars as pl

from pipeline.billing.usage_types import REGION_PREFIX
from pipeline.pricing.guardrails import load_guardrail_prices, price_of
from pipeline.vocabulary import GUARDRAIL_POLICIES

if TYPE_CHECKING:
    from pipeline.sample.bill import _Line

UNTRACED_SHARE = 1.25
"""Billed sensitive-information units per traced unit: the rest are untraced and standalone guardrail calls."""
_GUARDRAIL_USAGE_TYPES = {
    "content": "Guardrail-ContentPolicyUnitsConsumed",
    "topic": "Guardrail-TopicPolicyUnitsConsumed",
    "sensitive_information": "Guardrail-SensitiveInformationPolicyPaidUnitsConsumed",
    "contextual_grounding": "Guardrail-ContextualGroundingPolicyUnitsConsumed",
    "word": "Guardrail-WordPolicyUnitsConsumed",
    "content_image": "Guardrail-ContentPolicyImageUnitsConsumed",
    "automated_reasoning": "Guardrail-AutomatedReasoningPolicyUnitsConsumed",
}
KB_ARN = "arn:aws:bedrock:{region}:{account}:knowledge-base/SALESKB01"
"""A knowledge base the sample config's principal rules own (`attribution.principals` matches its ARN)."""
FLOW_PRINCIPAL = "arn:aws:sts::{account}:assumed-role/flows-runner/ops-automation"
MANTLE_PRINCIPAL = "arn:aws:iam::{account}:user/research-notebooks"


@dataclass(frozen=True)
class BillOnly:
    """One bill-only row of the demo: its usage type, product, amount and owner (tags, principal, or none)."""

    kind: str
    usage_type: str  # without the region prefix
    amount: float
    unit: str
    rate: float
    product_code: str = "AmazonBedrock"
    product_name: str = "Amazon Bedrock"
    entity: str = "AWS"
    resource_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    iam_principal: str = ""
    principal_tags: dict[str, str] = field(default_factory=dict)
    operation: str = "Usage"


BILL_ONLY: tuple[BillOnly, ...] = (
    BillOnly("rerank", "cohere.rerank-english-v3-search-units", 1_200, "Units", 0.002,
             tags={"user:CostCenter": "search", "user:Application": "docs-search"}, operation="Rerank"),
    BillOnly("knowledge_base", "KnowledgeBase-StructuredRetrieve", 340, "Units", 0.002, resource_id=KB_ARN),
    BillOnly("agent", "AgentCore-Runtime-vCPU-Hours", 12.5, "Hours", 0.0895, product_code="AmazonBedrockAgentCore",
             product_name="Amazon Bedrock AgentCore",
             tags={"user:CostCenter": "support", "user:Application": "triage-agent"}),
    BillOnly("flow", "InvokeFlow-NodeTransitions", 9_000, "Units", 0.000035, iam_principal=FLOW_PRINCIPAL,
             principal_tags={"costCenter": "operations"}),
    BillOnly("data_automation", "DataAutomation-StandardOutput-Pages", 800, "Pages", 0.01,
             tags={"user:CostCenter": "finance", "user:Application": "invoice-reader"}),
    BillOnly("custom_model", "NovaLite-Customization-Storage", 1.0, "Month", 1.95,
             tags={"user:CostCenter": "research", "user:Application": "tuned-nova"}),
    # Built to have no owner: an evaluation job nobody tagged, and Marketplace prompt-cache storage.
    BillOnly("evaluation", "Evaluations-HumanTasks", 40, "Units", 0.21),
    BillOnly("cache_storage", "MP:{prefix}_CacheStorage-Units", 2.5, "Units", 0.3,
             product_code="c8bq3fh2l5unpb9tgexmw3rkp", product_name="Claude Sonnet 4.5 (Amazon Bedrock Edition)",
             entity="AWS Marketplace"),
    # bedrock-mantle (the OpenAI-compatible endpoint): never in invocation logs; one owner by principal, one by tags.
    BillOnly("mantle", "openai.gpt-oss-120b-mantle-input-tokens-standard", 1_800, "1K tokens", 0.00015,
             iam_principal=MANTLE_PRINCIPAL, principal_tags={"costCenter": "research"},
             operation="InvokeModelInference"),
    BillOnly("mantle", "openai.gpt-oss-120b-mantle-output-tokens-standard", 420, "1K tokens", 0.0006,
             tags={"user:CostCenter": "research", "user:Application": "notebook-chat"},
             operation="InvokeModelInference"),
)  # fmt: skip


def bill_only_lines(template: _Line, injected: list[dict[str, Any]]) -> list[_Line]:
    """One row per `BILL_ONLY` entry on the template's day, account and Region (a usage line of the bill)."""
    region = template.region or "us-east-1"
    prefix = REGION_PREFIX.get(region, "USE1")
    out = []
    for b in BILL_ONLY:
        usage_type = f"{prefix}-" + b.usage_type.format(prefix=prefix)
        fill = {"region": region, "account": template.account}
        out.append(
            replace(
                template,
                line_type="Usage",
                entity=b.entity,
                product_code=b.product_code,
                servicecode="" if b.entity == "AWS Marketplace" else b.product_code,
                product_name=b.product_name,
                usage_type=usage_type,
                operation=b.operation,
                resource_id=b.resource_id.format(**fill),
                amount=b.amount,
                unit=b.unit,
                rate=b.rate,
                cost=b.amount * b.rate,
                list_cost=0.0 if b.entity == "AWS Marketplace" else b.amount * b.rate,
                description=f"${b.rate} per {b.unit} for {usage_type}",
                tags=dict(b.tags),
                iam_principal=b.iam_principal.format(**fill),
                principal_tags=dict(b.principal_tags),
            )
        )
        owned = bool(b.tags or b.iam_principal or b.resource_id)
        injected.append(
            {
                "kind": f"bill_only_{b.kind}",
                "expected_status": "not_logged_by_design" if b.kind == "mantle" else "missing_in_logs",
                "usage_type": usage_type,
                "owned": owned,
                "detail": f"{b.kind} spend that invocation logs never show"
                + ("" if owned else ": built to have no owner (stays unallocated)"),
            }
        )
    return out


def guardrail_lines(guardrails: pl.DataFrame, template: _Line, injected: list[dict[str, Any]]) -> list[_Line]:
    """Guardrail rows per day, account, Region and policy from the traced units (usage rows whose `usage_kind` is
    a policy), the sensitive-information policy billed `UNTRACED_SHARE` times what the traces show."""
    if guardrails.is_empty():
        return []
    prices = load_guardrail_prices()
    sums = (
        guardrails.group_by("date", "account_id", "region", "usage_kind")
        .agg(pl.col("tokens").sum())
        .sort("date", "account_id", "region", "usage_kind")
    )
    out = []
    for r in sums.iter_rows(named=True):
        policy, day = r["usage_kind"], r["date"]
        rate = price_of(policy, day, r["region"], prices)
        if rate is None or policy not in GUARDRAIL_POLICIES:
            continue
        factor = UNTRACED_SHARE if policy == "sensitive_information" else 1.0
        units = float(r["tokens"]) * factor
        usage_type = f"{REGION_PREFIX.get(r['region'], 'USE1')}-{_GUARDRAIL_USAGE_TYPES[policy]}"
        out.append(
            replace(
                template,
                day=day if isinstance(day, dt.date) else template.day,
                account=r["account_id"],
                region=r["region"],
                line_type="Usage",
                entity="AWS",
                product_code="AmazonBedrock",
                servicecode="AmazonBedrock",
                product_name="Amazon Bedrock",
                usage_type=usage_type,
                operation="ApplyGuardrail",
                resource_id="",
                amount=units,
                unit="Units",
                rate=rate,
                cost=units * rate,
                list_cost=units * rate,
                description=f"${rate} per text unit for {usage_type}",
                tags={},
                iam_principal="",
                principal_tags={},
            )
        )
        if factor != 1.0:
            injected.append(
                {
                    "kind": "guardrail_untraced_units",
                    "expected_status": "under_logged",
                    "date": day.isoformat(),
                    "account_id": r["account_id"],
                    "region": r["region"],
                    "usage_type": usage_type,
                    "factor": factor,
                    "detail": "guardrail units billed beyond the logs' traces (untraced and standalone calls)",
                }
            )
    return out
