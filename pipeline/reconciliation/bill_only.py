"""Owners of the bill's spend that invocation logs do not allocate: batch jobs, guardrails and bill-only rows.

`chargeback` allocates model tokens by the logged calls' estimated cost. The rest of the bill is owned here, each
row once, so the chargeback still sums to the bill:

* **Batch** (`spend_kind = batch`): per day × account × Region × model, to the jobs of `batch_jobs` by their
  share of that day's batch bill where the table has it (`billed_cost_usd`), else their estimated cost (a job's
  owner comes from its tags, name rules or the bill's principal, decided where the table is built; a job with
  none stays `unallocated` with its reason). Without a job for the bucket (or without the table): the bill's
  principal or resource tags, else `unallocated` with reason `batch_job_untagged`.
* **Guardrails** (`spend_kind = guardrail`): per day × account × Region, to the callers whose traces show guardrail
  units, by their guardrail cost (units where unpriced); else like a bill-only row.
* **Bill-only rows** (rerank, knowledge bases, agents and AgentCore, flows, data automation, custom models,
  evaluations, cache storage, other, and every bedrock-mantle row): the billed resource's tags (`costCenter` etc.,
  read with the request-metadata key lists), then the principal the bill names (its logged calls' owners, its
  `iamPrincipal/` tags, principal rules, its name: `bill_owners`), then a principal rule matching the resource id;
  else `unallocated` with reason `no_owner`.

Every row carries `spend_kind`, `usage_source` (`invocation_log | batch_job | bill_only`) and `allocation_reason`.
"""

from __future__ import annotations

import fnmatch
from typing import Any

import polars as pl

from pipeline import config, schemas
from pipeline.attribution.bill_tags import PARTIES, PREFIX, tag_values
from pipeline.reconciliation import bill_owners
from pipeline.reconciliation.principals import COLUMN, with_principal_key
from pipeline.vocabulary import GUARDRAIL_POLICIES, Frame, as_lazy

KEYS: tuple[str, ...] = ("date", "account_id", *PARTIES, "spend_kind", "usage_source")
OUT_SCHEMA: dict[str, schemas.DType] = {
    "date": pl.Date,
    "account_id": pl.String,
    **{p: pl.String for p in PARTIES},
    "spend_kind": pl.String,
    "usage_source": pl.String,
    "allocation_reason": pl.String,
    "estimated_cost_usd": pl.Float64,
    "billed_cost_usd": pl.Float64,
}
MODEL_BUCKET: tuple[str, ...] = ("date", "account_id", "region", "base_model_id")
REGION_BUCKET: tuple[str, ...] = ("date", "account_id", "region")
BATCH_JOB_COLUMNS: tuple[str, ...] = (
    "date",
    "account_id",
    "region",
    "base_model_id",
    "total_cost_usd",
    "input_tokens",
    "output_tokens",
    "user",
    "application",
    "cost_center",
    "attribution_reason",
    "billed_cost_usd",
)


def empty() -> pl.DataFrame:
    """No rows, in the shape every function here returns."""
    return pl.DataFrame(schema=OUT_SCHEMA)


def conform_out(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` in `OUT_SCHEMA`."""
    return schemas.conform(frame, OUT_SCHEMA)


def resource_tags(entries: list[dict[str, str]] | None) -> dict[str, str]:
    """A bill row's resource tags (not its `iamPrincipal/` ones), with the `user_`/`user:` marker of
    cost-allocation tags removed, so `user_cost_center` is read like `costCenter` (keys are folded)."""
    out: dict[str, str] = {}
    for key, value in schemas.map_to_dict(entries).items():
        if key.startswith(PREFIX) or value is None or not str(value).strip():
            continue
        for marker in ("user_", "user:"):
            key = key.removeprefix(marker)
        out.setdefault(key, str(value))
    return out


def _rule_owner(resource_id: str | None, cfg: config.Attribution) -> dict[str, str | None]:
    """Parties named by the first principal rule whose glob matches the billed resource's ARN."""
    if resource_id:
        for rule in cfg.principals:
            if fnmatch.fnmatchcase(resource_id, rule.match):
                return tag_values(dict(rule.tags), cfg)
    return {}


def owned_rows(
    priced: Frame,
    rows: pl.DataFrame,
    cfg: config.Attribution,
    *,
    spend_kind: str | None = None,
    untagged: str = "no_owner",
) -> pl.DataFrame:
    """Bill rows owned by their resource tags, else their principal, else a rule on their resource, else
    `unallocated` (reason `untagged`). `spend_kind` overrides the rows' own (None keeps it)."""
    if rows.is_empty():
        return empty()
    rows = rows.with_columns(pl.lit(spend_kind).alias("spend_kind")) if spend_kind else rows
    rows = rows.with_row_index("_row")
    tagged: list[dict[str, Any]] = []
    by_rule: list[dict[str, Any]] = []
    principal_rows: list[int] = []
    rest: list[int] = []
    for r in rows.select("_row", "tags", "resource_id", COLUMN).iter_rows(named=True):
        values = tag_values(resource_tags(r["tags"]), cfg)
        if any(values.values()):
            tagged.append({"_row": r["_row"], **{str(p): values[p] or schemas.UNATTRIBUTED for p in PARTIES}})
        elif r[COLUMN]:
            principal_rows.append(r["_row"])
        elif any((rule := _rule_owner(r["resource_id"], cfg)).values()):
            by_rule.append({"_row": r["_row"], **{str(p): rule.get(p) or schemas.UNATTRIBUTED for p in PARTIES}})
        else:
            rest.append(r["_row"])
    parts: list[pl.DataFrame] = []
    party_schema: dict[str, schemas.DType] = {"_row": pl.UInt32, **{str(p): pl.String for p in PARTIES}}
    for owners, reason in ((tagged, "resource_tags"), (by_rule, "config_rule")):
        if owners:
            joined = rows.join(pl.DataFrame(owners, schema=party_schema), on="_row")
            parts.append(_billed(joined, reason))
    if principal_rows:
        named = with_principal_key(rows.filter(pl.col("_row").is_in(principal_rows)).lazy(), COLUMN).collect()
        for kind, group in named.group_by("spend_kind"):
            owned = bill_owners.principal_chargeback(
                priced, group.with_columns(pl.lit(None, dtype=pl.String).alias("base_model_id")), cfg
            )
            parts.append(
                owned.with_columns(
                    pl.lit(kind[0]).alias("spend_kind"),
                    pl.lit("bill_only").alias("usage_source"),
                    pl.lit("bill_principal").alias("allocation_reason"),
                ).pipe(conform_out)
            )
    if rest:
        left = rows.filter(pl.col("_row").is_in(rest)).with_columns(
            *[pl.lit(schemas.UNALLOCATED).alias(p) for p in PARTIES]
        )
        parts.append(_billed(left, untagged))
    return pl.concat(parts, how="vertical") if parts else empty()


def _billed(rows: pl.DataFrame, reason: str, usage_source: str = "bill_only") -> pl.DataFrame:
    """Rows (with their parties set) summed per chargeback key, billed cost only."""
    return conform_out(
        rows.group_by("date", "account_id", *PARTIES, "spend_kind")
        .agg(pl.col("unblended_cost_usd").fill_null(0.0).sum().alias("billed_cost_usd"))
        .with_columns(
            pl.lit(usage_source).alias("usage_source"),
            pl.lit(reason).alias("allocation_reason"),
            pl.lit(0.0).alias("estimated_cost_usd"),
        )
    )


def _by_weights(bills: pl.DataFrame, owners: pl.DataFrame, bucket: list[str], usage_source: str) -> pl.DataFrame:
    """Each bucket's billed cost split over its owners by `_weight` (owners carry parties and a reason)."""
    total = pl.col("_weight").sum().over(bucket)
    joined = owners.join(bills, on=bucket, how="inner", nulls_equal=True).with_columns(
        pl.when(total > 0).then(pl.col("_weight") / total).otherwise(1.0 / pl.len().over(bucket)).alias("_share")
    )
    return conform_out(
        joined.group_by("date", "account_id", *PARTIES, "spend_kind", "allocation_reason")
        .agg((pl.col("_share") * pl.col("_billed")).sum().alias("billed_cost_usd"))
        .with_columns(pl.lit(usage_source).alias("usage_source"), pl.lit(0.0).alias("estimated_cost_usd"))
    )


def batch_allocation(
    priced: Frame, rows: pl.DataFrame, jobs: pl.DataFrame | None, cfg: config.Attribution
) -> pl.DataFrame:
    """Batch bill rows to their jobs' owners (see the module docstring)."""
    if rows.is_empty():
        return empty()
    bucket = list(MODEL_BUCKET)
    bills = rows.group_by(bucket).agg(pl.col("unblended_cost_usd").fill_null(0.0).sum().alias("_billed"))
    if jobs is None or jobs.is_empty() or not set(MODEL_BUCKET) <= set(jobs.columns):
        return owned_rows(priced, rows, cfg, spend_kind="batch", untagged="batch_job_untagged")
    jobs = jobs.with_columns(
        [pl.lit(None, dtype=pl.String).alias(c) for c in BATCH_JOB_COLUMNS if c not in jobs.columns]
    ).with_columns(pl.col("billed_cost_usd", "total_cost_usd").cast(pl.Float64))
    tokens = pl.col("input_tokens").fill_null(0) + pl.col("output_tokens").fill_null(0)
    parties_missing = pl.all_horizontal([pl.col(p).is_null() | (pl.col(p) == schemas.UNALLOCATED) for p in PARTIES])
    owners = (
        jobs.with_columns(
            *[pl.col(p).cast(pl.String).fill_null(schemas.UNALLOCATED) for p in PARTIES],
            pl.when(parties_missing)
            .then(pl.coalesce(pl.col("attribution_reason").cast(pl.String), pl.lit("batch_job_untagged")))
            .otherwise(pl.lit("batch_job"))
            .alias("allocation_reason"),
            pl.lit("batch").alias("spend_kind"),
            # The job's share of the day's batch bill where the table has it, else its estimate, else its tokens.
            pl.when(pl.col("billed_cost_usd").fill_null(0.0).sum().over(bucket) > 0)
            .then(pl.col("billed_cost_usd").fill_null(0.0).cast(pl.Float64))
            .when(pl.col("total_cost_usd").fill_null(0.0).sum().over(bucket) > 0)
            .then(pl.col("total_cost_usd").fill_null(0.0).cast(pl.Float64))
            .otherwise(tokens.cast(pl.Float64))
            .alias("_weight"),
        )
        .group_by(*bucket, *PARTIES, "spend_kind", "allocation_reason")
        .agg(pl.col("_weight").sum())
    )
    allocated = _by_weights(bills, owners, bucket, "batch_job")
    no_job = rows.join(owners.select(bucket).unique(), on=bucket, how="anti", nulls_equal=True)
    return pl.concat(
        [allocated, owned_rows(priced, no_job, cfg, spend_kind="batch", untagged="batch_job_untagged")],
        how="vertical",
    )


def _guardrail_callers(priced: Frame) -> pl.DataFrame:
    """Logged callers per Region bucket weighted by guardrail cost (units where no call is priced)."""
    lazy = as_lazy(priced)
    names = lazy.collect_schema().names()
    units = [f"guardrail_{p}_units" for p in GUARDRAIL_POLICIES if f"guardrail_{p}_units" in names]
    schema: dict[str, schemas.DType] = {
        "date": pl.Date,
        "account_id": pl.String,
        "region": pl.String,
        **{str(p): pl.String for p in PARTIES},
    }
    if not units:
        return pl.DataFrame(schema={**schema, "_weight": pl.Float64})
    n_units = pl.sum_horizontal([pl.col(u).fill_null(0) for u in units]).cast(pl.Float64)
    cost = pl.col("guardrail_cost_usd").fill_null(0.0) if "guardrail_cost_usd" in names else pl.lit(0.0)
    return (
        lazy.with_columns(
            n_units.alias("_units"), cost.alias("_gcost"), *[pl.col(p).fill_null(schemas.UNATTRIBUTED) for p in PARTIES]
        )
        .filter(pl.col("_units") > 0)
        .group_by(*REGION_BUCKET, *PARTIES)
        .agg(pl.col("_gcost").sum(), pl.col("_units").sum())
        .with_columns(
            pl.when(pl.col("_gcost").sum().over(list(REGION_BUCKET)) > 0)
            .then(pl.col("_gcost"))
            .otherwise(pl.col("_units"))
            .alias("_weight")
        )
        .drop("_gcost", "_units")
        .collect()
    )


def guardrail_estimates(priced: Frame) -> pl.DataFrame:
    """Each caller's guardrail estimate (`guardrail_cost_usd` of its traced calls, a lower bound) as chargeback rows
    with `estimated_cost_usd` only, so guardrail spend shows its estimate beside its bill like model tokens do."""
    lazy = as_lazy(priced)
    if "guardrail_cost_usd" not in lazy.collect_schema().names():
        return empty()
    out = (
        lazy.filter(pl.col("guardrail_cost_usd").fill_null(0.0) != 0)
        .with_columns(*[pl.col(p).fill_null(schemas.UNATTRIBUTED) for p in PARTIES])
        .group_by("date", "account_id", *PARTIES)
        .agg(pl.col("guardrail_cost_usd").sum().alias("estimated_cost_usd"))
        .with_columns(
            pl.lit(0.0).alias("billed_cost_usd"),
            pl.lit("guardrail").alias("spend_kind"),
            pl.lit("invocation_log").alias("usage_source"),
            pl.lit(None, dtype=pl.String).alias("allocation_reason"),
        )
        .collect()
    )
    return conform_out(out)


def guardrail_allocation(priced: Frame, rows: pl.DataFrame, cfg: config.Attribution) -> pl.DataFrame:
    """Guardrail bill rows to the callers whose traces show units, else by tags or principal."""
    if rows.is_empty():
        return empty()
    bucket = list(REGION_BUCKET)
    bills = rows.group_by(bucket).agg(pl.col("unblended_cost_usd").fill_null(0.0).sum().alias("_billed"))
    callers = _guardrail_callers(priced).with_columns(
        pl.lit("guardrail").alias("spend_kind"), pl.lit("guardrail_traces").alias("allocation_reason")
    )
    allocated = _by_weights(bills, callers, bucket, "invocation_log")
    untraced = rows.join(callers.select(bucket).unique(), on=bucket, how="anti", nulls_equal=True)
    return pl.concat([allocated, owned_rows(priced, untraced, cfg, spend_kind="guardrail")], how="vertical")


def reasons_joined(reasons: pl.Expr) -> pl.Expr:
    """The distinct reasons of the rows merged into one chargeback row, sorted, `; `-joined."""
    return reasons.drop_nulls().unique().sort().str.join("; ")
