"""The `ledger.yaml` and the price-override file that fit the sample world, with budgets sized from its spend.

Derived from `world.py` (attribution rules, application profiles, the custom model's own price) and from the
planned calls (`calls.estimate_spend`), so the demo's configuration cannot drift from the logs it describes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import fsspec

from pipeline.pricing.catalog import REQUIRED_COLUMNS
from pipeline.sample.calls import LogGenOptions, estimate_spend
from pipeline.sample.world import (
    APP_PROFILES,
    BUDGET_FACTORS,
    COST_CENTERS,
    CUSTOM_MODEL_ARN,
    CUSTOM_MODEL_PRICE,
    DEFAULT_START,
    IDLE_PROVISIONED_TAGS,
    METADATA_KEYS,
    PRINCIPAL_RULES,
    idle_provisioned_arn,
)

OVERRIDE_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS  # the override file has the catalog's columns


def _two_significant(x: float, mode: str) -> float:
    """Round to two significant digits (budgets read like budgets), down or to nearest."""
    if x <= 0:
        return 0.0
    exp = math.floor(math.log10(x)) - 1
    q = 10.0**exp
    n = math.floor(x / q) if mode == "down" else round(x / q)
    return round(max(n, 1) * q, max(0, -exp))


def sample_budgets(opts: LogGenOptions | None = None) -> list[dict[str, Any]]:
    """Monthly budgets sized from the sample's own spend so the demo shows one cost center over budget and one
    past 80 %; a cost center with no sample spend gets a nominal $10."""
    opts = opts or LogGenOptions(start=DEFAULT_START)
    spend = estimate_spend(opts)
    last_day = opts.start + dt.timedelta(days=max(opts.days, 1) - 1)
    month = spend.get(last_day.strftime("%Y-%m"), {})
    budgets = []
    for cc in COST_CENTERS:
        factor, mode = BUDGET_FACTORS[cc]
        usd = _two_significant(month.get(cc, 0.0) * factor, mode) if month.get(cc, 0.0) > 0 else 10.0
        budgets.append({"cost_center": cc, "monthly_usd": usd})
    return budgets


def sample_ledger_config(
    log_root: str,
    warehouse: str,
    *,
    opts: LogGenOptions | None = None,
    overrides_path: str = "prices.csv",
    billing: Sequence[Mapping[str, str]] = (),
    cloudwatch: Sequence[Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The `ledger.yaml` content (docs/configuration.md format) that matches the sample world, as a dict.

    `cloudwatch` defaults to one log group per Region the options cover when `opts.cloudwatch_share > 0`, else
    none. Budgets come from `sample_budgets(opts)`. `overrides_path` should point where `write_price_overrides`
    wrote the custom model's price (relative paths resolve against the config file's folder).
    """
    opts = opts or LogGenOptions(start=DEFAULT_START)
    if cloudwatch is None:
        cloudwatch = (
            [{"log_group": opts.cloudwatch_log_group, "region": r} for r in opts.regions]
            if opts.cloudwatch_share > 0
            else []
        )
    return {
        "warehouse": warehouse,
        "start_date": opts.start.isoformat(),
        "sources": {
            "invocation_logs": {"s3": [log_root], "cloudwatch": [dict(c) for c in cloudwatch]},
            "billing": [dict(b) for b in billing],
        },
        "pricing": {"overrides": overrides_path},
        "attribution": {
            "request_metadata_keys": {k: list(v) for k, v in METADATA_KEYS.items()},
            "inference_profiles": {p.arn: {"model_id": p.model_id, "tags": dict(p.tags)} for p in APP_PROFILES},
            "principals": [{"match": m, "tags": dict(t)} for m, t in PRINCIPAL_RULES],
            "provisioned_models": {
                idle_provisioned_arn(): {"model_id": "amazon.nova-2-lite-v1:0", "tags": dict(IDLE_PROVISIONED_TAGS)},
            },
        },
        "budgets": sample_budgets(opts),
    }


def price_override_rows() -> list[dict[str, str]]:
    """The user's own price for the imported custom model (no public price exists for imported models)."""
    return [
        {
            "model_id": CUSTOM_MODEL_ARN,
            "region": "us-east-1",
            "routing": "in_region",
            "tier": "standard",
            "effective_from": "2025-01-01",
            "effective_to": "",
            "input_per_1k_usd": f"{CUSTOM_MODEL_PRICE.input_per_1k}",
            "output_per_1k_usd": f"{CUSTOM_MODEL_PRICE.output_per_1k}",
            "cache_read_per_1k_usd": "",
            "cache_write_per_1k_usd": "",
            "source": "unpublished:internal chargeback rate for the imported fine-tune (sample)",
        }
    ]


def write_price_overrides(path: str, storage_options: Mapping[str, Any] | None = None) -> str:
    """Write the override CSV (local path or s3://) and return the path, for `pricing.overrides`."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(OVERRIDE_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(price_override_rows())
    if "://" not in path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with fsspec.open(path, "w", encoding="utf-8", **dict(storage_options or {})) as fh:
        fh.write(buf.getvalue())
    return path
