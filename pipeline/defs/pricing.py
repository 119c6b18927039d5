"""Dagster wiring for `priced_invocations`: each invocation with its price and its attribution.

The day is priced in batches read from the `invocations` partition (pricing and attribution are row-local), so
memory stays flat as a day grows. The catalog and overrides are validated before anything is written: a bad
overrides file fails the run with the file, line and reason, and leaves the previous partition as it was.
"""

from collections import Counter
from collections.abc import Iterator
from typing import Any, cast

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MetadataValue,
    PartitionsDefinition,
    asset,
)

from pipeline import schemas, warehouse
from pipeline.attribution import attribution_gaps
from pipeline.config import LedgerConfig
from pipeline.defs.figures import flat_numbers, for_people, markdown_table
from pipeline.defs.partitions import partition_day
from pipeline.defs.publish import described
from pipeline.defs.resources import LedgerResource
from pipeline.pricing import unpriced_summary
from pipeline.pricing.bill_rates import usable_bill_rates
from pipeline.pricing.layers import catalog_for
from pipeline.pricing.priced import live_profiles, price_and_attribute

GROUP = "pricing"
BATCH_ROWS = 32_768
"""Rows priced at once. Pricing and attribution need a few KB of working memory per row, so the batch size bounds
the step's memory whatever the day's size; larger batches save little time (docs/performance.md): on a day of a
million calls, 32,768 rows peak at 546 MiB where 65,536 peaked at 814, in the same time."""
GAP_COLUMNS = [
    "user",
    "application",
    "cost_center",
    "environment",
    "identity_arn",
    "inference_profile",
    "total_cost_usd",
]
METADATA_COLUMNS = [
    "model_id",
    "base_model_id",
    "identity_arn",
    "inference_profile",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "image_count",
    "user",
    "application",
    "cost_center",
    "environment",
    "total_cost_usd",
    "priced",
    "unpriced_reason",
]


PRICING_CHECKS = [
    AssetCheckSpec("unpriced_share", asset="priced_invocations", description="Share of calls without a price."),
    AssetCheckSpec(
        "unattributed_share",
        asset="priced_invocations",
        description="Share of calls with no cost center (tag governance): which principals and profiles carry none.",
    ),
]


@for_people
def priced_invocations(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
    """One row per invocation (grain), key `request_id`: `invocations` plus user, application, cost center,
    environment, tags, and cost per token kind from the effective-dated price catalog (null when unpriced,
    never $0). Upstream: invocations."""
    cfg = ledger.config
    day = partition_day(context.partition_key)
    import pyarrow.parquet as pq  # step-only: keeps loading the definitions fast

    catalog = catalog_for(cfg)  # bundled < synced < overrides; fails before any write on a bad file
    files = warehouse.partition_files(cfg.warehouse, "invocations", day)
    live = live_profiles(cfg, files)
    # A restated bill never re-prices a day: only rates first billed before it (or on it, at a rerun).
    rerun = warehouse.partition_exists(cfg.warehouse, "priced_invocations", day)
    bill_rates = usable_bill_rates(cfg.warehouse, day, rerun=rerun)

    def batches() -> Iterator[pl.DataFrame]:
        for f in files:
            with warehouse.open_input(f) as handle:
                for rb in pq.ParquetFile(handle).iter_batches(batch_size=BATCH_ROWS):
                    frame = cast(pl.DataFrame, pl.from_arrow(rb))  # a record batch is always a frame
                    yield price_and_attribute(
                        schemas.conform(frame, schemas.INVOCATIONS), cfg, catalog, live, bill_rates
                    )

    path = warehouse.write_partition(batches(), cfg.warehouse, "priced_invocations", day)
    yield from priced_results(warehouse.scan_partitions(cfg.warehouse, "priced_invocations", [day]), cfg, path)


def build_pricing_assets(partitions_def: PartitionsDefinition) -> list[Any]:
    """The `priced_invocations` asset for the given partitioning."""
    return [
        asset(
            name="priced_invocations",
            group_name=GROUP,
            partitions_def=partitions_def,
            deps=["invocations"],
            kinds={"parquet"},
            check_specs=PRICING_CHECKS,
        )(priced_invocations)
    ]


def priced_results(scan: pl.LazyFrame, cfg: LedgerConfig, path: str) -> Iterator[Any]:
    """Metadata and checks for one day of `priced_invocations`.

    Summaries are computed from the scan, each reading only what it needs: totals and top tables stream; the
    unpriced summary sees only unpriced calls; the attribution gaps read the attribution columns alone.
    """
    totals = scan.select(
        pl.len().alias("n"),
        (~pl.col("priced")).sum().alias("unpriced"),
        pl.col("total_cost_usd").sum().alias("total"),
        (pl.col("context_tier") == "long").sum().alias("long_context"),
        (pl.col("pricing_tier") == "latency_optimized").sum().alias("latency_optimized"),
        (pl.col("price_origin") == "bill").sum().alias("bill_priced"),
        (pl.col("price_origin") == "derived").sum().alias("derived_priced"),
        (pl.col("price_origin") == "override").sum().alias("override_priced"),
        pl.col("cache_write_1h_cost_usd").sum().alias("cache_write_1h"),
    ).collect(engine="streaming")
    n, unpriced, total = int(totals["n"][0]), int(totals["unpriced"][0] or 0), float(totals["total"][0] or 0.0)
    gaps = attribution_gaps(scan.select(GAP_COLUMNS).collect(engine="streaming"))
    unpriced_rows = scan.filter(~pl.col("priced")).select(METADATA_COLUMNS).collect(engine="streaming")
    top_unpriced = unpriced_summary(unpriced_rows, top=10)
    reasons = Counter(unpriced_rows["unpriced_reason"].fill_null("unknown").to_list())

    def top(key: str) -> pl.DataFrame:
        return (
            scan.group_by(key)
            .agg(pl.len().alias("invocations"), pl.col("total_cost_usd").sum().round(4).alias("cost_usd"))
            .sort("cost_usd", descending=True)
            .collect(engine="streaming")
        )

    by_cc, by_model = top("cost_center"), top("base_model_id")
    attributed_share = 1.0 - gaps["unattributed_share"].get("cost_center", 0.0) if n else 0.0
    yield described(
        "priced_invocations",
        n,
        path,
        {
            "total_cost_usd": total,
            "priced_share": (n - unpriced) / n if n else 1.0,
            "attributed_share": attributed_share,
            "unpriced_invocations": unpriced,
            # Calls whose price depends on their shape (long context, 1-hour cache writes, latency-optimized): how many,
            # and what the 1-hour writes cost.
            "long_context_invocations": int(totals["long_context"][0] or 0),
            "latency_optimized_invocations": int(totals["latency_optimized"][0] or 0),
            "cache_write_1h_cost_usd": float(totals["cache_write_1h"][0] or 0.0),
            # Where prices came from: the bill's list rate (a model the catalog lacks), a derived rate (tier
            # multiplier, any-Region fallback), an override; the rest are catalog rows.
            "bill_priced_invocations": int(totals["bill_priced"][0] or 0),
            "derived_priced_invocations": int(totals["derived_priced"][0] or 0),
            "override_priced_invocations": int(totals["override_priced"][0] or 0),
            "top_cost_centers": MetadataValue.md(markdown_table(by_cc, others=("invocations", "cost_usd"))),
            "top_models": MetadataValue.md(markdown_table(by_model, others=("invocations", "cost_usd"))),
        },
    )
    share = unpriced / n if n else 0.0
    yield AssetCheckResult(
        asset_key="priced_invocations",
        check_name="unpriced_share",
        passed=share <= cfg.quality.max_unpriced_share,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "unpriced_invocations": unpriced,
            "unpriced_share": share,
            "threshold": cfg.quality.max_unpriced_share,
            **flat_numbers("unpriced", dict(reasons)),
            "top_unpriced_models": MetadataValue.md(markdown_table(top_unpriced)),
        },
    )
    cc_share = gaps["unattributed_share"].get("cost_center", 0.0)
    yield AssetCheckResult(
        asset_key="priced_invocations",
        check_name="unattributed_share",
        passed=cc_share <= cfg.quality.max_unattributed_share,
        severity=AssetCheckSeverity.WARN,
        metadata={
            **flat_numbers("unattributed_share", gaps["unattributed_share"]),
            **flat_numbers("unattributed_cost_share", gaps["unattributed_cost_share"]),
            "top_principals_without_cost_center": MetadataValue.md(
                markdown_table(pl.DataFrame(gaps["top_principals_without_cost_center"]))
            ),
            "top_profiles_without_cost_center": MetadataValue.md(
                markdown_table(pl.DataFrame(gaps["top_profiles_without_cost_center"]))
            ),
        },
    )
