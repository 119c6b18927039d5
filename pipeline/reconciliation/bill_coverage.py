"""`bill_coverage`: the bill first. Per day, account and kind of Bedrock spend, how much of the billed cost the
ledger explains from a usage source, how much it attributes to an owner, how much is capacity bought in advance,
and how much stays unallocated and why.

It is read off the day's `chargeback`, which allocates every billed usage dollar exactly once (its rows sum to the
bill): a row explained from invocation logs or batch jobs (`usage_source`) is *explained*; a row whose owner is not
`unallocated` is *attributed* (bill-only spend owned by tags or the bill's principal is attributed but not
explained); the rest is *unallocated*, with the reasons of its rows (`allocation_reason`). The check
`unallocated_within_limit` fails when the day's unallocated share of the bill passes
`quality.max_unallocated_share`.

Capacity commitments (`vocabulary.CAPACITY_SPEND_KINDS`: Provisioned Throughput model-unit hours, the Reserved
tier) are billed whether calls use them or not, so they are explained by the resource they are billed for, not by
the calls: `capacity_cost_usd` is all of it, `idle_capacity_cost_usd` the part on provisioned models that served no
logged call that day (owned by `attribution.provisioned_models` tags, else unallocated). The rest served logged
calls and is also *explained* (the chargeback gives it to those callers). `by_kind` and `summary_line` split the
bill into parts that add up to it: capacity serving logged calls, idle capacity with an owner, explained from logs
or jobs, owned without a usage source, unallocated (the check's figure: unowned idle capacity is unallocated).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from pipeline import schemas
from pipeline.text import usd
from pipeline.vocabulary import CAPACITY_SPEND_KINDS, Frame, as_lazy

KEYS: tuple[str, ...] = ("date", "account_id", "spend_kind")
_OWNER = ("cost_center", "user", "allocation_reason")


def bill_coverage(cb: Frame) -> pl.DataFrame:
    """`bill_coverage` rows from a day's `chargeback` (see the module docstring). A scan is read for the columns
    used only and summed as it streams: the chargeback of a day of many callers has a row per caller."""
    frame = as_lazy(cb).select(*KEYS, "billed_cost_usd", "estimated_cost_usd", *_OWNER, "usage_source")
    billed = pl.col("billed_cost_usd").fill_null(0.0)
    unallocated = (pl.col("cost_center") == schemas.UNALLOCATED) & (pl.col("user") == schemas.UNALLOCATED)
    explained = pl.col("usage_source").is_in(["invocation_log", "batch_job"]).fill_null(False)
    capacity = pl.col("spend_kind").is_in(list(CAPACITY_SPEND_KINDS)).fill_null(False)
    by_reason = (
        frame.filter(unallocated & (billed != 0))
        .group_by(*KEYS, "allocation_reason")
        .agg(billed.sum().alias("_r"))
        .collect(engine="streaming")
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
            billed.filter(capacity).sum().alias("capacity_cost_usd"),
            # Capacity no logged call used: the chargeback's capacity rows without a usage source.
            billed.filter(capacity & ~explained).sum().alias("idle_capacity_cost_usd"),
            pl.col("usage_source")
            .filter(billed != 0)
            .drop_nulls()
            .unique()
            .sort()
            .str.join(", ")
            .alias("usage_sources"),
        )
        .collect(engine="streaming")
        .join(by_reason, on=list(KEYS), how="left", nulls_equal=True)
    )
    if out.is_empty():
        return schemas.empty(schemas.BILL_COVERAGE)
    share = {
        f"{part}_share": pl.when(pl.col("billed_cost_usd") != 0).then(
            pl.col(f"{part}_cost_usd") / pl.col("billed_cost_usd")
        )
        for part in ("explained", "attributed", "unallocated", "capacity")
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
        idle = worst.filter(pl.col("spend_kind").is_in(list(CAPACITY_SPEND_KINDS))).height > 0
        return CoverageVerdict(
            False,
            share,
            f"{head}: {detail}. Tag the resources (costCenter, application) or activate iamPrincipal/ cost "
            "allocation tags, or add an attribution.principals rule for them"
            + ("; name each idle provisioned model's owner under attribution.provisioned_models" if idle else ""),
        )
    return CoverageVerdict(True, share, head + (f": {detail}" if detail else ""))


def _share(part: float, billed: float) -> str:
    return f"{part / billed:.1%}"


def summary_line(coverage: pl.DataFrame) -> str:
    """One line for the CLI: the bill split into parts that add up to it (capacity, explained from logs or jobs,
    owned without a usage source, unallocated), with what the capacity did and the unowned kinds' dollars."""
    billed = float(coverage["billed_cost_usd"].sum() or 0.0) if coverage.height else 0.0
    if billed == 0:
        return "bill coverage: nothing billed"
    table = by_kind(coverage)
    total = {c: float(table[c].sum() or 0.0) for c in table.columns if c.endswith("_usd")}
    parts = []
    capacity = total["capacity_used_usd"] + total["idle_capacity_usd"]
    if capacity > 0:
        names = ", ".join(CAPACITY_SPEND_KINDS[k] for k in table["spend_kind"] if k in CAPACITY_SPEND_KINDS)
        did = [
            f"{usd(total['capacity_used_usd'])} serving logged calls" if total["capacity_used_usd"] > 0 else "",
            f"{usd(total['idle_capacity_usd'])} idle, owned" if total["idle_capacity_usd"] > 0 else "",
        ]
        parts.append(f"{_share(capacity, billed)} capacity ({names}: {', '.join(d for d in did if d)})")
    parts.append(f"{_share(total['explained_cost_usd'], billed)} explained from logs or jobs")
    parts.append(f"{_share(total['owned_not_explained_usd'], billed)} owned by tags, principal or rule")
    left = table.filter(pl.col("unallocated_cost_usd") > 0).sort("unallocated_cost_usd", descending=True)
    unowned = ", ".join(
        f"{k} {usd(v)}" + (" idle capacity" if k in CAPACITY_SPEND_KINDS else "")
        for k, v in left.select("spend_kind", "unallocated_cost_usd").iter_rows()
    )
    parts.append(f"{_share(total['unallocated_cost_usd'], billed)} unallocated" + (f" ({unowned})" if unowned else ""))
    return f"bill coverage: {usd(billed)} billed: " + ", ".join(parts)


BY_KIND_SCHEMA: dict[str, schemas.DType] = {
    "spend_kind": pl.String,
    "billed_cost_usd": pl.Float64,
    "capacity_used_usd": pl.Float64,
    "idle_capacity_usd": pl.Float64,
    "explained_cost_usd": pl.Float64,
    "owned_not_explained_usd": pl.Float64,
    "unallocated_cost_usd": pl.Float64,
    "unallocated_reasons": pl.String,
}
"""`by_kind`'s columns: the five `_usd` parts after `billed_cost_usd` add up to it."""


def by_kind(coverage: pl.DataFrame) -> pl.DataFrame:
    """Per spend kind over every day and account of `coverage`, largest bill first, the billed cost in parts that
    add up to it, for a chart, its table and the CLI line (`BY_KIND_SCHEMA`):

    * a capacity kind's bill is `capacity_used_usd` (its provisioned models served logged calls),
      `idle_capacity_usd` (they served none, and an owner is named) or `unallocated_cost_usd` (idle, no owner);
    * any other kind's is `explained_cost_usd` (logs or batch jobs, with an owner), `owned_not_explained_usd`
      (tags, principal or rule, no usage source) or `unallocated_cost_usd` (an explained dollar without an owner,
      a batch job nobody tagged, counts as unallocated, as the check counts it).
    """
    if coverage.is_empty():
        return pl.DataFrame(schema=BY_KIND_SCHEMA)
    is_capacity = pl.col("spend_kind").is_in(list(CAPACITY_SPEND_KINDS))
    left = pl.col("unallocated_cost_usd")
    idle_owned = (pl.col("idle_capacity_cost_usd") - left).clip(lower_bound=0.0)
    # Attributed but not explained: owned by tags, principal or rule without a usage source.
    owned_only = (pl.col("attributed_cost_usd") - pl.col("explained_cost_usd")).clip(lower_bound=0.0)
    # A partition written before the capacity columns existed reads them as null: a capacity kind's idle part is
    # its unexplained part (the chargeback gives used capacity to its logged callers).
    idle = pl.coalesce(
        pl.col("idle_capacity_cost_usd"),
        pl.when(is_capacity).then(pl.col("billed_cost_usd") - pl.col("explained_cost_usd")).otherwise(0.0),
    )
    return (
        coverage.with_columns(idle.alias("idle_capacity_cost_usd"))
        .group_by("spend_kind")
        .agg(
            pl.col(
                "billed_cost_usd",
                "explained_cost_usd",
                "attributed_cost_usd",
                "unallocated_cost_usd",
                "idle_capacity_cost_usd",
            )
            .fill_null(0.0)
            .sum(),
            pl.col("unallocated_reasons").drop_nulls().unique().sort().str.join("; "),
        )
        .with_columns(
            pl.when(is_capacity).then(idle_owned).otherwise(0.0).alias("idle_capacity_usd"),
            pl.when(is_capacity).then(0.0).otherwise(owned_only).alias("owned_not_explained_usd"),
            pl.when(pl.col("unallocated_reasons") == "")
            .then(None)
            .otherwise(pl.col("unallocated_reasons"))
            .alias("unallocated_reasons"),
        )
        .with_columns(
            # What is left once the other parts are taken, so the parts add up to the billed cost.
            pl.when(is_capacity)
            .then((pl.col("billed_cost_usd") - pl.col("idle_capacity_usd") - left).clip(lower_bound=0.0))
            .otherwise(0.0)
            .alias("capacity_used_usd"),
            pl.when(is_capacity)
            .then(0.0)
            .otherwise((pl.col("billed_cost_usd") - pl.col("owned_not_explained_usd") - left).clip(lower_bound=0.0))
            .alias("explained_cost_usd"),
        )
        .filter(pl.col("billed_cost_usd") != 0)
        .sort("billed_cost_usd", descending=True)
        .select(list(BY_KIND_SCHEMA))
    )
