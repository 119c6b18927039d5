"""Dagster wiring for the bill: `billing_line_items`, `cost_reconciliation`, `chargeback`, and a sensor that
notices a new CUR 2.0 / FOCUS export delivery.

The readers (`pipeline.billing`) and the reconciliation (`pipeline.reconciliation`) are plain functions; these
assets read and write the warehouse, summarise for the UI, and state the checks: bill rows that could not be
mapped, gaps over tolerance on days old enough for the bill to be final, and a chargeback that sums to the bill.
"""

import datetime as dt
from collections.abc import Iterator
from typing import Any

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    DefaultSensorStatus,
    MetadataValue,
    PartitionsDefinition,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    asset,
    sensor,
)

from pipeline import schemas, warehouse
from pipeline.config import LedgerConfig
from pipeline.defs.figures import for_people, markdown_table
from pipeline.defs.partitions import partition_day
from pipeline.defs.publish import described, publish
from pipeline.defs.resources import LedgerResource
from pipeline.reconciliation import (
    gaps_over_tolerance,
    non_usage_summary,
    reconcile,
    reconciliation_summary,
)
from pipeline.reconciliation.chargeback import accounts_off_the_bill, chargeback_parts
from pipeline.reconciliation.principals import principal_summary
from pipeline.vocabulary import NO_BILL_CONFIGURED, USAGE_LINE_TYPES, Frame, as_lazy

GROUP = "billing"


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


BILLING_CHECKS = [
    AssetCheckSpec(
        "bill_rows_mapped",
        asset="billing_line_items",
        description="Every Bedrock usage row of the bill maps to a model (unmapped rows are kept, not "
        "guessed: add them to the billing-name map).",
    ),
    AssetCheckSpec(
        "bill_numbers_valid",
        asset="billing_line_items",
        description="No bill row has a NaN, infinite or absurd cost or amount (such rows are quarantined: "
        "kept out of billing_line_items, listed here with file and row).",
    ),
    AssetCheckSpec(
        "marketplace_rows_excluded",
        asset="billing_line_items",
        description="AWS Marketplace rows that mention Bedrock but are not a Bedrock model (their product name "
        "lacks '(Amazon Bedrock Edition)'): left out of Bedrock spend and listed here with their cost.",
    ),
    AssetCheckSpec(
        "catalog_matches_bill",
        asset="billing_line_items",
        description="Every list rate the bill states (CUR pricing_public_on_demand_rate, FOCUS ListUnitPrice) "
        "matches the price catalog within reconciliation.rate_tolerance_pct; lists each disagreement with both "
        "rates and the catalog row (refresh with `bedrock-ledger prices sync`, or fix the row).",
    ),
    AssetCheckSpec(
        "principal_coverage",
        asset="billing_line_items",
        description="Share of the Bedrock usage cost whose bill row names its IAM principal (CUR 2.0 with "
        "INCLUDE_IAM_PRINCIPAL_DATA); chargeback follows the bill for those rows and estimates the rest.",
    ),
]
RECONCILIATION_CHECKS = [
    AssetCheckSpec(
        "within_tolerance",
        asset="cost_reconciliation",
        description="No gap over tolerance on days older than the billing lag (the bill is final).",
    )
]
CHARGEBACK_CHECKS = [
    AssetCheckSpec(
        "sums_to_bill",
        asset="chargeback",
        description="Per day and account the chargeback adds up to the billed Bedrock usage cost.",
    )
]
COVERAGE_CHECKS = [
    AssetCheckSpec(
        "unallocated_within_limit",
        asset="bill_coverage",
        description="The share of the day's billed Bedrock cost with no owner anywhere (no logged caller, job, "
        "resource tag, principal or rule) stays within quality.max_unallocated_share.",
    )
]


def without_a_bill(context: AssetExecutionContext, table: str, wh: str, day: dt.date) -> Iterator[Any]:
    """A ledger without a bill (`sources.billing` empty): the table's partition is written empty, so the day is
    complete and readers find a table, and each of its checks the run selected passes saying so; nothing claims
    "$0 billed"."""
    yield publish(schemas.empty(schemas.TABLES[table]), wh, table, day, {"note": NO_BILL_CONFIGURED})
    for key in sorted(context.selected_asset_check_keys, key=lambda k: k.name):
        if key.asset_key.to_user_string() != table:
            continue
        yield AssetCheckResult(
            asset_key=table,
            check_name=key.name,
            passed=True,
            description=NO_BILL_CONFIGURED,
            metadata={"note": NO_BILL_CONFIGURED},
        )


@for_people
def billing_line_items(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
    """One row per Bedrock line item of the bill for the day (grain), whatever the export format (CUR, CUR
    2.0, FOCUS): usage kind, routing, tier, model, tokens scaled by the pricing unit, cost. Upstream: the
    billing exports in `sources.billing`."""
    from pipeline.billing import billing_day  # step-only (Arrow readers): keeps loading the definitions fast

    cfg = ledger.config
    day = partition_day(context.partition_key)
    if not cfg.sources.billing:
        yield from without_a_bill(context, "billing_line_items", cfg.warehouse, day)
        return
    frames, checks, metrics = [], [], {"files_read": 0}
    quarantined, excluded = [], []
    history = _month_history(cfg.warehouse, day)
    for source in cfg.sources.billing:
        result = billing_day(source, day, logged=history)
        quarantined.append(result.metrics.get("quarantined"))
        excluded.append(result.metrics.get("marketplace_excluded"))
        frames.append(result.line_items)
        checks.append(result.checks)
        metrics["files_read"] += int(result.metrics.get("files_read", 0))
    items = (
        pl.concat([schemas.conform(f, schemas.BILLING_LINE_ITEMS) for f in frames])
        if frames
        else schemas.empty(schemas.BILLING_LINE_ITEMS)
    )
    path = warehouse.write_partition(items, cfg.warehouse, "billing_line_items", day)
    yield from billing_results(items, checks, metrics, path)
    yield quarantine_result([q for q in quarantined if q is not None])
    yield principal_coverage_result(items)
    yield marketplace_excluded_result([e for e in excluded if e is not None])
    yield catalog_matches_bill_result(items, cfg, day)


def _month_history(wh: str, day: dt.date) -> Any:
    """What spreads a bill row longer than a day (`billing.spread.History`): the logged estimate per day and bucket
    of `day`'s month, and the last of its days with logs. Read only when the bill has such a row."""

    def history() -> tuple[pl.DataFrame | None, dt.date | None]:
        from pipeline.reconciliation.chargeback import logged_costs

        first = day.replace(day=1)
        month = [first + dt.timedelta(days=i) for i in range(31) if (first + dt.timedelta(days=i)).month == first.month]
        logged_days = [d for d in month if warehouse.partition_exists(wh, "priced_invocations", d)]
        if not logged_days:
            return None, None
        return logged_costs(warehouse.scan_partitions(wh, "priced_invocations", logged_days)), max(logged_days)

    return history


@for_people
def bill_list_rates(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
    """Per day × model × region × usage kind × tier × routing × context tier (grain and key): the public list
    rate the bill states, per pricing unit and per 1K tokens. Upstream: billing_line_items. The next days'
    `priced_invocations` read it for models the catalog lacks."""
    from pipeline.billing.list_rates import bill_list_rates as list_rates

    cfg = ledger.config
    day = partition_day(context.partition_key)
    rates = list_rates(warehouse.read_partition(cfg.warehouse, "billing_line_items", day))
    yield publish(rates, cfg.warehouse, "bill_list_rates", day, {"models": rates["base_model_id"].n_unique()})


def catalog_matches_bill_result(items: pl.DataFrame, cfg: LedgerConfig, day: dt.date) -> AssetCheckResult:
    """WARN when a bill list rate and the catalog's rate for the same model, Region, kind, tier and routing
    differ by more than the rate tolerance, or the catalog has no rate at all; both rates listed per 1M tokens."""
    from pipeline.billing.list_rates import bill_list_rates as list_rates
    from pipeline.pricing.bill_rates import catalog_disagreements
    from pipeline.pricing.explain import rate_per_1m
    from pipeline.pricing.layers import catalog_for

    rates = list_rates(items)
    tolerance = cfg.reconciliation.rate_tolerance_pct
    bad = catalog_disagreements(rates, catalog_for(cfg), day, tolerance) if rates.height else rates
    shown = pl.DataFrame()
    if bad.height:
        shown = bad.head(20).select(
            "base_model_id",
            "region",
            "usage_kind",
            "routing",
            "tier",
            pl.col("bill_rate_per_1k_usd").map_elements(rate_per_1m, return_dtype=pl.String).alias("bill_per_1m"),
            pl.col("catalog_rate_per_1k_usd")
            .map_elements(rate_per_1m, return_dtype=pl.String)
            .fill_null("no catalog rate")
            .alias("catalog_per_1m"),
            (pl.col("delta_pct") * 100).round(1).cast(pl.String).fill_null("-").alias("catalog_vs_bill_pct"),
            pl.col("price_source").fill_null("-").alias("catalog_row"),
        )
    return AssetCheckResult(
        asset_key="billing_line_items",
        check_name="catalog_matches_bill",
        passed=bad.height == 0,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"{bad.height} of {rates.height} bill list rates disagree with the catalog beyond "
            f"{tolerance:.1%}" + (" (or have no catalog rate)" if bad.height else "")
            if rates.height
            else "the bill states no list rates for this day"
        ),
        metadata={
            "bill_list_rates": rates.height,
            "disagreements": bad.height,
            "missing_in_catalog": int(bad["catalog_rate_per_1k_usd"].null_count()) if bad.height else 0,
            "tolerance": tolerance,
            "disagreeing_rates": MetadataValue.md(markdown_table(shown, max_rows=20)),
        },
    )


@for_people
def cost_reconciliation(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
    """Per day × account × region × model × usage kind × routing × tier (grain and key): logged vs billed
    tokens and cost, volume and price variance, a status and an explanation. Upstream: priced_invocations,
    billing_line_items."""
    cfg = ledger.config
    day = partition_day(context.partition_key)
    if not cfg.sources.billing:
        yield from without_a_bill(context, "cost_reconciliation", cfg.warehouse, day)
        return
    priced = warehouse.scan_partitions(cfg.warehouse, "priced_invocations", [day])
    billing = warehouse.read_partition(cfg.warehouse, "billing_line_items", day)
    today = _today()
    recon = reconcile(
        priced,
        billing,
        cfg.reconciliation,
        as_of=today,
        provisioned_models=cfg.attribution.provisioned_models,
        catalog=_catalog(cfg) if cfg.attribution.provisioned_models or _has_provisioned(billing) else None,
    )
    path = warehouse.write_partition(recon, cfg.warehouse, "cost_reconciliation", day)
    yield from reconciliation_results(recon, billing, cfg, path, today, priced=priced)


@for_people
def chargeback(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
    """Per day × account × cost center × application × user (grain and key): the billed usage cost allocated
    in proportion to estimated cost; what no log explains is `unallocated`. Upstream: priced_invocations,
    billing_line_items."""
    cfg = ledger.config
    day = partition_day(context.partition_key)
    if not cfg.sources.billing:
        yield from without_a_bill(context, "chargeback", cfg.warehouse, day)
        return
    priced = warehouse.scan_partitions(cfg.warehouse, "priced_invocations", [day])
    billing = warehouse.read_partition(cfg.warehouse, "billing_line_items", day)
    # Built and written a share of the owners at a time: a day of millions of distinct callers is never whole in
    # memory; the figures and the check read the written table back as a streaming scan.
    parts = chargeback_parts(
        priced,
        billing,
        cfg.attribution,
        round_cents=cfg.reconciliation.round_cents,
        batch_jobs=batch_jobs_of(cfg.warehouse, day),
    )
    path = warehouse.write_partition(parts, cfg.warehouse, "chargeback", day)
    yield from chargeback_results(warehouse.scan_partitions(cfg.warehouse, "chargeback", [day]), billing, path)


BATCH_JOBS = "batch_jobs"


def batch_jobs_of(wh: str, day: dt.date) -> pl.DataFrame | None:
    """The day's `batch_jobs` when that table has been written for it, else None (batch bill rows then go to the
    bill's principal, else `unallocated`). The table is built by its own asset; columns it lacks are read as null."""
    if not warehouse.partition_exists(wh, BATCH_JOBS, day):
        return None
    return warehouse.read_partition(wh, BATCH_JOBS, day)


@for_people
def bill_coverage(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
    """Per day × account × spend kind (grain and key): billed cost, the part explained from a usage source
    (invocation logs, batch jobs), the part attributed to an owner, the unallocated part and why, and the capacity
    commitments (Provisioned Throughput) with their idle part. Upstream: chargeback."""
    from pipeline.reconciliation.bill_coverage import bill_coverage as coverage_of
    from pipeline.reconciliation.bill_coverage import unallocated_verdict

    cfg = ledger.config
    day = partition_day(context.partition_key)
    cov = coverage_of(warehouse.scan_partitions(cfg.warehouse, "chargeback", [day]))
    path = warehouse.write_partition(cov, cfg.warehouse, "bill_coverage", day)
    verdict = unallocated_verdict(cov, cfg.quality.max_unallocated_share)
    table = cov.select(
        "account_id",
        "spend_kind",
        "billed_cost_usd",
        "explained_cost_usd",
        "attributed_cost_usd",
        "unallocated_cost_usd",
        "capacity_cost_usd",
        "idle_capacity_cost_usd",
        "unallocated_reasons",
    )
    yield described(
        "bill_coverage",
        cov.height,
        path,
        {
            "billed_cost_usd": float(cov["billed_cost_usd"].sum() or 0.0),
            "explained_cost_usd": float(cov["explained_cost_usd"].sum() or 0.0),
            "attributed_cost_usd": float(cov["attributed_cost_usd"].sum() or 0.0),
            "unallocated_cost_usd": float(cov["unallocated_cost_usd"].sum() or 0.0),
            "capacity_cost_usd": float(cov["capacity_cost_usd"].sum() or 0.0),
            "idle_capacity_cost_usd": float(cov["idle_capacity_cost_usd"].sum() or 0.0),
            "by_spend_kind": MetadataValue.md(markdown_table(table)),
        },
    )
    yield AssetCheckResult(
        asset_key="bill_coverage",
        check_name="unallocated_within_limit",
        passed=verdict.passed,
        severity=AssetCheckSeverity.ERROR,
        description=verdict.description,
        metadata={
            "unallocated_share": verdict.unallocated_share if verdict.unallocated_share is not None else 0.0,
            "max_unallocated_share": cfg.quality.max_unallocated_share,
        },
    )


def build_billing_assets(partitions_def: PartitionsDefinition) -> list[Any]:
    """`billing_line_items`, `bill_list_rates`, `cost_reconciliation`, `chargeback` and `bill_coverage` for the
    partitioning."""
    from_bill = ["priced_invocations", "billing_line_items"]
    return [
        asset(
            name="billing_line_items",
            group_name=GROUP,
            partitions_def=partitions_def,
            kinds={"parquet", "s3"},
            pool="aws_billing",
            check_specs=BILLING_CHECKS,
        )(billing_line_items),
        asset(
            name="bill_list_rates",
            group_name=GROUP,
            partitions_def=partitions_def,
            deps=["billing_line_items"],
            kinds={"parquet"},
        )(bill_list_rates),
        asset(
            name="cost_reconciliation",
            group_name=GROUP,
            partitions_def=partitions_def,
            deps=from_bill,
            kinds={"parquet"},
            check_specs=RECONCILIATION_CHECKS,
        )(cost_reconciliation),
        asset(
            name="chargeback",
            group_name=GROUP,
            partitions_def=partitions_def,
            deps=[*from_bill, BATCH_JOBS],  # batch bill rows go to the jobs' owners
            kinds={"parquet"},
            check_specs=CHARGEBACK_CHECKS,
        )(chargeback),
        asset(
            name="bill_coverage",
            group_name=GROUP,
            partitions_def=partitions_def,
            deps=["chargeback"],
            kinds={"parquet"},
            check_specs=COVERAGE_CHECKS,
        )(bill_coverage),
    ]


def _has_provisioned(billing: pl.DataFrame) -> bool:
    return "usage_kind" in billing.columns and bool((billing["usage_kind"] == "provisioned").any())


def _catalog(cfg: LedgerConfig) -> Any:
    """The price catalog, only loaded when Provisioned Throughput needs an on-demand comparison."""
    from pipeline.pricing.layers import catalog_for

    return catalog_for(cfg)


def billing_results(
    items: pl.DataFrame, checks: list[pl.DataFrame], metrics: dict[str, Any], path: str
) -> Iterator[Any]:
    """Metadata and the mapping check for one day of bill rows."""
    from pipeline.billing.line_items import unmapped_usage_rows  # step-only: `pipeline.billing` loads Arrow readers

    usage = items.filter(pl.col("line_item_type").is_in(USAGE_LINE_TYPES))
    unmapped = unmapped_usage_rows(items)
    by_type = (
        items.group_by("line_item_type")
        .agg(pl.len().alias("rows"), pl.col("unblended_cost_usd").sum().round(4).alias("cost_usd"))
        .sort("cost_usd", descending=True)
    )
    failed_checks = sum(c.height for c in checks)
    yield described(
        "billing_line_items",
        items.height,
        path,
        {
            "billed_usage_cost_usd": float(usage["unblended_cost_usd"].sum() or 0.0),
            "billed_total_cost_usd": float(items["unblended_cost_usd"].sum() or 0.0),
            "unmapped_rows": unmapped.height,
            "rate_check_failures": failed_checks,
            "files_read": metrics.get("files_read", 0),
            "by_line_item_type": MetadataValue.md(markdown_table(by_type)),
        },
    )
    yield AssetCheckResult(
        asset_key="billing_line_items",
        check_name="bill_rows_mapped",
        passed=unmapped.is_empty(),
        severity=AssetCheckSeverity.WARN,
        metadata={
            "unmapped_rows": unmapped.height,
            "unmapped_cost_usd": float(unmapped["unblended_cost_usd"].sum() or 0.0),
            "unmapped_usage_types": MetadataValue.md(
                markdown_table(unmapped.group_by("usage_type", "product_name").len().sort("len", descending=True))
            ),
        },
    )


def principal_coverage_result(items: pl.DataFrame) -> AssetCheckResult:
    """The share of usage cost that names its principal; a warning when the bill names some rows but not all."""
    from pipeline.billing.principals import principal_coverage  # step-only: `pipeline.billing` loads Arrow readers

    cov = principal_coverage(items)
    share = cov["principal_cost_share"]
    return AssetCheckResult(
        asset_key="billing_line_items",
        check_name="principal_coverage",
        passed=not cov["enabled"] or cov["rows_without_principal"] == 0,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "iam_principal_data": cov["enabled"],
            "principal_cost_share": share if share is not None else 0.0,
            "principal_cost_usd": cov["principal_cost_usd"],
            "usage_cost_usd": cov["usage_cost_usd"],
            "principals": cov["principals"],
            "largest_without_principal": MetadataValue.md(markdown_table(cov["largest_without_principal"])),
            "note": "rows with a principal are charged to it; the rest by estimate"
            if cov["enabled"]
            else "no row names a principal: enable INCLUDE_IAM_PRINCIPAL_DATA on a CUR 2.0 export "
            "(see docs/reconciliation.md)",
        },
    )


def marketplace_excluded_result(excluded: list[pl.DataFrame]) -> AssetCheckResult:
    """The `marketplace_rows_excluded` check (WARN): Marketplace rows that mention Bedrock but are not a Bedrock
    model (no "(Amazon Bedrock Edition)" product name), left out of the bill table and listed with their cost."""
    rows = pl.concat(excluded) if excluded else pl.DataFrame()
    listed = (
        rows.group_by("product_name", "product_code")
        .agg(pl.len().alias("rows"), pl.col("unblended_cost_usd").sum().alias("cost_usd"))
        .sort("cost_usd", descending=True)
        if rows.height
        else rows
    )
    return AssetCheckResult(
        asset_key="billing_line_items",
        check_name="marketplace_rows_excluded",
        passed=rows.is_empty(),
        severity=AssetCheckSeverity.WARN,
        description=None
        if rows.is_empty()
        else f"{rows.height} AWS Marketplace row(s) mention Bedrock but are not a Bedrock model (no "
        "'(Amazon Bedrock Edition)' product name): left out of Bedrock spend; check they are not yours to count",
        metadata={
            "excluded_rows": rows.height,
            "excluded_cost_usd": float(rows["unblended_cost_usd"].sum() or 0.0) if rows.height else 0.0,
            "products": MetadataValue.md(markdown_table(listed, 20)),
        },
    )


def quarantine_result(quarantined: list[pl.DataFrame]) -> AssetCheckResult:
    """The `bill_numbers_valid` check: bill rows kept out for NaN, infinite or absurd numbers (billing.validate)."""
    bad = pl.concat(quarantined) if quarantined else pl.DataFrame(schema={"source_uri": pl.String})
    return AssetCheckResult(
        asset_key="billing_line_items",
        check_name="bill_numbers_valid",
        passed=bad.is_empty(),
        severity=AssetCheckSeverity.ERROR,
        description=None
        if bad.is_empty()
        else f"{bad.height} bill row(s) quarantined for NaN, infinite or absurd numbers: fix the export and rerun",
        metadata={"quarantined_rows": bad.height, "rows": MetadataValue.md(markdown_table(bad, 50))},
    )


def reconciliation_results(
    recon: pl.DataFrame,
    billing: pl.DataFrame,
    cfg: LedgerConfig,
    path: str,
    today: dt.date,
    priced: pl.LazyFrame | None = None,
) -> Iterator[Any]:
    """Metadata (matched share, largest gaps) and the tolerance check for one day of reconciliation."""
    summary = reconciliation_summary(recon)
    gaps = gaps_over_tolerance(recon, today, cfg.reconciliation.billing_lag_days)
    counts = {k: int(v) for k, v in summary.get("status_counts", {}).items()}
    others = non_usage_summary(billing)
    yield described(
        "cost_reconciliation",
        recon.height,
        path,
        {
            "matched_share_of_billed_cost": summary.get("matched_share_of_billed_cost") or 0.0,
            "estimated_cost_usd": float(recon["estimated_cost_usd"].sum() or 0.0),
            "billed_cost_usd": float(recon["billed_cost_usd"].sum() or 0.0),
            **{f"status_{k}": v for k, v in counts.items()},
            "largest_gaps": MetadataValue.md(markdown_table(pl.DataFrame(summary.get("largest_gaps") or []))),
            "non_usage_lines": MetadataValue.md(markdown_table(others)),
            "by_principal": MetadataValue.md(markdown_table(principal_summary(recon, priced))),
        },
    )
    yield AssetCheckResult(
        asset_key="cost_reconciliation",
        check_name="within_tolerance",
        passed=gaps.is_empty(),
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "gaps_over_tolerance": gaps.height,
            "billing_lag_days": cfg.reconciliation.billing_lag_days,
            "gaps": MetadataValue.md(
                markdown_table(
                    gaps.select(
                        "account_id",
                        "region",
                        "base_model_id",
                        "usage_kind",
                        "status",
                        "cost_delta_usd",
                        "explanation",
                    )
                )
            ),
        },
    )


def chargeback_results(cb: Frame, billing: pl.DataFrame, path: str) -> Iterator[Any]:
    """Metadata and the sums-to-bill check for one day of chargeback (a frame, or a scan of the written table:
    only sums per account and cost center are collected)."""
    rows = as_lazy(cb)
    off = accounts_off_the_bill(rows, billing)
    per_cc = rows.group_by("cost_center").agg(pl.col("billed_cost_usd", "estimated_cost_usd").sum())
    sums = per_cc.collect(engine="streaming")
    by_cc = sums.with_columns(pl.col("billed_cost_usd", "estimated_cost_usd").round(4)).sort(
        "billed_cost_usd", descending=True
    )
    unallocated = sums.filter(pl.col("cost_center") == schemas.UNALLOCATED)["billed_cost_usd"].sum() or 0.0
    height = rows.select(pl.len()).collect(engine="streaming").item()
    yield described(
        "chargeback",
        height,
        path,
        {
            "billed_cost_usd": float(sums["billed_cost_usd"].sum() or 0.0),
            "unallocated_cost_usd": float(unallocated),
            "by_cost_center": MetadataValue.md(markdown_table(by_cc, others=("billed_cost_usd", "estimated_cost_usd"))),
        },
    )
    yield AssetCheckResult(
        asset_key="chargeback",
        check_name="sums_to_bill",
        passed=off.is_empty(),
        metadata={"accounts_off_by_more_than_half_a_cent": MetadataValue.md(markdown_table(off))},
    )


def billing_export_sensor(job: Any, cfg: LedgerConfig) -> Any:
    """Re-run the billing side for a billing period's days when a new export manifest for it appears."""

    @sensor(
        name="billing_export_sensor",
        job=job,
        minimum_interval_seconds=3600,
        default_status=DefaultSensorStatus.STOPPED,
        description="Watches the billing exports for a new CUR, CUR 2.0 or FOCUS manifest and re-runs that month.",
    )
    def _sensor(context: SensorEvaluationContext):
        from pipeline.billing.manifests import billing_period_of, export_manifests  # step-only (fsspec)

        manifests = export_manifests(cfg.sources.billing)
        last = float(context.cursor or 0)
        new = {p: t for p, t in manifests.items() if t > last}
        if not new:
            return SkipReason("no new billing export manifest")
        yesterday = _today() - dt.timedelta(days=1)
        periods = sorted({period for p in new if (period := billing_period_of(p)) is not None})
        for period in periods:
            first = dt.date.fromisoformat(f"{period}-01")
            day = max(first, cfg.start_date)
            while day.strftime("%Y-%m") == period and day <= yesterday:
                yield RunRequest(run_key=f"export-{period}-{max(new.values())}-{day}", partition_key=day.isoformat())
                day += dt.timedelta(days=1)
        context.update_cursor(str(max(new.values())))

    return _sensor
