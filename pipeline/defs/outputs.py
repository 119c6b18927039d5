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
from pipeline.aggregates.parts import by_parts
from pipeline.aggregates.user_distribution import user_cost_distribution, users_summary
from pipeline.config import LedgerConfig
from pipeline.defs.billing import batch_jobs_of, without_a_bill
from pipeline.defs.figures import for_people, markdown_table
from pipeline.defs.partitions import partition_day
from pipeline.defs.publish import described
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
    and 1-hour writes, and a recommendation. Upstream: priced_invocations and the price catalog. Computed and
    written a share of the applications at a time (`aggregates.parts`): applications are caller-set, and a day
    can have millions."""
    cfg = ledger.config
    day = partition_day(context.partition_key)
    priced = warehouse.scan_partitions(cfg.warehouse, "priced_invocations", [day])
    catalog = catalog_for(cfg)
    tally = CacheTally()
    parts = by_parts(priced, ["application"], lambda part: tally.add(cache_economics(part, catalog)))
    path = warehouse.write_partition(parts, cfg.warehouse, "daily_cache_economics", day)
    return described("daily_cache_economics", tally.rows, path, tally.figures())


class CacheTally:
    """What the cache economics asset reports, tallied part by part: token and money totals, and the groups where
    caching loses money (the most losing first, with how many there are)."""

    SUMS = (
        "cache_read_input_tokens",
        "input_tokens",
        "cache_write_input_tokens",
        "cache_write_1h_input_tokens",
        "read_saving_usd",
        "write_premium_usd",
        "net_saving_usd",
    )
    LOSING = ("base_model_id", "application", "reads_per_write", "net_saving_usd", "recommendation")
    SHOWN = 20

    def __init__(self) -> None:
        self.rows = 0
        self.losing_groups = 0
        self._sums: dict[str, float] = dict.fromkeys(self.SUMS, 0.0)
        self._losing: list[pl.DataFrame] = []

    def add(self, econ: pl.DataFrame) -> pl.DataFrame:
        """Count one part and hand it on unchanged."""
        self.rows += econ.height
        for column in self.SUMS:
            self._sums[column] += float(econ[column].sum() or 0)
        losing = econ.filter(pl.col("net_saving_usd") < 0).select(self.LOSING)
        self.losing_groups += losing.height
        self._losing.append(losing.sort("net_saving_usd").head(self.SHOWN))
        return econ

    def figures(self) -> dict[str, Any]:
        """The asset's metadata: hit rate, tokens, savings, and the table of groups losing money."""
        s = self._sums
        reads, uncached = int(s["cache_read_input_tokens"]), int(s["input_tokens"])
        losing = pl.concat(self._losing) if self._losing else pl.DataFrame()
        table = markdown_table(losing.sort("net_saving_usd").head(self.SHOWN), self.SHOWN) if losing.height else ""
        if self.losing_groups > self.SHOWN:
            table += f"\n\n_and {self.losing_groups - self.SHOWN:,} more groups losing money_"
        return {
            "hit_rate": reads / (reads + uncached) if reads + uncached else 0.0,
            "cache_read_tokens": reads,
            "cache_write_tokens": int(s["cache_write_input_tokens"]),
            "cache_write_1h_tokens": int(s["cache_write_1h_input_tokens"]),
            "read_saving_usd": s["read_saving_usd"],
            "write_premium_usd": s["write_premium_usd"],
            "net_saving_usd": s["net_saving_usd"],
            "groups_losing_money": self.losing_groups,
            "losing_money": MetadataValue.md(table or "_none_"),
        }


def daily_user_cost_distribution(context: AssetExecutionContext, ledger: LedgerResource) -> MaterializeResult:
    """Per day × cost center × application (grain and key): users, p50/p90/p99/max cost per user, cost share of
    the top 1% and top 10 users, the top users by name. Upstream: priced_invocations. Computed and written a
    share of the applications at a time (`aggregates.parts`): a day can have millions of applications."""
    wh = ledger.config.warehouse
    day = partition_day(context.partition_key)
    priced = warehouse.scan_partitions(wh, "priced_invocations", [day])
    rows, total, heaviest = 0, 0.0, []
    shown = ["cost_center", "application", "users", "p50_cost_per_user_usd", "p99_cost_per_user_usd", "top_user"]

    def tally(dist: pl.DataFrame) -> pl.DataFrame:
        nonlocal rows, total
        rows += dist.height
        total += float(dist["total_cost_usd"].sum() or 0.0)
        heaviest.append(_heaviest(dist).select("max_cost_per_user_usd", *shown))
        return dist

    parts = by_parts(priced, ["cost_center", "application"], lambda part: tally(user_cost_distribution(part)))
    path = warehouse.write_partition(parts, wh, "daily_user_cost_distribution", day)
    top = _heaviest(pl.concat(heaviest)).select(shown) if heaviest else pl.DataFrame()
    figures = {"groups": rows, "total_cost_usd": total, **users_summary(priced)}
    return described(
        "daily_user_cost_distribution",
        rows,
        path,
        {**figures, "heaviest_groups": MetadataValue.md(markdown_table(top, HEAVIEST))},
    )


HEAVIEST = 10
"""Groups shown in the distribution's metadata: those with the costliest single user."""


def _heaviest(dist: pl.DataFrame) -> pl.DataFrame:
    return dist.sort("max_cost_per_user_usd", descending=True, nulls_last=True).head(HEAVIEST)


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
