"""`focus_chargeback`: the chargeback as FOCUS 1.2 cost rows, so FinOps tools load Bedrock beside the rest of the bill.

Grain: date × account × cost center × application × user × region × model × usage kind. That grain is deliberate:
`chargeback` keeps its own grain, and this export repeats the allocation one level finer with the *same weights*.
Per allocation bucket (date × account × region × model, as in `pipeline.reconciliation.chargeback`) every caller
gets its bucket weight times each billed usage kind of that bucket, so per day, account, cost center, application
and user the rows' ``BilledCost`` adds up to ``chargeback.billed_cost_usd`` (float error only). Bill rows that no log
explains keep the ``unallocated`` owner; logged usage with nothing billed is a row with ``BilledCost`` 0 and its
estimate in ``x_EstimatedCost`` (``x_AllocationStatus`` says which case a row is). Given the day's `chargeback`, the
rows of each owner are scaled to its chargeback total, so the two agree even where chargeback applies rules beyond
the shared weights (see `_conform_to_chargeback`).

Values (docs/outputs.md has the full column dictionary; the FOCUS specification is the authority on meanings):

* ``BilledCost`` = the allocated unblended usage cost (what `chargeback` allocates). ``EffectiveCost`` = the
  allocated net cost where the bill carries one (CUR net columns, FOCUS ``EffectiveCost``), else the unblended.
* ``ListUnitPrice`` and ``ContractedUnitPrice`` are null: one row mixes routings and tiers, so no single unit price
  exists. FOCUS then requires ``ListCost`` and ``ContractedCost`` of a charge to equal its ``BilledCost``; the
  catalog (public list price) estimate is in ``x_EstimatedCost``.
* Quantities: token kinds are priced per 1,000 tokens (``PricingUnit`` ``1000 Tokens``, ``ConsumedUnit``
  ``Tokens``), images per image, Provisioned Throughput per hour; the allocated share of the billed quantity.
* ``BillingAccountId`` and ``SubAccountId`` are the usage account (the bill rows read here do not name the payer).
* ``InvoiceIssuerName`` is the bill's invoicing entity (``bill_invoicing_entity``, FOCUS ``InvoiceIssuerName``) when
  the row's bill rows name one, else Amazon Web Services, Inc.; ``InvoiceId`` the invoice ids of those rows (null
  until the month is invoiced). docs/focus.md says why the FOCUS validator's ``BilledCost-C-005-C`` fires on AWS rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa

from pipeline import config, schemas
from pipeline.reconciliation.chargeback import (
    ALLOCATION_BUCKET,
    PARTIES,
    bucket_totals,
    not_logged_allocation,
    split_by_spend,
)
from pipeline.reconciliation.chargeback import caller_weights as _callers
from pipeline.reconciliation.owner_parts import owners_in_part, part_count
from pipeline.reconciliation.reconcile import is_provisioned_call, logged_model_key, usage_rows
from pipeline.vocabulary import TOKEN_KINDS, Frame, as_lazy, with_spend_kind

BILLING_CURRENCY = "USD"
PROVIDER_NAME = "AWS"
INVOICE_ISSUER_NAME = "Amazon Web Services, Inc."
SERVICE_NAME = "Amazon Bedrock"
SERVICE_CATEGORY = "AI and Machine Learning"
SERVICE_SUBCATEGORY = "Generative AI"
CHARGE_CATEGORY = "Usage"
CHARGE_FREQUENCY = "Usage-Based"
MARKETPLACE = "AWS Marketplace"

TOKENS_PER_PRICING_UNIT = 1000.0
PRICING_UNIT_TOKENS = "1000 Tokens"
KIND_UNITS: dict[str, str] = {"image": "Images", "provisioned": "Hours"}
PUBLISHERS: dict[str, str] = {
    "anthropic": "Anthropic",
    "cohere": "Cohere",
    "ai21": "AI21 Labs",
    "stability": "Stability AI",
    "writer": "Writer",
    "twelvelabs": "TwelveLabs",
    "meta": "Meta",
    "mistral": "Mistral AI",
    "deepseek": "DeepSeek",
    "luma": "Luma AI",
}
"""Marketplace rows name the model's seller as publisher (AWS's own FOCUS export does the same,
docs/formats/billing-exports.md §3.4)."""

ALLOCATED = "allocated"
UNALLOCATED_STATUS = "unallocated"
NOT_BILLED = "not_billed"

MANDATORY_NOT_NULL: tuple[str, ...] = (
    "BilledCost",
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
)
"""FOCUS 1.2 columns that are mandatory and may not be null."""
CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
_KEYS = [*ALLOCATION_BUCKET, *PARTIES]
_ROW_KEYS = [*_KEYS, "usage_kind"]


def _col_or(names: list[str], name: str, default: pl.Expr) -> pl.Expr:
    """A column that another branch of the contract may not have added yet, else a stand-in (0)."""
    return pl.col(name) if name in names else default


def _logged(priced: Frame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per caller and bucket, in one pass over the day: (logged tokens and catalog estimate per usage kind, one row
    per kind with any; the caller's environment — the one its calls name, ``mixed`` for several).

    Provisioned Throughput calls have no per-token price; their tokens form one ``provisioned`` row. The per-kind
    amounts are computed row-wise first and only summed in the group-by (filters inside aggregations are far slower).
    """
    lf = as_lazy(priced)
    names = lf.collect_schema().names()
    priced_flag = pl.col("priced").fill_null(False)
    is_pt = ((pl.col("routing") == "provisioned") | (pl.col("pricing_routing") == "provisioned")).fill_null(False)
    cw = pl.col("cache_write_input_tokens").fill_null(0)
    cw_1h = pl.min_horizontal(_col_or(names, "cache_write_1h_input_tokens", pl.lit(0)).fill_null(0), cw)
    cw_1h_cost = _col_or(names, "cache_write_1h_cost_usd", pl.lit(0.0)).fill_null(0.0)
    tokens: dict[str, pl.Expr] = {
        "input": pl.col("input_tokens").fill_null(0),
        "output": pl.col("output_tokens").fill_null(0),
        "cache_read": pl.col("cache_read_input_tokens").fill_null(0),
        "cache_write": cw - cw_1h,
        "cache_write_1h": cw_1h,
    }
    costs: dict[str, pl.Expr] = {
        "input": pl.col("input_cost_usd").fill_null(0.0),
        "output": pl.col("output_cost_usd").fill_null(0.0),
        "cache_read": pl.col("cache_read_cost_usd").fill_null(0.0),
        "cache_write": pl.col("cache_write_cost_usd").fill_null(0.0) - cw_1h_cost,
        "cache_write_1h": cw_1h_cost,
        "image": pl.col("image_cost_usd").fill_null(0.0),
    }
    zero_i, zero_f = pl.lit(0, dtype=pl.Int64), pl.lit(0.0)
    per_call = [
        pl.when(is_pt).then(zero_i).otherwise(t).cast(pl.Int64).alias(f"{k}__tokens") for k, t in tokens.items()
    ]
    per_call += [
        pl.when(priced_flag & ~is_pt).then(c).otherwise(zero_f).cast(pl.Float64).alias(f"{k}__cost")
        for k, c in costs.items()
    ]
    per_call += [
        pl.when(is_pt).then(zero_i).otherwise(pl.col("image_count").fill_null(0)).cast(pl.Int64).alias("image__qty"),
        pl.when(is_pt)
        .then(sum(tokens[k] for k in ("input", "output", "cache_read")) + cw)
        .otherwise(zero_i)
        .cast(pl.Int64)
        .alias("provisioned__tokens"),
        is_pt.cast(pl.Int64).alias("provisioned__qty"),
    ]
    sums = [c.meta.output_name() for c in per_call]
    env = pl.col("environment").fill_null(schemas.UNATTRIBUTED)
    named = env.filter(env != schemas.UNATTRIBUTED)
    grouped = (
        lf.with_columns(
            logged_model_key().alias("base_model_id"),
            *[pl.col(p).fill_null(schemas.UNATTRIBUTED).alias(p) for p in PARTIES],
            *per_call,
        )
        .group_by(_KEYS)
        .agg(*[pl.col(c).sum() for c in sums], named.n_unique().alias("_n_env"), named.first().alias("_env"))
        .collect(engine="streaming")
    )
    environments = grouped.select(
        *_KEYS,
        pl.when(pl.col("_n_env") == 0)
        .then(pl.lit(schemas.UNATTRIBUTED))
        .when(pl.col("_n_env") == 1)
        .then(pl.col("_env"))
        .otherwise(pl.lit("mixed"))
        .alias("environment"),
    )
    frames = []
    for kind in (*tokens, "image", "provisioned"):
        qty = pl.col(f"{kind}__qty") if kind in ("image", "provisioned") else pl.col(f"{kind}__tokens")
        frames.append(
            grouped.select(
                *_KEYS,
                pl.lit(kind).alias("usage_kind"),
                (pl.col(f"{kind}__tokens") if kind != "image" else zero_i).alias("x_LoggedTokens"),
                (pl.col(f"{kind}__cost") if kind != "provisioned" else zero_f).alias("x_EstimatedCost"),
                qty.alias("_logged_qty"),
            )
        )
    logged = (
        pl.concat(frames, how="vertical")
        .filter((pl.col("_logged_qty") > 0) | (pl.col("x_EstimatedCost") != 0))
        .drop("_logged_qty")
    )
    return logged, environments


def _unlogged_owner_columns() -> list[pl.Expr]:
    """The columns of a row whose cost no logged call explains (bill-only spend, unlogged usage): no logged tokens
    or estimate, an environment only when it has an owner, and its allocation status from its cost center."""
    unallocated = pl.col("cost_center") == schemas.UNALLOCATED
    return [
        pl.when(unallocated)
        .then(pl.lit(schemas.UNALLOCATED))
        .otherwise(pl.lit(schemas.UNATTRIBUTED))
        .alias("environment"),
        pl.lit(0, dtype=pl.Int64).alias("x_LoggedTokens"),
        pl.lit(0.0).alias("x_EstimatedCost"),
        pl.when(unallocated).then(pl.lit(UNALLOCATED_STATUS)).otherwise(pl.lit(ALLOCATED)).alias("x_AllocationStatus"),
    ]


def _billed_by_kind(billing: Frame, by: tuple[str, ...] = ()) -> pl.LazyFrame:
    """The bill's usage rows per bucket and usage kind (and `by`): cost, net cost, tokens, quantity, and what is
    unique."""

    def unique(col: str) -> pl.Expr:
        return pl.col(col).drop_nulls().unique().alias(f"_{col}s")

    rows = usage_rows(billing)
    present = rows.collect_schema().names()
    added = [c for c in ("invoicing_entity", "invoice_id") if c not in present]  # partitions from before them
    return (
        with_spend_kind(rows)
        .with_columns(pl.col("usage_kind").fill_null("other"), *[pl.lit(None, pl.String).alias(c) for c in added])
        .group_by([*ALLOCATION_BUCKET, "usage_kind", *by], maintain_order=True)
        .agg(
            pl.col("unblended_cost_usd").fill_null(0.0).sum().cast(pl.Float64).alias("_billed"),
            pl.coalesce(pl.col("net_cost_usd"), pl.col("unblended_cost_usd"))
            .fill_null(0.0)
            .sum()
            .cast(pl.Float64)
            .alias("_effective"),
            pl.col("tokens").fill_null(0).sum().cast(pl.Float64).alias("_tokens"),
            pl.col("usage_amount").fill_null(0.0).sum().cast(pl.Float64).alias("_amount"),
            unique("resource_id"),
            unique("usage_type"),
            unique("invoicing_entity"),
            pl.col("invoice_id").replace("", None).drop_nulls().unique().sort().str.join(",").alias("_invoice_id"),
            pl.col("pricing_unit").drop_nulls().first().alias("_bill_unit"),
            (pl.col("billing_entity") == MARKETPLACE).fill_null(False).any().alias("_marketplace"),
            pl.col("spend_kind").drop_nulls().first().alias("_spend_kind"),
        )
        .with_columns(
            pl.when(pl.col(f"_{c}s").list.len() == 1).then(pl.col(f"_{c}s").list.first()).alias(f"_{c}")
            for c in ("resource_id", "usage_type", "invoicing_entity")
        )
        .drop("_resource_ids", "_usage_types", "_invoicing_entitys")
    )


def _caller_buckets(priced: Frame) -> pl.DataFrame:
    """The allocation buckets with at least one logged on-demand caller (a few rows per day)."""
    return (
        as_lazy(priced)
        .filter(~is_provisioned_call())
        .select(
            "date", "account_id", "region", logged_model_key().alias("base_model_id")
        )  # ALLOCATION_BUCKET's columns
        .unique()
        .select(list(ALLOCATION_BUCKET))
        .collect(engine="streaming")
    )


def _allocate(
    priced: Frame,
    billing: Frame,
    every_bucket: pl.DataFrame | None = None,
    billed: pl.DataFrame | None = None,
    parts: int = 1,
    part: int = 0,
    totals: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Rows at the export's grain with allocated billed amounts, logged amounts, share and status: all owners, or
    those of `part` of `parts` (`owner_parts`), given the buckets that have callers and the `billed` cells when already
    computed. The weights are made for the part's owners only (against every caller's bucket totals)."""
    bucket = list(ALLOCATION_BUCKET)
    shares_of = totals.lazy() if totals is not None else None
    mine = owners_in_part(parts, part)
    weights = _callers(priced, mine, shares_of).select(*_KEYS, "_weight").collect(engine="streaming")
    if every_bucket is None:
        every_bucket = _caller_buckets(priced)
    if billed is None:
        billed = _billed_by_kind(billing).collect()
    scaled = ["_billed", "_effective", "_tokens", "_amount"]
    allocated = weights.join(billed, on=bucket, how="inner", nulls_equal=True).with_columns(
        *[(pl.col(c) * pl.col("_weight")).alias(c) for c in scaled]
    )
    logged, environments = _logged(as_lazy(priced).filter(owners_in_part(parts, part)))
    rows = (
        allocated.drop("_weight")
        .join(logged, on=_ROW_KEYS, how="full", coalesce=True, nulls_equal=True)
        .join(weights, on=_KEYS, how="left", nulls_equal=True)
        .with_columns(
            pl.when(pl.col("_billed").is_null())
            .then(pl.lit(NOT_BILLED))
            .otherwise(pl.lit(ALLOCATED))
            .alias("x_AllocationStatus"),
        )
        .join(environments, on=_KEYS, how="left", nulls_equal=True)
    )
    unallocated = billed.join(every_bucket, on=bucket, how="anti", nulls_equal=True).with_columns(
        *[pl.lit(schemas.UNALLOCATED).alias(p) for p in PARTIES],
        pl.lit(schemas.UNALLOCATED).alias("environment"),
        pl.lit(1.0).alias("_weight"),
        pl.lit(0, dtype=pl.Int64).alias("x_LoggedTokens"),
        pl.lit(0.0).alias("x_EstimatedCost"),
        pl.lit(UNALLOCATED_STATUS).alias("x_AllocationStatus"),
    )
    unallocated = unallocated.filter(owners_in_part(parts, part))
    return pl.concat([rows, unallocated], how="diagonal_relaxed").with_columns(
        *[pl.col(c).fill_null(0.0) for c in scaled],
        pl.col("x_LoggedTokens").fill_null(0),
        pl.col("x_EstimatedCost").fill_null(0.0),
        pl.col("_marketplace").fill_null(False),
    )


TAG_KEYS: tuple[str, ...] = ("application", "cost_center", "environment", "user")


def _tags(df: pl.DataFrame) -> pl.Series:
    """FOCUS ``Tags``: who the cost is allocated to, as user-defined tags (keys sorted, like every map we write).

    Built as one Arrow list array (fixed four entries per row): `pl.concat_list` of structs is much slower on a
    large day.
    """
    n = df.height
    values = df.select(pl.concat_list([pl.col(k).cast(pl.String) for k in TAG_KEYS]).alias("v"))["v"].explode()
    # The keys repeat per row: built by Arrow from a 4-word dictionary, not as a Python list of 4 × rows strings.
    width = len(TAG_KEYS)
    indices = (pl.int_range(0, width * n, eager=True, dtype=pl.Int32) % width).cast(pl.Int8).to_arrow()
    keys = pa.DictionaryArray.from_arrays(indices, pa.array(TAG_KEYS, pa.string())).cast(pa.string())
    entries = pa.StructArray.from_arrays([keys, values.to_arrow().cast(pa.string())], names=["key", "value"])
    offsets = pl.int_range(0, width * n + 1, width, eager=True, dtype=pl.Int32).to_arrow()
    return pl.Series("Tags", pa.ListArray.from_arrays(offsets, entries)).cast(schemas.STR_MAP)


def _publisher() -> pl.Expr:
    vendor = pl.col("base_model_id").str.extract(r"^(?:[a-z-]+\.)?([a-z0-9]+)\.", 1)
    seller = vendor.replace_strict(PUBLISHERS, default=vendor, return_dtype=pl.String)
    return (
        pl.when(pl.col("_marketplace"))
        .then(pl.coalesce(seller, pl.lit(MARKETPLACE)))
        .otherwise(pl.lit(PROVIDER_NAME))
        .alias("PublisherName")
    )


def _conform_to_chargeback(rows: pl.DataFrame, allocated: Frame, billing: Frame) -> pl.DataFrame:
    """Scale each owner's rows so that they sum to the owner's `chargeback.billed_cost_usd`, exactly.

    With chargeback's plain weights the factor is 1. Where chargeback applies rules beyond them (Provisioned
    Throughput charged per ARN, bill rows that name their IAM principal, rounding to cents) the owner keeps the
    total chargeback gave it, spread over region × model × usage kind as the weights spread it. An owner that the
    weights gave nothing but chargeback did (say the owner of an idle provisioned model) gets its total spread
    over the day and account's billed cells in proportion to their cost.
    """
    owner = ["date", "account_id", *PARTIES]
    scaled = ["_billed", "_effective", "_tokens", "_amount"]
    target = (
        as_lazy(allocated)
        .collect()
        .group_by(owner)
        .agg(pl.col("billed_cost_usd").fill_null(0.0).sum().cast(pl.Float64).alias("_target"))
    )
    mine = rows.group_by(owner).agg(pl.col("_billed").sum().alias("_mine"))
    factor = mine.join(target, on=owner, how="left", nulls_equal=True).select(
        *owner,
        pl.when(pl.col("_mine") != 0)
        .then(pl.col("_target").fill_null(0.0) / pl.col("_mine"))
        .otherwise(pl.lit(1.0))
        .alias("_factor"),
    )
    # A factor within float noise of 1 (a target summed from parts) is 1: the weights already gave that total.
    factor = factor.with_columns(
        pl.when((pl.col("_factor") - 1.0).abs() < 1e-9).then(pl.lit(1.0)).otherwise(pl.col("_factor")).alias("_factor")
    )
    kept = (
        rows.join(factor, on=owner, how="left", nulls_equal=True)
        .with_columns(*[pl.col(c) * pl.col("_factor") for c in scaled])
        .drop("_factor")
    )
    covered = mine.filter(pl.col("_mine") != 0).select(owner)
    missing = target.join(covered, on=owner, how="anti", nulls_equal=True).filter(pl.col("_target") != 0)
    cells = (
        _billed_by_kind(billing)
        .collect()
        .with_columns(pl.col("_billed").sum().over("date", "account_id").alias("_total"))
    )
    spread = (
        missing.join(cells.filter(pl.col("_total") != 0), on=["date", "account_id"], how="inner", nulls_equal=True)
        .with_columns((pl.col("_target") / pl.col("_total")).alias("_weight"))
        .with_columns(*[pl.col(c) * pl.col("_weight") for c in scaled])
    )
    # A day and account whose billed cells sum to 0 cannot spread a non-zero total: one row of kind `other`.
    lone = missing.join(spread.select("date", "account_id").unique(), on=["date", "account_id"], how="anti").select(
        *owner,
        pl.lit("other").alias("usage_kind"),
        pl.col("_target").alias("_billed"),
        pl.col("_target").alias("_effective"),
        pl.lit(0.0).alias("_tokens"),
        pl.lit(0.0).alias("_amount"),
        pl.lit(1.0).alias("_weight"),
        pl.lit(False).alias("_marketplace"),
    )
    extra = pl.concat([spread.drop("_target", "_total"), lone], how="diagonal_relaxed").with_columns(
        *_unlogged_owner_columns(),
    )
    return pl.concat([kept, extra], how="diagonal_relaxed")


OWNERS_PER_PART = 25_000
"""Owners (cost center × application × user per bucket) whose FOCUS rows are built at a time: a day with millions
of distinct callers is written in parts of about this many, so memory holds a part, never the whole export."""


def focus_chargeback(
    priced: Frame,
    billing: Frame,
    allocated: Frame | None = None,
    *,
    attribution: config.Attribution | None = None,
    batch_jobs: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Build ``focus_chargeback`` from the day's priced invocations and bill rows (see the module docstring), whole.

    `allocated` is the day's `chargeback`; when given, each owner's rows are scaled to its chargeback total
    (`_conform_to_chargeback`), so the two tables agree whatever rules chargeback adds to the shared weights. A
    large day is better written part by part (`focus_chargeback_parts`).
    """
    frames = list(
        focus_chargeback_parts(
            priced, billing, allocated, owners_per_part=2**62, attribution=attribution, batch_jobs=batch_jobs
        )
    )
    return frames[0] if len(frames) == 1 else pl.concat(frames)


@dataclass
class FocusSummary:
    """What the asset reports about a FOCUS export built in parts, tallied part by part: totals, billed cost by
    usage kind and allocation status, FOCUS problems, and owners whose rows do not add up to their chargeback."""

    chargeback_missing: bool = False
    """No chargeback for the day: every owner with billed cost counts as off (there is nothing it adds up to)."""
    rows: int = 0
    billed_cost_usd: float = 0.0
    effective_cost_usd: float = 0.0
    unallocated_cost_usd: float = 0.0
    not_billed_estimated_cost_usd: float = 0.0
    problems: list[str] = field(default_factory=list)
    _by_kind: list[pl.DataFrame] = field(default_factory=list)
    _off: list[pl.DataFrame] = field(default_factory=list)

    def add(self, focus: pl.DataFrame, cb: pl.DataFrame | None) -> None:
        """Tally one part (`cb`: the chargeback rows of the same owners, None when there is no chargeback)."""
        status = pl.col("x_AllocationStatus")
        self.rows += focus.height
        self.billed_cost_usd += float(focus["BilledCost"].sum() or 0.0)
        self.effective_cost_usd += float(focus["EffectiveCost"].sum() or 0.0)
        self.unallocated_cost_usd += float(focus.filter(status == UNALLOCATED_STATUS)["BilledCost"].sum() or 0.0)
        self.not_billed_estimated_cost_usd += float(focus.filter(status == NOT_BILLED)["x_EstimatedCost"].sum() or 0.0)
        self.problems += [p for p in focus_problems(focus) if p not in self.problems]
        self._by_kind.append(
            focus.group_by("x_UsageKind", "x_AllocationStatus").agg(
                pl.col("BilledCost").sum(), pl.col("x_EstimatedCost").sum(), pl.len().alias("rows")
            )
        )
        if cb is None and self.chargeback_missing:
            cb = schemas.empty(schemas.CHARGEBACK)
        if cb is not None:
            self._off.append(focus_conservation(focus, cb))

    def by_usage_kind(self) -> pl.DataFrame:
        """Billed and estimated cost and rows per usage kind and allocation status, largest billed first."""
        if not self._by_kind:
            return pl.DataFrame()
        return (
            pl.concat(self._by_kind)
            .group_by("x_UsageKind", "x_AllocationStatus")
            .agg(pl.col("BilledCost").sum().round(4), pl.col("x_EstimatedCost").sum().round(4), pl.col("rows").sum())
            .sort("BilledCost", descending=True)
        )

    def off_chargeback(self) -> pl.DataFrame:
        """Owners whose FOCUS rows differ from their chargeback by more than half a cent (empty: all agree)."""
        return pl.concat(self._off) if self._off else pl.DataFrame()


def focus_chargeback_parts(
    priced: Frame,
    billing: Frame,
    allocated: Frame | None = None,
    owners_per_part: int = OWNERS_PER_PART,
    summary: FocusSummary | None = None,
    *,
    attribution: config.Attribution | None = None,
    batch_jobs: pl.DataFrame | None = None,
) -> Iterator[pl.DataFrame]:
    """``focus_chargeback`` in parts, each the complete rows of a fixed share of the owners (`owner_parts`): every
    owner's rows in exactly one part, so per-owner sums and checks hold part by part. Memory holds one part's
    callers and rows (and the day's buckets), never all callers: the priced calls are scanned once per part instead.
    With `summary`, each part is tallied into it (with the chargeback rows of its owners) before it is handed out.

    Spend the logs do not allocate (batch, guardrail, bill-only and mantle rows) is owned as in `chargeback` (same
    `attribution` and `batch_jobs`) and spread over its own bill cells (`_not_logged_rows`); the log-allocated rows
    are conformed to what remains of each owner's chargeback total."""
    totals = bucket_totals(priced).collect(engine="streaming")
    every_bucket = totals.select(list(ALLOCATION_BUCKET))
    paths = split_by_spend(billing)
    not_logged = not_logged_allocation(priced, paths, attribution or config.Attribution(), batch_jobs)
    not_logged_bill = pl.concat([paths[k] for k in ("batch", "guardrail", "bill_only")], how="diagonal_relaxed")
    billing = paths["log"]
    billed = _billed_by_kind(billing).collect()
    owner = ["date", "account_id", *PARTIES]
    parts = part_count(priced, owners_per_part)
    for part in range(parts):
        rows = _allocate(priced, billing, every_bucket, billed, parts, part, totals)
        mine = as_lazy(allocated).filter(owners_in_part(parts, part)).collect() if allocated is not None else None
        others = not_logged.filter(owners_in_part(parts, part))
        if mine is not None:
            # The logs' part of each owner's chargeback total: the total minus what the not-logged spend gave it.
            logs_part = pl.concat(
                [
                    mine.select(*owner, pl.col("billed_cost_usd").fill_null(0.0).cast(pl.Float64)),
                    others.select(*owner, -pl.col("billed_cost_usd")),
                ]
            )
            rows = _conform_to_chargeback(rows, logs_part, billing)
        extra = _not_logged_rows(others, not_logged_bill)
        if not extra.is_empty():
            rows = pl.concat([rows, extra], how="diagonal_relaxed")
        focus = _focus_rows(rows)
        if summary is not None:
            summary.add(focus, mine)
        yield focus


def _not_logged_rows(owners: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """The not-logged spend at the export's grain: each owner's billed total (per day, account, spend kind, usage
    source and reason) spread over the bill cells (Region × model × usage kind) of its day, account and spend kind
    by their cost, so every cell and every owner keep their totals."""
    if owners.is_empty() or rows.is_empty():
        return pl.DataFrame()
    kind_day = ["date", "account_id", "spend_kind"]
    cells = (
        _billed_by_kind(rows, ("spend_kind",))
        .collect()
        .with_columns(pl.col("_billed").sum().over(kind_day).alias("_total"))
    )
    owned = owners.group_by(*kind_day, *PARTIES, "usage_source", "allocation_reason").agg(
        pl.col("billed_cost_usd").sum().alias("_owned")
    )
    scaled = ["_billed", "_effective", "_tokens", "_amount"]
    return (
        owned.join(cells, on=kind_day, how="inner", nulls_equal=True)
        .with_columns(
            pl.when(pl.col("_total") != 0)
            .then(pl.col("_owned") / pl.col("_total"))
            .otherwise(1.0 / pl.len().over(*kind_day, *PARTIES, "usage_source", "allocation_reason"))
            .alias("_weight")
        )
        .with_columns(*[pl.col(c) * pl.col("_weight") for c in scaled])
        .with_columns(
            *_unlogged_owner_columns(),
            pl.col("spend_kind").alias("_spend_kind"),
            pl.col("usage_source").alias("_usage_source"),
            pl.col("allocation_reason").alias("_reason"),
        )
        .drop("_owned", "_total", "spend_kind", "usage_source", "allocation_reason")
    )


def _with_whole_bill(rows: pl.DataFrame) -> pl.DataFrame:
    """`x_SpendKind`, `x_UsageSource`, `x_AllocationReason`: a not-logged row's own, else from the log allocation."""
    status = pl.col("x_AllocationStatus")
    names = rows.columns
    rows = rows.with_columns(
        *[pl.lit(None, dtype=pl.String).alias(c) for c in ("_spend_kind", "_usage_source", "_reason") if c not in names]
    )
    return rows.with_columns(
        pl.coalesce(
            pl.col("_spend_kind"),
            pl.when(pl.col("usage_kind") == "provisioned").then(pl.lit("provisioned")).otherwise(pl.lit("on_demand")),
        ).alias("x_SpendKind"),
        pl.coalesce(
            pl.col("_usage_source"),
            pl.when(status == UNALLOCATED_STATUS).then(pl.lit("bill_only")).otherwise(pl.lit("invocation_log")),
        ).alias("x_UsageSource"),
        pl.coalesce(
            pl.col("_reason"),
            pl.when(status != UNALLOCATED_STATUS)
            .then(pl.lit("logged_calls"))
            .when(pl.col("base_model_id").is_null())
            .then(pl.lit("unmapped_bill_row"))
            .otherwise(pl.lit("no_logged_caller")),
        ).alias("x_AllocationReason"),
    )


def _focus_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """Allocated rows (`_allocate`) as FOCUS 1.2 columns, sorted by owner, region, model and usage kind."""
    # Sorted while still narrow (the FOCUS columns below add ~40 more to every row).
    rows = _with_whole_bill(rows).sort(
        ["date", "account_id", *PARTIES, "region", "base_model_id", "usage_kind"], nulls_last=True
    )
    kind = pl.col("usage_kind")
    is_tokens = kind.is_in(list(TOKEN_KINDS))
    day_start = pl.col("date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    month_start = pl.col("date").dt.month_start().cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    model = pl.coalesce(pl.col("base_model_id"), pl.lit("an unmapped model"))
    out = rows.with_columns(
        pl.col("_billed").alias("BilledCost"),
        pl.col("account_id").alias("BillingAccountId"),
        pl.lit(None, dtype=pl.String).alias("BillingAccountName"),
        pl.lit(BILLING_CURRENCY).alias("BillingCurrency"),
        month_start.dt.offset_by("1mo").alias("BillingPeriodEnd"),
        month_start.alias("BillingPeriodStart"),
        pl.lit(CHARGE_CATEGORY).alias("ChargeCategory"),
        pl.lit(None, dtype=pl.String).alias("ChargeClass"),
        pl.format(
            "Amazon Bedrock {} ({}) in {}, allocated to {} / {} / {}",
            model,
            kind,
            pl.coalesce(pl.col("region"), pl.lit("an unknown region")),
            pl.col("cost_center"),
            pl.col("application"),
            pl.col("user"),
        ).alias("ChargeDescription"),
        pl.lit(CHARGE_FREQUENCY).alias("ChargeFrequency"),
        day_start.dt.offset_by("1d").alias("ChargePeriodEnd"),
        day_start.alias("ChargePeriodStart"),
        pl.when(is_tokens).then(pl.col("_tokens")).otherwise(pl.col("_amount")).alias("ConsumedQuantity"),
        pl.when(is_tokens)
        .then(pl.lit("Tokens"))
        .otherwise(kind.replace_strict(KIND_UNITS, default=pl.coalesce(pl.col("_bill_unit"), pl.lit("Units"))))
        .alias("ConsumedUnit"),
        pl.col("_billed").alias("ContractedCost"),
        pl.col("_effective").alias("EffectiveCost"),
        pl.coalesce(pl.col("_invoicing_entity"), pl.lit(INVOICE_ISSUER_NAME)).alias("InvoiceIssuerName"),
        pl.col("_invoice_id").replace("", None).alias("InvoiceId"),
        pl.col("_billed").alias("ListCost"),
        pl.when(is_tokens)
        .then(pl.col("_tokens") / TOKENS_PER_PRICING_UNIT)
        .otherwise(pl.col("_amount"))
        .alias("PricingQuantity"),
        pl.when(is_tokens)
        .then(pl.lit(PRICING_UNIT_TOKENS))
        .otherwise(kind.replace_strict(KIND_UNITS, default=pl.coalesce(pl.col("_bill_unit"), pl.lit("Units"))))
        .alias("PricingUnit"),
        pl.lit(PROVIDER_NAME).alias("ProviderName"),
        _publisher(),
        pl.col("region").alias("RegionId"),
        pl.col("_resource_id").alias("ResourceId"),
        pl.lit(SERVICE_CATEGORY).alias("ServiceCategory"),
        pl.lit(SERVICE_NAME).alias("ServiceName"),
        pl.lit(SERVICE_SUBCATEGORY).alias("ServiceSubcategory"),
        pl.lit(None, dtype=pl.String).alias("SkuId"),
        pl.col("_usage_type").alias("SkuMeter"),
        pl.col("account_id").alias("SubAccountId"),
        pl.col("base_model_id").alias("x_BaseModelId"),
        kind.alias("x_UsageKind"),
        pl.col("_tokens").alias("x_BilledTokens"),
        pl.col("_weight").alias("x_AllocationShare"),
        pl.col("cost_center").alias("x_CostCenter"),
        pl.col("application").alias("x_Application"),
        pl.col("user").alias("x_User"),
    )
    return schemas.conform(out.with_columns(_tags(out)), schemas.FOCUS_CHARGEBACK)


def focus_problems(df: pl.DataFrame) -> list[str]:
    """What makes `df` not a valid FOCUS 1.2 cost dataset for our rows (empty list = valid).

    Checks presence and type of every column of the contract, the non-null mandatory columns, allowed values, the
    Usage-row rules for quantities and units, and that charge periods are non-empty and inside the billing period.
    """
    problems: list[str] = []
    for name, dtype in schemas.FOCUS_CHARGEBACK.items():
        if name not in df.columns:
            problems.append(f"column {name} is missing")
        elif df.schema[name] != dtype:
            problems.append(f"column {name} is {df.schema[name]}, expected {dtype}")
    if problems:
        return problems
    for name in MANDATORY_NOT_NULL:
        nulls = df[name].null_count()
        if nulls:
            problems.append(f"{name} is null in {nulls} row(s)")
    bad_category = df.filter(~pl.col("ChargeCategory").is_in(list(CHARGE_CATEGORIES)))
    if bad_category.height:
        problems.append(f"ChargeCategory not one of {', '.join(CHARGE_CATEGORIES)} in {bad_category.height} row(s)")
    bad_class = df.filter(pl.col("ChargeClass").is_not_null() & (pl.col("ChargeClass") != "Correction"))
    if bad_class.height:
        problems.append(f"ChargeClass neither null nor Correction in {bad_class.height} row(s)")
    usage = df.filter(pl.col("ChargeCategory") == "Usage")
    for name in ("PricingQuantity", "PricingUnit", "ConsumedQuantity", "ConsumedUnit"):
        nulls = usage[name].null_count()
        if nulls:
            problems.append(f"{name} is null in {nulls} Usage row(s)")
    if not df.filter(~pl.col("BillingCurrency").str.contains(r"^[A-Z]{3}$")).is_empty():
        problems.append("BillingCurrency is not an ISO 4217 code")
    if not df.filter(pl.col("ChargePeriodStart") >= pl.col("ChargePeriodEnd")).is_empty():
        problems.append("ChargePeriodStart is not before ChargePeriodEnd")
    outside = df.filter(
        (pl.col("ChargePeriodStart") < pl.col("BillingPeriodStart"))
        | (pl.col("ChargePeriodEnd") > pl.col("BillingPeriodEnd"))
    )
    if outside.height:
        problems.append(f"charge period outside the billing period in {outside.height} row(s)")
    if df.filter(pl.col("ServiceCategory") != SERVICE_CATEGORY).height:
        problems.append(f"ServiceCategory is not {SERVICE_CATEGORY!r}")
    return problems


SUM_TOLERANCE_USD = 0.005
"""A group may differ from the chargeback by less than half a cent (rounding); more is money lost or invented."""


def focus_conservation(focus: pl.DataFrame, cb: pl.DataFrame) -> pl.DataFrame:
    """Rows of (date, account, cost center, application, user) where FOCUS and chargeback differ by > ½ cent."""
    keys = ["date", "account_id", "cost_center", "application", "user"]
    exported = focus.group_by(
        pl.col("date"),
        pl.col("SubAccountId").alias("account_id"),
        pl.col("x_CostCenter").alias("cost_center"),
        pl.col("x_Application").alias("application"),
        pl.col("x_User").alias("user"),
    ).agg(pl.col("BilledCost").sum().alias("focus_billed_cost"))
    allocated = cb.group_by(keys).agg(pl.col("billed_cost_usd").sum().alias("chargeback_billed_cost"))
    joined = allocated.join(exported, on=keys, how="full", coalesce=True, nulls_equal=True).fill_null(0.0)
    return joined.filter((pl.col("focus_billed_cost") - pl.col("chargeback_billed_cost")).abs() > SUM_TOLERANCE_USD)
