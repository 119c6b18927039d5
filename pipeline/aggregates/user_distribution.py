"""`daily_user_cost_distribution`: cost per user as a distribution, per day × cost center × application.

"Who are the heavy users?" is a question about the shape of spend, not its total: a median user at cents and a
p99 user at dollars call for a quota, not a budget. Per group:

* ``users`` — distinct attributed users (``unattributed`` is not a user: its cost is in ``unattributed_cost_usd``
  and left out of the distribution, which would otherwise show one giant "user").
* ``p50/p90/p99/max_cost_per_user_usd`` — over users with at least one priced call, linear interpolation between
  the two nearest users (polars ``quantile(..., "linear")``, numpy's default). A user's cost is the catalog
  estimate of their priced calls; unpriced calls are counted in ``unpriced_invocations``, never taken as $0.
* ``top_1pct_share`` — cost share of the top ⌈1 % × users⌉ users (``top_1pct_users``, at least one);
  ``top_10_share`` — of the top 10 users (all of them when there are fewer), both of the attributed users' cost.
* ``top_user`` / ``top_user_cost_usd`` and ``top_users`` ("name $cost; …", the five largest), ties by name.
"""

from __future__ import annotations

import polars as pl

from pipeline import schemas
from pipeline.vocabulary import Frame, as_lazy

GRAIN: tuple[str, ...] = ("date", "cost_center", "application")
TOP_NAMES = 5
TOP_N = 10
TOP_SHARE = 0.01


def _usd(cost: pl.Expr) -> pl.Expr:
    """Dollars as text for the human-readable `top_users`: "12.30", or "0.0042" below a dollar."""

    def fixed(decimals: int) -> pl.Expr:
        scale = 10**decimals
        units = (cost * scale).round().cast(pl.Int64)
        return pl.format("{}.{}", units // scale, (units % scale).cast(pl.String).str.zfill(decimals))

    return pl.when(cost >= 1).then(fixed(2)).otherwise(fixed(4))


def _per_user(priced: Frame) -> pl.LazyFrame:
    lf = priced.lazy() if isinstance(priced, pl.DataFrame) else priced
    ok = pl.col("priced").fill_null(False)
    return (
        lf.with_columns(pl.col(c).fill_null(schemas.UNATTRIBUTED) for c in ("user", "cost_center", "application"))
        .group_by(*GRAIN, "user")
        .agg(
            pl.len().cast(pl.Int64).alias("invocations"),
            (~ok).sum().cast(pl.Int64).alias("unpriced_invocations"),
            ok.sum().cast(pl.Int64).alias("_priced_calls"),
            pl.col("total_cost_usd").filter(ok).fill_null(0.0).sum().cast(pl.Float64).alias("cost"),
        )
    )


def _share(top: pl.Expr) -> pl.Expr:
    """Cost share of the users selected by `top` within the group (null when the group's cost is 0)."""
    total = pl.col("_sum").first()
    return pl.when(total > 0).then(pl.col("cost").filter(top).sum() / total)


def user_cost_distribution(priced: Frame) -> pl.DataFrame:
    """Build the table from a day of `priced_invocations` (see the module docstring for each column)."""
    grain = list(GRAIN)
    users = _per_user(priced).collect(engine="streaming")
    totals = users.group_by(grain).agg(
        pl.col("invocations").sum(),
        pl.col("unpriced_invocations").sum(),
        pl.col("cost").sum().alias("total_cost_usd"),
        pl.col("cost").filter(pl.col("user") == schemas.UNATTRIBUTED).sum().alias("unattributed_cost_usd"),
        (pl.col("user") != schemas.UNATTRIBUTED).sum().cast(pl.Int64).alias("users"),
    )
    ranked = (
        users.filter((pl.col("user") != schemas.UNATTRIBUTED) & (pl.col("_priced_calls") > 0))
        .sort([*grain, "cost", "user"], descending=[False] * len(grain) + [True, False])
        .with_columns(
            (pl.int_range(pl.len()).over(grain) + 1).alias("_rank"),
            pl.len().over(grain).alias("_n"),
            pl.col("cost").sum().over(grain).alias("_sum"),
        )
        .with_columns(
            (pl.col("_n").cast(pl.Float64) * TOP_SHARE).ceil().clip(lower_bound=1).cast(pl.Int64).alias("_top_k")
        )
    )
    dist = ranked.group_by(grain).agg(
        pl.col("cost").mean().alias("mean_cost_per_user_usd"),
        pl.col("cost").quantile(0.5, "linear").alias("p50_cost_per_user_usd"),
        pl.col("cost").quantile(0.9, "linear").alias("p90_cost_per_user_usd"),
        pl.col("cost").quantile(0.99, "linear").alias("p99_cost_per_user_usd"),
        pl.col("cost").max().alias("max_cost_per_user_usd"),
        pl.col("_top_k").first().alias("top_1pct_users"),
        _share(pl.col("_rank") <= pl.col("_top_k")).alias("top_1pct_share"),
        _share(pl.col("_rank") <= TOP_N).alias("top_10_share"),
        pl.col("user").first().alias("top_user"),
        pl.col("cost").first().alias("top_user_cost_usd"),
        pl.format("{} ${}", pl.col("user"), _usd(pl.col("cost")))
        .filter(pl.col("_rank") <= TOP_NAMES)
        .str.join("; ")
        .alias("top_users"),
    )
    out = totals.join(dist, on=grain, how="left", nulls_equal=True).sort(grain)
    return schemas.conform(out, schemas.DAILY_USER_COST_DISTRIBUTION)


def _number(value: object) -> float:
    """A numeric polars scalar (a sum or max of a Float64 column; null when empty) as a float."""
    return float(value) if isinstance(value, int | float) else 0.0


def day_summary(dist: pl.DataFrame, priced: Frame) -> dict[str, float | int]:
    """Numbers for the asset's metadata (plotted across partitions in the UI): the whole day's user distribution."""
    return {
        "groups": dist.height,
        "total_cost_usd": float(dist["total_cost_usd"].sum() or 0.0),
        **users_summary(priced),
    }


def users_summary(priced: Frame) -> dict[str, float | int]:
    """The day's cost per user over all groups: users, percentiles, the top 1 % and top 10 shares. Users are
    grouped by a 64-bit hash of their name (the figures need no names), so a day of millions of users holds
    16 bytes per user, not their strings."""
    ok = pl.col("priced").fill_null(False)
    users = (
        as_lazy(priced)
        .select("user", "priced", "total_cost_usd")
        .filter(pl.col("user").fill_null(schemas.UNATTRIBUTED) != schemas.UNATTRIBUTED)
        .group_by(pl.col("user").hash(seed=0).alias("_user"))
        .agg(pl.col("total_cost_usd").filter(ok).fill_null(0.0).sum().alias("cost"), ok.sum().alias("_priced"))
        .filter(pl.col("_priced") > 0)
        .collect(engine="streaming")
    )
    cost = users["cost"].sort(descending=True)
    total = float(cost.sum() or 0.0)
    k = max(1, -(-cost.len() // 100))
    return {
        "users": users.height,
        "p50_cost_per_user_usd": float(cost.quantile(0.5, "linear") or 0.0),
        "p90_cost_per_user_usd": float(cost.quantile(0.9, "linear") or 0.0),
        "p99_cost_per_user_usd": float(cost.quantile(0.99, "linear") or 0.0),
        "max_cost_per_user_usd": _number(cost.max()),
        "top_1pct_share": _number(cost.head(k).sum()) / total if total > 0 else 0.0,
        "top_10_share": _number(cost.head(TOP_N).sum()) / total if total > 0 else 0.0,
    }
