"""`bill_coverage`: the bill first. Per day, account and kind of Bedrock spend, how much of the billed cost the
ledger explains from a usage source, how much it attributes to an owner, and how much stays unallocated and why.

It is read off the day's `chargeback`, which allocates every billed usage dollar exactly once (its rows sum to the
bill): a row explained from invocation logs or batch jobs (`usage_source`) is *explained*; a row whose owner is not
`unallocated` is *attributed* (bill-only spend owned by tags or the bill's principal is attributed but not
explained); the rest is *unallocated*, with the reasons of its rows (`allocation_reason`). The check
`unallocated_share_within_limit` fails when the day's unallocated share of the bill passes
`quality.max_unallocated_share`.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from pipeline import schemas
from pipeline.text import usd
from pipeline.vocabulary import Frame, as_lazy

KEYS: tuple[str, ...] = ("date", "account_id", "spend_kind")


def bill_coverage(cb: Frame) -> pl.DataFrame:
    """`bill_coverage` rows from a day's `chargeback` (see the module docstring)."""
    frame = as_lazy(cb).collect()
    if frame.is_empty():
        return schemas.empty(schemas.BILL_COVERAGE)
    billed = pl.col("billed_cost_usd").fill_null(0.0)
    unallocated = (pl.col("cost_center") == schemas.UNALLOCATED) & (pl.col("user") == schemas.UNALLOCATED)
    explained = pl.col("usage_source").is_in(["invocation_log", "batch_job"]).fill_null(False)
    by_reason = (
        frame.filter(unallocated & (billed != 0))
        .group_by(*KEYS, "allocation_reason")
        .agg(billed.sum().alias("_r"))
        .sort("_r", descending=True)
        .group_by(KEYS, maintain_order=True)
        .agg(
            pl.format(
                "{} {}",
                pl.col("allocation_reason").fill_null("unknown"),
                pl.col("_r").map_elements(usd, return_dtype=pl.String),
            )
            .str.join("; ")
            .alias("unallocated_reasons")
        )
    )
    out = (
        frame.group_by(KEYS)
        .agg(
            billed.sum().alias("billed_cost_usd"),
            pl.col("estimated_cost_usd").fill_null(0.0).sum().alias("estimated_cost_usd"),
            billed.filter(explained).sum().alias("explained_cost_usd"),
            billed.filter(~unallocated).sum().alias("attributed_cost_usd"),
            billed.filter(unallocated).sum().alias("unallocated_cost_usd"),
            pl.col("usage_source")
            .filter(billed != 0)
            .drop_nulls()
            .unique()
            .sort()
            .str.join(", ")
            .alias("usage_sources"),
        )
        .join(by_reason, on=list(KEYS), how="left", nulls_equal=True)
    )
    share = {
        f"{part}_share": pl.when(pl.col("billed_cost_usd") != 0).then(
            pl.col(f"{part}_cost_usd") / pl.col("billed_cost_usd")
        )
        for part in ("explained", "attributed", "unallocated")
    }
    out = out.with_columns(**share).filter((pl.col("billed_cost_usd") != 0) | (pl.col("estimated_cost_usd") != 0))
    return schemas.conform(out.sort(list(KEYS)), schemas.BILL_COVERAGE)


@dataclass(frozen=True)
class CoverageVerdict:
    """The check's outcome: passed, the day's unallocated share, and a sentence for people."""

    passed: bool
    unallocated_share: float | None
    description: str


def unallocated_verdict(coverage: pl.DataFrame, max_share: float) -> CoverageVerdict:
    """Does the day's unallocated share of the billed cost stay within `max_share`? (Empty bill: passes.)"""
    billed = float(coverage["billed_cost_usd"].sum() or 0.0) if coverage.height else 0.0
    if billed == 0:
        return CoverageVerdict(True, None, "nothing billed for this day")
    left = float(coverage["unallocated_cost_usd"].sum() or 0.0)
    share = left / billed
    worst = coverage.filter(pl.col("unallocated_cost_usd") > 0).sort("unallocated_cost_usd", descending=True)
    detail = "; ".join(
        f"{r['spend_kind']} {usd(r['unallocated_cost_usd'])} ({r['unallocated_reasons']})"
        for r in worst.head(3).iter_rows(named=True)
    )
    head = f"{usd(left)} of {usd(billed)} billed ({share:.1%}) has no owner (limit {max_share:.1%})"
    if share > max_share + 1e-12:
        return CoverageVerdict(
            False,
            share,
            f"{head}: {detail}. Tag the resources (costCenter, application) or activate iamPrincipal/ cost "
            "allocation tags, or add an attribution.principals rule for them",
        )
    return CoverageVerdict(True, share, head + (f": {detail}" if detail else ""))


def summary_line(coverage: pl.DataFrame) -> str:
    """One line for the CLI: the bill, how much the ledger explains and owns, and the unowned kinds with their
    dollars."""
    billed = float(coverage["billed_cost_usd"].sum() or 0.0) if coverage.height else 0.0
    if billed == 0:
        return "bill coverage: nothing billed"
    explained = float(coverage["explained_cost_usd"].sum() or 0.0)
    owned = float(coverage["attributed_cost_usd"].sum() or 0.0)
    left = (
        coverage.filter(pl.col("unallocated_cost_usd") > 0)
        .group_by("spend_kind")
        .agg(pl.col("unallocated_cost_usd").sum())
        .sort("unallocated_cost_usd", descending=True)
    )
    unowned = ", ".join(f"{k} {usd(v)}" for k, v in left.iter_rows()) or "none"
    return (
        f"bill coverage: {usd(billed)} billed, {explained / billed:.1%} explained from logs or jobs, "
        f"{owned / billed:.1%} owned; unallocated: {unowned}"
    )


def by_kind(coverage: pl.DataFrame) -> pl.DataFrame:
    """Per spend kind over every day and account of `coverage`, largest bill first: `spend_kind, billed_cost_usd,
    explained_cost_usd, owned_not_explained_usd, unallocated_cost_usd, unallocated_reasons` (the parts add up to
    the billed cost), for a chart and its table."""
    schema = {
        "spend_kind": pl.String,
        "billed_cost_usd": pl.Float64,
        "explained_cost_usd": pl.Float64,
        "owned_not_explained_usd": pl.Float64,
        "unallocated_cost_usd": pl.Float64,
        "unallocated_reasons": pl.String,
    }
    if coverage.is_empty():
        return pl.DataFrame(schema=schema)
    return (
        coverage.group_by("spend_kind")
        .agg(
            pl.col("billed_cost_usd").sum(),
            pl.col("explained_cost_usd").sum(),
            pl.col("attributed_cost_usd").sum(),
            pl.col("unallocated_cost_usd").sum(),
            pl.col("unallocated_reasons").drop_nulls().unique().sort().str.join("; "),
        )
        .with_columns(
            # Attributed but not explained: owned by tags, principal or rule without a usage source.
            (pl.col("attributed_cost_usd") - pl.col("explained_cost_usd"))
            .clip(lower_bound=0.0)
            .alias("owned_not_explained_usd"),
            pl.when(pl.col("unallocated_reasons") == "")
            .then(None)
            .otherwise(pl.col("unallocated_reasons"))
            .alias("unallocated_reasons"),
        )
        .with_columns(
            # Explained but unallocated (a batch job without an owner) counts as unallocated, so the parts add up.
            (pl.col("billed_cost_usd") - pl.col("owned_not_explained_usd") - pl.col("unallocated_cost_usd"))
            .clip(lower_bound=0.0)
            .alias("explained_cost_usd")
        )
        .filter(pl.col("billed_cost_usd") != 0)
        .sort("billed_cost_usd", descending=True)
        .select(list(schema))
    )
