"""Chargeback where the bill decides: rows that name their IAM principal go to that principal's owners.

With IAM principal data in a CUR 2.0 export (`line_item_iam_principal`), AWS states who made the calls of each
usage row, so that row's cost is not estimated from the logs' shares but charged to the principal
(docs/reconciliation.md, "Who called: IAM principal data"):

* The owner of a billed principal is the attribution of its logged calls, with the bill's `iamPrincipal/` tags
  ranked between application profiles and principal rules (`attribution.bill_tags`). When one principal's calls
  carry several owners (request metadata naming the end user, two applications behind one role), the row's cost
  splits between them by the usual weights within the principal: value (estimated cost, with unpriced tokens at
  the principal's mean priced rate), else tokens, else calls. Calls on Provisioned Throughput are left out: their
  hours are charged to the ARN's callers.
* The principal's calls in the row's own bucket (day × account × Region × model) decide first; a principal
  billed for a model it has no logged call of is charged to its owners of the day (all its calls); a principal
  with no logged call at all that day goes to its bill tags, then principal rules, then its session or user name.
  None of that cost is `unallocated`: the bill says whose it is.
* Rows without a principal (Marketplace rows, Provisioned Throughput, exports without the column) stay with the
  estimate-weighted allocation of `chargeback`, which also carries every caller's `estimated_cost_usd`; the rows
  built here carry billed cost only, so nothing is counted twice and the chargeback still sums to the invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline import config, schemas
from pipeline.attribution.bill_tags import PARTIES, call_rules, owner_of_principal, principal_tags, tag_values
from pipeline.attribution.rules import _metadata_value
from pipeline.reconciliation.principals import COLUMN, with_principal_key
from pipeline.reconciliation.reconcile import PROVISIONED, logged_model_key, usage_rows
from pipeline.vocabulary import Frame, as_lazy

BUCKET: tuple[str, ...] = ("date", "account_id", "region", "base_model_id")
PRINCIPAL_DAY: tuple[str, ...] = ("date", "account_id", COLUMN)
KEYS: tuple[str, ...] = ("date", "account_id", *PARTIES)
TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens")
"""A call's tokens (1-hour cache writes are inside `cache_write_input_tokens`)."""
_CALL_COLUMNS = ("identity_arn", "principal", "session_name", "inference_profile", "model_id")


def split_bill(billing: Frame) -> tuple[pl.LazyFrame, pl.DataFrame]:
    """The bill's usage rows left to the estimate, and those charged to their principal (key normalized).

    Provisioned Throughput rows always stay with the estimate side: their hours go to the ARN's callers.
    """
    usage = with_principal_key(usage_rows(billing), COLUMN).collect()
    decided = pl.col(COLUMN).is_not_null() & (pl.col("usage_kind") != PROVISIONED).fill_null(True)
    return usage.filter(~decided).lazy(), usage.filter(decided)


def _bill_tag_values(named: pl.DataFrame, cfg: config.Attribution) -> pl.DataFrame:
    """Per principal and day: the party values its `iamPrincipal/` tags give (null where they give none)."""
    rows = []
    for (date, account, principal), group in named.group_by(list(PRINCIPAL_DAY), maintain_order=True):
        tags: dict[str, str] = {}
        for entries in group["tags"].to_list():
            for k, v in principal_tags(schemas.map_to_dict(entries)).items():
                tags.setdefault(k, v)
        rows.append({"date": date, "account_id": account, COLUMN: principal, **tag_values(tags, cfg)})
    schema: dict[str, schemas.DType] = {
        "date": pl.Date,
        "account_id": pl.String,
        COLUMN: pl.String,
        **{p: pl.String for p in PARTIES},
    }
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def _call_rows(priced: Frame, named: pl.DataFrame, cfg: config.Attribution) -> pl.LazyFrame:
    """The billed principals' logged calls (Provisioned Throughput left out), one row per call, with what decides
    their owner: request-metadata flags per party and the identity columns `call_rules` reads."""
    principals = named.select(PRINCIPAL_DAY).unique()
    md = {p: _metadata_value(cfg.request_metadata_keys.get(p, [])).is_not_null() for p in PARTIES}
    return (
        with_principal_key(as_lazy(priced), "identity_arn")
        .filter(~((pl.col("routing") == PROVISIONED) | (pl.col("pricing_routing") == PROVISIONED)).fill_null(False))
        .join(principals.lazy(), on=list(PRINCIPAL_DAY), how="semi", nulls_equal=True)
        .with_columns(logged_model_key().alias("base_model_id"), *[e.alias(f"_md_{p}") for p, e in md.items()])
    )


def _identities(calls: pl.LazyFrame, cfg: config.Attribution) -> pl.DataFrame:
    """What each distinct identity implies (`call_rules`): worked out once per identity (a handful of roles), never
    once per call group, which a day of millions of end users in request metadata has millions of."""
    idents = calls.select(_CALL_COLUMNS).unique().collect(engine="streaming")
    rules = [call_rules(c, cfg) for c in idents.iter_rows(named=True)]
    return idents.with_columns(
        *[pl.Series(f"_weak_{p}", [r[p][0] for r in rules], dtype=pl.String) for p in PARTIES],
        *[pl.Series(f"_prof_{p}", [r[p][1] for r in rules], dtype=pl.Boolean) for p in PARTIES],
    )


def _resolved(calls: pl.LazyFrame, idents: pl.DataFrame, values: pl.DataFrame) -> pl.LazyFrame:
    """Each call with its owner, the bill tags at their rank: a party set by request metadata or an application
    profile keeps its value; otherwise the bill's tag replaces what a principal rule or the user-name fallback
    gave. Row by row (joins to a few rows), so it streams."""
    billed = values.select(*PRINCIPAL_DAY, *[pl.col(p).alias(f"_bill_{p}") for p in PARTIES])

    def owner(p: str) -> pl.Expr:
        current = pl.col(p).fill_null(schemas.UNATTRIBUTED)
        strong = pl.col(f"_md_{p}").fill_null(False) | pl.col(f"_prof_{p}") | (current != pl.col(f"_weak_{p}"))
        return pl.when(strong | pl.col(f"_bill_{p}").is_null()).then(current).otherwise(pl.col(f"_bill_{p}"))

    priced_flag = pl.col("priced").fill_null(False)
    tokens = pl.sum_horizontal([pl.col(tok).fill_null(0) for tok in TOKEN_COLUMNS])
    return (
        calls.join(idents.lazy(), on=list(_CALL_COLUMNS), how="left", nulls_equal=True)
        .join(billed.lazy(), on=list(PRINCIPAL_DAY), how="left", nulls_equal=True)
        .select(
            *BUCKET,
            COLUMN,
            *[owner(p).alias(p) for p in PARTIES],
            pl.when(priced_flag).then(pl.col("total_cost_usd").fill_null(0.0)).otherwise(0.0).alias("_est"),
            tokens.alias("_tokens"),
            pl.when(priced_flag).then(0).otherwise(tokens).alias("_unpriced"),
        )
    )


_SUMS = ("_est", "_tokens", "_calls", "_unpriced")


def _summed(calls: pl.LazyFrame, by: list[str]) -> pl.LazyFrame:
    return calls.group_by(by).agg(
        pl.col("_est").sum().cast(pl.Float64),
        pl.col("_tokens").sum().cast(pl.Float64),
        pl.len().cast(pl.Float64).alias("_calls"),
        pl.col("_unpriced").sum().cast(pl.Float64),
    )


def _weights(frame: pl.DataFrame, totals: pl.DataFrame, over: list[str]) -> pl.DataFrame:
    """`_weight` per owner within `over` against that group's `totals` (every owner's sums, `_SUMS`): by value
    (estimated cost, unpriced tokens at the group's mean priced rate), else tokens, else calls; with every call
    priced, value is the estimated cost. Totals are a join, not a window, so a part of the owners is weighed
    against all of them."""
    t = totals.select(*over, *[pl.col(c).alias(f"_t{c}") for c in _SUMS])
    priced_tokens = pl.col("_t_tokens") - pl.col("_t_unpriced")
    rate = pl.when(priced_tokens > 0).then(pl.col("_t_est") / priced_tokens).otherwise(0.0)
    value, total_value = pl.col("_est") + pl.col("_unpriced") * rate, pl.col("_t_est") + pl.col("_t_unpriced") * rate
    return (
        frame.join(t, on=over, how="left", nulls_equal=True)
        .with_columns(
            pl.when(total_value > 0)
            .then(value / total_value)
            .when(pl.col("_t_tokens") > 0)
            .then(pl.col("_tokens") / pl.col("_t_tokens"))
            .otherwise(pl.col("_calls") / pl.col("_t_calls"))
            .alias("_weight")
        )
        .drop([f"_t{c}" for c in _SUMS])
    )


@dataclass(frozen=True)
class PrincipalDay:
    """What every owner part of `principal_chargeback` shares: a few rows per billed principal."""

    calls: pl.LazyFrame
    """Each logged call of a billed principal with its resolved owner (`_resolved`)."""
    billed: pl.DataFrame
    """Billed cost per bucket and principal."""
    in_bucket: pl.DataFrame
    """Every owner's sums per bucket and principal (what a bucket's weights are shares of)."""
    by_day: pl.DataFrame
    """Every owner's sums per principal and day."""
    rest_day: pl.DataFrame
    """Billed cost per principal and day of the buckets the principal logged nothing in."""
    alone: pl.DataFrame
    """Chargeback rows of principals with no logged call that day (owned by the principal alone)."""


def principal_day(
    priced: Frame, named: pl.DataFrame, cfg: config.Attribution, spill: Path | None = None
) -> PrincipalDay:
    """The shared inputs of `principal_part` for `named` (`split_bill`'s second frame, not empty). With `spill` (a
    file path), the resolved calls are written there once, narrow, so that each part reads them back instead of
    resolving the day's calls again."""
    values = _bill_tag_values(named, cfg)
    raw = _call_rows(priced, named, cfg)
    calls = _resolved(raw, _identities(raw, cfg), values)
    if spill is not None:
        calls.sink_ipc(spill, engine="streaming")
        calls = pl.scan_ipc(spill)
    bucket, day = [*BUCKET, COLUMN], list(PRINCIPAL_DAY)
    in_bucket = _summed(calls, bucket).collect(engine="streaming")
    by_day = in_bucket.group_by(day).agg(pl.col(c).sum() for c in _SUMS)
    billed = named.group_by(*BUCKET, COLUMN).agg(
        pl.col("unblended_cost_usd").fill_null(0.0).sum().cast(pl.Float64).alias("_billed")
    )
    rest = billed.join(in_bucket.select(bucket), on=bucket, how="anti", nulls_equal=True)
    rest_day = rest.group_by(day).agg(pl.col("_billed").sum())
    unlogged = rest_day.join(by_day.select(day), on=day, how="anti", nulls_equal=True)
    tag_rows = {(r["date"], r["account_id"], r[COLUMN]): r for r in values.iter_rows(named=True)}
    alone = [
        {
            "date": r["date"],
            "account_id": r["account_id"],
            **owner_of_principal(r[COLUMN], [], tag_rows.get((r["date"], r["account_id"], r[COLUMN]), {}), cfg),
            "_billed": r["_billed"],
        }
        for r in unlogged.iter_rows(named=True)
    ]
    alone_rows = (
        pl.DataFrame(alone).select(*KEYS, pl.col("_billed").alias("billed_cost_usd"))
        if alone
        else pl.DataFrame(schema={**{k: schemas.CHARGEBACK[k] for k in KEYS}, "billed_cost_usd": pl.Float64})
    )
    return PrincipalDay(calls, billed, in_bucket, by_day, rest_day, alone_rows)


def principal_part(inputs: PrincipalDay, owners: pl.Expr | None = None) -> pl.DataFrame:
    """Chargeback rows (`KEYS`, `estimated_cost_usd` 0, `billed_cost_usd`) of the owners `owners` selects (all when
    None) for the billed principals of `inputs`; the parts' rows together are `principal_chargeback`'s."""
    out_schema: dict[str, schemas.DType] = {**{k: schemas.CHARGEBACK[k] for k in KEYS}, "billed_cost_usd": pl.Float64}
    calls = inputs.calls if owners is None else inputs.calls.filter(owners)
    bucket, day = [*BUCKET, COLUMN], list(PRINCIPAL_DAY)
    mine = _summed(calls, [*bucket, *PARTIES]).collect(engine="streaming")
    # 1. The principal's calls in the billed row's own bucket.
    in_bucket = _weights(mine, inputs.in_bucket, bucket).join(inputs.billed, on=bucket, how="inner", nulls_equal=True)
    # 2. Billed for a bucket it logged nothing in: its owners of the day.
    day_owners = mine.group_by(*day, *PARTIES).agg(pl.col(c).sum() for c in _SUMS)
    by_day = _weights(day_owners, inputs.by_day, day).join(inputs.rest_day, on=day, how="inner", nulls_equal=True)
    # 3. No logged call that day: the principal alone names its owner.
    alone = inputs.alone if owners is None else inputs.alone.filter(owners)
    parts = [
        f.select(*KEYS, (pl.col("_weight") * pl.col("_billed")).alias("billed_cost_usd")) for f in (in_bucket, by_day)
    ]
    parts.append(alone)
    out = pl.concat([p.cast({k: out_schema[k] for k in p.columns}) for p in parts], how="vertical")
    return (
        out.group_by(KEYS)
        .agg(pl.col("billed_cost_usd").sum())
        .select(*KEYS, pl.lit(0.0).alias("estimated_cost_usd"), "billed_cost_usd")
    )


def principal_chargeback(priced: Frame, named: pl.DataFrame, cfg: config.Attribution) -> pl.DataFrame:
    """Chargeback rows (`KEYS`, `estimated_cost_usd` 0, `billed_cost_usd`) for bill rows naming a principal.

    `named` is `split_bill`'s second frame. Sums exactly (up to float error) to `named`'s unblended cost. A day of
    many owners is better built a part at a time (`principal_day`, then `principal_part` per part).
    """
    out_schema: dict[str, schemas.DType] = {**{k: schemas.CHARGEBACK[k] for k in KEYS}, "billed_cost_usd": pl.Float64}
    if named.is_empty():
        return pl.DataFrame(schema=out_schema).with_columns(pl.lit(0.0).alias("estimated_cost_usd"))
    return principal_part(principal_day(priced, named, cfg))
