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


def _calls_of(priced: Frame, named: pl.DataFrame, cfg: config.Attribution) -> pl.DataFrame:
    """The billed principals' logged calls, summed per bucket and distinct attribution inputs."""
    principals = named.select(PRINCIPAL_DAY).unique()
    priced_flag = pl.col("priced").fill_null(False)
    tokens = pl.sum_horizontal([pl.col(tok).fill_null(0) for tok in TOKEN_COLUMNS])
    md = {p: _metadata_value(cfg.request_metadata_keys.get(p, [])).is_not_null() for p in PARTIES}
    return (
        with_principal_key(as_lazy(priced), "identity_arn")
        .filter(~((pl.col("routing") == PROVISIONED) | (pl.col("pricing_routing") == PROVISIONED)).fill_null(False))
        .join(principals.lazy(), on=list(PRINCIPAL_DAY), how="semi", nulls_equal=True)
        .with_columns(logged_model_key().alias("base_model_id"), *[e.alias(f"_md_{p}") for p, e in md.items()])
        .group_by(*BUCKET, COLUMN, *_CALL_COLUMNS, *PARTIES, *[f"_md_{p}" for p in PARTIES])
        .agg(
            pl.col("total_cost_usd").filter(priced_flag).fill_null(0.0).sum().cast(pl.Float64).alias("_est"),
            tokens.sum().cast(pl.Float64).alias("_tokens"),
            tokens.filter(~priced_flag).sum().cast(pl.Float64).alias("_unpriced"),
            pl.len().cast(pl.Float64).alias("_calls"),
        )
        .collect(engine="streaming")
    )


def _owners(calls: pl.DataFrame, values: pl.DataFrame, cfg: config.Attribution) -> pl.DataFrame:
    """Each call group's owner with the bill tags at their rank, summed per bucket, principal and owner.

    A party set by request metadata or an application profile keeps its value; otherwise the bill's tag replaces
    what a principal rule or the user-name fallback gave. What an identity implies (`call_rules`) is worked out
    once per distinct identity (a handful of roles), never once per call group, which a day of millions of end
    users in request metadata has millions of."""
    if calls.is_empty():
        return calls.select(*BUCKET, COLUMN, *PARTIES, "_est", "_tokens", "_calls", "_unpriced")
    idents = calls.select(_CALL_COLUMNS).unique()
    rules = [call_rules(c, cfg) for c in idents.iter_rows(named=True)]
    idents = idents.with_columns(
        *[pl.Series(f"_weak_{p}", [r[p][0] for r in rules], dtype=pl.String) for p in PARTIES],
        *[pl.Series(f"_prof_{p}", [r[p][1] for r in rules], dtype=pl.Boolean) for p in PARTIES],
    )
    billed = values.select(*PRINCIPAL_DAY, *[pl.col(p).alias(f"_bill_{p}") for p in PARTIES])
    joined = calls.join(idents, on=list(_CALL_COLUMNS), how="left", nulls_equal=True).join(
        billed, on=list(PRINCIPAL_DAY), how="left", nulls_equal=True
    )

    def owner(p: str) -> pl.Expr:
        current = pl.col(p).fill_null(schemas.UNATTRIBUTED)
        strong = pl.col(f"_md_{p}").fill_null(False) | pl.col(f"_prof_{p}") | (current != pl.col(f"_weak_{p}"))
        return pl.when(strong | pl.col(f"_bill_{p}").is_null()).then(current).otherwise(pl.col(f"_bill_{p}"))

    resolved = joined.with_columns(*[owner(p).alias(p) for p in PARTIES])
    return resolved.group_by(*BUCKET, COLUMN, *PARTIES).agg(
        pl.col("_est").sum(), pl.col("_tokens").sum(), pl.col("_calls").sum(), pl.col("_unpriced").sum()
    )


def _weights(frame: pl.DataFrame, over: list[str]) -> pl.DataFrame:
    """`_weight` per owner within `over`: by value (estimated cost, unpriced tokens at the group's mean priced
    rate), else tokens, else calls; with every call priced, value is the estimated cost."""
    est, tok = pl.col("_est").sum().over(over), pl.col("_tokens").sum().over(over)
    priced_tokens = (pl.col("_tokens") - pl.col("_unpriced")).sum().over(over)
    rate = pl.when(priced_tokens > 0).then(est / priced_tokens).otherwise(0.0)
    value = pl.col("_est") + pl.col("_unpriced") * rate
    return (
        frame.with_columns(value.alias("_value"))
        .with_columns(
            pl.when(pl.col("_value").sum().over(over) > 0)
            .then(pl.col("_value") / pl.col("_value").sum().over(over))
            .when(tok > 0)
            .then(pl.col("_tokens") / tok)
            .otherwise(pl.col("_calls") / pl.col("_calls").sum().over(over))
            .alias("_weight")
        )
        .drop("_value")
    )


def principal_chargeback(priced: Frame, named: pl.DataFrame, cfg: config.Attribution) -> pl.DataFrame:
    """Chargeback rows (`KEYS`, `estimated_cost_usd` 0, `billed_cost_usd`) for bill rows naming a principal.

    `named` is `split_bill`'s second frame. Sums exactly (up to float error) to `named`'s unblended cost.
    """
    out_schema: dict[str, schemas.DType] = {**{k: schemas.CHARGEBACK[k] for k in KEYS}, "billed_cost_usd": pl.Float64}
    if named.is_empty():
        return pl.DataFrame(schema=out_schema).with_columns(pl.lit(0.0).alias("estimated_cost_usd"))
    values = _bill_tag_values(named, cfg)
    owners = _owners(_calls_of(priced, named, cfg), values, cfg)
    billed = named.group_by(*BUCKET, COLUMN).agg(
        pl.col("unblended_cost_usd").fill_null(0.0).sum().cast(pl.Float64).alias("_billed")
    )
    bucket, day = [*BUCKET, COLUMN], list(PRINCIPAL_DAY)
    # 1. The principal's calls in the billed row's own bucket.
    in_bucket = _weights(owners, bucket).join(billed, on=bucket, how="inner", nulls_equal=True)
    rest = billed.join(owners.select(bucket).unique(), on=bucket, how="anti", nulls_equal=True)
    # 2. Billed for a bucket it logged nothing in: its owners of the day.
    day_owners = owners.group_by(*day, *PARTIES).agg(pl.col("_est", "_tokens", "_calls", "_unpriced").sum())
    rest_day = rest.group_by(day).agg(pl.col("_billed").sum())
    by_day = _weights(day_owners, day).join(rest_day, on=day, how="inner", nulls_equal=True)
    # 3. No logged call that day: the principal alone names its owner.
    unlogged = rest_day.join(day_owners.select(day).unique(), on=day, how="anti", nulls_equal=True)
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
    parts = [
        f.select(*KEYS, (pl.col("_weight") * pl.col("_billed")).alias("billed_cost_usd")) for f in (in_bucket, by_day)
    ]
    if alone:
        parts.append(pl.DataFrame(alone).select(*KEYS, pl.col("_billed").alias("billed_cost_usd")))
    out = pl.concat([p.cast({k: out_schema[k] for k in p.columns}) for p in parts], how="vertical")
    return (
        out.group_by(KEYS)
        .agg(pl.col("billed_cost_usd").sum())
        .select(*KEYS, pl.lit(0.0).alias("estimated_cost_usd"), "billed_cost_usd")
    )
