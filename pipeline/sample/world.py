"""The fixed sample world: accounts, Regions, models, principals, applications and their workloads.

Everything the generator invents is declared here, in one place, so the demo config (`ledger_config.py`:
attribution rules, app profiles, budgets, the price override for the custom model) cannot drift from the logs it
describes. Prices are not restated here: each model names the price-catalog row that prices it (`price_id`), so
the catalog stays the one source of prices. Model ids are ones present in the bundled price CSV, except two
deliberate gaps: an imported custom model priced only by a user override, an unknown model with no public
price (it must show up as unpriced, never as $0), and Nova 2 Omni, which the catalog lacks but the bill prices.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from pipeline.pricing.catalog import ANY_REGION, BUNDLED_PRICES, PriceRow, read_price_file

ACCOUNTS: tuple[str, ...] = ("111122223333", "444455556666", "777788889999")
"""111122223333 = product (search, support, sales docs, images, custom model); 444455556666 = research and
platform experiments; 777788889999 = the EU sales organisation."""

REGIONS: tuple[str, ...] = ("us-east-1", "us-west-2", "eu-central-1")

DEFAULT_START = dt.date(2026, 1, 1)
DEFAULT_LOG_ROOT = "s3://bedrock-logs/bedrock/invocation-logs"
DEFAULT_LOG_GROUP = "/aws/bedrock/modelinvocations"
CLOUDWATCH_STREAM = "aws/bedrock/modelinvocations"

COST_CENTERS: tuple[str, ...] = ("search", "sales", "support", "research", "platform")

CUSTOM_MODEL_ARN = "arn:aws:bedrock:us-east-1:111122223333:imported-model/abcd1234efgh"
IDLE_PROVISIONED_TAGS: Mapping[str, str] = {"costCenter": "platform", "applicationId": "capacity-reserve"}
"""Owner of the sample's idle provisioned model (billed, never called): chargeback gives its hours to them."""


def idle_provisioned_arn(account: str = "111122223333", region: str = "us-east-1") -> str:
    """The provisioned-model ARN the sample bill charges all day with no call on it (idle capacity)."""
    return f"arn:aws:bedrock:{region}:{account}:provisioned-model/idle0reserve"


UNKNOWN_MODEL_ID = "acme.mystery-model-v1:0"
BILL_ONLY_MODEL_ID = "us.amazon.nova-2-omni-v1:0"
"""A real model (Nova 2 Omni, preview) the catalog has no row for but the bill prices: shows bill-priced calls."""

DOCS_HELPER_PROFILE = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3d4e5f6"
SUPPORT_BOT_PROFILE = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/k7m2x9p4q1rs"

# ---------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """One identifier as a caller passes it, with what the generator needs to fake its calls and price them.

    `model_id` may contain `{region}` / `{account}` placeholders (inference-profile ARNs embed both). `price_id`
    names the price-catalog row that prices it (`model_prices`; the prices only size the demo budgets, the
    pipeline prices every call itself). `family` selects the provider-native body shape for InvokeModel*.
    """

    model_id: str
    base_model_id: str
    family: str  # anthropic | llama | nova | titan_embed | nova_canvas | imported_llama | generic
    routing: str  # in_region | geo | global | application_profile
    price_id: str | None = None  # the price catalog's `model_id` whose standard row prices it; None: no public price
    response_model: str | None = None  # Anthropic `model` field in responses
    supports_cache: bool = False
    ms_per_token: float = 10.0
    geo: str | None = None  # us | eu | global: where `inferenceRegion` can point

    def logged_id(self, account: str, region: str) -> str:
        """The `modelId` string as it appears in a log of `account` calling from `region`."""
        return self.model_id.format(account=account, region=region)

    @property
    def priced(self) -> bool:
        return model_prices(self) is not None


_HAIKU3 = "anthropic.claude-3-haiku-20240307-v1:0"
_SONNET35 = "anthropic.claude-3-5-sonnet-20240620-v1:0"
_SONNET45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
_HAIKU45 = "anthropic.claude-haiku-4-5-20251001-v1:0"

MODELS: dict[str, ModelSpec] = {
    "claude-3-haiku": ModelSpec(
        _HAIKU3,
        _HAIKU3,
        "anthropic",
        "in_region",
        price_id=_HAIKU3,
        response_model="claude-3-haiku-20240307",
        ms_per_token=6.0,
    ),
    "claude-3-5-sonnet": ModelSpec(
        _SONNET35,
        _SONNET35,
        "anthropic",
        "in_region",
        price_id=_SONNET35,
        response_model="claude-3-5-sonnet-20240620",
        ms_per_token=17.0,
    ),
    "claude-haiku-4-5": ModelSpec(
        _HAIKU45,
        _HAIKU45,
        "anthropic",
        "in_region",
        price_id=_HAIKU45,
        response_model="claude-haiku-4-5-20251001",
        supports_cache=True,
        ms_per_token=7.0,
    ),
    "us.claude-haiku-4-5": ModelSpec(
        "us." + _HAIKU45,
        _HAIKU45,
        "anthropic",
        "geo",
        price_id="us." + _HAIKU45,
        response_model="claude-haiku-4-5-20251001",
        supports_cache=True,
        ms_per_token=7.0,
        geo="us",
    ),
    "arn.us.claude-haiku-4-5": ModelSpec(
        "arn:aws:bedrock:{region}:{account}:inference-profile/us." + _HAIKU45,
        _HAIKU45,
        "anthropic",
        "geo",
        price_id="us." + _HAIKU45,
        response_model="claude-haiku-4-5-20251001",
        supports_cache=True,
        ms_per_token=7.0,
        geo="us",
    ),
    "us.claude-sonnet-4-5": ModelSpec(
        "us." + _SONNET45,
        _SONNET45,
        "anthropic",
        "geo",
        price_id="us." + _SONNET45,
        response_model="claude-sonnet-4-5-20250929",
        supports_cache=True,
        ms_per_token=16.0,
        geo="us",
    ),
    "global.claude-sonnet-4-5": ModelSpec(
        "global." + _SONNET45,
        _SONNET45,
        "anthropic",
        "global",
        price_id="global." + _SONNET45,
        response_model="claude-sonnet-4-5-20250929",
        supports_cache=True,
        ms_per_token=16.0,
        geo="global",
    ),
    "eu.claude-sonnet-4-5": ModelSpec(
        "eu." + _SONNET45,
        _SONNET45,
        "anthropic",
        "geo",
        price_id="eu." + _SONNET45,
        response_model="claude-sonnet-4-5-20250929",
        supports_cache=True,
        ms_per_token=16.0,
        geo="eu",
    ),
    "app.docs-helper": ModelSpec(
        DOCS_HELPER_PROFILE,
        _HAIKU3,
        "anthropic",
        "application_profile",
        price_id=_HAIKU3,  # wraps the in-Region model
        response_model="claude-3-haiku-20240307",
        ms_per_token=6.0,
    ),
    "app.support-bot": ModelSpec(
        SUPPORT_BOT_PROFILE,
        _SONNET45,
        "anthropic",
        "application_profile",
        price_id="us." + _SONNET45,  # wraps the US cross-Region profile
        response_model="claude-sonnet-4-5-20250929",
        supports_cache=True,
        ms_per_token=16.0,
        geo="us",
    ),
    "llama3-1-8b": ModelSpec(
        "meta.llama3-1-8b-instruct-v1:0",
        "meta.llama3-1-8b-instruct-v1:0",
        "llama",
        "in_region",
        price_id="meta.llama3-1-8b-instruct-v1:0",
        ms_per_token=5.0,
    ),
    "llama3-1-70b": ModelSpec(
        "meta.llama3-1-70b-instruct-v1:0",
        "meta.llama3-1-70b-instruct-v1:0",
        "llama",
        "in_region",
        price_id="meta.llama3-1-70b-instruct-v1:0",
        ms_per_token=14.0,
    ),
    "nova-lite": ModelSpec(
        "amazon.nova-lite-v1:0",
        "amazon.nova-lite-v1:0",
        "nova",
        "in_region",
        price_id="amazon.nova-lite-v1:0",
        supports_cache=True,
        ms_per_token=4.0,
    ),
    "us.nova-lite": ModelSpec(
        "us.amazon.nova-lite-v1:0",
        "amazon.nova-lite-v1:0",
        "nova",
        "geo",
        price_id="us.amazon.nova-lite-v1:0",
        supports_cache=True,
        ms_per_token=4.0,
        geo="us",
    ),
    "eu.nova-lite": ModelSpec(
        "eu.amazon.nova-lite-v1:0",
        "amazon.nova-lite-v1:0",
        "nova",
        "geo",
        price_id="eu.amazon.nova-lite-v1:0",
        ms_per_token=4.0,
        geo="eu",
    ),
    "nova-pro": ModelSpec(
        "amazon.nova-pro-v1:0",
        "amazon.nova-pro-v1:0",
        "nova",
        "in_region",
        price_id="amazon.nova-pro-v1:0",
        supports_cache=True,
        ms_per_token=9.0,
    ),
    "us.nova-pro": ModelSpec(
        "us.amazon.nova-pro-v1:0",
        "amazon.nova-pro-v1:0",
        "nova",
        "geo",
        price_id="us.amazon.nova-pro-v1:0",
        supports_cache=True,
        ms_per_token=9.0,
        geo="us",
    ),
    "titan-embed-v2": ModelSpec(
        "amazon.titan-embed-text-v2:0",
        "amazon.titan-embed-text-v2:0",
        "titan_embed",
        "in_region",
        price_id="amazon.titan-embed-text-v2:0",
        ms_per_token=0.2,
    ),
    "nova-canvas": ModelSpec(
        "amazon.nova-canvas-v1:0",
        "amazon.nova-canvas-v1:0",
        "nova_canvas",
        "in_region",
        price_id="amazon.nova-canvas-v1:0",  # not in the catalog: see IMAGE_PRICES
        ms_per_token=0.0,
    ),
    "custom": ModelSpec(
        CUSTOM_MODEL_ARN,
        CUSTOM_MODEL_ARN,
        "imported_llama",
        "in_region",
        price_id=CUSTOM_MODEL_ARN,  # priced only by the user's override (CUSTOM_MODEL_PRICE), no public price
        ms_per_token=9.0,
    ),
    "unknown": ModelSpec(UNKNOWN_MODEL_ID, UNKNOWN_MODEL_ID, "generic", "in_region", ms_per_token=11.0),
    # A model the bill knows (billing name Nova2.0Omni) and the catalog does not: its calls are unpriced on the
    # first day and priced from that day's bill list rate afterwards (price_origin = bill).
    "us.nova-2-omni": ModelSpec(
        BILL_ONLY_MODEL_ID, BILL_ONLY_MODEL_ID.removeprefix("us."), "nova", "geo", ms_per_token=8.0, geo="us"
    ),
}


@dataclass(frozen=True)
class ModelPrices:
    """USD per 1,000 tokens of each kind (cache kinds fall back to the input rate), or per image."""

    input_per_1k: float = 0.0
    output_per_1k: float = 0.0
    cache_read_per_1k: float = 0.0
    cache_write_per_1k: float = 0.0
    per_image: Mapping[str, float] = field(default_factory=dict)  # quality -> USD per image (<= 1024x1024)


IMAGE_PRICES: dict[str, ModelPrices] = {
    "amazon.nova-canvas-v1:0": ModelPrices(per_image={"standard": 0.04, "premium": 0.06}),
}
"""Per-quality image rates. The one exception to "prices come from the catalog": the catalog has a single flat
rate for the US profile only (its source does not split size or quality), so in-Region Nova Canvas calls are
unpriced by the pipeline and the bill generator, and these rates only size the sample budgets."""

CUSTOM_MODEL_PRICE = ModelPrices(input_per_1k=0.0005, output_per_1k=0.0015)
"""The user's own rate for the imported fine-tune (no public price exists); written as the sample's override file."""


@lru_cache(maxsize=1)
def _catalog_rows() -> dict[str, PriceRow]:
    """Today's standard, any-Region, standard-context row per model id of the bundled price catalog."""
    rows: dict[str, PriceRow] = {}
    for row in read_price_file(BUNDLED_PRICES, origin="catalog"):
        if (row.region, row.tier, row.context_tier, row.routing, row.effective_to) == (
            ANY_REGION,
            "standard",
            "standard",
            None,
            None,
        ):
            rows[row.model_id] = row
    return rows


def model_prices(spec: ModelSpec) -> ModelPrices | None:
    """The rates the sample uses to size budgets: the price catalog's row for `spec.price_id` (the custom model:
    the override the sample writes). None when the model has no price, as the pipeline would find none."""
    if spec.price_id is None:
        return None
    if spec.price_id == CUSTOM_MODEL_ARN:
        return CUSTOM_MODEL_PRICE
    if spec.price_id in IMAGE_PRICES:
        return IMAGE_PRICES[spec.price_id]
    row = _catalog_rows().get(spec.price_id)
    if row is None:
        raise KeyError(f"sample model {spec.model_id}: no standard price row for {spec.price_id} in the catalog")
    p = row.prices
    inp = p["input_per_1k_usd"] or 0.0
    return ModelPrices(
        input_per_1k=inp,
        output_per_1k=p["output_per_1k_usd"] or 0.0,
        cache_read_per_1k=p["cache_read_per_1k_usd"] if p["cache_read_per_1k_usd"] is not None else inp,
        cache_write_per_1k=p["cache_write_per_1k_usd"] if p["cache_write_per_1k_usd"] is not None else inp,
    )


INFERENCE_REGIONS: dict[str, tuple[str, ...]] = {
    "us": ("us-east-1", "us-east-2", "us-west-2"),
    "eu": ("eu-central-1", "eu-west-1", "eu-west-3", "eu-north-1"),
    "global": ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-southeast-2"),
}
"""Where a cross-Region profile may run a call; logged as `inferenceRegion` (the source Region stays `region`)."""


@dataclass(frozen=True)
class AppProfile:
    """An application inference profile: an opaque ARN, the model it wraps and its cost-allocation tags."""

    arn: str
    model_id: str
    tags: Mapping[str, str]


APP_PROFILES: tuple[AppProfile, ...] = (
    AppProfile(
        DOCS_HELPER_PROFILE,
        "anthropic.claude-3-haiku-20240307-v1:0",
        {"costCenter": "sales", "applicationId": "docs-helper", "environment": "production"},
    ),
    AppProfile(
        SUPPORT_BOT_PROFILE,
        "us." + _SONNET45,
        {"costCenter": "support", "applicationId": "support-bot", "environment": "production"},
    ),
)

PRINCIPAL_RULES: tuple[tuple[str, Mapping[str, str]], ...] = (
    ("arn:aws:sts::*:assumed-role/search-*/*", {"costCenter": "search", "applicationId": "search-api"}),
    ("arn:aws:sts::*:assumed-role/support-bot/*", {"costCenter": "support", "applicationId": "support-bot"}),
    ("arn:aws:sts::*:assumed-role/sales-*/*", {"costCenter": "sales"}),
    ("arn:aws:sts::*:assumed-role/rag-indexer/*", {"costCenter": "platform", "applicationId": "rag-indexer"}),
    ("arn:aws:sts::*:assumed-role/platform-*/*", {"costCenter": "platform"}),
    ("arn:aws:sts::*:assumed-role/research-*/*", {"costCenter": "research"}),
    ("arn:aws:iam::444455556666:user/*", {"costCenter": "research", "environment": "dev"}),
    # A rule on a resource, not a caller: the sales knowledge base's bill-only retrieval rows (sample.whole_bill).
    ("arn:aws:bedrock:*:knowledge-base/SALESKB*", {"costCenter": "sales", "applicationId": "sales-kb"}),
)
"""Identity-ARN globs -> tags (and one resource-ARN glob for bill-only rows). Playground sessions and the image
studio's IAM users match none on purpose, so the demo shows `unattributed` spend unless their calls carry request
metadata."""

# ---------------------------------------------------------------------------------------------------------------
# Workloads: who calls what, when, how much
# ---------------------------------------------------------------------------------------------------------------


def diurnal(peak_utc: float, width_h: float, floor: float = 0.08) -> tuple[float, ...]:
    """24 hourly weights: a bump around `peak_utc` (wrapping midnight) over a floor of background traffic."""
    weights = []
    for h in range(24):
        d = abs(h + 0.5 - peak_utc) % 24
        d = min(d, 24 - d)
        weights.append(floor + math.exp(-0.5 * (d / width_h) ** 2))
    return tuple(weights)


US_DAY = diurnal(18.5, 4.0)  # 9:30 ET .. 18:00 PT lands on 13..02 UTC
EU_DAY = diurnal(11.0, 3.5, 0.05)
NIGHT_BATCH = diurnal(1.5, 2.0, 0.03)
RESEARCH_DAY = diurnal(20.0, 4.5, 0.12)


@dataclass(frozen=True)
class ModelUse:
    """One (model, operation) a workload uses, with its share of the workload's calls."""

    model: str  # key of MODELS
    operation: str
    weight: float


@dataclass(frozen=True)
class Workload:
    """An application or group of people, with its identity, models, traffic shape, token profile and tags.

    Token counts are lognormal around the means; `cache_prefix` is the size of a cached system prompt for models
    that support prompt caching (read on `cache_hit` of calls, written otherwise). `metadata` is what the caller
    puts in `requestMetadata` on `metadata_share` of calls; `user_pool` fills `userId` there.
    """

    name: str
    account: str
    regions: tuple[tuple[str, float], ...]
    models: tuple[ModelUse, ...]
    weight: float
    hours: tuple[float, ...]
    domain: str
    role: str | None = None
    sessions: tuple[str, ...] = ()
    iam_users: tuple[str, ...] = ()
    metadata_share: float = 0.0
    metadata: Mapping[str, str] = field(default_factory=dict)
    alt_metadata: Mapping[str, str] = field(default_factory=dict)  # used on alt_share of metadata calls
    alt_share: float = 0.0
    user_pool: tuple[str, ...] = ()
    input_mean: float = 900.0
    input_sigma: float = 0.6
    output_mean: float = 250.0
    output_sigma: float = 0.6
    max_tokens: int = 1024
    cache_prefix: int = 0
    cache_hit: float = 0.85
    guardrail_rate: float = 0.0
    oversize_rate: float = 0.0
    multi_turn: float = 0.2


_SUPPORT_AGENTS = tuple(
    f"{n}@example.com"
    for n in ("maria.garcia", "tom.becker", "aisha.khan", "li.wei", "jonas.berg", "fatima.ali", "sam.oconnor")
)
_SALES_REPS = tuple(f"{n}@example.com" for n in ("chris.lee", "dana.white", "eli.rosen", "grace.kim", "hugo.martin"))
_EU_REPS = tuple(
    f"{n}@example.eu" for n in ("lena.schmidt", "pierre.dubois", "sofia.rossi", "jan.novak", "elena.petrova")
)
_RESEARCHERS = ("alice.chen", "bob.okafor", "carla.mendes", "dev.patel")
_PLAYGROUND_PEOPLE = ("priya.nair@example.com", "marco.bianchi@example.com", "yuki.tanaka@example.com")
_CUSTOMERS = tuple(
    f"cust-{n:05d}"
    for n in (
        10482,
        10917,
        11230,
        11876,
        12045,
        12399,
        12710,
        13002,
        13388,
        13561,
        14020,
        14417,
        14873,
        15106,
        15532,
        15989,
        16244,
        16705,
        17130,
        17468,
    )
)

WORKLOADS: tuple[Workload, ...] = (
    Workload(
        name="search-api",
        account="111122223333",
        regions=(("us-east-1", 0.8), ("us-west-2", 0.2)),
        models=(
            ModelUse("claude-haiku-4-5", "Converse", 0.45),
            ModelUse("claude-3-haiku", "InvokeModel", 0.25),
            ModelUse("titan-embed-v2", "InvokeModel", 0.30),
        ),
        weight=0.22,
        hours=US_DAY,
        domain="search",
        role="search-api",
        sessions=(
            "8d2f1c9e4b7a4e6c9d1f0a2b3c4d5e6f",
            "1f0e2d3c4b5a69788796a5b4c3d2e1f0",
            "a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1",
        ),
        metadata_share=0.8,
        metadata={"costCenter": "search", "applicationId": "search-api", "environment": "production"},
        alt_metadata={
            "costCenter": "sales",
            "applicationId": "product-search-widget",
            "environment": "production",
        },
        alt_share=0.15,
        user_pool=_CUSTOMERS,
        input_mean=1400,
        output_mean=180,
        max_tokens=512,
        guardrail_rate=0.002,
    ),
    Workload(
        name="support-bot",
        account="111122223333",
        regions=(("us-east-1", 1.0),),
        models=(
            ModelUse("app.support-bot", "Converse", 0.45),
            ModelUse("app.support-bot", "ConverseStream", 0.35),
            ModelUse("us.claude-haiku-4-5", "InvokeModelWithResponseStream", 0.20),
        ),
        weight=0.18,
        hours=US_DAY,
        domain="support",
        role="support-bot",
        sessions=(
            "botocore-session-1767225600",
            "botocore-session-1767229211",
            "botocore-session-1767232845",
        ),
        metadata_share=0.7,
        metadata={"costCenter": "support", "applicationId": "support-bot", "environment": "production"},
        user_pool=_SUPPORT_AGENTS,
        input_mean=900,
        output_mean=420,
        max_tokens=2048,
        cache_prefix=7800,
        cache_hit=0.88,
        guardrail_rate=0.015,
        oversize_rate=0.01,
        multi_turn=0.6,
    ),
    Workload(
        name="docs-helper",
        account="111122223333",
        regions=(("us-east-1", 1.0),),
        models=(
            ModelUse("app.docs-helper", "Converse", 0.6),
            ModelUse("app.docs-helper", "InvokeModel", 0.4),
        ),
        weight=0.10,
        hours=US_DAY,
        domain="docs",
        role="docs-helper",
        sessions=("docs-helper-prod",),
        metadata_share=0.6,
        metadata={"applicationId": "docs-helper", "environment": "production"},
        user_pool=_SALES_REPS,
        input_mean=2200,
        output_mean=350,
        guardrail_rate=0.004,
    ),
    Workload(
        name="sales-copilot",
        account="777788889999",
        regions=(("eu-central-1", 1.0),),
        models=(
            ModelUse("eu.nova-lite", "Converse", 0.35),
            ModelUse("eu.nova-lite", "InvokeModel", 0.15),
            ModelUse("eu.claude-sonnet-4-5", "ConverseStream", 0.25),
            ModelUse("eu.claude-sonnet-4-5", "InvokeModelWithResponseStream", 0.10),
            ModelUse("titan-embed-v2", "InvokeModel", 0.15),
        ),
        weight=0.12,
        hours=EU_DAY,
        domain="sales",
        role="sales-copilot",
        sessions=("sales-copilot-handler",),
        metadata_share=0.65,
        metadata={"costCenter": "sales", "applicationId": "sales-copilot", "environment": "production"},
        user_pool=_EU_REPS,
        input_mean=1200,
        output_mean=380,
        cache_prefix=2400,
        cache_hit=0.7,
        guardrail_rate=0.01,
    ),
    Workload(
        name="rag-indexer",
        account="111122223333",
        regions=(("us-west-2", 1.0),),
        models=(
            ModelUse("titan-embed-v2", "InvokeModel", 0.8),
            ModelUse("nova-lite", "InvokeModel", 0.1),
            ModelUse("us.nova-lite", "Converse", 0.1),
        ),
        weight=0.15,
        hours=NIGHT_BATCH,
        domain="rag",
        role="rag-indexer",
        sessions=("ingest-job-4211", "ingest-job-4212", "ingest-job-4213"),
        metadata_share=0.5,
        metadata={"applicationId": "rag-indexer", "environment": "production"},
        input_mean=600,
        output_mean=220,
        oversize_rate=0.01,
        multi_turn=0.0,
    ),
    Workload(
        name="research-notebooks",
        account="444455556666",
        regions=(("us-west-2", 0.7), ("us-east-1", 0.3)),
        models=(
            ModelUse("global.claude-sonnet-4-5", "ConverseStream", 0.15),
            ModelUse("global.claude-sonnet-4-5", "InvokeModelWithResponseStream", 0.10),
            ModelUse("claude-3-5-sonnet", "InvokeModel", 0.15),
            ModelUse("llama3-1-70b", "InvokeModel", 0.15),
            ModelUse("llama3-1-70b", "InvokeModelWithResponseStream", 0.05),
            ModelUse("llama3-1-8b", "InvokeModel", 0.10),
            ModelUse("llama3-1-8b", "Converse", 0.05),
            ModelUse("nova-pro", "Converse", 0.10),
            ModelUse("us.nova-pro", "InvokeModelWithResponseStream", 0.05),
            ModelUse("us.nova-pro", "InvokeModel", 0.10),
        ),
        weight=0.12,
        hours=RESEARCH_DAY,
        domain="research",
        iam_users=_RESEARCHERS,
        metadata_share=0.6,
        metadata={"costCenter": "research", "applicationId": "notebooks", "environment": "dev"},
        input_mean=1800,
        input_sigma=0.9,
        output_mean=600,
        max_tokens=4096,
        cache_prefix=3000,
        cache_hit=0.6,
        multi_turn=0.4,
    ),
    Workload(
        name="playground",
        account="111122223333",
        regions=(("us-east-1", 1.0),),
        models=(
            ModelUse("arn.us.claude-haiku-4-5", "ConverseStream", 0.4),
            ModelUse("us.claude-sonnet-4-5", "ConverseStream", 0.3),
            ModelUse("us.nova-pro", "ConverseStream", 0.15),
            ModelUse("llama3-1-8b", "ConverseStream", 0.15),
        ),
        weight=0.03,
        hours=US_DAY,
        domain="playground",
        role="BEDROCKPLAYGROUNDACCESS",
        sessions=_PLAYGROUND_PEOPLE,
        input_mean=250,
        output_mean=400,
        guardrail_rate=0.02,
        multi_turn=0.5,
    ),
    Workload(
        name="playground-research",
        account="444455556666",
        regions=(("us-west-2", 1.0),),
        models=(
            ModelUse("arn.us.claude-haiku-4-5", "ConverseStream", 0.5),
            ModelUse("us.nova-pro", "ConverseStream", 0.5),
        ),
        weight=0.02,
        hours=RESEARCH_DAY,
        domain="playground",
        role="BEDROCKPLAYGROUNDACCESS",
        sessions=("alice.chen@example.com", "dev.patel@example.com"),
        input_mean=250,
        output_mean=400,
        guardrail_rate=0.02,
        multi_turn=0.5,
    ),
    Workload(
        name="brand-studio",
        account="111122223333",
        regions=(("us-east-1", 1.0),),
        models=(ModelUse("nova-canvas", "InvokeModel", 1.0),),
        weight=0.01,
        hours=US_DAY,
        domain="image",
        iam_users=("designer", "marketing-intern"),
        metadata_share=0.5,
        metadata={"costCenter": "sales", "applicationId": "brand-studio", "environment": "production"},
        user_pool=("designer", "marketing-intern"),
        multi_turn=0.0,
    ),
    Workload(
        name="custom-model",
        account="111122223333",
        regions=(("us-east-1", 1.0),),
        models=(ModelUse("custom", "InvokeModel", 1.0),),
        weight=0.03,
        hours=RESEARCH_DAY,
        domain="research",
        role="research-finetune",
        sessions=("eval-run-0193",),
        input_mean=700,
        output_mean=300,
        multi_turn=0.0,
    ),
    Workload(
        name="platform-eval",
        account="444455556666",
        regions=(("us-east-1", 1.0),),
        models=(
            ModelUse("unknown", "InvokeModel", 0.5),
            ModelUse("us.nova-pro", "Converse", 0.3),
            ModelUse("us.nova-2-omni", "Converse", 0.2),
        ),
        weight=0.02,
        hours=RESEARCH_DAY,
        domain="research",
        role="platform-eval",
        sessions=("model-bakeoff",),
        metadata_share=0.2,
        metadata={"applicationId": "model-bakeoff", "environment": "staging"},
        input_mean=800,
        output_mean=350,
        multi_turn=0.0,
    ),
)


@dataclass(frozen=True)
class PlantedWorkload:
    """A workload of the sample's history (`LogGenOptions.plant_day`) with a planned event on the plant day.

    `event` is `spike` (every day, `spike_factor` × its calls on the plant day), `new` (from the plant day on only)
    or `stopped` (every day before the plant day only). Its calls per day are `max(min_calls, share × records per
    day)`, a fixed count so the event, not the noise, is what foresight finds.
    """

    workload: Workload
    event: str
    min_calls: int
    share: float
    spike_factor: int = 6

    def calls_on(self, day: dt.date, plant_day: dt.date, records_per_day: int) -> int:
        n = max(self.min_calls, round(self.share * records_per_day))
        if self.event == "spike":
            return n * self.spike_factor if day == plant_day else n
        if self.event == "new":
            return n if day >= plant_day else 0
        return n if day < plant_day else 0


PLANTED: tuple[PlantedWorkload, ...] = (
    PlantedWorkload(
        Workload(
            name="nightly-reports",
            account="111122223333",
            regions=(("us-east-1", 1.0),),
            models=(ModelUse("us.claude-sonnet-4-5", "InvokeModel", 1.0),),
            weight=0.0,
            hours=NIGHT_BATCH,
            domain="docs",
            role="reports-runner",
            sessions=("nightly-reports",),
            metadata_share=1.0,
            metadata={"costCenter": "finance", "applicationId": "nightly-reports", "environment": "production"},
            input_mean=40_000,
            input_sigma=0.2,
            output_mean=1500,
            output_sigma=0.2,
            max_tokens=4096,
            multi_turn=0.0,
        ),
        event="spike",
        min_calls=5,
        share=0.05,
    ),
    PlantedWorkload(
        Workload(
            name="contract-review",
            account="111122223333",
            regions=(("us-east-1", 1.0),),
            models=(ModelUse("global.claude-sonnet-4-5", "Converse", 1.0),),
            weight=0.0,
            hours=US_DAY,
            domain="docs",
            role="contract-review",
            sessions=("contract-review-prod",),
            metadata_share=1.0,
            metadata={"costCenter": "legal", "applicationId": "contract-review", "environment": "production"},
            input_mean=30_000,
            input_sigma=0.2,
            output_mean=1200,
            output_sigma=0.2,
            max_tokens=4096,
            multi_turn=0.0,
        ),
        event="new",
        min_calls=8,
        share=0.05,
    ),
    PlantedWorkload(
        Workload(
            name="labeling",
            account="444455556666",
            regions=(("us-west-2", 1.0),),
            models=(ModelUse("claude-3-5-sonnet", "InvokeModel", 1.0),),
            weight=0.0,
            hours=US_DAY,
            domain="research",
            role="labeling-worker",
            sessions=("labeling-batch",),
            metadata_share=1.0,
            metadata={"costCenter": "data", "applicationId": "labeling", "environment": "production"},
            input_mean=50_000,
            input_sigma=0.2,
            output_mean=800,
            output_sigma=0.2,
            max_tokens=4096,
            multi_turn=0.0,
        ),
        event="stopped",
        min_calls=8,
        share=0.05,
    ),
)
"""What the sample's history plants for foresight to find on the plant day: a spend spike (cost center `finance`),
a new spender (`legal`) and a stop (`data`). Only days of a generation with a plant day have these calls."""

OLD_FIELD_ORDER_ACCOUNTS: frozenset[str] = frozenset({"444455556666"})
"""Accounts whose records use the older field order (`schemaType` first); the others write `timestamp` first."""

METADATA_KEYS: dict[str, list[str]] = {
    "user": ["userId", "user_id", "user"],
    "cost_center": ["costCenter", "cost_center"],
    "application": ["applicationId", "application"],
    "environment": ["environment", "env"],
}

BUDGET_FACTORS: dict[str, tuple[float, str]] = {
    "support": (0.75, "down"),  # ~133 % used: over budget
    "sales": (1.12, "nearest"),  # ~85-94 % used: warning
    "search": (2.0, "nearest"),
    "research": (3.0, "nearest"),
    "platform": (4.0, "nearest"),
}
"""Monthly budget = factor x the cost center's sample spend in the month of the last sample day."""

# ---------------------------------------------------------------------------------------------------------------
# Attribution truth (the same precedence the pipeline applies) and the demo config
# ---------------------------------------------------------------------------------------------------------------


def principal_tags(identity_arn: str) -> dict[str, str]:
    """Tags of the first principal rule whose glob matches the identity ARN (empty when none does)."""
    for pattern, tags in PRINCIPAL_RULES:
        if fnmatch.fnmatchcase(identity_arn, pattern):
            return dict(tags)
    return {}


def expected_cost_center(identity_arn: str, model_id: str, request_metadata: Mapping[str, str] | None) -> str:
    """The cost center the attribution precedence gives a call: request metadata, then app profile, then principal."""
    md = request_metadata or {}
    for key in METADATA_KEYS["cost_center"]:
        if md.get(key):
            return md[key]
    for profile in APP_PROFILES:
        if profile.arn == model_id and profile.tags.get("costCenter"):
            return profile.tags["costCenter"]
    return principal_tags(identity_arn).get("costCenter", "unattributed")
