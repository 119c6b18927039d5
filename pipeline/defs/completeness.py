"""Dagster wiring for completeness: `logging_configuration`, `bedrock_metrics`, `log_completeness` and their checks.

Thin on purpose: discovery is `pipeline.sources.logging_config`, metrics `pipeline.sources.bedrock_metrics`, the
comparison `pipeline.completeness`. Two hooks serve other stages: `with_discovered_sources` (ingestion reads the
destinations the day's configuration names) and `metric_throttles` (`daily_usage_by_model` takes `throttles` from
`InvocationThrottles` where metrics are read).
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
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset,
)

from pipeline import schemas, warehouse
from pipeline.aws import storage_options_for
from pipeline.completeness import (
    apply_metric_throttles,
    build_log_completeness,
    config_drift,
    config_for_day,
    day_coverage,
    logged_model_ids,
    metric_pairs,
)
from pipeline.completeness.history import FAILING_DRIFT
from pipeline.config import LedgerConfig
from pipeline.defs.figures import for_people, markdown_table
from pipeline.defs.partitions import partition_day
from pipeline.defs.publish import publish
from pipeline.defs.resources import LedgerResource

GROUP = "completeness"


def late_hours(cfg: LedgerConfig) -> int:
    """`sources.invocation_logs.late_hours` (default 2); a configured 0 stays 0 (no late window)."""
    return cfg.sources.invocation_logs.late_hours


def _app_profiles(cfg: LedgerConfig) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((arn, p.model_id) for arn, p in cfg.attribution.inference_profiles.items()))


def _all_observed(wh: str) -> pl.DataFrame:
    """Every recorded day of `logging_configuration` (a small table: accounts × regions per day)."""
    import fsspec  # step-only imports here and below: loading the definitions stays within 1 s of Dagster's

    fs, root = fsspec.core.url_to_fs(wh, **storage_options_for(wh))
    files = fs.glob(f"{root.rstrip('/')}/logging_configuration/date=*/*.parquet")
    if not files:
        return schemas.empty(schemas.LOGGING_CONFIGURATION)
    frames = []
    for f in files:
        with fs.open(f, "rb") as fh:
            frames.append(schemas.conform(pl.read_parquet(fh), schemas.LOGGING_CONFIGURATION))
    return pl.concat(frames)


def with_discovered_sources(cfg: LedgerConfig, day: dt.date) -> LedgerConfig:
    """`cfg` with the S3 roots and log groups the day's recorded logging configuration names added to the
    explicit lists (unchanged without `discover`; asked live when the day's configuration was not recorded)."""
    d = cfg.sources.invocation_logs.discover
    if d is None:
        return cfg
    # Only now: these import boto3 (a few tenths of a CPU second), which a day without discovery never needs.
    from pipeline.sources.aws_accounts import access_for
    from pipeline.sources.logging_config import discover_logging, discovered_sources, with_discovered

    access = access_for(d.snapshot, day)
    if warehouse.partition_exists(cfg.warehouse, "logging_configuration", day):
        rows = warehouse.read_partition(cfg.warehouse, "logging_configuration", day)
    else:  # ingestion run on its own: ask now rather than miss a destination (not recorded: that is the asset's job)
        found = discover_logging(access, d)
        rows = pl.DataFrame(found, schema=schemas.LOGGING_CONFIGURATION) if found else pl.DataFrame()
    roots, groups = discovered_sources(rows, access)
    inv = with_discovered(cfg.sources.invocation_logs, roots, groups)
    return cfg.model_copy(update={"sources": cfg.sources.model_copy(update={"invocation_logs": inv})})


def metric_throttles(cfg: LedgerConfig, day: dt.date, by_model: pl.DataFrame) -> pl.DataFrame:
    """`daily_usage_by_model` with `throttles` from the day's `bedrock_metrics` where metrics are read."""
    pairs = metric_pairs(cfg.sources.invocation_logs.discover)
    if not pairs or not warehouse.partition_exists(cfg.warehouse, "bedrock_metrics", day):
        return by_model  # metrics not read for this day: the logged counts stay
    metrics = warehouse.read_partition(cfg.warehouse, "bedrock_metrics", day)
    return apply_metric_throttles(by_model, metrics, pairs)


LOGGING_CHECKS = [
    AssetCheckSpec(
        "logging_unchanged_since_previous_day",
        asset="logging_configuration",
        description="Fails when logging was disabled, a data delivery turned off or a destination changed "
        "since the previous day; the metadata shows before and after.",
    ),
    AssetCheckSpec(
        "logging_on_in_every_region",
        asset="logging_configuration",
        description="Warns about every discovered account × region where invocation logging is off or "
        "the configuration could not be read.",
    ),
]
COVERAGE_CHECKS = [
    AssetCheckSpec(
        "logs_cover_metrics",
        asset="log_completeness",
        description="Fails when the day's logs cover less than discover.min_coverage of the calls the "
        "AWS/Bedrock metrics counted, naming the accounts, regions and hours.",
    )
]


@for_people
def logging_configuration(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
    """Per day × account × region (grain and key): Bedrock's model-invocation logging configuration (S3 and
    CloudWatch destinations, data delivery switches), as observed that day or borrowed from the nearest
    observation (`config_source`). Upstream: `bedrock:GetModelInvocationLoggingConfiguration`."""
    from pipeline.sources.aws_accounts import access_for
    from pipeline.sources.logging_config import discover_logging

    cfg = ledger.config
    day = partition_day(context.partition_key)
    d = cfg.sources.invocation_logs.discover
    if d is None:
        today = schemas.empty(schemas.LOGGING_CONFIGURATION)
    else:
        access = access_for(d.snapshot, day)
        fetched = discover_logging(access, d)
        today = config_for_day(day, fetched, access.now(), _all_observed(cfg.warehouse))
    yield publish(today, cfg.warehouse, "logging_configuration", day, logging_figures(today, configured=d is not None))
    previous = warehouse.read_partition(cfg.warehouse, "logging_configuration", day - dt.timedelta(days=1))
    yield from logging_checks(today, previous)


def _day_metrics(cfg: LedgerConfig, day: dt.date) -> list[dict[str, Any]]:
    """The day's `AWS/Bedrock` metric rows from every discovered account and region (none unless metrics are read)."""
    from pipeline.sources.aws_accounts import access_for
    from pipeline.sources.bedrock_metrics import read_day_metrics

    d = cfg.sources.invocation_logs.discover
    rows: list[dict[str, Any]] = []
    if d is None or not d.metrics:
        return rows
    access = access_for(d.snapshot, day)
    logged = logged_model_ids(warehouse.scan_partitions(cfg.warehouse, "invocations", [day]))
    profiles = _app_profiles(cfg)
    for account in d.accounts:
        for region in d.regions:
            cw = access.client("cloudwatch", account.account_id, region, account.role_arn)
            rows.extend(
                read_day_metrics(
                    cw,
                    day,
                    account.account_id,
                    region,
                    logged.get((account.account_id, region), set()),
                    access.now(),
                    profiles,
                )
            )
    return rows


def bedrock_metrics(context: AssetExecutionContext, ledger: LedgerResource) -> MaterializeResult:
    """Per day × account × region × metric ModelId × hour (grain and key): the `AWS/Bedrock` runtime metrics
    (invocations, tokens, cache tokens under both spellings, throttles, errors), hourly sums. Upstream:
    CloudWatch `ListMetrics`/`GetMetricData`, plus the model ids of the day's `invocations`."""
    cfg = ledger.config
    day = partition_day(context.partition_key)
    d = cfg.sources.invocation_logs.discover
    rows = _day_metrics(cfg, day)
    df = schemas.conform(
        pl.DataFrame(rows, schema=schemas.BEDROCK_METRICS) if rows else schemas.empty(schemas.BEDROCK_METRICS),
        schemas.BEDROCK_METRICS,
    )
    top = (
        df.group_by("base_model_id").agg(pl.col("invocations", "throttles").sum()).sort("invocations", descending=True)
    )
    return publish(
        df,
        cfg.warehouse,
        "bedrock_metrics",
        day,
        {
            "metrics_read": d is not None and d.metrics,
            "account_regions": len(metric_pairs(d)),
            "invocations": int(df["invocations"].sum() or 0),
            "throttles": int(df["throttles"].sum() or 0),
            "top_models": MetadataValue.md(markdown_table(top)),
        },
    )


@for_people
def log_completeness(context: AssetExecutionContext, ledger: LedgerResource) -> Iterator[Any]:
    """Per day × account × region × base model × hour (grain and key): logged vs metric invocations and tokens,
    the day's billed tokens, `coverage`, `status` and a sentence that explains it. Upstream: invocations,
    bedrock_metrics, logging_configuration, billing_line_items."""
    from pipeline.sources.aws_accounts import access_for

    cfg = ledger.config
    day = partition_day(context.partition_key)
    d = cfg.sources.invocation_logs.discover
    min_cov = d.min_coverage if d else 0.99
    checked_at = access_for(d.snapshot if d else None, day).now()
    df = build_log_completeness(
        warehouse.scan_partitions(cfg.warehouse, "invocations", [day]),
        warehouse.read_partition(cfg.warehouse, "bedrock_metrics", day),
        warehouse.read_partition(cfg.warehouse, "logging_configuration", day),
        warehouse.read_partition(cfg.warehouse, "billing_line_items", day),
        day=day,
        checked_at=checked_at,
        read_pairs=metric_pairs(d),
        late_hours=late_hours(cfg),
        min_coverage=min_cov,
    )
    summary = day_coverage(df, min_cov)
    yield publish(df, cfg.warehouse, "log_completeness", day, completeness_figures(df, summary))
    yield coverage_check(summary, min_cov, metrics_read=bool(metric_pairs(d)))


def build_completeness_assets(partitions_def: PartitionsDefinition) -> list[Any]:
    """`logging_configuration`, `bedrock_metrics` and `log_completeness` with their checks."""
    return [
        asset(
            name="logging_configuration",
            group_name=GROUP,
            partitions_def=partitions_def,
            kinds={"parquet", "bedrock"},
            check_specs=LOGGING_CHECKS,
        )(logging_configuration),
        asset(
            name="bedrock_metrics",
            group_name=GROUP,
            partitions_def=partitions_def,
            deps=["invocations"],
            kinds={"parquet", "cloudwatch"},
        )(bedrock_metrics),
        asset(
            name="log_completeness",
            group_name=GROUP,
            partitions_def=partitions_def,
            deps=["invocations", "bedrock_metrics", "logging_configuration", "billing_line_items"],
            kinds={"parquet"},
            check_specs=COVERAGE_CHECKS,
        )(log_completeness),
    ]


def logging_figures(today: pl.DataFrame, configured: bool) -> dict[str, Any]:
    """What the day's logging configuration shows at a glance: regions with logging off and the whole table."""
    off = today.filter(~pl.col("logging_enabled").fill_null(False))
    view = today.select(
        "account_id",
        "region",
        "logging_enabled",
        "s3_uri",
        "cloudwatch_log_group",
        "text_data_delivery",
        "config_source",
    )
    return {
        "discovery_configured": configured,
        "regions_logging_off": off.height,
        "configuration": MetadataValue.md(markdown_table(view, 50)),
    }


def logging_checks(today: pl.DataFrame, previous: pl.DataFrame) -> Iterator[AssetCheckResult]:
    """The drift check against the previous day and the logging-off check."""
    off = today.filter(~pl.col("logging_enabled").fill_null(False))
    changes = config_drift(today, previous)
    failing = [c for c in changes if c["kind"] in FAILING_DRIFT]
    table = pl.DataFrame(changes) if changes else pl.DataFrame()
    yield AssetCheckResult(
        asset_key="logging_configuration",
        check_name="logging_unchanged_since_previous_day",
        passed=not failing,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "changes": len(changes),
            "failing_changes": len(failing),
            "compared_with_previous_day": not previous.is_empty(),
            "before_after": MetadataValue.md(markdown_table(table, 50)),
        },
    )
    problems = off.select(
        "account_id", "region", pl.coalesce(pl.col("error"), pl.lit("logging off")).alias("why"), "config_source"
    )
    yield AssetCheckResult(
        asset_key="logging_configuration",
        check_name="logging_on_in_every_region",
        passed=off.is_empty(),
        severity=AssetCheckSeverity.WARN,
        metadata={"regions_without_logging": off.height, "where": MetadataValue.md(markdown_table(problems, 50))},
    )


def completeness_figures(df: pl.DataFrame, summary: dict[str, Any]) -> dict[str, Any]:
    """What the day's `log_completeness` shows at a glance: coverage, metric and logged calls, statuses."""
    coverage = summary["coverage"]
    return {
        "coverage": coverage if coverage is not None else float("nan"),
        "metric_invocations": summary["metric_invocations"],
        "logged_invocations": int(df["logged_invocations"].sum() or 0),
        "by_status": MetadataValue.md(markdown_table(summary["by_status"])),
    }


def coverage_check(summary: dict[str, Any], min_coverage: float, metrics_read: bool) -> AssetCheckResult:
    """The `logs_cover_metrics` check from the day's coverage summary (`day_coverage`)."""
    coverage = summary["coverage"]
    severity = AssetCheckSeverity.WARN if summary["late_only"] else AssetCheckSeverity.ERROR
    note = (
        "metrics are not read (set sources.invocation_logs.discover)"
        if not metrics_read
        else ("no metric calls this day" if coverage is None else f"coverage {coverage:.2%}")
    )
    return AssetCheckResult(
        asset_key="log_completeness",
        check_name="logs_cover_metrics",
        passed=summary["passed"],
        severity=severity,
        metadata={
            "coverage": coverage if coverage is not None else float("nan"),
            "threshold": min_coverage,
            "note": note,
            "short_accounts_regions_hours": MetadataValue.md(markdown_table(summary["offenders"], 50)),
        },
    )
