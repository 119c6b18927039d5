"""Sample data end to end: logs, the user's price overrides, a bill that matches the logs, and `ledger.yaml`.

The bill is computed from the *true* sample records (before any injected delivery fault), priced with the same
catalog the pipeline uses, so that a reconciliation of the demo shows `matched` wherever nothing was injected and
each injected discrepancy shows as its own status.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import yaml

from pipeline.normalize.day import rows_to_frame
from pipeline.normalize.records import RecordError, parse_record
from pipeline.pricing import load_catalog, price_invocations
from pipeline.sample.aws_state import discover_config, plan_undelivered, write_aws_state
from pipeline.sample.batch_jobs import NAME_RULE, batch_sources, batch_usage, sample_jobs, write_batch_jobs
from pipeline.sample.ledger_config import sample_ledger_config, write_price_overrides
from pipeline.sample.logs import GenerationSummary, LogGenOptions, generate_sample, iter_records
from pipeline.vocabulary import GUARDRAIL_POLICIES

if TYPE_CHECKING:
    from pipeline.sample.bill import BillFormat

DEMO_START = dt.date(2026, 11, 1)
KINDS = (
    ("input", "input_tokens", "input_cost_usd"),
    ("output", "output_tokens", "output_cost_usd"),
    ("cache_read", "cache_read_input_tokens", "cache_read_cost_usd"),
    ("cache_write", "cache_write_input_tokens", "cache_write_cost_usd"),
)

# The bill splits cache writes by TTL: 5-minute writes are `cache_write`, 1-hour writes `cache_write_1h`.
BILLED_KINDS = (
    *KINDS[:3],
    ("cache_write", "_cw5_tokens", "_cw5_cost"),
    ("cache_write_1h", "_cw1h_tokens", "_cw1h_cost"),
)


def _with_ttl_and_tier(priced: pl.DataFrame) -> pl.DataFrame:
    """The 5-minute / 1-hour write split and the context tier, where the priced frame has them (else 0 and
    `standard`), so the sample bill carries 1-hour and long-context rows exactly when the logs do."""
    h_tok = (
        pl.col("cache_write_1h_input_tokens").fill_null(0)
        if "cache_write_1h_input_tokens" in priced.columns
        else pl.lit(0)
    )
    h_cost = (
        pl.col("cache_write_1h_cost_usd").fill_null(0.0) if "cache_write_1h_cost_usd" in priced.columns else pl.lit(0.0)
    )
    tier = pl.col("context_tier").fill_null("standard") if "context_tier" in priced.columns else pl.lit("standard")
    return priced.with_columns(
        (pl.col("cache_write_input_tokens").fill_null(0) - h_tok).alias("_cw5_tokens"),
        h_tok.cast(pl.Int64).alias("_cw1h_tokens"),
        (pl.col("cache_write_cost_usd") - h_cost).alias("_cw5_cost"),
        pl.when(pl.col("cache_write_cost_usd").is_not_null()).then(h_cost).cast(pl.Float64).alias("_cw1h_cost"),
        tier.cast(pl.String).alias("context_tier"),
    )


@dataclass
class SampleSet:
    """What `generate_all` wrote."""

    root: Path
    config_path: Path
    days: list[dt.date]
    logs: GenerationSummary
    bill_files: dict[str, list[str]] = field(default_factory=dict)


def true_usage(
    opts: LogGenOptions, overrides_path: str, app_profiles: dict[str, str], by_principal: bool = False
) -> pl.DataFrame:
    """The sample's real usage per day × account × region × model × token kind × routing × tier, priced.

    This is what AWS would bill for the sample: every true record, none of the delivery faults. With
    `by_principal`, also per caller (`iam_principal`, the identity ARN), for a bill with IAM principal data.
    """
    rows = []
    pairs = tuple(sorted(app_profiles.items()))
    for rec in iter_records(opts):
        try:
            row = parse_record(rec, source="s3", source_uri="sample", app_profiles=pairs)
        except RecordError:
            continue
        row["date"] = row["timestamp"].date()
        rows.append(row)
    inv = rows_to_frame(rows)
    # Unpriced calls are billed too (AWS knows its price even when our catalog does not): their cost is null and
    # the bill generator uses a fallback rate, so the demo shows them as `unpriced`.
    priced = price_invocations(inv, load_catalog(overrides_path), profile_models=app_profiles)
    priced = _with_ttl_and_tier(priced)
    profile = (
        pl.when(pl.col("pricing_routing").is_in(["geo", "global"]))
        .then(
            pl.coalesce(
                pl.col("inference_profile").replace_strict(app_profiles, default=pl.col("inference_profile")),
                pl.col("model_id"),
            )
            .str.split("/")
            .list.last()
        )
        .otherwise(None)
    )
    principal = [pl.col("identity_arn").alias("iam_principal")] if by_principal else []
    frames = [
        priced.select(
            "date",
            "account_id",
            "region",
            "base_model_id",
            pl.lit(kind).alias("usage_kind"),
            pl.col("pricing_routing").alias("routing"),
            pl.col("pricing_tier").alias("tier"),
            pl.col(tokens).fill_null(0).alias("tokens"),
            pl.col(cost).alias("cost_usd"),
            profile.alias("profile_id"),
            pl.col("context_tier"),
            *principal,
        )
        for kind, tokens, cost in BILLED_KINDS
    ]
    frames.append(
        priced.select(
            "date",
            "account_id",
            "region",
            "base_model_id",
            pl.lit("image").alias("usage_kind"),
            pl.col("pricing_routing").alias("routing"),
            pl.col("pricing_tier").alias("tier"),
            pl.col("image_count").fill_null(0).alias("tokens"),
            pl.col("image_cost_usd").alias("cost_usd"),
            profile.alias("profile_id"),
            pl.col("context_tier"),
            *principal,
        )
    )
    # Guardrail units of the traced calls, one usage row per policy (`usage_kind` = the policy): the bill's
    # guardrail rows are made from them (sample.whole_bill).
    for policy in GUARDRAIL_POLICIES:
        frames.append(
            priced.select(
                "date",
                "account_id",
                "region",
                "base_model_id",
                pl.lit(policy).alias("usage_kind"),
                pl.lit("in_region").alias("routing"),
                pl.lit("standard").alias("tier"),
                pl.col(f"guardrail_{policy}_units").fill_null(0).alias("tokens"),
                pl.lit(None, dtype=pl.Float64).alias("cost_usd"),
                pl.lit(None, dtype=pl.String).alias("profile_id"),
                pl.lit("standard").alias("context_tier"),
                *principal,
            )
        )
    usage = pl.concat(frames).filter((pl.col("tokens") > 0) & pl.col("base_model_id").is_not_null())
    keys = [
        "date",
        "account_id",
        "region",
        "base_model_id",
        "usage_kind",
        "routing",
        "tier",
        "profile_id",
        "context_tier",
    ]
    keys += ["iam_principal"] if by_principal else []
    # A bucket with any unpriced call has no known cost (sum of nulls stays null, never $0).
    cost = pl.when(pl.col("cost_usd").is_null().any()).then(None).otherwise(pl.col("cost_usd").sum())
    return usage.group_by(keys).agg(pl.col("tokens").sum(), cost.alias("cost_usd")).sort(keys, nulls_last=True)


def generate_all(
    out: str | Path,
    start: dt.date = DEMO_START,
    days: int = 3,
    records_per_day: int = 2000,
    *,
    seed: int = 7,
    faults: bool = True,
    bill_formats: Sequence[BillFormat] = ("cur2", "cur", "focus"),
    reconcile_format: BillFormat = "cur2",
    body_kb: float = 2.0,
    cloudwatch_group: str = "",
    cloudwatch_share: float = 0.0,
    history_days: int = 0,
) -> SampleSet:
    """Write logs, overrides, bills (one per format) and a `ledger.yaml` under `out`; return what was written.

    With `cloudwatch_group` and a `cloudwatch_share`, that share of the calls is put into CloudWatch Logs (in
    each call's Region) instead of S3, and the config reads the group too; the bill covers every call either way.

    The config's billing source is the `reconcile_format` bill only (the others are there to try the readers:
    pointing the config at several formats of the same bill would count it more than once).

    `history_days` adds that many days before `start`, of the same world and size, for foresight to learn from;
    the last day then carries the planted events (`world.PLANTED`: a spend spike, a new spender, a stop), and
    every day has the planted workloads' steady calls. Without history nothing changes.
    """
    from pipeline.sample.bill import write_bill

    root = Path(out).resolve()
    root.mkdir(parents=True, exist_ok=True)
    logs_dir = root / "logs"
    plant: dict[str, Any] = {}
    if history_days:
        start, days = start - dt.timedelta(days=history_days), days + history_days
        plant = {"plant_day": start + dt.timedelta(days=days - 1)}
    plan = LogGenOptions(start=start, days=days, records_per_day=records_per_day, seed=seed, body_kb=body_kb, **plant)
    undelivered = plan_undelivered(plan)  # completeness: a logging gap and a delivery still under way
    cloudwatch: dict[str, Any] = (
        {"cloudwatch_log_group": cloudwatch_group, "cloudwatch_share": cloudwatch_share, "deliver_to_cloudwatch": True}
        if cloudwatch_group and cloudwatch_share > 0
        else {}
    )
    summary = generate_sample(
        str(logs_dir),
        start,
        days,
        records_per_day,
        seed=seed,
        faults=faults,
        body_kb=body_kb,
        undelivered=undelivered,
        **plant,
        **cloudwatch,
    )
    overrides = root / "prices.csv"
    write_price_overrides(str(overrides))
    opts = LogGenOptions(
        start=start,
        days=days,
        records_per_day=records_per_day,
        seed=seed,
        body_kb=body_kb,
        **plant,
        **{k: v for k, v in cloudwatch.items() if k != "deliver_to_cloudwatch"},
    )
    base_cfg = sample_ledger_config(str(logs_dir), str(root / "warehouse"), opts=opts, overrides_path="prices.csv")
    app_profiles = {arn: p["model_id"] for arn, p in base_cfg["attribution"]["inference_profiles"].items()}
    by_principal = true_usage(opts, str(overrides), app_profiles, by_principal=True)
    jobs = sample_jobs(start, days, seed=seed)  # batch inference: billed, never in the invocation logs
    batch = batch_usage(jobs, str(overrides))
    by_principal = pl.concat([by_principal, batch.select(by_principal.columns).cast(by_principal.schema)])
    usage = _without_principal(by_principal)
    bill_files: dict[str, list[str]] = {}
    for fmt in bill_formats:
        bill_files[fmt] = write_bill(
            str(root / "billing" / fmt), usage, fmt, discrepancies=True, seed=seed, principals=by_principal
        )
    billing = [{"uri": str(root / "billing" / reconcile_format), "format": reconcile_format}]
    cfg = sample_ledger_config(
        str(logs_dir), str(root / "warehouse"), opts=opts, overrides_path="prices.csv", billing=billing
    )
    cfg = _relative(cfg, root)
    world = write_aws_state(root / "aws", opts, logs_dir, seed=seed)  # logging configuration and metrics
    cfg["sources"]["invocation_logs"]["discover"] = discover_config(world, root)
    write_batch_jobs(world.root, root / "batch-output", jobs)
    cfg["sources"]["batch_jobs"] = batch_sources(jobs, cfg["sources"]["invocation_logs"]["discover"]["snapshot"])
    cfg["attribution"]["batch_job_rules"] = [NAME_RULE]
    config_path = root / "ledger.yaml"
    config_path.write_text(
        "# Written by `bedrock-ledger demo`: the sample world's configuration (every key: docs/configuration.md).\n"
        + yaml.safe_dump(cfg, sort_keys=False)
    )
    return SampleSet(root, config_path, [start + dt.timedelta(days=i) for i in range(days)], summary, bill_files)


def _without_principal(usage: pl.DataFrame) -> pl.DataFrame:
    """`true_usage` per caller summed back to the bill's buckets (a bucket with an unpriced call stays unpriced)."""
    keys = [c for c in usage.columns if c not in ("tokens", "cost_usd", "iam_principal")]
    cost = pl.when(pl.col("cost_usd").is_null().any()).then(None).otherwise(pl.col("cost_usd").sum())
    return usage.group_by(keys).agg(pl.col("tokens").sum(), cost.alias("cost_usd")).sort(keys, nulls_last=True)


def _relative(cfg: dict[str, Any], root: Path) -> dict[str, Any]:
    """Paths under the demo folder written relative to it, so the folder can be moved or shared."""

    def rel(p: str) -> str:
        try:
            return "./" + str(Path(p).resolve().relative_to(root))
        except ValueError:
            return p

    cfg = dict(cfg)
    cfg["warehouse"] = rel(cfg["warehouse"])
    src = cfg["sources"]
    src["invocation_logs"]["s3"] = [rel(p) for p in src["invocation_logs"]["s3"]]
    src["billing"] = [{**b, "uri": rel(b["uri"])} for b in src["billing"]]
    return cfg
