"""A small local fake of the AWS Price List API (`pricing:GetProducts`), for the sync tests.

moto has no Pricing API. This speaks the same wire protocol boto3 uses (JSON 1.1, `X-Amz-Target:
AWSPriceListService.GetProducts`, `NextToken` paging) on 127.0.0.1 and a free port, and serves the products of
`PRODUCTS`: a dozen Bedrock products written from the public response shape (a list of JSON strings, each with
`product.attributes` and `terms.OnDemand.<term>.priceDimensions.<dim>.pricePerUnit.USD`), covering each dimension
the sync maps or lists: in-region, global, batch, flex, cache read, 1-hour cache write, long context, Marketplace
units, a mantle id, a per-image price with two qualities, a guardrail policy, rerank queries, Provisioned
Throughput and a model nobody mapped. The numbers are public list prices (docs/pricing.md gives the sources).
Use it as a context manager; the server thread is a daemon and stops when the block ends.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.helpers import free_port

PUBLICATION = "2026-11-20T00:00:00Z"
EFFECTIVE = "2026-11-01T00:00:00Z"


def product(
    service_code: str,
    usage_type: str,
    usd: str,
    unit: str,
    *,
    region: str = "us-east-1",
    servicename: str | None = None,
    sku: str | None = None,
    effective: str = EFFECTIVE,
    publication: str = PUBLICATION,
) -> dict[str, Any]:
    """One Price List product in the `aws_v1` shape, with one OnDemand price dimension."""
    sku = sku or f"SKU{abs(hash((service_code, usage_type))) % 10**10:010d}"
    term = f"{sku}.JRTCKXETXF"
    attributes = {
        "servicecode": service_code,
        "regionCode": region,
        "location": region,
        "locationType": "AWS Region",
        "usagetype": usage_type,
        "operation": "Usage",
        "servicename": servicename or "Amazon Bedrock",
    }
    return {
        "product": {"productFamily": "Amazon Bedrock", "attributes": attributes, "sku": sku},
        "serviceCode": service_code,
        "terms": {
            "OnDemand": {
                term: {
                    "priceDimensions": {
                        f"{term}.6YS6EN2CT7": {
                            "unit": unit,
                            "endRange": "Inf",
                            "description": f"${usd} per {unit} for {usage_type} in {region}",
                            "appliesTo": [],
                            "rateCode": f"{term}.6YS6EN2CT7",
                            "beginRange": "0",
                            "pricePerUnit": {"USD": usd},
                        }
                    },
                    "sku": sku,
                    "effectiveDate": effective,
                    "offerTermCode": "JRTCKXETXF",
                    "termAttributes": {},
                }
            }
        },
        "version": "20261120000000",
        "publicationDate": publication,
    }


BEDROCK = "AmazonBedrock"
MARKETPLACE = "AmazonBedrockFoundationModels"
SERVICE = "AmazonBedrockService"
HAIKU_45 = "Claude Haiku 4.5 (Amazon Bedrock Edition)"
SONNET_45 = "Claude Sonnet 4.5 (Amazon Bedrock Edition)"


def default_products() -> dict[str, list[dict[str, Any]]]:
    """The fixture: products per service code."""
    return {
        BEDROCK: [
            product(BEDROCK, "USE1-NovaLite-input-tokens", "0.0000600000", "1K tokens"),
            product(BEDROCK, "USE1-NovaLite-output-tokens", "0.0002400000", "1K tokens"),
            product(BEDROCK, "USE1-NovaPro-cache-read-input-token-count", "0.0002000000", "1K tokens"),
            product(BEDROCK, "USE1-Nova2.0Lite-input-tokens-cross-region-global", "0.0003000000", "1K tokens"),
            product(BEDROCK, "USE1-Nova2.0Lite-input-tokens-batch", "0.0001595000", "1K tokens"),
            product(BEDROCK, "USE1-Nova2.0Lite-input-tokens-flex", "0.0001650000", "1K tokens"),
            product(BEDROCK, "USE1-NovaCanvas-T2I-1024-Standard", "0.0400000000", "Images"),
            product(BEDROCK, "USE1-NovaCanvas-T2I-1024-Premium", "0.0600000000", "Images"),
            product(BEDROCK, "USE1-Nova2.0Lite-ProvisionedThroughput-NoCommit-ModelUnits", "60.5000000000", "hour"),
            product(BEDROCK, "USE1-FooBar9-input-tokens", "0.0010000000", "1K tokens"),
            product(BEDROCK, "USW2-AmazonRerank-v1-search-units", "0.0010000000", "Queries", region="us-west-2"),
            product(BEDROCK, "USE1-openai.gpt-oss-120b-mantle-input-tokens-standard", "0.1500000000", "1M tokens"),
        ],
        MARKETPLACE: [
            product(MARKETPLACE, "USE1-MP:USE1_InputTokenCount-Units", "1.1000000000", "Units", servicename=HAIKU_45),
            product(
                MARKETPLACE, "USE1-MP:USE1_InputTokenCount_Global-Units", "1.0000000000", "Units", servicename=HAIKU_45
            ),
            product(
                MARKETPLACE,
                "USE1-MP:USE1_CacheWrite1hInputTokenCount-Units",
                "2.2000000000",
                "Units",
                servicename=HAIKU_45,
            ),
            product(
                MARKETPLACE,
                "USE1-MP:USE1_input_tokens_long_ctx_global_standard-Units",
                "6.0000000000",
                "Units",
                servicename=SONNET_45,
            ),
        ],
        SERVICE: [
            product(SERVICE, "USE1-SensitiveInformationPolicyPaidUnitsConsumed", "0.1000000000", "1K Text Units"),
        ],
    }


@dataclass
class FakePricing:
    """The fake's state: the products it serves (change them between syncs), its page size and the calls seen."""

    products: dict[str, list[dict[str, Any]]] = field(default_factory=default_products)
    page_size: int = 5
    calls: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def page(self, body: dict[str, Any]) -> dict[str, Any]:
        items = [json.dumps(p) for p in self.products.get(body.get("ServiceCode", ""), [])]
        start = int(body.get("NextToken") or 0)
        size = min(int(body.get("MaxResults") or self.page_size), self.page_size)
        out: dict[str, Any] = {"FormatVersion": "aws_v1", "PriceList": items[start : start + size]}
        if start + size < len(items):
            out["NextToken"] = str(start + size)
        return out


class _Handler(BaseHTTPRequestHandler):
    fake: FakePricing

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        target = self.headers.get("X-Amz-Target", "")
        self.fake.calls.append({"target": target, **body})
        if target != "AWSPriceListService.GetProducts":
            status, payload = 400, {"__type": "InvalidParameterException", "message": f"unsupported {target}"}
        else:
            status, payload = 200, self.fake.page(body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        return


class serve_pricing:  # noqa: N801 - used as a context manager, like a function
    """`with serve_pricing() as fake:` -> a running fake at `fake.url`; stopped when the block ends."""

    def __init__(self, fake: FakePricing | None = None) -> None:
        self.fake = fake or FakePricing()
        handler = type("Handler", (_Handler,), {"fake": self.fake})
        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        self.server.daemon_threads = True
        self.fake.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakePricing:
        self.thread.start()
        return self.fake

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
