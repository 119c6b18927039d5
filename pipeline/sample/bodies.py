"""Provider bodies and the log record: what one planned call looks like in an invocation log.

Text is plausible per domain and sized by `body_kb` (not by the token counts, which the plan fixed); bodies take
each provider's native request/response shape for InvokeModel* (docs/formats/invocation-logs.md §5) and the Converse
shape (§4.4); the envelope comes in either field order, and bodies above 100 KB go to a `data/` sidecar object (§2.3).
"""

from __future__ import annotations

import base64
import math
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.sample.calls import ERROR_STATUS, Call, LogGenOptions, lognormal, plan_day
from pipeline.sample.layout import delivery_root, gzip_bytes, hour_prefix
from pipeline.sample.world import (
    DEFAULT_LOG_ROOT,
)

OFFLOAD_BYTES = 100 * 1024
"""Bodies larger than this go to a `data/` sidecar object instead of inline JSON (§2.3)."""

# ---------------------------------------------------------------------------------------------------------------
# Text: plausible prompts and answers per domain (sizes follow `body_kb`, not the token counts)
# ---------------------------------------------------------------------------------------------------------------

_SLOTS: dict[str, tuple[str, ...]] = {
    "product": (
        "TrailRunner 3 hiking boots",
        "AeroLite rain jacket",
        "Summit 45L backpack",
        "Glacier insulated bottle",
        "Ridge carbon trekking poles",
        "Basecamp 2-person tent",
        "Nimbus down sleeping bag",
        "Coastline kayak paddle",
    ),
    "plan": ("Starter", "Team", "Business", "Enterprise"),
    "company": (
        "Northwind Traders",
        "Contoso Logistics",
        "Fabrikam Health",
        "Tailspin Toys",
        "Wingtip Partners",
        "Adatum Energy",
        "Litware Labs",
    ),
    "person": ("Jordan Miller", "Sam Rivera", "Alex Novak", "Taylor Brooks", "Morgan Lee", "Casey Nguyen"),
    "city": ("Denver", "Seattle", "Austin", "Munich", "Lyon", "Milan", "Prague", "Toronto"),
    "feature": (
        "single sign-on",
        "audit logs",
        "usage exports",
        "role-based access control",
        "outgoing webhooks",
        "API rate limits",
        "data residency",
    ),
    "topic": (
        "retrieval-augmented generation",
        "prompt caching",
        "4-bit quantization",
        "evaluation harnesses",
        "contrastive pre-training",
        "speculative decoding",
        "long-context attention",
    ),
    "lang": ("Python", "TypeScript", "SQL", "Go", "Rust"),
    "country": ("Portugal", "Kenya", "Chile", "Vietnam", "Norway", "Canada"),
    "style": ("watercolor", "flat vector", "isometric 3D", "retro poster", "soft pastel", "photorealistic"),
    "subject": (
        "a hiker watching sunrise over alpine lakes",
        "a fox reading a map in a forest",
        "a lighthouse in a winter storm",
        "a city bike lane in spring",
        "a campfire under the milky way",
    ),
    "month": ("March", "April", "June", "September", "November"),
}


def _slot_values(rng: random.Random) -> dict[str, str]:
    """One coherent set of names and numbers per record, so a prompt talks about one order, one customer."""
    vals = {k: rng.choice(v) for k, v in _SLOTS.items()}
    vals.update(
        order=f"#{rng.randint(1_000_000, 9_999_999)}",
        amount=f"${rng.randint(40, 4800):,}.{rng.randint(0, 99):02d}",
        n=str(rng.randint(2, 60)),
        seats=str(rng.randint(10, 900)),
        rating=f"{rng.uniform(3.4, 4.9):.1f}",
        reviews=str(rng.randint(12, 4200)),
        price=f"${rng.randint(19, 420)}.{rng.choice(('00', '95', '99'))}",
        sec=f"{rng.randint(1, 12)}.{rng.randint(1, 9)}",
        days=str(rng.choice((14, 30, 45, 60, 90))),
        year=str(rng.randint(2016, 2025)),
        first=rng.choice(_SLOTS["person"]).split()[0],
    )
    return vals


_CORPUS: dict[str, dict[str, tuple[str, ...]]] = {
    "search": {
        "system": (
            "You are the product search assistant for Example Outdoor Co. Rank the candidate products for the "
            "shopper's query and explain the top three picks in one sentence each. Only use facts that appear "
            "in the candidates; if nothing fits, say so and suggest a broader query.",
        ),
        "user": (
            "Shopper query: waterproof boots for wide feet, budget around {price}.",
            "Shopper query: lightweight gear for a {n}-day trek near {city}.",
            "Shopper query: gift ideas for someone who just started camping.",
            "Shopper query: something like the {product} but cheaper.",
        ),
        "context": (
            "Candidate: {product}, rated {rating}/5 from {reviews} reviews, {price}, ships from {city}.",
            "Candidate notes: customers mention the fit runs slightly narrow and the sole grips well on wet rock.",
            "Candidate: {product}, in stock in {n} colours, free returns within {days} days.",
            "Review excerpt: 'Used it for {n} days in the rain around {city} and stayed completely dry.'",
            "Inventory: {n} units available in the {city} warehouse; next restock expected in {month}.",
        ),
        "answer": (
            "The {product} is the best match: it is waterproof, rated {rating}/5, and within the stated budget.",
            "As a second option, shoppers with wide feet consistently praise the roomy toe box.",
            "If weight matters most, the lighter model saves about {n}0 grams per pair.",
            "None of the candidates is cheaper than {price} with the same rating, so I kept the ranking by fit.",
        ),
    },
    "support": {
        "system": (
            "You are Example Cloud's support assistant. Be concise and friendly. Follow the refund policy: "
            "refunds are possible within {days} days of the invoice date, never promise credits above $500, "
            "and escalate anything about security, data loss or legal requests to a human agent. Always quote "
            "the order number you looked at. Do not reveal internal notes.",
        ),
        "user": (
            "Customer message: Hi, my invoice for order {order} shows {amount} but our {plan} plan should be "
            "cheaper. Can you check what happened?",
            "Customer message: Since yesterday our team cannot log in with {feature}. Is there an outage?",
            "Customer message: Please cancel order {order}; we ordered the wrong plan by mistake.",
            "Customer message: How do I export last month's usage for our finance team in {city}?",
        ),
        "context": (
            "Ticket history: customer verified via the email on file; account created in {year}; {n} seats.",
            "Agent note: the {plan} plan was upgraded mid-cycle, which creates a prorated line on the invoice.",
            "Previous reply: we applied a one-time credit of {amount} in {month}; no further credits are due.",
            "Status page: no incident reported for {feature} in the last {days} days.",
            "Billing record: order {order}, amount {amount}, paid by card, invoice sent to the billing contact.",
        ),
        "answer": (
            "Thanks for reaching out, and sorry for the confusion. I checked order {order}.",
            "The difference comes from a prorated charge after the upgrade to the {plan} plan on the 14th.",
            "You can download the usage export from Settings > Billing > Exports; it covers the last {days} days.",
            "I have not found any incident for {feature}; could you share the exact error message you see?",
            "I've passed this to a human agent, who will reply within one business day.",
        ),
    },
    "docs": {
        "system": (
            "You answer questions from sales representatives using only the product documentation excerpts "
            "provided. Cite the section number for every statement. If the documentation does not cover the "
            "question, say that it does not.",
        ),
        "user": (
            "Question: Does the {plan} plan include {feature}, and how is it enabled?",
            "Question: A prospect at {company} asks whether we support {feature} with data residency in the EU.",
            "Question: What is the maximum number of seats on the {plan} plan before we need a custom contract?",
        ),
        "context": (
            "Admin guide, section {sec}: To enable {feature}, open Settings > Security and select 'Configure'.",
            "Pricing sheet, section {sec}: the {plan} plan includes up to {seats} seats and standard support.",
            "Release notes {year}: {feature} is now generally available in all commercial regions.",
            "Security whitepaper, section {sec}: customer data is encrypted at rest with per-tenant keys.",
        ),
        "answer": (
            "Yes. According to section {sec}, {feature} is included in the {plan} plan.",
            "It is enabled under Settings > Security by an administrator (section {sec}).",
            "The documentation does not state a seat limit beyond {seats}; please check with deal desk.",
        ),
    },
    "sales": {
        "system": (
            "You are a sales copilot for the EMEA team. Write in a warm, professional tone, keep emails under "
            "200 words, and never quote discounts that are not in the CRM notes.",
        ),
        "user": (
            "Draft a follow-up email to {person} at {company} about renewing the {plan} plan before {month}.",
            "Summarise the last three calls with {company} and list open questions.",
            "Suggest an agenda for a 30-minute demo of {feature} for {company}'s team in {city}.",
        ),
        "context": (
            "CRM note: {company} has {seats} seats; renewal due in {month}; main concern is the price of {feature}.",
            "Call summary: {person} asked about {feature} and wants a reference customer in {city}.",
            "CRM note: approved discount for multi-year renewal is {n} percent; legal review takes about {days} days.",
        ),
        "answer": (
            "Hi {first}, thank you again for your time last week.",
            "As discussed, renewing the {plan} plan before {month} keeps your current pricing for all {seats} seats.",
            "I'd be happy to set up a short session on {feature} with our solutions team.",
            "Open questions: reference customer in {city}; timeline for legal review; onboarding plan.",
        ),
    },
    "rag": {
        "system": ("You write faithful, compact summaries of internal documents for the knowledge base.",),
        "user": (
            "Summarise the following document in five bullet points for the knowledge base.",
            "Extract the key obligations and dates from this contract excerpt.",
        ),
        "context": (
            "Section {sec}. Payment terms. Invoices are payable within {days} days of the invoice date.",
            "Section {sec}. Late payments accrue interest of one percent per month on the outstanding amount.",
            "Section {sec}. Either party may terminate this agreement with {days} days' written notice.",
            "Section {sec}. The supplier shall keep customer data within the agreed region at all times.",
            "Section {sec}. Service credits are the customer's sole remedy for missed availability targets.",
            "Section {sec}. This agreement renews automatically for successive twelve-month terms.",
            "Section {sec}. Support requests are answered within {n} business hours for severity one issues.",
        ),
        "answer": (
            "- Invoices are due within {days} days; late payments accrue interest.",
            "- Either party can terminate with {days} days' notice.",
            "- Customer data stays in the agreed region.",
            "- Service credits are the only remedy for missed availability.",
            "- The agreement renews every twelve months unless cancelled.",
        ),
    },
    "research": {
        "system": ("You are a careful research assistant. State uncertainty explicitly and prefer primary sources.",),
        "user": (
            "Explain the trade-offs of {topic} for a production {lang} service.",
            "Write a {lang} function that deduplicates records by id and keeps the latest timestamp.",
            "Compare {topic} with a simpler baseline and propose an evaluation plan.",
            "Review this abstract and list its three weakest claims.",
        ),
        "context": (
            "Abstract: We study {topic} on {n} public benchmarks and report a consistent gain over strong baselines.",
            "Our method reduces latency by {n} percent at equal quality, measured on a single accelerator.",
            "Limitations: results were obtained on English data only and may not transfer to other languages.",
            "Appendix {sec}: hyper-parameters were tuned on the validation split with {n} random restarts.",
        ),
        "answer": (
            "There are three main trade-offs to consider with {topic}.",
            "First, it adds operational complexity: you need monitoring for quality drift.",
            "Second, the gains reported in papers are measured on benchmarks that differ from production traffic.",
            "A reasonable evaluation plan compares both variants on a held-out sample of real requests.",
            "Here is a {lang} sketch that keeps the newest record per id using a single pass over the input.",
        ),
    },
    "playground": {
        "system": ("You are a helpful assistant.",),
        "user": (
            "what is the capital of {country}?",
            "Write a haiku about {topic}.",
            "Translate 'where is the train station' into German, French and Italian.",
            "Give me three name ideas for an outdoor gear newsletter.",
        ),
        "context": ("Keep it short.", "Answer in one paragraph.", "Use plain language."),
        "answer": (
            "Here is a short answer.",
            "Sure! Here are a few ideas you might like.",
            "Wo ist der Bahnhof? / Où est la gare ? / Dov'è la stazione?",
        ),
    },
    "image": {
        "system": ("",),
        "user": (
            "Illustration of {subject} in {style} style, soft morning light, for a spring campaign banner",
            "Product shot of the {product} on a mossy rock, {style} style, shallow depth of field",
        ),
        "context": ("",),
        "answer": ("",),
    },
}


def _compose(rng: random.Random, pool: tuple[str, ...], vals: Mapping[str, str], n_chars: int, sep: str) -> str:
    """Sentences from `pool` (slots filled) until about `n_chars` characters."""
    parts: list[str] = []
    size = 0
    while size < n_chars:
        s = rng.choice(pool).format_map(vals)
        parts.append(s)
        size += len(s) + len(sep)
    return sep.join(parts)


@dataclass
class _Texts:
    system: str
    turns: list[tuple[str, str]]  # (role, text), last is the user's
    answer: str

    @property
    def user(self) -> str:
        return self.turns[-1][1]


def _texts(rng: random.Random, c: Call, body_kb: float) -> _Texts:
    corpus = _CORPUS[c.workload.domain]
    vals = _slot_values(rng)
    budget = body_kb * 1024
    in_chars = int(min(max(lognormal(rng, budget * 0.45, 0.45), 40), budget * 4))
    if c.oversize:
        in_chars = c.prompt_tokens * 4
    out_chars = int(min(max(lognormal(rng, budget * 0.25, 0.45), 20), max(c.output_tokens * 4, 20)))
    system = rng.choice(corpus["system"]).format_map(vals)
    turns: list[tuple[str, str]] = []
    for _ in range(c.turns - 1):
        turns.append(("user", rng.choice(corpus["user"]).format_map(vals)))
        turns.append(("assistant", rng.choice(corpus["answer"]).format_map(vals)))
    head = rng.choice(corpus["user"]).format_map(vals)
    context = _compose(rng, corpus["context"], vals, max(in_chars - len(head) - len(system), 0), "\n")
    turns.append(("user", f"{head}\n\n{context}" if context.strip() else head))
    answer = _compose(rng, corpus["answer"], vals, out_chars, " ")
    return _Texts(system=system, turns=turns, answer=answer)


def _chunks(rng: random.Random, text: str) -> list[str]:
    """Split an answer into stream deltas the way token streams look: a few words each, spaces leading.

    Real streams have one delta per token or two; we keep one per ~40 characters (at most 48) so streamed
    records stay near the configured body size.
    """
    max_pieces = min(48, max(3, len(text) // 40))
    words = text.split(" ")
    per = max(1, math.ceil(len(words) / max_pieces))
    pieces = []
    i = 0
    while i < len(words):
        step = max(1, per + rng.randint(-1, 1)) if per > 1 else 1
        piece = " ".join(words[i : i + step])
        pieces.append(piece if i == 0 else " " + piece)
        i += step
    return pieces or [""]


# ---------------------------------------------------------------------------------------------------------------
# Bodies: provider-native request/response shapes (docs/formats/invocation-logs.md §5) and the Converse shape (§4.4)
# ---------------------------------------------------------------------------------------------------------------


def _temperature(rng: random.Random) -> float:
    return rng.choice((0, 0.2, 0.5, 0.7, 1))


def _anthropic_usage(c: Call) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": c.input_tokens}
    if c.model.supports_cache:
        usage["cache_creation_input_tokens"] = c.cache_write
        usage["cache_read_input_tokens"] = c.cache_read
        if c.cache_write_1h:
            usage["cache_creation"] = {
                "ephemeral_5m_input_tokens": c.cache_write - c.cache_write_1h,
                "ephemeral_1h_input_tokens": c.cache_write_1h,
            }
    usage["output_tokens"] = c.output_tokens
    return usage


def _invocation_metrics(c: Call) -> dict[str, int]:
    m = {
        "inputTokenCount": c.input_tokens,
        "outputTokenCount": c.output_tokens,
        "invocationLatency": c.latency_ms or 0,
        "firstByteLatency": c.first_byte_ms or 0,
    }
    if c.model.family == "anthropic" and c.model.supports_cache:
        m["cacheReadInputTokenCount"] = c.cache_read
        m["cacheWriteInputTokenCount"] = c.cache_write
    return m


def _msg_id(rng: random.Random, prefix: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "".join(rng.choice(alphabet) for _ in range(24))


def _llama_prompt(t: _Texts) -> str:
    out = ["<|begin_of_text|>"]
    if t.system:
        out.append(f"<|start_header_id|>system<|end_header_id|>\n\n{t.system}<|eot_id|>")
    for role, text in t.turns:
        out.append(f"<|start_header_id|>{role}<|end_header_id|>\n\n{text}<|eot_id|>")
    out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(out)


def _guardrail_trace(rng: random.Random, chars: int, converse: bool) -> dict[str, Any]:
    """The guardrail trace: InvokeModel bodies carry `actionReason` + `input` (§7), Converse responses
    carry `inputAssessment` (§4.5)."""
    assessment = {
        "h28wrktbwagn": {
            "contentPolicy": {
                "filters": [
                    {
                        "action": "BLOCKED",
                        "confidence": "HIGH",
                        "detected": True,
                        "filterStrength": "HIGH",
                        "type": rng.choice(("MISCONDUCT", "VIOLENCE", "INSULTS", "PROMPT_ATTACK")),
                    }
                ]
            },
            "invocationMetrics": {
                "guardrailCoverage": {"textCharacters": {"guarded": chars, "total": chars}},
                "guardrailProcessingLatency": rng.randint(90, 320),
                "usage": {
                    "contentPolicyImageUnits": 0,
                    "contentPolicyUnits": max(1, math.ceil(chars / 1000)),
                    "contextualGroundingPolicyUnits": 0,
                    "sensitiveInformationPolicyFreeUnits": 0,
                    "sensitiveInformationPolicyUnits": 0,
                    "topicPolicyUnits": 0,
                    "wordPolicyUnits": 0,
                },
            },
        }
    }
    if converse:
        return {"guardrail": {"inputAssessment": assessment}}
    return {"guardrail": {"actionReason": "Guardrail blocked.", "input": assessment}}


def _passed_trace(c: Call, t: _Texts) -> dict[str, Any]:
    """The trace of a guardrail that let a Converse call through (trace enabled): input and output assessed by the
    content, denied-topic and sensitive-information policies, one unit per started 1,000 characters. Written
    without drawing from the generator's random stream, so the rest of the sample stays as it was."""

    def assessment(chars: int) -> dict[str, Any]:
        units = max(1, math.ceil(chars / 1000))
        usage = {"contentPolicyUnits": units, "topicPolicyUnits": units, "wordPolicyUnits": 0,
                 "sensitiveInformationPolicyUnits": units, "sensitiveInformationPolicyFreeUnits": 0,
                 "contextualGroundingPolicyUnits": 0}  # fmt: skip
        metrics = {"guardrailProcessingLatency": 120 + units * 40, "usage": usage,
                   "guardrailCoverage": {"textCharacters": {"guarded": chars, "total": chars}}}  # fmt: skip
        return {"gr7xk2m9q4ab": {"invocationMetrics": metrics}}

    return {
        "guardrail": {
            "inputAssessment": assessment(len(t.user)),
            "outputAssessments": [assessment(len(t.answer))],
        }
    }


_GUARDRAIL_MESSAGE = "Sorry, I can't help with that request. Please contact a human agent for assistance."


def _converse_bodies(rng: random.Random, c: Call, t: _Texts) -> tuple[dict[str, Any], dict[str, Any] | None]:
    system: list[dict[str, Any]] = [{"text": t.system}]
    if c.cache_read or c.cache_write:
        system.append({"cachePoint": {"type": "default"}})
    req: dict[str, Any] = {
        "messages": [{"role": role, "content": [{"text": text}]} for role, text in t.turns],
        "system": system,
        "inferenceConfig": {"maxTokens": c.max_tokens, "temperature": _temperature(rng)},
    }
    if c.model.family == "anthropic" and rng.random() < 0.3:
        req["additionalModelRequestFields"] = {"top_k": 250}
    if c.latency_optimized:
        req["performanceConfig"] = {"latency": "optimized"}
    if c.workload.guardrail_rate > 0:
        req["guardrailConfig"] = {
            "guardrailIdentifier": "gr7xk2m9q4ab",
            "guardrailVersion": "3",
            "trace": "enabled",
        }
    if c.status in ERROR_STATUS.values():
        return req, None
    if c.status == "guardrail_intervened":
        resp: dict[str, Any] = {
            "output": {"message": {"role": "assistant", "content": [{"text": _GUARDRAIL_MESSAGE}]}},
            "stopReason": "guardrail_intervened",
            "metrics": {"latencyMs": c.latency_ms},
            "usage": {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0},
            "trace": _guardrail_trace(rng, len(t.user), converse=True),
        }
        return req, resp
    usage: dict[str, Any] = {"inputTokens": c.input_tokens}
    if c.model.supports_cache:
        usage["cacheReadInputTokens"] = c.cache_read
        usage["cacheWriteInputTokens"] = c.cache_write
        if c.cache_write_1h:
            five = c.cache_write - c.cache_write_1h
            usage["cacheDetails"] = [
                *([{"ttl": "5m", "inputTokens": five}] if five else []),
                {"ttl": "1h", "inputTokens": c.cache_write_1h},
            ]
    usage["outputTokens"] = c.output_tokens
    usage["totalTokens"] = c.input_tokens + c.cache_read + c.cache_write + c.output_tokens
    resp = {
        "output": {"message": {"role": "assistant", "content": [{"text": t.answer}]}},
        "stopReason": "max_tokens" if c.hit_max else "end_turn",
        "metrics": {"latencyMs": c.latency_ms},
        "usage": usage,
    }
    if c.workload.guardrail_rate > 0:  # the guardrail ran with trace enabled and let the call through
        resp["trace"] = _passed_trace(c, t)
    return req, resp


def _anthropic_bodies(rng: random.Random, c: Call, t: _Texts) -> tuple[dict[str, Any], Any]:
    req: dict[str, Any] = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": c.max_tokens}
    if c.cache_read or c.cache_write:
        req["system"] = [{"type": "text", "text": t.system, "cache_control": {"type": "ephemeral"}}]
    else:
        req["system"] = t.system
    req["messages"] = [{"role": role, "content": [{"type": "text", "text": text}]} for role, text in t.turns]
    req["temperature"] = _temperature(rng)
    if rng.random() < 0.4:
        req["top_p"] = 0.999
        req["top_k"] = 250
    if c.status in ERROR_STATUS.values():
        return req, None
    if c.status == "guardrail_intervened":
        return req, {
            "amazon-bedrock-guardrailAction": "INTERVENED",
            "amazon-bedrock-trace": _guardrail_trace(rng, len(t.user), converse=False),
            "content": [{"text": _GUARDRAIL_MESSAGE, "type": "text"}],
            "role": "assistant",
            "type": "message",
        }
    stop = "max_tokens" if c.hit_max else "end_turn"
    model = c.model.response_model
    if c.operation == "InvokeModel":
        return req, {
            "id": _msg_id(rng, "msg_bdrk_01"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": t.answer}],
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": _anthropic_usage(c),
        }
    start_usage = {k: v for k, v in _anthropic_usage(c).items() if k != "output_tokens"}
    start_usage["output_tokens"] = 1
    chunks: list[Any] = [
        {
            "type": "message_start",
            "message": {
                "id": _msg_id(rng, "msg_bdrk_01"),
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": model,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    chunks += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
        for p in _chunks(rng, t.answer)
    ]
    chunks += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": c.output_tokens},
        },
        {"type": "message_stop", "amazon-bedrock-invocationMetrics": _invocation_metrics(c)},
    ]
    return req, chunks


def _llama_bodies(rng: random.Random, c: Call, t: _Texts) -> tuple[dict[str, Any], Any]:
    imported = c.model.family == "imported_llama"
    prompt = f"{t.system}\n\n{t.user}" if imported else _llama_prompt(t)
    req = {"prompt": prompt, "max_gen_len": c.max_tokens, "temperature": _temperature(rng), "top_p": 0.9}
    if c.status != "success":
        return req, None
    stop = "length" if c.hit_max else "stop"
    if c.operation == "InvokeModel":
        if imported:
            return req, {
                "generation": t.answer,
                "generation_token_count": c.output_tokens,
                "stop_reason": stop,
                "prompt_token_count": c.input_tokens,
            }
        return req, {
            "generation": t.answer,
            "prompt_token_count": c.input_tokens,
            "generation_token_count": c.output_tokens,
            "stop_reason": stop,
        }
    pieces = _chunks(rng, t.answer)
    chunks: list[Any] = []
    for i, p in enumerate(pieces):
        chunks.append(
            {
                "generation": p,
                "prompt_token_count": c.input_tokens if i == 0 else None,
                "generation_token_count": max(1, round(c.output_tokens * (i + 1) / (len(pieces) + 1))),
                "stop_reason": None,
            }
        )
    chunks.append(
        {
            "generation": "",
            "prompt_token_count": None,
            "generation_token_count": c.output_tokens,
            "stop_reason": stop,
            "amazon-bedrock-invocationMetrics": _invocation_metrics(c),
        }
    )
    return req, chunks


def _nova_bodies(rng: random.Random, c: Call, t: _Texts) -> tuple[dict[str, Any], Any]:
    system: list[dict[str, Any]] = [{"text": t.system}]
    if c.cache_read:
        system.append({"cachePoint": {"type": "default"}})
    req = {
        "schemaVersion": "messages-v1",
        "system": system,
        "messages": [{"role": role, "content": [{"text": text}]} for role, text in t.turns],
        "inferenceConfig": {"maxTokens": c.max_tokens, "temperature": _temperature(rng), "topP": 0.9},
    }
    if c.status != "success":
        return req, None
    stop = "max_tokens" if c.hit_max else "end_turn"
    usage = {
        "inputTokens": c.input_tokens,
        "outputTokens": c.output_tokens,
        "totalTokens": c.input_tokens + c.output_tokens + c.cache_read + c.cache_write,
        "cacheReadInputTokenCount": c.cache_read,
        "cacheWriteInputTokenCount": c.cache_write,
    }
    if c.operation == "InvokeModel":
        return req, {
            "output": {"message": {"content": [{"text": t.answer}], "role": "assistant"}},
            "stopReason": stop,
            "usage": usage,
        }
    chunks: list[Any] = [{"messageStart": {"role": "assistant"}}]
    chunks += [{"contentBlockDelta": {"delta": {"text": p}, "contentBlockIndex": 0}} for p in _chunks(rng, t.answer)]
    chunks += [
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": stop}},
        {
            "metadata": {"usage": usage, "metrics": {}, "trace": {}},
            "amazon-bedrock-invocationMetrics": _invocation_metrics(c),
        },
    ]
    return req, chunks


def _generic_bodies(rng: random.Random, c: Call, t: _Texts) -> tuple[dict[str, Any], Any]:
    req = {
        "prompt": f"<s>[INST] {t.system}\n\n{t.user} [/INST]",
        "max_tokens": c.max_tokens,
        "temperature": 0.7,
    }
    if c.status != "success":
        return req, None
    return req, {"outputs": [{"text": t.answer, "stop_reason": "length" if c.hit_max else "stop"}]}


def _embedding(rng: random.Random, dim: int) -> list[float]:
    v = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [round(x / norm, 5) for x in v]


def _embed_bodies(rng: random.Random, c: Call, t: _Texts, body_kb: float) -> tuple[dict[str, Any], Any]:
    text = t.user if c.workload.domain != "search" else t.user.split("\n")[0]
    text = text[: max(40, c.prompt_tokens * 5)]
    dim = 1024 if body_kb >= 8 else (512 if body_kb >= 4 else 256)
    req: dict[str, Any] = {"inputText": text, "dimensions": dim, "normalize": True}
    by_type = rng.random() < 0.3
    if by_type:
        req["embeddingTypes"] = ["float"]
    if c.status != "success":
        return req, None
    vec = _embedding(rng, dim)
    resp: dict[str, Any] = {"embedding": vec, "inputTextTokenCount": c.input_tokens}
    if by_type:
        resp["embeddingsByType"] = {"float": vec}
    return req, resp


def _fake_png(rng: random.Random) -> str:
    """A base64 'image' over 100 KB that compresses well (periodic bytes), so sidecars stay small on disk."""
    raw_len = rng.randint(78_000, 120_000)
    period = rng.randbytes(48)
    raw = b"\x89PNG\r\n\x1a\n" + (period * (raw_len // 48 + 1))[: raw_len - 8]
    return base64.b64encode(raw).decode("ascii")


def _canvas_bodies(rng: random.Random, c: Call, t: _Texts) -> tuple[dict[str, Any], Any]:
    side = rng.choice((512, 768, 1024, 1024, 1024))
    req = {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": t.user.split("\n")[0][:1000]},
        "imageGenerationConfig": {
            "numberOfImages": c.images,
            "quality": c.quality,
            "width": side,
            "height": side,
            "cfgScale": rng.choice((6.5, 7.0, 8.0)),
            "seed": rng.randint(0, 858_993_459),
        },
    }
    if c.status != "success":
        return req, None
    return req, {"images": [_fake_png(rng) for _ in range(c.images)]}


def _bodies(rng: random.Random, c: Call, t: _Texts, body_kb: float) -> tuple[dict[str, Any], Any]:
    family = c.model.family
    if c.operation in ("Converse", "ConverseStream"):
        return _converse_bodies(rng, c, t)
    if family == "anthropic":
        return _anthropic_bodies(rng, c, t)
    if family in ("llama", "imported_llama"):
        return _llama_bodies(rng, c, t)
    if family == "nova":
        return _nova_bodies(rng, c, t)
    if family == "titan_embed":
        return _embed_bodies(rng, c, t, body_kb)
    if family == "nova_canvas":
        return _canvas_bodies(rng, c, t)
    return _generic_bodies(rng, c, t)


# ---------------------------------------------------------------------------------------------------------------
# Records: the log envelope in either field order, with offloading of >100 KB bodies
# ---------------------------------------------------------------------------------------------------------------


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def render_record(c: Call, opts: LogGenOptions, root_uri: str) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """The record exactly as Bedrock would write it, plus any `data/` sidecars (relative key, gzip bytes)."""
    rng = random.Random(f"{opts.seed}:body:{c.request_id}")
    texts = _texts(rng, c, opts.body_kb)
    req, resp = _bodies(rng, c, texts, opts.body_kb)
    sidecars: list[tuple[str, bytes]] = []
    data_prefix = f"{hour_prefix(c.account, c.region, c.ts * 1000)}/data/{c.request_id}"

    inp: dict[str, Any] = {"inputContentType": "application/json"}
    req_bytes = orjson.dumps(req)
    if len(req_bytes) > OFFLOAD_BYTES:
        key = f"{data_prefix}_input.json.gz"
        sidecars.append((key, gzip_bytes(req_bytes)))
        inp["inputBodyS3Path"] = f"{root_uri}/{key}"
    else:
        inp["inputBodyJson"] = req

    success = c.status == "success"
    guard = c.status == "guardrail_intervened"
    with_counts = success or (guard and c.operation != "InvokeModel")
    if c.model.family == "nova_canvas" and success:
        inp["inputTokenCount"] = 0
    elif with_counts:
        inp["inputTokenCount"] = c.input_tokens
        if c.cache_read or c.cache_write or (c.model.supports_cache and not c.old_format):
            inp["cacheReadInputTokenCount"] = c.cache_read
            inp["cacheWriteInputTokenCount"] = c.cache_write

    out: dict[str, Any] | None = None
    if resp is not None:
        out = {"outputContentType": "application/json"}
        resp_bytes = orjson.dumps(resp)
        if len(resp_bytes) > OFFLOAD_BYTES:
            key = f"{data_prefix}_output.json.gz"
            sidecars.append((key, gzip_bytes(resp_bytes)))
            out["outputBodyS3Path"] = f"{root_uri}/{key}"
        else:
            out["outputBodyJson"] = resp
        if with_counts:
            out["outputTokenCount"] = c.output_tokens

    ts = _iso(c.ts)
    identity = {"arn": c.identity_arn}
    rec: dict[str, Any]
    if c.old_format:
        rec = {
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": ts,
            "accountId": c.account,
            "identity": identity,
            "region": c.region,
            "requestId": c.request_id,
            "operation": c.operation,
            "modelId": c.model_id,
        }
        if c.error_code:
            rec["errorCode"] = c.error_code
        rec["input"] = inp
        if out is not None:
            rec["output"] = out
        if c.request_metadata:
            rec["requestMetadata"] = dict(c.request_metadata)
        if c.inference_region:
            rec["inferenceRegion"] = c.inference_region
    else:
        rec = {
            "timestamp": ts,
            "accountId": c.account,
            "region": c.region,
            "requestId": c.request_id,
            "operation": c.operation,
            "modelId": c.model_id,
        }
        if c.error_code:
            rec["errorCode"] = c.error_code
        rec["input"] = inp
        if out is not None:
            rec["output"] = out
        rec["identity"] = identity
        if c.request_metadata:
            rec["requestMetadata"] = dict(c.request_metadata)
        rec["schemaType"] = "ModelInvocationLog"
        rec["schemaVersion"] = "1.0"
        if c.inference_region:
            rec["inferenceRegion"] = c.inference_region
    return rec, sidecars


def iter_records(opts: LogGenOptions, root_uri: str = DEFAULT_LOG_ROOT) -> Iterator[dict[str, Any]]:
    """The true invocation-log records, day by day in time order, exactly as they would be delivered to
    `root_uri` (which only matters for the `inputBodyS3Path`/`outputBodyS3Path` of offloaded bodies).

    No faults, no duplicates; the same records `write_logs` writes for the same options.
    """
    root = delivery_root(root_uri)
    for day in opts.dates:
        for c in plan_day(opts, day):
            yield render_record(c, opts, root)[0]
