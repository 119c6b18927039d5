"""Dagster wiring for the outputs other tools read: `focus_chargeback`, `daily_cache_economics`,
`daily_user_cost_distribution`, and (when `glue:` is configured) `glue_catalog`.

The logic is in `pipeline.exports` and `pipeline.aggregates`; these assets read the day's inputs from the
warehouse, call one function per output, write it, and report numbers that Dagster plots across partitions.
"""

from collections.abc import Iterator
from typing import Any

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset,
)

from pipeline import warehouse
from pipeline.aggregates.cache_economics import cache_economics
from pipeline.aggregates.user_distribution import day_summary, user_cost_distribution
from pipeline.config import LedgerConfig
from pipeline.defs.billing import batch_jobs_of, without_a_bill
from pipeline.defs.figures import for_people, markdown_table
from pipeline.defs.partitions import partition_day
from pipeline.defs.publish import described, publish
from pipeline.defs.resources import LedgerResource
from pipeline.pricing.layers import catalog_for

GROUP = "outputs"
DEPS = {
    "focus_chargeback": ("priced_invocations", "billing_line_items", "chargeback"),
    "daily_cache_economics": ("priced_invocations",),
    "daily_user_cost_distribution": ("priced_invocations",),
}


FOCUS_CHECKS = [
    AssetCheckSpec(
        "focus_valid",
        asset="focus_chargeback",
        description="FOCUS 1.2 mandatory columns present, typed, non-null where required; allowed values.",
    ),
    AssetCheckSpec(
        "sums_to_chargeback",
        asset="focus_chargeback",
        description="Per day, account, cost center, application and user, BilledCost adds up to chargeback.",
    ),
]


@for_people
def focus_chargeback(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
    """Per day × account × cost center × application × user × region × model × usage kind (grain): the billed
    Bedrock usage cost as FOCUS 1.2 cost rows, allocated with chargeback's weights. Upstream:
    priced_invocations, billing_line_items (chargeback for the sum check)."""
    from pipeline.exports import focus as focus_export  # step-only (Arrow)

    wh = ledger.config.warehouse
    day = partition_day(context.partition_key)
    if not ledger.config.sources.billing:
        yield from without_a_bill(context, "focus_chargeback", wh, day)
        return
    priced = warehouse.scan_partitions(wh, "priced_invocations", [day])
    billing = warehouse.read_partition(wh, "billing_line_items", day)
    cb = warehouse.scan_partitions(wh, "chargeback", [day])  # read per part, a share of the owners at a time
    # Written part by part (a share of the owners each): a day of millions of distinct callers never holds the
    # whole export; the figures and checks are tallied as the parts go by.
    has_chargeback = warehouse.partition_exists(wh, "chargeback", day)
    summary = focus_export.FocusSummary(chargeback_missing=not has_chargeback)
    parts = focus_export.focus_chargeback_parts(
        priced,
        billing,
        cb if has_chargeback else None,
        summary=summary,
        attribution=ledger.config.attribution,
        batch_jobs=batch_jobs_of(wh, day),
    )
    path = warehouse.write_partition(parts, wh, "focus_chargeback", day)
    yield described(
        "focus_chargeback",
        summary.rows,
        path,
        {
            "billed_cost_usd": summary.billed_cost_usd,
            "effective_cost_usd": summary.effective_cost_usd,
            "unallocated_cost_usd": summary.unallocated_cost_usd,
            "not_billed_estimated_cost_usd": summary.not_billed_estimated_cost_usd,
            "by_usage_kind": MetadataValue.md(markdown_table(summary.by_usage_kind(), 20)),
        },
    )
    problems = summary.problems
    yield AssetCheckResult(
        asset_key="focus_chargeback",
        check_name="focus_valid",
        passed=not problems,
        metadata={"problems": MetadataValue.md("\n".join(f"- {p}" for p in problems) or "_none_")},
    )
    off = summary.off_chargeback()
    yield AssetCheckResult(
        asset_key="focus_chargeback",
        check_name="sums_to_chargeback",
        passed=off.is_empty(),
        metadata={"owners_off_by_more_than_half_a_cent": MetadataValue.md(markdown_table(off))},
    )


def daily_cache_economics(context: AssetExecutionContext, ledger: LedgerResource) -> MaterializeResult:
    """Per day × account × model × application (grain and key): cache read and write tokens by TTL, hit rate,
    what cached reads would have cost uncached, the write premium, net saving, break-even reads for 5-minute
    and 1-hour writes, and a recommendation. Upstream: priced_invocations and the price catalog."""
    cfg = ledger.config
    day = partition_day(context.partition_key)
    priced = warehouse.scan_partitions(cfg.warehouse, "priced_invocations", [day])
    econ = cache_economics(priced, catalog_for(cfg))
    reads = int(econ["cache_read_input_tokens"].sum() or 0)
    uncached = int(econ["input_tokens"].sum() or 0)
    losing = econ.filter(pl.col("net_saving_usd") < 0).select(
        "base_model_id", "application", "reads_per_write", "net_saving_usd", "recommendation"
    )
    return publish(
        econ,
        cfg.warehouse,
        "daily_cache_economics",
        day,
        {
            "hit_rate": reads / (reads + uncached) if reads + uncached else 0.0,
            "cache_read_tokens": reads,
            "cache_write_tokens": int(econ["cache_write_input_tokens"].sum() or 0),
            "cache_write_1h_tokens": int(econ["cache_write_1h_input_tokens"].sum() or 0),
            "read_saving_usd": float(econ["read_saving_usd"].sum() or 0.0),
            "write_premium_usd": float(econ["write_premium_usd"].sum() or 0.0),
            "net_saving_usd": float(econ["net_saving_usd"].sum() or 0.0),
            "groups_losing_money": losing.height,
            "losing_money": MetadataValue.md(markdown_table(losing, 20)),
        },
    )


def daily_user_cost_distribution(context: AssetExecutionContext, ledger: LedgerResource) -> MaterializeResult:
    """Per day × cost center × application (grain and key): users, p50/p90/p99/max cost per user, cost share of
    the top 1% and top 10 users, the top users by name. Upstream: priced_invocations."""
    wh = ledger.config.warehouse
    day = partition_day(context.partition_key)
    priced = warehouse.scan_partitions(wh, "priced_invocations", [day])
    dist = user_cost_distribution(priced)
    top = dist.sort("max_cost_per_user_usd", descending=True, nulls_last=True).select(
        "cost_center", "application", "users", "p50_cost_per_user_usd", "p99_cost_per_user_usd", "top_user"
    )
    return publish(
        dist,
        wh,
        "daily_user_cost_distribution",
        day,
        {**day_summary(dist, priced), "heaviest_groups": MetadataValue.md(markdown_table(top, 10))},
    )


def glue_catalog(context: AssetExecutionContext, ledger: LedgerResource) -> MaterializeResult:
    """One Glue table per table of the data contract, with partition projection on `date` (no crawler, no
    MSCK REPAIR). Idempotent: runs daily so a column added to the contract reaches the catalog; the day itself
    does not matter. Configured by `glue:` in ledger.yaml."""
    from pipeline.exports.glue import register_tables  # step-only (boto3)

    cfg = ledger.config
    assert cfg.glue is not None  # the asset exists only when `glue:` is set
    result = register_tables(cfg.glue.database, cfg.glue.location or cfg.warehouse, cfg.start_date)
    context.log.info(
        f"glue database {result.database}: created {len(result.created)}, updated {len(result.updated)}, "
        f"unchanged {len(result.unchanged)} tables"
    )
    changes = [*(f"- {t} (created)" for t in result.created), *(f"- {t} (updated)" for t in result.updated)]
    return MaterializeResult(
        metadata={
            "database": result.database,
            "location": result.location,
            "tables": len(result.tables),
            "tables_created": len(result.created),
            "tables_updated": len(result.updated),
            "tables_unchanged": len(result.unchanged),
            "changed": MetadataValue.md("\n".join(changes) or "_none_"),
        }
    )


def build_output_assets(partitions_def: PartitionsDefinition, cfg: LedgerConfig) -> list[Any]:
    """The three output tables, plus `glue_catalog` when the config has a `glue:` section."""

    def daily(name: str, check_specs: list[AssetCheckSpec] | None = None) -> Any:
        return asset(
            name=name,
            group_name=GROUP,
            partitions_def=partitions_def,
            deps=list(DEPS[name]),
            kinds={"parquet"},
            check_specs=check_specs,
        )

    assets: list[Any] = [
        daily("focus_chargeback", FOCUS_CHECKS)(focus_chargeback),
        daily("daily_cache_economics")(daily_cache_economics),
        daily("daily_user_cost_distribution")(daily_user_cost_distribution),
    ]
    if cfg.glue is not None:
        glue = asset(name="glue_catalog", group_name=GROUP, partitions_def=partitions_def, kinds={"glue", "athena"})
        assets.append(glue(glue_catalog))
    return assets
