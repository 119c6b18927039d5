"""`cost_reconciliation`: invocation logs against the bill, per bucket, tokens first and dollars second.

The bill carries no request ids, so the two sides meet at the grain both can produce (docs/formats/billing-exports.md
§5.2): keys ``date,
account_id, region, base_model_id, usage_kind, routing, tier, context_tier``. ``routing``, ``tier`` and
``context_tier`` stay in the key because they change the unit price; ``region`` is the source Region on both sides.

Logged side: priced invocations summed per bucket and unpivoted into one row per token kind with ``routing =
pricing_routing``, ``tier = pricing_tier`` and ``context_tier`` (``standard`` when the column is absent). Cache
writes are split by TTL: ``cache_write`` = 5-minute writes (``cache_write_input_tokens −
cache_write_1h_input_tokens``, cost ``cache_write_cost_usd − cache_write_1h_cost_usd``) and ``cache_write_1h`` =
1-hour writes; a missing 1-hour column counts as 0. Image counts become an ``image`` row estimated at the per-image
price (``image_cost_usd``). Kinds with no logged quantity produce no row.

Billed side: usage rows only (`pipeline.vocabulary.USAGE_LINE_TYPES`, the one definition) at unblended
(list-equivalent) cost, which is what the catalog estimate is comparable to. Tax, credit, refund and discount rows
are reported beside the match by `non_usage_summary`, never as a price mismatch.

A bill without a geo split: geographic cross-Region routing shows only in ``resource_id`` (an
``inference-profile/us.…`` ARN). Where a bucket's bill rows carry no resource id at all and the bill has no geo row
for it, the logged geo calls are compared with the bill's in-Region row (`fold_unsplit_geo`) instead of being
reported as ``missing_in_bill`` beside a matching ``under_logged``.

Provisioned Throughput (`provisioned_reconciliation`) is reconciled as hours, per provisioned-model ARN
(``resource_id``): billed model-unit hours against the calls logged on that ARN, with the tokens served, the
effective $ per 1M tokens and what the same tokens would have cost on demand. Hours billed with no call are
``idle_capacity``.

Per token/image row (a side that has no row counts as 0 and $0):

* ``cost_delta_usd`` = billed − estimated; ``cost_delta_pct`` = delta / billed (null when billed is 0).
* ``volume_variance_usd`` = (billed − logged quantity) × billed unit price; ``price_variance_usd`` = (billed −
  catalog unit price) × logged quantity. They add up to the delta.
* Status, first match wins: ``unmapped_billing``, ``missing_in_bill`` (lag-aware wording), ``missing_in_logs``,
  ``unpriced``, ``under_logged`` / ``over_logged`` (token gap beyond ``tokens_pct``), ``price_mismatch`` (billed
  unit rate further than ``rate_tolerance_pct`` from the catalog rate, at any amount; or the cost beyond
  max(``cost_usd``, ``cost_pct`` × billed)), else ``matched``. Tolerances are inclusive with 1e-9 of slack.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from pipeline import schemas
from pipeline.config import ProvisionedModel, Tolerances
from pipeline.vocabulary import PRICING_ROUTINGS, USAGE_LINE_TYPES, Frame, as_lazy
from pipeline.vocabulary import RECONCILIATION_STATUSES as STATUSES  # the name callers and tests import

KEYS: tuple[str, ...] = (
    "date",
    "account_id",
    "region",
    "base_model_id",
    "usage_kind",
    "routing",
    "tier",
    "context_tier",
)
MODEL_BUCKET: tuple[str, ...] = ("date", "account_id", "region", "base_model_id")
PT_BUCKET: tuple[str, ...] = ("date", "account_id", "region", "resource_id")

LOG_TOKEN_COLUMNS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
)
"""The logged token counts; their sum is every token a call used (1-hour writes are inside cache writes)."""
TOKEN_KINDS: dict[str, tuple[str, str]] = {
    "input": ("input_tokens", "input_cost_usd"),
    "output": ("output_tokens", "output_cost_usd"),
    "cache_read": ("cache_read_input_tokens", "cache_read_cost_usd"),
    "cache_write": ("_cw5_tokens", "_cw5_cost"),
    "cache_write_1h": ("_cw1h_tokens", "_cw1h_cost"),
}
"""Usage kind -> (token column, cost column) on the logged side after `_with_ttl_split`."""
PROVISIONED = "provisioned"
EPS = 1e-9
"""Slack added to every tolerance so that a delta exactly on the edge is not lost to float rounding."""


def usage_rows(billing: Frame) -> pl.LazyFrame:
    """The bill's usage rows: what the logs can explain. Everything else is an adjustment (`non_usage_summary`)."""
    return as_lazy(billing).filter(pl.col("line_item_type").is_in(list(USAGE_LINE_TYPES)))


def non_usage_summary(billing: Frame) -> pl.DataFrame:
    """Tax, credits, refunds, discounts and fees per ``date, account_id, line_item_type``, kept out of the match.

    Reported beside the reconciliation so that invoice total = usage + these can be checked, and so that a credit
    or an EDP / private-pricing discount never shows up as a "price mismatch" on a model.
    """
    return (
        as_lazy(billing)
        .filter(~pl.col("line_item_type").is_in(list(USAGE_LINE_TYPES)).fill_null(True))
        .group_by("date", "account_id", "line_item_type")
        .agg(
            pl.col("unblended_cost_usd").fill_null(0.0).sum().cast(pl.Float64).alias("cost_usd"),
            pl.len().cast(pl.Int64).alias("line_items"),
        )
        .sort("date", "account_id", "line_item_type", nulls_last=True)
        .collect()
    )


def logged_model_key() -> pl.Expr:
    """The logged side's model key: the resolved foundation model, else the logged id (never null).

    Never null, so a logged bucket cannot meet an unmapped bill row (whose model is null) by accident.
    """
    return pl.coalesce(pl.col("base_model_id"), pl.col("model_id"), pl.lit(schemas.UNATTRIBUTED))


def is_provisioned_call() -> pl.Expr:
    """A call served by Provisioned Throughput (billed per model-unit hour, never per token)."""
    return ((pl.col("routing") == PROVISIONED) | (pl.col("pricing_routing") == PROVISIONED)).fill_null(False)


def _pricing_routing() -> pl.Expr:
    """The billed routing of a call; an unpriced call may lack it, then its logged routing stands in if billable."""
    logged = pl.when(pl.col("routing").is_in(list(PRICING_ROUTINGS))).then(pl.col("routing"))
    return pl.coalesce(pl.col("pricing_routing"), logged)


def _pricing_tier() -> pl.Expr:
    """The billed tier of a call; ``standard`` (the on-demand default) when pricing could not tell."""
    return pl.coalesce(pl.col("pricing_tier"), pl.lit("standard"))


def with_ttl_split(priced: pl.LazyFrame) -> pl.LazyFrame:
    """Add the 5-minute / 1-hour cache-write split and ``context_tier``, tolerating the columns' absence.

    ``cache_write_1h_input_tokens`` / ``cache_write_1h_cost_usd`` / ``context_tier`` come from the log side's
    shape-dependent pricing; before they exist a write counts as 5-minute and a call as ``standard`` context.
    """
    cols = set(priced.collect_schema().names())
    h_tok = pl.col("cache_write_1h_input_tokens").fill_null(0) if "cache_write_1h_input_tokens" in cols else pl.lit(0)
    h_cost = pl.col("cache_write_1h_cost_usd").fill_null(0.0) if "cache_write_1h_cost_usd" in cols else pl.lit(0.0)
    tier = pl.coalesce(pl.col("context_tier"), pl.lit("standard")) if "context_tier" in cols else pl.lit("standard")
    return priced.with_columns(
        (pl.col("cache_write_input_tokens").fill_null(0) - h_tok).cast(pl.Int64).alias("_cw5_tokens"),
        h_tok.cast(pl.Int64).alias("_cw1h_tokens"),
        (pl.col("cache_write_cost_usd") - h_cost).alias("_cw5_cost"),
        pl.when(pl.col("cache_write_cost_usd").is_not_null()).then(h_cost).alias("_cw1h_cost"),
        tier.cast(pl.String).alias("context_tier"),
    )


def _logged_side(priced: Frame, by: tuple[str, ...] = ()) -> pl.DataFrame:
    """One row per logged bucket and kind, with ``_qty`` (tokens or images) and the estimate (no PT calls).

    The per-kind amounts are computed row by row and only summed in the group-by: a filter inside an aggregation
    makes the streaming engine hold the day's calls (600 MiB at a million calls) for a few hundred rows out."""
    priced_flag = pl.col("priced").fill_null(False)
    rowwise: list[pl.Expr] = [priced_flag.alias("_priced")]
    aggs: list[pl.Expr] = [pl.len().cast(pl.Int64).alias("_calls")]
    for kind, (tok, cost) in [*TOKEN_KINDS.items(), ("image", ("image_count", "image_cost_usd"))]:
        amount = pl.col(tok).fill_null(0)
        rowwise += [
            amount.alias(f"{kind}__qty"),
            pl.when(priced_flag).then(0).otherwise(amount).alias(f"{kind}__unpriced"),
            pl.when(priced_flag).then(pl.col(cost).fill_null(0.0)).otherwise(0.0).alias(f"{kind}__cost"),
        ]
        aggs += [pl.col(f"{kind}__qty", f"{kind}__unpriced", f"{kind}__cost").sum()]
        any_priced = pl.col("_priced") & (pl.col(f"{kind}__qty") > 0) if kind == "image" else pl.col("_priced")
        aggs.append(any_priced.any().alias(f"{kind}__any_priced"))
    grouped = (
        with_ttl_split(as_lazy(priced))
        .filter(~is_provisioned_call())
        .select(
            *MODEL_BUCKET[:-1],
            logged_model_key().alias("base_model_id"),
            _pricing_routing().alias("routing"),
            _pricing_tier().alias("tier"),
            "context_tier",
            *by,
            *rowwise,
        )
        .group_by(*MODEL_BUCKET, "routing", "tier", "context_tier", *by)
        .agg(aggs)
        .collect(engine="streaming")
    )
    base = [*MODEL_BUCKET, "routing", "tier", "context_tier", *by]
    parts = []
    for kind in [*TOKEN_KINDS, "image"]:
        parts.append(
            grouped.select(
                *base,
                pl.lit(kind).alias("usage_kind"),
                pl.col(f"{kind}__qty").cast(pl.Int64).alias("_logged_qty"),
                (pl.col(f"{kind}__qty") if kind != "image" else pl.lit(None)).cast(pl.Int64).alias("logged_tokens"),
                pl.col(f"{kind}__unpriced").cast(pl.Int64).alias("_unpriced_tokens"),
                pl.when(pl.col(f"{kind}__any_priced"))
                .then(pl.col(f"{kind}__cost"))
                .otherwise(None)
                .cast(pl.Float64)
                .alias("estimated_cost_usd"),
                pl.col("_calls"),
            ).filter(pl.col("_logged_qty") > 0)
        )
    return pl.concat(parts, how="vertical").with_columns(pl.lit(True).alias("_in_log"))


def _billed_side(billing: Frame, by: tuple[str, ...] = ()) -> pl.DataFrame:
    """Usage rows (no Provisioned Throughput) summed per bucket; ``_billed_qty`` is tokens, else the amount."""
    token_kind = pl.col("usage_kind").is_in(list(TOKEN_KINDS)).fill_null(False)
    rows = usage_rows(billing)
    names = rows.collect_schema().names()
    for col in ("context_tier", "classification_note", "spend_kind"):  # a warehouse partition written before the column
        if col not in names:
            rows = rows.with_columns(pl.lit(None, dtype=pl.String).alias(col))
    return (
        rows.filter((pl.col("usage_kind") != PROVISIONED).fill_null(True))
        .with_columns(pl.coalesce(pl.col("context_tier"), pl.lit("standard")).alias("context_tier"))
        .group_by(*KEYS, *by)
        .agg(
            pl.when(pl.col("tokens").is_not_null().any()).then(pl.col("tokens").sum()).alias("_billed_tokens"),
            pl.col("usage_amount").fill_null(0.0).sum().alias("_billed_amount"),
            pl.col("unblended_cost_usd").fill_null(0.0).sum().cast(pl.Float64).alias("billed_cost_usd"),
            pl.col("usage_type").drop_nulls().unique().sort().str.join(", ").alias("_usage_types"),
            pl.col("pricing_unit").drop_nulls().unique().sort().str.join(", ").alias("_pricing_units"),
            pl.col("resource_id").is_null().all().alias("_no_resource_id"),
            pl.col("classification_note").drop_nulls().unique().sort().str.join("; ").alias("_notes"),
            pl.col("spend_kind").drop_nulls().first().alias("_spend_kind"),
        )
        .with_columns(
            pl.when(token_kind).then(pl.col("_billed_tokens")).otherwise(None).cast(pl.Int64).alias("billed_tokens"),
            pl.when(token_kind)
            .then(pl.col("_billed_tokens").cast(pl.Float64))
            .otherwise(pl.col("_billed_amount"))
            .alias("_billed_qty"),
            pl.lit(True).alias("_in_bill"),
        )
        .drop("_billed_tokens")
        .collect()
    )


def fold_unsplit_geo(logged: pl.DataFrame, billed: pl.DataFrame, by: tuple[str, ...] = ()) -> pl.DataFrame:
    """Logged geo rows re-keyed as ``in_region`` where the bill cannot tell geo from in-Region.

    Geo routing is visible on the bill only through the resource id. When a bucket's in-Region bill rows have no
    resource id and the bill has no geo row for that bucket, the bill has no geo split: its in-Region row holds the
    geo calls too, so they are compared together (``_geo_folded`` marks it for the explanation).
    """
    other = [k for k in (*KEYS, *by) if k != "routing"]
    unsplit = billed.filter((pl.col("routing") == "in_region") & pl.col("_no_resource_id")).select(other)
    has_geo = billed.filter(pl.col("routing") == "geo").select(other)
    targets = unsplit.join(has_geo, on=other, how="anti", nulls_equal=True).with_columns(pl.lit(True).alias("_fold"))
    marked = logged.join(targets, on=other, how="left", nulls_equal=True).with_columns(
        (pl.col("_fold").fill_null(False) & (pl.col("routing") == "geo")).alias("_geo_folded")
    )
    if not marked["_geo_folded"].any():
        return marked.drop("_fold")
    return (
        marked.with_columns(
            pl.when(pl.col("_geo_folded")).then(pl.lit("in_region")).otherwise(pl.col("routing")).alias("routing")
        )
        .group_by([*KEYS, *by], maintain_order=True)
        .agg(
            pl.col("_logged_qty").sum(),
            pl.when(pl.col("logged_tokens").is_not_null().any()).then(pl.col("logged_tokens").sum()),
            pl.col("_unpriced_tokens").sum(),
            pl.when(pl.col("estimated_cost_usd").is_not_null().any()).then(pl.col("estimated_cost_usd").sum()),
            pl.col("_calls").sum(),
            pl.col("_in_log").any(),
            pl.col("_geo_folded").any(),
        )
    )


def _join_sides(logged: pl.DataFrame, billed: pl.DataFrame, by: tuple[str, ...] = ()) -> pl.DataFrame:
    models_logged = logged.select(*MODEL_BUCKET, *by).unique().with_columns(pl.lit(True).alias("_model_logged"))
    token_kind = pl.col("usage_kind").is_in(list(TOKEN_KINDS))
    priced_kind = token_kind | (pl.col("usage_kind") == "image")
    ttl_bucket = [*MODEL_BUCKET, "routing", "tier", "context_tier", *by]
    joined = (
        logged.join(billed, on=[*KEYS, *by], how="full", coalesce=True, nulls_equal=True)
        .join(models_logged, on=[*MODEL_BUCKET, *by], how="left", nulls_equal=True)
        .with_columns(
            pl.col("_in_log").fill_null(False),
            pl.col("_in_bill").fill_null(False),
            pl.col("_model_logged").fill_null(False),
            pl.col("_unpriced_tokens").fill_null(0),
            pl.col("_calls").fill_null(0),
            pl.col("_geo_folded").fill_null(False),
        )
        .with_columns(
            # An absent side is 0 tokens and $0; non-token kinds keep null tokens.
            pl.when(pl.col("_in_log"))
            .then(pl.col("logged_tokens"))
            .when(token_kind)
            .then(pl.lit(0, dtype=pl.Int64))
            .otherwise(None)
            .alias("logged_tokens"),
            pl.when(pl.col("_in_bill"))
            .then(pl.col("billed_tokens"))
            .when(token_kind)
            .then(pl.lit(0, dtype=pl.Int64))
            .otherwise(None)
            .alias("billed_tokens"),
            pl.when(pl.col("_in_log")).then(pl.col("estimated_cost_usd")).otherwise(0.0).alias("estimated_cost_usd"),
            pl.col("billed_cost_usd").fill_null(0.0),
            pl.col("_logged_qty").fill_null(0).cast(pl.Float64),
            pl.col("_billed_qty").fill_null(0.0),
        )
        .with_columns(
            # Cache writes by TTL: does the bill split out 1-hour writes that the logs do not (or the reverse)?
            ((pl.col("usage_kind") == "cache_write_1h") & pl.col("_in_bill")).any().over(ttl_bucket).alias("_bill_1h"),
            ((pl.col("usage_kind") == "cache_write_1h") & pl.col("_in_log")).any().over(ttl_bucket).alias("_log_1h"),
        )
    )
    billed_unit = (
        pl.when(priced_kind & (pl.col("_billed_qty") > 0))
        .then(pl.col("billed_cost_usd") / pl.col("_billed_qty"))
        .otherwise(None)
    )
    est_unit = (
        pl.when(priced_kind & (pl.col("_logged_qty") > 0))
        .then(pl.col("estimated_cost_usd") / pl.col("_logged_qty"))
        .otherwise(None)
    )
    delta = pl.col("billed_cost_usd") - pl.col("estimated_cost_usd")
    return joined.with_columns(billed_unit.alias("_billed_unit"), est_unit.alias("_est_unit")).with_columns(
        delta.alias("cost_delta_usd"),
        pl.when(pl.col("billed_cost_usd") != 0).then(delta / pl.col("billed_cost_usd")).alias("cost_delta_pct"),
        pl.when(pl.col("_billed_unit").is_not_null())
        .then((pl.col("_billed_qty") - pl.col("_logged_qty")) * pl.col("_billed_unit"))
        .when(~pl.col("_in_bill") & pl.col("_est_unit").is_not_null())
        .then(-pl.col("_logged_qty") * pl.col("_est_unit"))
        .alias("volume_variance_usd"),
        pl.when(priced_kind & pl.col("_billed_unit").is_not_null() & (pl.col("_logged_qty") == 0))
        .then(pl.lit(0.0))
        .when(pl.col("_billed_unit").is_not_null() & pl.col("_est_unit").is_not_null())
        .then((pl.col("_billed_unit") - pl.col("_est_unit")) * pl.col("_logged_qty"))
        .when(~pl.col("_in_bill") & pl.col("_est_unit").is_not_null())
        .then(pl.lit(0.0))
        .alias("price_variance_usd"),
    )


# --- wording -----------------------------------------------------------------------------------------------------


def _n(x: float | int | None) -> str:
    return "0" if x is None else f"{x:,.0f}"


def _usd(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"${x:,.4f}" if 0 < abs(x) < 1 else f"${x:,.2f}"


def _vs_estimate(delta: float) -> str:
    """A signed gap in words: "$0.33 over the estimate" / "$0.33 under the estimate" (never "$-0.33 over")."""
    if abs(delta) < 5e-7:
        return "the same as the estimate"
    size = abs(delta)
    amount = f"${size:,.2f}" if size >= 0.01 else f"${size:.{4 if size >= 0.0001 else _decimals(size, 4)}f}"
    return f"{amount} {'over' if delta > 0 else 'under'} the estimate"


def _rate_1k(unit_price: float | None) -> str:
    if unit_price is None:
        return "n/a"
    per_1k = unit_price * 1000
    return f"${per_1k:.4f}/1K" if per_1k >= 0.001 else f"${per_1k:.{_decimals(per_1k, 6)}f}/1K"


def _decimals(x: float, at_least: int) -> int:
    """Decimals that show `x` to 3 significant figures (at least `at_least`): a Nova Micro rate of
    $0.0000385/1K must not print as $0.000039/1K, which would read as a different price."""
    if x <= 0:
        return at_least
    return max(at_least, 2 - math.floor(math.log10(x)))


def _rate(kind: str, unit_price: float | None) -> str:
    if kind == "image":
        return "n/a" if unit_price is None else f"${unit_price:.4f}/image"
    return _rate_1k(unit_price)


def _what(kind: str) -> str:
    if kind == "cache_write":
        return "5-minute cache-write tokens"
    if kind == "cache_write_1h":
        return "1-hour cache-write tokens"
    if kind in TOKEN_KINDS:
        return f"{kind.replace('_', '-')} tokens"
    return {"image": "images", PROVISIONED: "hours"}.get(kind, "units")


def _where(r: dict[str, Any]) -> str:
    return f"account {r['account_id']} in {r['region']}"


_TTL_NOTE = (
    "the bill splits cache writes by TTL (1-hour writes cost 2× input, 5-minute 1.25×) and the logs show "
    "{logged} of them as 1-hour: a log that does not split writes by TTL (Anthropic "
    "`cache_creation.ephemeral_1h_input_tokens`, Converse `cacheDetails`) counts every write as 5-minute; compare "
    "the 5-minute and 1-hour rows together, this is not a price to override"
)


def _ttl_gap(r: dict[str, Any]) -> bool:
    """A cache-write gap that the TTL split explains (bill has 1-hour writes the logs do not, or the reverse)."""
    return r["usage_kind"] in ("cache_write", "cache_write_1h") and r["_bill_1h"] != r["_log_1h"]


def _classify(r: dict[str, Any], tol: Tolerances, as_of: dt.date) -> tuple[str, str]:
    """Status and an actionable one-sentence explanation for one joined token or image bucket: the status is
    decided on the numbers alone (`_classify_status`), then explained by its status's writer (`_EXPLAIN`)."""
    status = _classify_status(r, tol)
    return status, _EXPLAIN[status](r, _Words(r), tol, as_of)


def _classify_status(r: dict[str, Any], tol: Tolerances) -> str:
    """Which status one bucket has, first match wins: bill rows no model maps to, a side missing, unpriced
    tokens, a token gap past tolerance, a rate or cost gap past tolerance, else matched."""
    kind = r["usage_kind"]
    if r["_in_bill"] and r["base_model_id"] is None:
        return "missing_in_logs" if kind == "other" else "unmapped_billing"
    if r["_in_log"] and not r["_in_bill"]:
        return "missing_in_bill"
    if r["_in_bill"] and not r["_in_log"]:
        return "missing_in_logs"
    if r["_unpriced_tokens"] > 0 or (kind == "image" and r["estimated_cost_usd"] is None):
        return "unpriced"
    logged, billed = r["_logged_qty"], r["_billed_qty"]
    token_tol = tol.tokens_pct * billed + EPS
    if billed - logged > token_tol:
        return "under_logged"
    if logged - billed > token_tol:
        return "over_logged"
    return "price_mismatch" if _rate_off(r, tol) or _cost_off(r, tol) else "matched"


def _rate_off(r: dict[str, Any], tol: Tolerances) -> bool:
    """The billed unit rate differs from the catalog's by more than `rate_tolerance_pct`."""
    b_unit, e_unit = r["_billed_unit"], r["_est_unit"]
    return (
        b_unit is not None
        and e_unit is not None
        and e_unit > 0
        and abs(b_unit / e_unit - 1) > tol.rate_tolerance_pct + EPS
    )


def _cost_off(r: dict[str, Any], tol: Tolerances) -> bool:
    """The billed cost differs from the estimate by more than both the dollar and the percent tolerance."""
    est, cost = r["estimated_cost_usd"], r["billed_cost_usd"]
    return est is not None and abs(cost - est) > max(tol.cost_usd, tol.cost_pct * abs(cost)) + EPS


class _Words:
    """The phrases every explanation of one bucket draws on: what is counted, of which model, in which bucket, and
    whether geo and in-Region calls were compared together."""

    def __init__(self, r: dict[str, Any]) -> None:
        self.what = _what(r["usage_kind"])
        self.model = r["base_model_id"]
        self.bucket = f"{r['routing']}/{r['tier']}" + ("/long-context" if r.get("context_tier") == "long" else "")
        self.folded = (
            " (the bill has no resource id here, so geo and in-Region calls are compared together)"
            if r.get("_geo_folded")
            else ""
        )
        self.quota = (
            ": calls beyond the latency-optimized quota are served and billed at Standard, which the log cannot "
            "show; compare with this model's standard bucket"
            if r["tier"] == "latency_optimized"
            else ""
        )


def _ttl_note(r: dict[str, Any]) -> str:
    return _TTL_NOTE.format(logged="some" if r["_log_1h"] else "none")


def _explain_missing_in_bill(r: dict[str, Any], w: _Words, tol: Tolerances, as_of: dt.date) -> str:
    logged, kind, est = r["_logged_qty"], r["usage_kind"], r["estimated_cost_usd"]
    if w.quota:
        return f"logged {_n(logged)} latency-optimized {w.what} of {w.model} but nothing is billed at that tier" + (
            w.quota
        )
    # Unpriced tokens are never shown as "$0.00 estimated" (an unpriced call is not free).
    unpriced = r.get("_unpriced_tokens") or 0
    if est is not None and unpriced < (logged or 0):
        est_txt = f" ({_usd(est)} estimated" + (
            f", {_n(unpriced)} {w.what} without a catalog price)" if unpriced else ")"
        )
    else:
        est_txt = " (no catalog price)" if kind in TOKEN_KINDS or kind == "image" else ""
    head = f"logged {_n(logged)} {w.what} of {w.model}{est_txt} but nothing is billed for this {w.bucket} bucket"
    if _ttl_gap(r):
        return f"{head}: {_ttl_note(r)}"
    if r["date"] > as_of - dt.timedelta(days=tol.billing_lag_days):
        return (
            f"{head}: the bill for {r['date']} may not be final yet (billing lag {tol.billing_lag_days} days as "
            f"of {as_of}), re-check once it settles"
        )
    return (
        f"{head}: check that the billing export covers {_where(r)} and includes this model's product "
        f"(Marketplace rows), and that routing, tier and context tier were parsed the same way"
    )


def _explain_missing_in_logs(r: dict[str, Any], w: _Words, tol: Tolerances, as_of: dt.date) -> str:
    kind, billed, cost = r["usage_kind"], r["_billed_qty"], r["billed_cost_usd"]
    if w.model is None:  # bill usage with no model: Bedrock usage that invocation logs do not record
        return (
            f"{r['_usage_types'] or 'usage without a usage type'} ({_usd(cost)} billed in {_where(r)}) is Bedrock "
            f"usage that invocation logs do not record ({r.get('_notes') or 'classified other'}): review it "
            "separately, it is not a model's token traffic"
        )
    if kind not in TOKEN_KINDS and kind != "image":
        return (
            f"non-token usage of {w.model} billed ({r['_usage_types']}, {billed:,.2f} "
            f"{r['_pricing_units'] or w.what}, {_usd(cost)}) has no counterpart in invocation logs: review it "
            "separately"
        )
    if _ttl_gap(r):
        return (
            f"{_n(billed)} {w.what} of {w.model} billed ({_usd(cost)}) with none logged in this bucket: "
            + _TTL_NOTE.format(logged="none")
        )
    if r["_model_logged"]:
        return (
            f"{_n(billed)} {w.what} of {w.model} billed ({_usd(cost)}) but the logs record none for this "
            f"{w.bucket} bucket in {_where(r)}: check that the logs capture {w.what} and that routing, tier and "
            "context tier are resolved the same way on both sides"
        )
    return (
        f"model billed but never logged ({_n(billed)} {w.what} of {w.model}, {_usd(cost)}): enable model "
        f"invocation logging in {_where(r)}, or find the caller that bypasses the logged path"
    )


def _explain_unmapped_billing(r: dict[str, Any], w: _Words, tol: Tolerances, as_of: dt.date) -> str:
    types = r["_usage_types"] or "(no usage type)"
    return (
        f"usage type {types} could not be mapped to a model ({_usd(r['billed_cost_usd'])} billed, "
        f"{_n(r['_billed_qty'])} {w.what} in {_where(r)}): add it to the billing name map"
    )


def _explain_unpriced(r: dict[str, Any], w: _Words, tol: Tolerances, as_of: dt.date) -> str:
    logged = r["_logged_qty"]
    return (
        f"{_n(r['_unpriced_tokens'] or logged)} of {_n(logged)} logged {w.what} of {w.model} have no catalog price "
        f"(billed {_usd(r['billed_cost_usd'])} for {_n(r['_billed_qty'])}, {w.bucket} in {r['region']}): add the "
        "price to the catalog or the pricing overrides"
    )


def _explain_under_logged(r: dict[str, Any], w: _Words, tol: Tolerances, as_of: dt.date) -> str:
    logged, billed = r["_logged_qty"], r["_billed_qty"]
    more = f"{(billed - logged) / logged * 100:.1f}% more" if logged else "more"
    if _ttl_gap(r):
        return f"billed {more} {w.what} than logged ({_n(billed)} vs {_n(logged)}): " + _ttl_note(r)
    return (
        f"billed {more} {w.what} than logged ({_n(billed)} vs {_n(logged)}{w.folded}, "
        f"{_usd(r['volume_variance_usd'])} of volume): invocation logging may be off in {r['region']} for part "
        "of the day, or calls bypassed the logged accounts"
    )


def _explain_over_logged(r: dict[str, Any], w: _Words, tol: Tolerances, as_of: dt.date) -> str:
    logged, billed = r["_logged_qty"], r["_billed_qty"]
    more = f"{(logged - billed) / billed * 100:.1f}% more" if billed else "more"
    if _ttl_gap(r):
        return f"logged {more} {w.what} than billed ({_n(logged)} vs {_n(billed)}): " + _ttl_note(r)
    if w.quota:
        return f"logged {more} latency-optimized {w.what} than billed ({_n(logged)} vs {_n(billed)})" + w.quota
    return (
        f"logged {more} {w.what} than billed ({_n(logged)} vs {_n(billed)}{w.folded}): the bill for {r['date']} may "
        "be incomplete or filtered, or logged calls were billed to another account or routing"
    )


def _explain_price_mismatch(r: dict[str, Any], w: _Words, tol: Tolerances, as_of: dt.date) -> str:
    kind, b_unit, e_unit = r["usage_kind"], r["_billed_unit"], r["_est_unit"]
    est, cost = r["estimated_cost_usd"], r["billed_cost_usd"]
    pct = f" ({(b_unit / e_unit - 1) * 100:+.1f}%)" if b_unit is not None and e_unit else ""
    advice = (
        "check whether the logs split cache writes by TTL before changing any price"
        if kind in ("cache_write", "cache_write_1h")
        else "check whether the call crossed the long-context threshold before changing any price"
        if r.get("context_tier") == "long"
        else "a price change or a negotiated rate: if the billed rate is right, add a pricing override "
        "(a FOCUS discount is reported as its own line, not here)"
    )
    return (
        f"tokens match but billed rate is {_rate(kind, b_unit)} vs catalog {_rate(kind, e_unit)}{pct}, "
        f"{_vs_estimate(cost - (est or 0.0))} on {_n(r['_logged_qty'])} {w.what}{w.folded}: {advice}"
    )


def _explain_matched(r: dict[str, Any], w: _Words, tol: Tolerances, as_of: dt.date) -> str:
    est, cost = r["estimated_cost_usd"], r["billed_cost_usd"]
    delta_txt = f"{_usd(est)} estimated vs {_usd(cost)} billed" if est is not None else f"{_usd(cost)} billed"
    counts = f"{_n(r['_logged_qty'])} {w.what} logged vs {_n(r['_billed_qty'])} billed{w.folded}"
    return f"{counts}, {delta_txt}: within tolerance"


_EXPLAIN: dict[str, Callable[[dict[str, Any], _Words, Tolerances, dt.date], str]] = {
    "missing_in_bill": _explain_missing_in_bill,
    "missing_in_logs": _explain_missing_in_logs,
    "unmapped_billing": _explain_unmapped_billing,
    "unpriced": _explain_unpriced,
    "under_logged": _explain_under_logged,
    "over_logged": _explain_over_logged,
    "price_mismatch": _explain_price_mismatch,
    "matched": _explain_matched,
}
"""The sentence of each status `_classify_status` decides: what was seen, with the numbers, and what to do."""


# --- Provisioned Throughput -------------------------------------------------------------------------------------


def _pt_logged(priced: Frame) -> pl.DataFrame:
    """Calls on Provisioned Throughput per ARN and day: calls, tokens served, active hours, base model."""
    tokens = pl.sum_horizontal([pl.col(c).fill_null(0) for c in LOG_TOKEN_COLUMNS])
    lazy = as_lazy(priced)
    hour = pl.col("timestamp").dt.hour() if "timestamp" in lazy.collect_schema().names() else pl.lit(None)
    return (
        lazy.filter(is_provisioned_call())
        .with_columns(pl.col("model_id").alias("resource_id"), tokens.alias("_tokens"), hour.alias("_hour"))
        .group_by(*PT_BUCKET)
        .agg(
            pl.len().cast(pl.Int64).alias("_calls"),
            pl.col("_tokens").sum().cast(pl.Int64).alias("served_tokens"),
            *[pl.col(c).fill_null(0).sum().cast(pl.Int64).alias(c) for c in LOG_TOKEN_COLUMNS],
            pl.col("_hour").drop_nulls().n_unique().cast(pl.Int64).alias("_active_hours"),
            pl.col("base_model_id").drop_nulls().first().alias("_logged_model"),
        )
        .with_columns(pl.lit(True).alias("_in_log"))
        .collect()
    )


def _pt_billed(billing: Frame) -> pl.DataFrame:
    """Provisioned Throughput usage rows per ARN and day: model-unit hours and their cost."""
    return (
        usage_rows(billing)
        .filter(pl.col("usage_kind") == PROVISIONED)
        .group_by(*PT_BUCKET)
        .agg(
            pl.col("usage_amount").fill_null(0.0).sum().cast(pl.Float64).alias("provisioned_hours"),
            pl.col("unblended_cost_usd").fill_null(0.0).sum().cast(pl.Float64).alias("billed_cost_usd"),
            pl.col("base_model_id").drop_nulls().first().alias("_billed_model"),
            pl.col("usage_type").drop_nulls().unique().sort().str.join(", ").alias("_usage_types"),
        )
        .with_columns(pl.lit(True).alias("_in_bill"))
        .collect()
    )


def on_demand_equivalent(pt_calls: pl.DataFrame, catalog: Any, default_tier: str = "standard") -> pl.Series:
    """What each row's served tokens would have cost on demand (in-Region, standard), null where unpriced.

    ``pt_calls`` has ``date, region, base_model_id`` and the logged token columns; each row is priced like one
    call of its base model, which is exact because every token bucket is priced linearly.
    """
    from pipeline.pricing import price_invocations  # pricing is only needed when a catalog is passed

    if pt_calls.is_empty():
        return pl.Series("on_demand_equivalent_usd", [], dtype=pl.Float64)
    calls = pt_calls.select(
        pl.col("base_model_id").alias("model_id"),
        "base_model_id",
        pl.lit("in_region").alias("routing"),
        pl.lit(None, dtype=pl.String).alias("inference_profile"),
        "region",
        "date",
        pl.lit(None, dtype=pl.String).alias("service_tier"),
        *LOG_TOKEN_COLUMNS,
        pl.lit(0, dtype=pl.Int64).alias("image_count"),
    )
    priced = price_invocations(calls, catalog, default_tier)
    return priced.select(
        pl.when(pl.col("priced")).then(pl.col("total_cost_usd")).alias("on_demand_equivalent_usd")
    ).to_series()


def provisioned_reconciliation(
    priced: Frame,
    billing: Frame,
    tolerances: Tolerances,
    as_of: dt.date,
    provisioned_models: Mapping[str, ProvisionedModel] | None = None,
    catalog: Any = None,
) -> pl.DataFrame:
    """Provisioned Throughput rows of ``cost_reconciliation``: hours per provisioned-model ARN (``resource_id``).

    The base model comes from the bill's usage type, else ``attribution.provisioned_models``, else the calls.
    ``matched`` when billed hours meet calls on that ARN; ``idle_capacity`` when hours are billed and no call used
    them; ``missing_in_bill`` for calls on an ARN the bill does not show (yet).
    """
    configured = {arn: m.model_id for arn, m in (provisioned_models or {}).items()}
    logged, billed = _pt_logged(priced), _pt_billed(billing)
    if logged.is_empty() and billed.is_empty():
        return schemas.empty(schemas.COST_RECONCILIATION)
    joined = logged.join(billed, on=list(PT_BUCKET), how="full", coalesce=True, nulls_equal=True).with_columns(
        pl.col("_in_log").fill_null(False),
        pl.col("_in_bill").fill_null(False),
        pl.col("_calls").fill_null(0),
        pl.col("served_tokens").fill_null(0),
        *[pl.col(c).fill_null(0) for c in LOG_TOKEN_COLUMNS],
        pl.col("_active_hours").fill_null(0),
        pl.col("billed_cost_usd").fill_null(0.0),
        pl.col("provisioned_hours").fill_null(0.0),
        pl.coalesce(
            pl.col("_billed_model"),
            pl.col("resource_id").replace_strict(configured, default=None, return_dtype=pl.String),
            pl.col("_logged_model"),
        ).alias("base_model_id"),
    )
    if catalog is not None:
        joined = joined.with_columns(on_demand_equivalent(joined, catalog))
    else:
        joined = joined.with_columns(pl.lit(None, dtype=pl.Float64).alias("on_demand_equivalent_usd"))
    joined = joined.with_columns(
        pl.when(pl.col("served_tokens") > 0)
        .then(pl.col("billed_cost_usd") / pl.col("served_tokens") * 1e6)
        .alias("effective_usd_per_1m_tokens"),
    )
    statuses, explanations = [], []
    for r in joined.iter_rows(named=True):
        status, text = _classify_provisioned(r, tolerances, as_of)
        statuses.append(status)
        explanations.append(text)
    out = joined.with_columns(
        pl.lit(PROVISIONED).alias("usage_kind"),
        pl.lit(PROVISIONED).alias("routing"),
        pl.lit(PROVISIONED).alias("tier"),
        pl.lit("standard").alias("context_tier"),
        pl.col("served_tokens").alias("logged_tokens"),
        pl.lit(None, dtype=pl.Int64).alias("billed_tokens"),
        pl.lit(None, dtype=pl.Float64).alias("estimated_cost_usd"),
        pl.Series("status", statuses, dtype=pl.String),
        pl.Series("explanation", explanations, dtype=pl.String),
    )
    return schemas.conform(out, schemas.COST_RECONCILIATION)


def _classify_provisioned(r: dict[str, Any], tol: Tolerances, as_of: dt.date) -> tuple[str, str]:
    arn, model = r["resource_id"], r["base_model_id"] or "an unknown base model"
    hours, cost, calls, served = r["provisioned_hours"], r["billed_cost_usd"], r["_calls"], r["served_tokens"]
    if r["_in_log"] and not r["_in_bill"]:
        lag = r["date"] > as_of - dt.timedelta(days=tol.billing_lag_days)
        why = (
            f"the bill for {r['date']} may not be final yet (billing lag {tol.billing_lag_days} days)"
            if lag
            else "check that the billing export includes resource ids (INCLUDE_RESOURCES) and this account"
        )
        return "missing_in_bill", (
            f"{_n(calls)} calls ({_n(served)} tokens) logged on provisioned model {arn} ({model}) but no "
            f"model-unit hours are billed for it: {why}"
        )
    head = f"provisioned model {arn} ({model}) billed {hours:,.1f} model-unit hours ({_usd(cost)})"
    if not r["_in_log"]:
        return "idle_capacity", (
            f"{head} and no call used it in {_where(r)}: the capacity sat idle all day (or invocation logging is "
            "off); consider a smaller commitment or releasing it"
        )
    idle = hours * max(0, 24 - r["_active_hours"]) / 24 if r["_active_hours"] else 0.0
    eff = r["effective_usd_per_1m_tokens"]
    od = r["on_demand_equivalent_usd"]
    if od is not None and served > 0:
        factor = cost / od if od > 0 else None
        verdict = (
            f"on demand the same tokens would cost {_usd(od)} ({_usd(od / served * 1e6)} per 1M)"
            + (f", so the commitment costs {factor:,.1f}× on-demand" if factor is not None else "")
            + (": it is paying off" if od >= cost else ": it is not paying off at this volume")
        )
    else:
        verdict = "no on-demand price to compare with"
    idle_txt = f"; about {idle:,.1f} of the hours had no call ({r['_active_hours']} active hours)" if idle else ""
    return "matched", (
        f"{head} served {_n(calls)} calls and {_n(served)} tokens, "
        f"{'n/a' if eff is None else _usd(eff)} per 1M tokens{idle_txt}; {verdict}"
    )


def reconcile(
    priced: Frame,
    billing: Frame,
    tolerances: Tolerances,
    as_of: dt.date | None = None,
    *,
    provisioned_models: Mapping[str, ProvisionedModel] | None = None,
    catalog: Any = None,
) -> pl.DataFrame:
    """Build ``cost_reconciliation`` (see the module docstring for keys, variances, tolerance and statuses).

    ``as_of`` is the day the reconciliation is judged from (for the billing lag); it defaults to today (UTC).
    ``provisioned_models`` (config ``attribution.provisioned_models``) names the base model of a provisioned-model
    ARN; ``catalog`` (a `PriceCatalog`) prices the tokens served on Provisioned Throughput at on-demand rates.
    """
    if as_of is None:
        as_of = dt.datetime.now(dt.UTC).date()
    # Imported here: the principal module builds on this one's helpers.
    from pipeline.reconciliation import principals, whole_bill

    # Mantle and guardrail rows never enter the token match: they reconcile in their own buckets (whole_bill).
    billing, mantle, guardrails = whole_bill.split_whole_bill(billing)
    by: tuple[str, ...] = ()
    priced_by: Frame = priced
    billing_by: Frame = billing
    if principals.bill_has_principals(billing):  # CUR 2.0 with IAM principal data: the key gains the principal
        priced_by, billing_by = principals.split_by_principal(priced, billing)
        by = (principals.COLUMN,)
    billed = _billed_side(billing_by, by)
    logged = fold_unsplit_geo(_logged_side(priced_by, by), billed, by)
    joined = _join_sides(logged, billed, by)
    statuses: list[str] = []
    explanations: list[str] = []
    for row in joined.iter_rows(named=True):
        status, explanation = _classify(row, tolerances, as_of)
        if by:
            lag = row["date"] > as_of - dt.timedelta(days=tolerances.billing_lag_days)
            explanation = principals.explain(row, status, explanation, lag_pending=lag)
        statuses.append(status)
        explanations.append(explanation)
    batch = (pl.col("tier") == "batch").fill_null(False)
    tokens = joined.with_columns(
        pl.Series("status", statuses, dtype=pl.String),
        pl.Series("explanation", explanations, dtype=pl.String),
        pl.coalesce(
            pl.col("_spend_kind") if "_spend_kind" in joined.columns else pl.lit(None, dtype=pl.String),
            pl.when(batch).then(pl.lit("batch")).otherwise(pl.lit("on_demand")),
        ).alias("spend_kind"),
        pl.lit("runtime").alias("endpoint"),
    )
    pt = provisioned_reconciliation(priced, billing, tolerances, as_of, provisioned_models, catalog).with_columns(
        pl.lit("provisioned").alias("spend_kind"), pl.lit("runtime").alias("endpoint")
    )
    parts = [
        schemas.conform(tokens, schemas.COST_RECONCILIATION),
        pt,
        whole_bill.mantle_reconciliation(mantle),
        whole_bill.guardrail_reconciliation(priced, guardrails, tolerances, as_of),
    ]
    out = pl.concat(parts, how="vertical")
    return out.sort([*KEYS, "endpoint", "resource_id", *by], nulls_last=True)


def _gap_usd() -> pl.Expr:
    """Size of a gap in dollars: the cost delta, else (unpriced, hours) the billed or estimated cost."""
    return pl.coalesce(
        pl.col("cost_delta_usd"), pl.col("billed_cost_usd"), pl.col("estimated_cost_usd"), pl.lit(0.0)
    ).abs()


def reconciliation_summary(recon: pl.DataFrame, top: int = 5) -> dict[str, Any]:
    """JSON-ready summary for asset metadata: share of billed cost that matched, counts, the largest gaps."""
    billed = float(recon["billed_cost_usd"].fill_null(0.0).sum()) if recon.height else 0.0
    matched = recon.filter(pl.col("status") == "matched")
    matched_billed = float(matched["billed_cost_usd"].fill_null(0.0).sum()) if matched.height else 0.0
    counts = {s: 0 for s in STATUSES}
    for status, n in recon.group_by("status").len().iter_rows():
        counts[status] = int(n)
    gaps = (
        recon.filter(pl.col("status") != "matched")
        .with_columns(_gap_usd().alias("gap_usd"))
        .sort("gap_usd", descending=True)
        .head(top)
    )
    largest = [
        {
            "date": str(r["date"]),
            "account_id": r["account_id"],
            "region": r["region"],
            "base_model_id": r["base_model_id"],
            "usage_kind": r["usage_kind"],
            "status": r["status"],
            "gap_usd": round(r["gap_usd"], 6),
            "explanation": r["explanation"],
        }
        for r in gaps.iter_rows(named=True)
    ]
    return {
        "rows": recon.height,
        "billed_cost_usd": billed,
        "estimated_cost_usd": float(recon["estimated_cost_usd"].fill_null(0.0).sum()) if recon.height else 0.0,
        "matched_billed_cost_usd": matched_billed,
        "matched_share_of_billed_cost": (matched_billed / billed) if billed else None,
        "status_counts": counts,
        "largest_gaps": largest,
    }


def gaps_over_tolerance(recon: pl.DataFrame, as_of: dt.date, lag_days: int) -> pl.DataFrame:
    """Rows that should fail an asset check: not ``matched``, on days whose bill is final (≤ as_of − lag_days).

    Newer days are left out: their bill is still arriving, so a gap there is expected and would only cry wolf.
    ``idle_capacity`` is left out too: unused Provisioned Throughput is a finding about spend, not a disagreement
    between the logs and the bill.
    """
    final_through = as_of - dt.timedelta(days=lag_days)
    from pipeline.reconciliation.whole_bill import by_design

    expected = pl.col("status").is_in(["matched", "idle_capacity"]) | by_design(recon)
    return recon.filter(~expected & (pl.col("date") <= final_through))
