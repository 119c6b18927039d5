"""`cost_reconciliation`: invocation logs against the bill, per bucket, tokens first and dollars second.

The bill carries no request ids, so the two sides meet at the grain both can produce (spec §5.2): keys ``date,
account_id, region, base_model_id, usage_kind, routing, tier``. ``routing`` and ``tier`` stay in the key because they
change the unit price; ``region`` is the source Region on both sides.

Logged side: priced invocations summed per bucket and unpivoted into one row per token kind (input, output,
cache_read, cache_write) with ``routing = pricing_routing`` and ``tier = pricing_tier`` (for an unpriced call
without them: its logged routing when that is a billed one, and tier ``standard``); image counts become an
``image`` row. Calls on Provisioned Throughput are not priced per token, so they form one ``provisioned`` row per
model (routing and tier both ``provisioned``) and are reconciled as billed hours, never against tokens. Kinds with
no logged tokens produce no row (a model without caching must not look like missing cache spend).

Billed side: usage rows only (``Usage``, ``DiscountedUsage``, ``SavingsPlanCoveredUsage``; FOCUS ``Usage``) at
unblended (list) cost, which is what the catalog estimate is comparable to. Tax, credit, refund and discount rows
are not usage and are reported beside the match by `non_usage_summary`. Provisioned rows get routing and tier
``provisioned`` to meet the logged side; their quantity is hours (``usage_amount``).

Per row (a side that has no row counts as 0 tokens and $0):

* ``cost_delta_usd`` = billed − estimated; ``cost_delta_pct`` = delta / billed as a fraction (0.1 = 10 %, the
  same scale as the tolerances), null when billed is 0.
* ``volume_variance_usd`` = (billed − logged tokens) × billed unit price; ``price_variance_usd`` = (billed − catalog
  unit price) × logged tokens. They add up to the delta. When nothing is billed the catalog price stands in for the
  billed one, so the whole gap is volume.
* Tolerance: a bucket matches when |token delta| ≤ ``tokens_pct`` × billed tokens and |cost delta| ≤
  max(``cost_usd``, ``cost_pct`` × |billed cost|). Both are inclusive, with 1e-9 of slack for float noise.
* Status, first match wins: ``unmapped_billing`` (bill rows whose model is unknown), ``missing_in_bill`` (logged,
  nothing billed; for days newer than as_of − ``billing_lag_days`` the explanation says the bill may not be final),
  ``missing_in_logs`` (billed usage of a mapped model, nothing logged), ``unpriced`` (logged tokens without a price
  that the bill does have), ``under_logged`` / ``over_logged`` (token gap beyond tolerance), ``price_mismatch``
  (tokens agree, dollars do not: a rate difference), else ``matched``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from pipeline import schemas
from pipeline.config import Tolerances

Frame = pl.DataFrame | pl.LazyFrame

KEYS: tuple[str, ...] = ("date", "account_id", "region", "base_model_id", "usage_kind", "routing", "tier")
MODEL_BUCKET: tuple[str, ...] = ("date", "account_id", "region", "base_model_id")
USAGE_LINE_ITEM_TYPES: frozenset[str] = frozenset({"Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"})
"""Line item types that are usage; FOCUS ``ChargeCategory = Usage`` is mapped to ``Usage`` by the reader."""

TOKEN_KINDS: dict[str, tuple[str, str]] = {
    "input": ("input_tokens", "input_cost_usd"),
    "output": ("output_tokens", "output_cost_usd"),
    "cache_read": ("cache_read_input_tokens", "cache_read_cost_usd"),
    "cache_write": ("cache_write_input_tokens", "cache_write_cost_usd"),
}
PROVISIONED = "provisioned"
BILLED_ROUTINGS: tuple[str, ...] = ("in_region", "geo", "global")
STATUSES: tuple[str, ...] = (
    "matched",
    "under_logged",
    "over_logged",
    "price_mismatch",
    "missing_in_bill",
    "missing_in_logs",
    "unmapped_billing",
    "unpriced",
)
EPS = 1e-9
"""Slack added to every tolerance so that a delta exactly on the edge is not lost to float rounding."""


def as_lazy(frame: Frame) -> pl.LazyFrame:
    """Accept either frame kind, so callers can pass a scan or an in-memory frame."""
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def usage_rows(billing: Frame) -> pl.LazyFrame:
    """The bill's usage rows: what the logs can explain. Everything else is an adjustment (`non_usage_summary`)."""
    return as_lazy(billing).filter(pl.col("line_item_type").is_in(list(USAGE_LINE_ITEM_TYPES)))


def non_usage_summary(billing: Frame) -> pl.DataFrame:
    """Tax, credits, refunds, discounts and fees per ``date, account_id, line_item_type``, kept out of the match.

    Reported beside the reconciliation so that invoice total = usage + these can be checked, and so that a credit
    or an EDP discount never shows up as a "price mismatch" on a model.
    """
    return (
        as_lazy(billing)
        .filter(~pl.col("line_item_type").is_in(list(USAGE_LINE_ITEM_TYPES)).fill_null(True))
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


def _pricing_routing() -> pl.Expr:
    """The billed routing of a call; an unpriced call may lack it, then its logged routing stands in if billable."""
    logged = pl.when(pl.col("routing").is_in(list(BILLED_ROUTINGS))).then(pl.col("routing"))
    return pl.coalesce(pl.col("pricing_routing"), logged)


def _pricing_tier() -> pl.Expr:
    """The billed tier of a call; ``standard`` (the on-demand default) when pricing could not tell."""
    return pl.coalesce(pl.col("pricing_tier"), pl.lit("standard"))


def _logged_side(priced: Frame, by: tuple[str, ...] = ()) -> pl.DataFrame:
    """One row per logged bucket and kind, with ``_qty`` (tokens, images or calls) and the estimate."""
    priced_flag = pl.col("priced").fill_null(False)
    is_pt = ((pl.col("routing") == PROVISIONED) | (pl.col("pricing_routing") == PROVISIONED)).fill_null(False)
    token_total = pl.sum_horizontal([pl.col(tok).fill_null(0) for tok, _ in TOKEN_KINDS.values()])
    aggs: list[pl.Expr] = [pl.len().cast(pl.Int64).alias("_calls"), token_total.sum().alias("_all_tokens")]
    for kind, (tok, cost) in TOKEN_KINDS.items():
        tokens = pl.col(tok).fill_null(0)
        aggs += [
            tokens.sum().alias(f"{kind}__qty"),
            tokens.filter(~priced_flag).sum().alias(f"{kind}__unpriced"),
            pl.col(cost).filter(priced_flag).fill_null(0.0).sum().alias(f"{kind}__cost"),
            priced_flag.any().alias(f"{kind}__any_priced"),
        ]
    aggs.append(pl.col("image_count").fill_null(0).sum().alias("image__qty"))
    grouped = (
        as_lazy(priced)
        .with_columns(
            logged_model_key().alias("base_model_id"),
            is_pt.alias("_pt"),
            pl.when(is_pt).then(pl.lit(PROVISIONED)).otherwise(_pricing_routing()).alias("routing"),
            pl.when(is_pt).then(pl.lit(PROVISIONED)).otherwise(_pricing_tier()).alias("tier"),
        )
        .group_by(*MODEL_BUCKET, "routing", "tier", "_pt", *by)
        .agg(aggs)
        .collect(engine="streaming")
    )
    base = [*MODEL_BUCKET, "routing", "tier", *by]
    token_rows = grouped.filter(~pl.col("_pt"))
    parts = []
    for kind in TOKEN_KINDS:
        parts.append(
            token_rows.select(
                *base,
                pl.lit(kind).alias("usage_kind"),
                pl.col(f"{kind}__qty").cast(pl.Int64).alias("_logged_qty"),
                pl.col(f"{kind}__qty").cast(pl.Int64).alias("logged_tokens"),
                pl.col(f"{kind}__unpriced").cast(pl.Int64).alias("_unpriced_tokens"),
                pl.when(pl.col(f"{kind}__any_priced"))
                .then(pl.col(f"{kind}__cost"))
                .otherwise(None)
                .cast(pl.Float64)
                .alias("estimated_cost_usd"),
                pl.col("_calls"),
            ).filter(pl.col("_logged_qty") > 0)
        )
    parts.append(
        token_rows.select(
            *base,
            pl.lit("image").alias("usage_kind"),
            pl.col("image__qty").cast(pl.Int64).alias("_logged_qty"),
            pl.lit(None, dtype=pl.Int64).alias("logged_tokens"),
            pl.lit(0, dtype=pl.Int64).alias("_unpriced_tokens"),
            pl.lit(None, dtype=pl.Float64).alias("estimated_cost_usd"),
            pl.col("_calls"),
        ).filter(pl.col("_logged_qty") > 0)
    )
    parts.append(
        grouped.filter(pl.col("_pt")).select(
            *base,
            pl.lit(PROVISIONED).alias("usage_kind"),
            pl.col("_calls").alias("_logged_qty"),
            pl.col("_all_tokens").cast(pl.Int64).alias("logged_tokens"),
            pl.lit(0, dtype=pl.Int64).alias("_unpriced_tokens"),
            pl.lit(None, dtype=pl.Float64).alias("estimated_cost_usd"),
            pl.col("_calls"),
        )
    )
    return pl.concat(parts, how="vertical").with_columns(pl.lit(True).alias("_in_log"))


def _billed_side(billing: Frame, by: tuple[str, ...] = ()) -> pl.DataFrame:
    """Usage rows summed per bucket; ``_billed_qty`` is tokens for token kinds, else the usage amount."""
    is_pt = (pl.col("usage_kind") == PROVISIONED).fill_null(False)
    token_kind = pl.col("usage_kind").is_in(list(TOKEN_KINDS)).fill_null(False)
    return (
        usage_rows(billing)
        .with_columns(
            pl.when(is_pt).then(pl.lit(PROVISIONED)).otherwise(pl.col("routing")).alias("routing"),
            pl.when(is_pt).then(pl.lit(PROVISIONED)).otherwise(pl.col("tier")).alias("tier"),
        )
        .group_by(*KEYS, *by)
        .agg(
            pl.when(pl.col("tokens").is_not_null().any()).then(pl.col("tokens").sum()).alias("_billed_tokens"),
            pl.col("usage_amount").fill_null(0.0).sum().alias("_billed_amount"),
            pl.col("unblended_cost_usd").fill_null(0.0).sum().cast(pl.Float64).alias("billed_cost_usd"),
            pl.col("usage_type").drop_nulls().unique().sort().str.join(", ").alias("_usage_types"),
            pl.col("pricing_unit").drop_nulls().unique().sort().str.join(", ").alias("_pricing_units"),
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


def _join_sides(logged: pl.DataFrame, billed: pl.DataFrame, by: tuple[str, ...] = ()) -> pl.DataFrame:
    models_logged = logged.select(*MODEL_BUCKET, *by).unique().with_columns(pl.lit(True).alias("_model_logged"))
    token_kind = pl.col("usage_kind").is_in(list(TOKEN_KINDS))
    priced_kind = token_kind | (pl.col("usage_kind") == "image")
    joined = (
        logged.join(billed, on=[*KEYS, *by], how="full", coalesce=True, nulls_equal=True)
        .join(models_logged, on=[*MODEL_BUCKET, *by], how="left", nulls_equal=True)
        .with_columns(
            pl.col("_in_log").fill_null(False),
            pl.col("_in_bill").fill_null(False),
            pl.col("_model_logged").fill_null(False),
            pl.col("_unpriced_tokens").fill_null(0),
            pl.col("_calls").fill_null(0),
        )
        .with_columns(
            # An absent side is 0 tokens and $0; non-token kinds keep null tokens.
            pl.when(pl.col("_in_log"))
            .then(pl.col("logged_tokens"))
            .when(token_kind | (pl.col("usage_kind") == PROVISIONED))
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


def _rate_1k(unit_price: float | None) -> str:
    if unit_price is None:
        return "n/a"
    per_1k = unit_price * 1000
    return f"${per_1k:.4f}/1K" if per_1k >= 0.001 else f"${per_1k:.6f}/1K"


def _what(kind: str) -> str:
    if kind in TOKEN_KINDS:
        return f"{kind.replace('_', '-')} tokens"
    return {"image": "images", PROVISIONED: "hours"}.get(kind, "units")


def _where(r: dict[str, Any]) -> str:
    return f"account {r['account_id']} in {r['region']}"


def _classify(r: dict[str, Any], tol: Tolerances, as_of: dt.date) -> tuple[str, str]:
    """Status and an actionable one-sentence explanation for one joined bucket."""
    kind = r["usage_kind"]
    what = _what(kind)
    logged, billed = r["_logged_qty"], r["_billed_qty"]
    est, cost = r["estimated_cost_usd"], r["billed_cost_usd"]
    model = r["base_model_id"]

    if r["_in_bill"] and model is None:
        types = r["_usage_types"] or "(no usage type)"
        return "unmapped_billing", (
            f"usage type {types} could not be mapped to a model ({_usd(cost)} billed, {_n(billed)} {what} in "
            f"{_where(r)}): add it to the billing name map"
        )

    if r["_in_log"] and not r["_in_bill"]:
        amount = f"{_n(r['_calls'])} provisioned-throughput calls" if kind == PROVISIONED else f"{_n(logged)} {what}"
        if est is not None:
            est_txt = f" ({_usd(est)} estimated)"
        else:
            est_txt = " (no catalog price)" if kind in TOKEN_KINDS else ""
        head = f"logged {amount} of {model}{est_txt} but nothing is billed for this bucket"
        if r["date"] > as_of - dt.timedelta(days=tol.billing_lag_days):
            return "missing_in_bill", (
                f"{head}: the bill for {r['date']} may not be final yet (billing lag {tol.billing_lag_days} days as "
                f"of {as_of}), re-check once it settles"
            )
        return "missing_in_bill", (
            f"{head}: check that the billing export covers {_where(r)} and includes this model's product "
            f"(Marketplace rows), and that the {r['routing']}/{r['tier']} routing and tier were parsed the same way"
        )

    if r["_in_bill"] and not r["_in_log"]:
        if kind == PROVISIONED:
            return "missing_in_logs", (
                f"provisioned throughput for {model} billed {billed:,.1f} hours ({_usd(cost)}) with no invocation "
                f"logged against it in {_where(r)}: the capacity sat idle or logging is off; consider releasing it"
            )
        if kind not in TOKEN_KINDS and kind != "image":
            return "missing_in_logs", (
                f"non-token usage of {model} billed ({r['_usage_types']}, {billed:,.2f} {r['_pricing_units'] or what}, "
                f"{_usd(cost)}) has no counterpart in invocation logs: review it separately"
            )
        if r["_model_logged"]:
            return "missing_in_logs", (
                f"{_n(billed)} {what} of {model} billed ({_usd(cost)}) but the logs record none for this "
                f"{r['routing']}/{r['tier']} bucket in {_where(r)}: check that the logs capture {what} and that "
                "routing and tier are resolved the same way on both sides"
            )
        return "missing_in_logs", (
            f"model billed but never logged ({_n(billed)} {what} of {model}, {_usd(cost)}): enable model invocation "
            f"logging in {_where(r)}, or find the caller that bypasses the logged path"
        )

    if kind == PROVISIONED:
        return "matched", (
            f"provisioned throughput billed {billed:,.1f} hours ({_usd(cost)}) and {_n(r['_calls'])} calls logged "
            "against it: hours are reconciled by presence, not tokens"
        )

    if kind == "image" and est is None and (logged or 0) > 0:
        return "unpriced", (
            f"{_n(logged)} images of {model} logged but the catalog has no per-image price for them (billed "
            f"{_usd(cost)} for {_n(billed)} in {r['region']}): image prices depend on size and quality; add a "
            "per-image override"
        )
    if r["_unpriced_tokens"] > 0:
        return "unpriced", (
            f"{_n(r['_unpriced_tokens'])} of {_n(logged)} logged {what} of {model} have no catalog price "
            f"(billed {_usd(cost)} for {_n(billed)}, {r['routing']}/{r['tier']} in {r['region']}): add the price to "
            "the catalog or the pricing overrides"
        )

    token_tol = tol.tokens_pct * billed + EPS
    gap = billed - logged
    if gap > token_tol:
        more = f"{gap / logged * 100:.1f}% more" if logged else "more"
        return "under_logged", (
            f"billed {more} {what} than logged ({_n(billed)} vs {_n(logged)}, {_usd(r['volume_variance_usd'])} of "
            f"volume): invocation logging may be off in {r['region']} for part of the day, or calls bypassed the "
            f"logged accounts"
        )
    if -gap > token_tol:
        more = f"{-gap / billed * 100:.1f}% more" if billed else "more"
        return "over_logged", (
            f"logged {more} {what} than billed ({_n(logged)} vs {_n(billed)}): the bill for {r['date']} may be "
            f"incomplete or filtered, or logged calls were billed to another account or routing"
        )

    if est is not None and abs(cost - est) > max(tol.cost_usd, tol.cost_pct * abs(cost)) + EPS:
        return "price_mismatch", (
            f"tokens match but billed rate is {_rate_1k(r['_billed_unit'])} vs catalog {_rate_1k(r['_est_unit'])} "
            f"({_usd(cost - est)} over {_n(logged)} {what}): check for a price change or a negotiated rate and add a "
            "pricing override"
        )

    delta_txt = f"{_usd(est)} estimated vs {_usd(cost)} billed" if est is not None else f"{_usd(cost)} billed"
    return "matched", f"{_n(logged)} {what} logged vs {_n(billed)} billed, {delta_txt}: within tolerance"


def reconcile(
    priced: Frame,
    billing: Frame,
    tolerances: Tolerances,
    as_of: dt.date | None = None,
) -> pl.DataFrame:
    """Build ``cost_reconciliation`` (see the module docstring for keys, variances, tolerance and statuses).

    ``as_of`` is the day the reconciliation is judged from (for the billing lag); it defaults to today (UTC).
    """
    if as_of is None:
        as_of = dt.datetime.now(dt.UTC).date()
    # Imported here: the principal module builds on this one's helpers.
    from pipeline.reconciliation import principals

    by: tuple[str, ...] = ()
    if principals.bill_has_principals(billing):  # CUR 2.0 with IAM principal data: the key gains the principal
        priced, billing = principals.split_by_principal(priced, billing)
        by = (principals.COLUMN,)
    joined = _join_sides(_logged_side(priced, by), _billed_side(billing, by), by)
    statuses: list[str] = []
    explanations: list[str] = []
    for row in joined.iter_rows(named=True):
        status, explanation = _classify(row, tolerances, as_of)
        if by:
            lag = row["date"] > as_of - dt.timedelta(days=tolerances.billing_lag_days)
            explanation = principals.explain(row, status, explanation, lag_pending=lag)
        statuses.append(status)
        explanations.append(explanation)
    out = joined.with_columns(
        pl.Series("status", statuses, dtype=pl.String),
        pl.Series("explanation", explanations, dtype=pl.String),
    ).sort([*KEYS, *by], nulls_last=True)
    return schemas.conform(out, schemas.COST_RECONCILIATION)


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
    """
    final_through = as_of - dt.timedelta(days=lag_days)
    return recon.filter((pl.col("status") != "matched") & (pl.col("date") <= final_through))
