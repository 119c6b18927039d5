"""`chargeback`: the billed Bedrock usage cost, allocated to the cost centers, applications and users who caused it.

Teams are charged what AWS actually billed, not the catalog estimate, so the chargeback always adds up to the
invoice's usage lines. Allocation happens per ``date × account_id × region × base_model_id`` (the finest grain the
bill and the logs share for every model; routing, tier and token kind are folded in because they are prices of the
same caller's traffic):

* Weights, per bucket: each caller's estimated cost, where an unpriced call counts as its tokens × the bucket's
  effective rate (priced cost / priced tokens). One unpriced call therefore weighs what its tokens are worth and
  never switches the whole bucket to another rule. Only a bucket with no priced cost at all falls back to token
  counts, and one with no tokens to invocation counts.
* Provisioned Throughput (`provisioned_day`, then `provisioned_part`): a day's PT cost per provisioned-model
  ARN, idle hours included, goes to that ARN's callers by their tokens; with no caller that day, to the owner in
  ``attribution.provisioned_models`` tags, else ``unallocated``.
* Billed cost with no logged caller — models billed but never logged, unmapped bill rows — goes to one row per
  day and account whose ``cost_center``, ``application`` and ``user`` are ``unallocated``, so it stays visible.
* Logged cost with nothing billed (``missing_in_bill``) appears with its estimate and ``billed_cost_usd`` 0.
* ``estimated_cost_usd`` sums priced calls only (unpriced calls contribute 0, as in the daily tables).
* ``share`` = billed_cost_usd / the day-and-account billed total (null when that total is 0).

Amounts stay float64 at full precision unless ``reconciliation.round_cents`` is set: then each day and account is
rounded to cents by largest remainder (`round_to_cents`), so the rounded rows still sum exactly to the rounded
invoice total instead of drifting by up to half a cent per row.

A day of many owners is built in owner parts (`chargeback_parts`, `owner_parts`): whatever a weight is a share of
(bucket, Provisioned Throughput and principal totals) is computed once for the day, then each part groups only its
owners' calls, so memory holds one part of the owners, never all of them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline import config, schemas
from pipeline.config import ProvisionedModel
from pipeline.reconciliation import bill_only, bill_owners
from pipeline.reconciliation.owner_parts import owners_in_part, part_count
from pipeline.reconciliation.principals import bill_has_principals
from pipeline.reconciliation.reconcile import (
    LOG_TOKEN_COLUMNS,
    PROVISIONED,
    is_provisioned_call,
    logged_model_key,
    usage_rows,
)
from pipeline.vocabulary import TOKEN_KINDS, USAGE_LINE_TYPES, Frame, as_lazy, with_spend_kind

ALLOCATION_BUCKET: tuple[str, ...] = ("date", "account_id", "region", "base_model_id")
PT_BUCKET: tuple[str, ...] = ("date", "account_id", "region", "resource_id")
PARTIES: tuple[str, ...] = ("cost_center", "application", "user")
KEYS: tuple[str, ...] = ("date", "account_id", *PARTIES, "spend_kind", "usage_source")
"""The chargeback's grain: who (cost center, application, user) for what kind of spend, explained from what."""
OWNER_KEYS: tuple[str, ...] = ("date", "account_id", *PARTIES)
DAY_ACCOUNT: tuple[str, ...] = ("date", "account_id")


def _tokens() -> pl.Expr:
    return pl.sum_horizontal([pl.col(c).fill_null(0) for c in LOG_TOKEN_COLUMNS])


def _parties() -> list[pl.Expr]:
    return [pl.col(p).fill_null(schemas.UNATTRIBUTED).alias(p) for p in PARTIES]


def _call_amounts() -> list[pl.Expr]:
    """Per call, what the weights sum: the priced estimate, priced and unpriced tokens. Computed row by row so
    the group-bys only sum (a filter inside an aggregation makes the streaming engine hold the day's calls)."""
    priced_flag = pl.col("priced").fill_null(False)
    tokens = _tokens()
    return [
        pl.when(priced_flag).then(pl.col("total_cost_usd").fill_null(0.0)).otherwise(0.0).alias("_c_est"),
        pl.when(priced_flag).then(tokens).otherwise(0).alias("_c_priced"),
        pl.when(priced_flag).then(0).otherwise(tokens).alias("_c_unpriced"),
        tokens.alias("_call_tokens"),
    ]


def bucket_totals(priced: Frame) -> pl.LazyFrame:
    """Per allocation bucket, what its callers' weights are shares of: estimated cost, priced, unpriced and all
    tokens, calls, the bucket's effective rate (`_rate`) and value (`_t_value`). A few rows a day."""
    rate = pl.when(pl.col("_t_priced") > 0).then(pl.col("_t_est") / pl.col("_t_priced")).otherwise(0.0)
    return (
        as_lazy(priced)
        .filter(~is_provisioned_call())
        .select(*ALLOCATION_BUCKET[:-1], logged_model_key().alias("base_model_id"), *_call_amounts())
        .group_by(*ALLOCATION_BUCKET)
        .agg(
            pl.col("_c_est").sum().cast(pl.Float64).alias("_t_est"),
            pl.col("_c_priced").sum().cast(pl.Float64).alias("_t_priced"),
            pl.col("_c_unpriced").sum().cast(pl.Float64).alias("_t_unpriced"),
            pl.col("_call_tokens").sum().cast(pl.Float64).alias("_t_tokens"),
            pl.len().cast(pl.Float64).alias("_t_calls"),
        )
        .with_columns(rate.alias("_rate"))
        .with_columns((pl.col("_t_est") + pl.col("_t_unpriced") * pl.col("_rate")).alias("_t_value"))
    )


def caller_weights(priced: Frame, owners: pl.Expr | None = None, totals: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Logged on-demand callers per allocation bucket with their weight (``_weight``, summing to 1 per bucket).

    The bucket totals are a group-by of their own (a few rows) joined to the callers, never a window over the
    callers: a day with millions of distinct callers (one per end user in request metadata) would hold them all
    twice. With `owners` (a filter on the parties), only those callers are grouped, weighed against the totals of
    every caller (`bucket_totals`, given or computed): a large day's weights can be made a share of the owners at a
    time.
    """
    bucket = list(ALLOCATION_BUCKET)
    calls = as_lazy(priced).filter(~is_provisioned_call())
    callers = (
        (calls if owners is None else calls.filter(owners))
        .select(*ALLOCATION_BUCKET[:-1], logged_model_key().alias("base_model_id"), *_parties(), *_call_amounts())
        .group_by(*ALLOCATION_BUCKET, *PARTIES)
        .agg(
            pl.col("_c_est").sum().cast(pl.Float64).alias("estimated_cost_usd"),
            pl.col("_call_tokens").sum().cast(pl.Float64).alias("_tokens"),
            pl.col("_c_priced").sum().cast(pl.Float64).alias("_priced_tokens"),
            pl.col("_c_unpriced").sum().cast(pl.Float64).alias("_unpriced_tokens"),
            pl.len().cast(pl.Float64).alias("_calls"),
        )
    )
    if totals is None:
        totals = bucket_totals(priced)
    value = pl.col("estimated_cost_usd") + pl.col("_unpriced_tokens") * pl.col("_rate")
    return (
        callers.join(totals, on=bucket, how="left", nulls_equal=True)
        .with_columns(value.alias("_value"))
        .with_columns(
            pl.when(pl.col("_t_value") > 0)
            .then(pl.col("_value") / pl.col("_t_value"))
            .when(pl.col("_t_tokens") > 0)
            .then(pl.col("_tokens") / pl.col("_t_tokens"))
            .otherwise(pl.col("_calls") / pl.col("_t_calls"))
            .alias("_weight")
        )
        .drop("_t_est", "_t_priced", "_t_unpriced", "_t_tokens", "_t_calls", "_t_value", "_rate")
    )


def logged_costs(priced: Frame) -> pl.DataFrame:
    """The logged estimated cost per day and allocation bucket (priced on-demand calls), the weights a bill row
    longer than a day is spread by (`billing.spread.LOGGED_SCHEMA`). A streaming group-by: a few rows per bucket."""
    return (
        as_lazy(priced)
        .filter(~is_provisioned_call())
        .select(*ALLOCATION_BUCKET[:-1], logged_model_key().alias("base_model_id"), *_call_amounts()[:1])
        .group_by(*ALLOCATION_BUCKET)
        .agg(pl.col("_c_est").sum().cast(pl.Float64).alias("estimated_cost_usd"))
        .collect(engine="streaming")
    )


def _owner_of(tags: Mapping[str, str], metadata_keys: Mapping[str, Sequence[str]]) -> dict[str, str] | None:
    """The parties named by a provisioned model's config tags (same key lists as request metadata), or None."""
    out: dict[str, str] = {}
    for party in PARTIES:
        for key in metadata_keys.get(party, [party]):
            value = (tags.get(key) or "").strip()
            if value:
                out[party] = value
                break
    if not out:
        return None
    return {p: out.get(p, schemas.UNATTRIBUTED) for p in PARTIES}


@dataclass(frozen=True)
class ProvisionedDay:
    """What every owner part of the Provisioned Throughput allocation shares: a few rows per ARN."""

    bills: pl.DataFrame
    """Billed cost per ARN bucket (`PT_BUCKET`)."""
    totals: pl.DataFrame
    """Every caller's tokens and calls per ARN bucket (what a caller's weight is a share of)."""
    idle: pl.DataFrame
    """Chargeback rows of ARNs billed with no caller that day (their config owner, else `unallocated`)."""


def _provisioned_calls(priced: Frame) -> pl.LazyFrame:
    return (
        as_lazy(priced)
        .filter(is_provisioned_call())
        .with_columns(pl.col("model_id").alias("resource_id"), *_parties(), _tokens().alias("_call_tokens"))
    )


def provisioned_day(
    priced: Frame,
    billing: Frame,
    provisioned_models: Mapping[str, ProvisionedModel] | None = None,
    metadata_keys: Mapping[str, Sequence[str]] | None = None,
) -> ProvisionedDay:
    """The shared inputs of `provisioned_part`: the day's PT bills, their callers' totals and the idle ARNs' rows."""
    bucket = list(PT_BUCKET)
    bills = (
        usage_rows(billing)
        .filter(pl.col("usage_kind") == PROVISIONED)
        .group_by(bucket)
        .agg(pl.col("unblended_cost_usd").fill_null(0.0).sum().cast(pl.Float64).alias("_billed"))
        .collect()
    )
    totals = (
        _provisioned_calls(priced)
        .group_by(bucket)
        .agg(
            pl.col("_call_tokens").sum().cast(pl.Float64).alias("_t_tokens"),
            pl.len().cast(pl.Float64).alias("_t_calls"),
        )
        .collect(engine="streaming")
    )
    owners = {
        arn: owner
        for arn, m in (provisioned_models or {}).items()
        if (owner := _owner_of(m.tags, metadata_keys or {})) is not None
    }
    owner_frame = pl.DataFrame(
        {"resource_id": list(owners), **{p: [o[p] for o in owners.values()] for p in PARTIES}},
        schema={"resource_id": pl.String, **{p: pl.String for p in PARTIES}},
    )
    idle = (
        bills.join(totals.select(bucket), on=bucket, how="anti", nulls_equal=True)
        .join(owner_frame, on="resource_id", how="left")
        .select(
            "date",
            "account_id",
            *[pl.col(p).fill_null(schemas.UNALLOCATED) for p in PARTIES],
            pl.lit(0.0).alias("estimated_cost_usd"),
            pl.col("_billed").alias("billed_cost_usd"),
            pl.lit("bill_only").alias("usage_source"),
            pl.when(pl.col(PARTIES[0]).is_null())
            .then(pl.lit("no_logged_caller"))
            .otherwise(pl.lit("provisioned_model_tags"))
            .alias("allocation_reason"),
            pl.lit(PROVISIONED).alias("spend_kind"),
        )
    )
    return ProvisionedDay(bills, totals, idle)


def provisioned_part(priced: Frame, inputs: ProvisionedDay, owners: pl.Expr | None = None) -> pl.LazyFrame:
    """Provisioned Throughput cost per ARN and day allocated to its callers by tokens (then calls), for the owners
    `owners` selects (all when None); an idle ARN's row goes to the part of its owner."""
    bucket = list(PT_BUCKET)
    calls = _provisioned_calls(priced)
    callers = (
        (calls if owners is None else calls.filter(owners))
        .group_by(*bucket, *PARTIES)
        .agg(pl.col("_call_tokens").sum().cast(pl.Float64).alias("_tokens"), pl.len().cast(pl.Float64).alias("_calls"))
        .join(inputs.totals.lazy(), on=bucket, how="left", nulls_equal=True)
        .with_columns(
            pl.when(pl.col("_t_tokens") > 0)
            .then(pl.col("_tokens") / pl.col("_t_tokens"))
            .otherwise(pl.col("_calls") / pl.col("_t_calls"))
            .alias("_weight")
        )
    )
    allocated = callers.join(inputs.bills.lazy(), on=bucket, how="inner", nulls_equal=True).select(
        *OWNER_KEYS,
        pl.lit(0.0).alias("estimated_cost_usd"),
        (pl.col("_weight") * pl.col("_billed")).alias("billed_cost_usd"),
        pl.lit("invocation_log").alias("usage_source"),
        pl.lit("logged_calls").alias("allocation_reason"),
        pl.lit(PROVISIONED).alias("spend_kind"),
    )
    idle = inputs.idle if owners is None else inputs.idle.filter(owners)
    return pl.concat([allocated, idle.lazy()], how="vertical")


def round_to_cents(cb: pl.DataFrame) -> pl.DataFrame:
    """``billed_cost_usd`` rounded to cents by largest remainder per day and account.

    Each row gets its floor in cents; the cents left to reach the rounded day-and-account total go one each to
    the rows with the largest remainders (ties: the larger amount first, then the keys, so reruns agree). The
    rounded rows therefore sum exactly to the invoice total rounded to the cent.
    """
    if cb.is_empty():
        return cb
    day = list(DAY_ACCOUNT)
    rest = [k for k in KEYS[2:] if k in cb.columns]
    cents = pl.col("billed_cost_usd") * 100
    return (
        cb.with_columns(cents.floor().alias("_floor"), (cents - cents.floor()).alias("_rem"))
        .with_columns(
            ((pl.col("billed_cost_usd").sum().over(day) * 100).round(0) - pl.col("_floor").sum().over(day)).alias(
                "_left"
            )
        )
        .sort(
            [*day, "_rem", "billed_cost_usd", *rest],
            descending=[False, False, True, True, *[False] * len(rest)],
        )
        .with_columns(pl.int_range(pl.len()).over(day).alias("_rank"))
        .with_columns(
            ((pl.col("_floor") + (pl.col("_rank") < pl.col("_left")).cast(pl.Float64)) / 100).alias("billed_cost_usd")
        )
        .drop("_floor", "_rem", "_left", "_rank")
        .sort([*day, *rest], nulls_last=True)
    )


LOG_SPEND_KINDS: tuple[str, ...] = ("on_demand", PROVISIONED)
"""Spend kinds the invocation logs allocate (runtime endpoint only); a custom model's token rows too."""


def split_by_spend(billing: Frame) -> dict[str, pl.DataFrame]:
    """The bill's usage rows by allocation path: `log`, `batch`, `guardrail` and `bill_only` (mantle included)."""
    usage = usage_rows(with_spend_kind(billing)).collect()
    mantle = (pl.col("endpoint") == "mantle").fill_null(False)
    kind = pl.col("spend_kind")
    model_tokens = (kind == "custom_model") & pl.col("usage_kind").is_in(TOKEN_KINDS)
    # A model's usage the grammar could not classify (speech, video) still belongs to that model's logged callers.
    model_other = (kind == "other") & pl.col("base_model_id").is_not_null()
    log = kind.is_in(list(LOG_SPEND_KINDS)) | model_tokens | model_other
    masks = {
        "log": ~mantle & log.fill_null(False),
        "batch": ~mantle & (kind == "batch").fill_null(False),
        "guardrail": ~mantle & (kind == "guardrail").fill_null(False),
    }
    out = {name: usage.filter(mask) for name, mask in masks.items()}
    taken = pl.any_horizontal(list(masks.values()))
    out["bill_only"] = usage.filter(~taken)
    return out


@dataclass(frozen=True)
class LogDay:
    """What every owner part of the log allocation shares: a few rows per bucket, bill row and principal."""

    bills: pl.DataFrame
    """Billed model-token cost per allocation bucket and spend kind (rows no principal decides)."""
    totals: pl.DataFrame
    """Every caller's sums per allocation bucket (`bucket_totals`)."""
    unallocated: pl.DataFrame
    """Chargeback rows of billed buckets without a logged caller (owner `unallocated`)."""
    provisioned: ProvisionedDay
    principals: list[tuple[str, bill_owners.PrincipalDay]]
    """Per spend kind, the bill rows that name their IAM principal (CUR 2.0 with IAM principal data)."""


def log_day(
    priced: Frame,
    billing: pl.DataFrame,
    cfg: config.Attribution,
    provisioned_models: Mapping[str, ProvisionedModel] | None,
    metadata_keys: Mapping[str, Sequence[str]] | None,
    spill: Path | None = None,
) -> LogDay:
    """The shared inputs of `log_part` for the bill's rows the logs allocate (`split_by_spend`'s `log`). With
    `spill` (a folder), billed principals' resolved calls are kept there for the parts to read back."""
    bucket = list(ALLOCATION_BUCKET)
    principals: list[tuple[str, bill_owners.PrincipalDay]] = []
    rows: Frame = billing
    if bill_has_principals(billing):  # CUR 2.0 with IAM principal data: the bill decides for its named rows
        rows, named = bill_owners.split_bill(billing)
        for i, (kind, group) in enumerate(named.group_by("spend_kind")):
            file = spill / f"principal-calls-{i}.arrow" if spill is not None else None
            principals.append((str(kind[0]), bill_owners.principal_day(priced, group, cfg, file)))
    bills = (
        usage_rows(rows)
        .filter((pl.col("usage_kind") != PROVISIONED).fill_null(True))
        .group_by(*bucket, "spend_kind")
        .agg(pl.col("unblended_cost_usd").fill_null(0.0).sum().cast(pl.Float64).alias("_billed"))
        .collect()
    )
    totals = bucket_totals(priced).collect(engine="streaming")
    unallocated = bills.join(totals.select(bucket), on=bucket, how="anti", nulls_equal=True).select(
        "date",
        "account_id",
        *[pl.lit(schemas.UNALLOCATED).alias(p) for p in PARTIES],
        pl.lit(0.0).alias("estimated_cost_usd"),
        pl.col("_billed").alias("billed_cost_usd"),
        "spend_kind",
        pl.lit("bill_only").alias("usage_source"),
        pl.when(pl.col("base_model_id").is_null())
        .then(pl.lit("unmapped_bill_row"))
        .otherwise(pl.lit("no_logged_caller"))
        .alias("allocation_reason"),
    )
    provisioned = provisioned_day(priced, rows, provisioned_models, metadata_keys)
    return LogDay(bills, totals, unallocated, provisioned, principals)


def log_part(priced: Frame, day: LogDay, owners: pl.Expr | None = None) -> pl.DataFrame:
    """Model-token and Provisioned Throughput rows allocated by the logged calls (the original chargeback rule),
    for the owners `owners` selects (all when None): their weights are shares of every caller's bucket totals."""
    bucket = list(ALLOCATION_BUCKET)
    callers = caller_weights(priced, owners, day.totals.lazy()).collect(engine="streaming")
    estimates = callers.select(
        *OWNER_KEYS,
        "estimated_cost_usd",
        pl.lit(0.0).alias("billed_cost_usd"),
        pl.lit("on_demand").alias("spend_kind"),
        pl.lit("invocation_log").alias("usage_source"),
        pl.lit(None, dtype=pl.String).alias("allocation_reason"),
    )
    allocated = callers.join(day.bills, on=bucket, how="inner", nulls_equal=True).select(
        *OWNER_KEYS,
        pl.lit(0.0).alias("estimated_cost_usd"),
        (pl.col("_weight") * pl.col("_billed")).alias("billed_cost_usd"),
        "spend_kind",
        pl.lit("invocation_log").alias("usage_source"),
        pl.lit("logged_calls").alias("allocation_reason"),
    )
    del callers
    unallocated = day.unallocated if owners is None else day.unallocated.filter(owners)
    provisioned = provisioned_part(priced, day.provisioned, owners).collect(engine="streaming")
    by_principal = [
        bill_owners.principal_part(inputs, owners).with_columns(
            pl.lit(kind).alias("spend_kind"),
            pl.lit("invocation_log").alias("usage_source"),
            pl.lit("bill_principal").alias("allocation_reason"),
        )
        for kind, inputs in day.principals
    ]
    parts = [estimates, allocated, unallocated, provisioned, *by_principal]
    return pl.concat([p.select(list(bill_only.OUT_SCHEMA)) for p in parts], how="vertical_relaxed")


def not_logged_allocation(
    priced: Frame, paths: Mapping[str, pl.DataFrame], cfg: config.Attribution, batch_jobs: pl.DataFrame | None
) -> pl.DataFrame:
    """The allocation of the spend invocation logs do not allocate (batch, guardrail, bill-only and mantle rows),
    at the chargeback's grain with `allocation_reason`, before merging (`split_by_spend` gives `paths`)."""
    parts = [
        bill_only.batch_allocation(priced, paths["batch"], batch_jobs, cfg),
        bill_only.guardrail_allocation(priced, paths["guardrail"], cfg),
        bill_only.owned_rows(priced, paths["bill_only"], cfg),
    ]
    return pl.concat([bill_only.conform_out(p) for p in parts], how="vertical")


OWNERS_PER_PART = 250_000
"""Owners (cost center × application × user) whose chargeback rows are built at a time: a day of millions of
distinct callers is built and written in parts of about this many (`owner_parts`), never all at once."""


@dataclass(frozen=True)
class _Day:
    log: LogDay
    not_logged: pl.DataFrame
    """Batch, guardrail, bill-only and mantle rows: owned by bill rows, jobs and rules, a few per bill row."""


def _part_rows(priced: Frame, day: _Day, owners: pl.Expr | None) -> pl.DataFrame:
    """The chargeback rows (no `share` yet) of the owners `owners` selects (all when None), merged to the grain."""
    calls = as_lazy(priced)
    parts = [
        log_part(priced, day.log, owners),
        day.not_logged if owners is None else day.not_logged.filter(owners),
        bill_only.guardrail_estimates(calls if owners is None else calls.filter(owners)),
    ]
    return (
        pl.concat([bill_only.conform_out(p) for p in parts], how="vertical")
        .group_by(list(KEYS))
        .agg(
            pl.col("estimated_cost_usd").sum(),
            pl.col("billed_cost_usd").sum(),
            bill_only.reasons_joined(pl.col("allocation_reason")).alias("allocation_reason"),
        )
        .with_columns(
            # Rows with an estimate only (logged, nothing billed) are owned by the calls' own attribution.
            pl.when((pl.col("allocation_reason") == "") & (pl.col("spend_kind") == "guardrail"))
            .then(pl.lit("guardrail_traces"))
            .when(pl.col("allocation_reason") == "")
            .then(pl.lit("logged_calls"))
            .otherwise(pl.col("allocation_reason"))
        )
    )


def _with_share(rows: pl.DataFrame, billed_total: pl.Expr) -> pl.DataFrame:
    """`rows` with `share` (billed cost over `billed_total`, the day and account's; null when that is 0), sorted
    by the key and conformed to the contract."""
    out = rows.with_columns(
        pl.when(billed_total != 0).then(pl.col("billed_cost_usd") / billed_total).alias("share")
    ).sort(list(KEYS), nulls_last=True)
    return schemas.conform(out, schemas.CHARGEBACK)


def chargeback_parts(
    priced: Frame,
    billing: Frame,
    attribution: config.Attribution | None = None,
    *,
    provisioned_models: Mapping[str, ProvisionedModel] | None = None,
    metadata_keys: Mapping[str, Sequence[str]] | None = None,
    round_cents: bool = False,
    batch_jobs: pl.DataFrame | None = None,
    owners_per_part: int = OWNERS_PER_PART,
) -> Iterator[pl.DataFrame]:
    """``chargeback`` in parts, each the complete rows of a fixed share of the owners (`owner_parts`), sorted by the
    key within the part; one part on a day of fewer owners than `owners_per_part`. See `chargeback` for the rule.

    The day's shared figures (bucket totals, bills, principals' totals) are computed once; each part then scans the
    priced calls for its owners only. `share` needs the day and account's billed total, known only once every part
    is built: the parts wait in a temporary folder meanwhile, so memory holds one part. Rounding to cents ranks
    every row of a day and account, so with `round_cents` the day is one part.
    """
    cfg = attribution or config.Attribution()
    if attribution is not None:
        provisioned_models = attribution.provisioned_models if provisioned_models is None else provisioned_models
        if metadata_keys is None:
            metadata_keys = {str(k): v for k, v in attribution.request_metadata_keys.items()}
    paths = split_by_spend(billing)
    not_logged = bill_only.conform_out(not_logged_allocation(priced, paths, cfg, batch_jobs))
    parts = 1 if round_cents else part_count(priced, owners_per_part)
    if parts == 1:
        rows = _part_rows(
            priced, _Day(log_day(priced, paths["log"], cfg, provisioned_models, metadata_keys), not_logged), None
        )
        account_total = pl.col("billed_cost_usd").sum().over(list(DAY_ACCOUNT))
        yield _with_share(round_to_cents(rows) if round_cents else rows, account_total)
        return
    with tempfile.TemporaryDirectory(prefix="chargeback-parts-") as folder:
        day = _Day(log_day(priced, paths["log"], cfg, provisioned_models, metadata_keys, Path(folder)), not_logged)
        files, sums = [], []
        for part in range(parts):
            rows = _part_rows(priced, day, owners_in_part(parts, part))
            files.append(Path(folder) / f"part-{part}.parquet")
            rows.write_parquet(files[-1])
            sums.append(rows.group_by(DAY_ACCOUNT).agg(pl.col("billed_cost_usd").sum().alias("_total")))
            del rows
        totals = pl.concat(sums).group_by(DAY_ACCOUNT).agg(pl.col("_total").sum())
        for file in files:
            rows = pl.read_parquet(file).join(totals, on=list(DAY_ACCOUNT), how="left", nulls_equal=True)
            yield _with_share(rows, pl.col("_total").fill_null(0.0)).drop("_total", strict=False)


def chargeback(
    priced: Frame,
    billing: Frame,
    attribution: config.Attribution | None = None,
    *,
    provisioned_models: Mapping[str, ProvisionedModel] | None = None,
    metadata_keys: Mapping[str, Sequence[str]] | None = None,
    round_cents: bool = False,
    batch_jobs: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Build ``chargeback`` (see the module docstring for the allocation rule and its fallbacks), whole.

    Model tokens and Provisioned Throughput are allocated by the logged calls; bill rows that name their IAM
    principal are charged to that principal's owners (`bill_owners`, using `attribution` for the bill's
    `iamPrincipal/` tags). Batch, guardrail and bill-only spend (mantle included) are owned by `bill_only`, batch
    by the jobs of `batch_jobs` when given. Provisioned models and metadata keys default to those of `attribution`.
    A large day is better written part by part (`chargeback_parts`).
    """
    frames = list(
        chargeback_parts(
            priced,
            billing,
            attribution,
            provisioned_models=provisioned_models,
            metadata_keys=metadata_keys,
            round_cents=round_cents,
            batch_jobs=batch_jobs,
            owners_per_part=2**62,
        )
    )
    return frames[0] if len(frames) == 1 else pl.concat(frames)


SUMS_TO_BILL_TOLERANCE_USD = 0.005
"""Half a cent per account and day: below it a difference is rounding."""


def accounts_off_the_bill(cb: Frame, billing: pl.DataFrame) -> pl.DataFrame:
    """Accounts and days whose chargeback does not add up to the bill's usage cost (the `sums_to_bill` check):
    `date, account_id, bill, allocated`, one row per account off by more than half a cent."""
    billed = (
        billing.filter(pl.col("line_item_type").is_in(USAGE_LINE_TYPES))
        .group_by("date", "account_id")
        .agg(pl.col("unblended_cost_usd").sum().alias("bill"))
    )
    allocated = (
        as_lazy(cb)
        .group_by("date", "account_id")
        .agg(pl.col("billed_cost_usd").sum().alias("allocated"))
        .collect(engine="streaming")
    )
    joined = billed.join(allocated, on=["date", "account_id"], how="full", coalesce=True).fill_null(0.0)
    return joined.filter((pl.col("bill") - pl.col("allocated")).abs() > SUMS_TO_BILL_TOLERANCE_USD)
