"""`daily_cache_economics`: is prompt caching paying off? Per day × account × model × application.

A cache write costs more than plain input (5-minute writes 1.25×, 1-hour writes 2× on Anthropic models); each
cached read costs less (0.1×). Caching pays when the prefix written is read often enough before it expires. The
rates come from the price catalog row that priced each call (`price_source` is that row's id; a tier derived from
the standard row carries its multiplier), so long-context and tier prices are the ones actually applied.

Per group (token counts over all calls; money over priced calls only, unpriced calls are counted):

* ``hit_rate`` = cache read tokens / (cache read + uncached input tokens); ``reads_per_write`` = cache read tokens
  / cache write tokens (how many times, on average, a written token was read the same day).
* ``cache_read_uncached_cost_usd`` = read tokens × input rate (what the reads would have cost without the cache);
  ``read_saving_usd`` = that − ``cache_read_cost_usd``.
* ``write_premium_5m_usd`` / ``_1h_usd`` = write cost − written tokens × input rate (what caching added on writing);
  ``net_saving_usd`` = read saving − both premiums (negative: caching costs money).
* ``break_even_reads_5m`` / ``_1h`` = (write rate − input rate) / (input rate − read rate): the reads per written
  token at which a write pays for itself (Anthropic: 0.28 for 5-minute, 1.11 for 1-hour writes).
* The ``*_per_1k_usd`` rates are the catalog rates used, averaged over the group's priced calls.
* ``recommendation``: a sentence where the numbers say something (writes of one TTL not paying back, caching
  losing money, 1-hour writes in a mixed group below their break-even, or paying back); null when the group has no
  cache writes or no prices.

The 1-hour part of cache writes (`cache_write_1h_input_tokens`, `cache_write_1h_cost_usd`) is read when the
invocation tables carry it; otherwise every write counts as a 5-minute write.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline import schemas
from pipeline.pricing import PriceCatalog

Frame = pl.DataFrame | pl.LazyFrame

GRAIN: tuple[str, ...] = ("date", "account_id", "base_model_id", "application")
RATE_COLUMNS: dict[str, str] = {
    "input_per_1k_usd": "_r_in",
    "cache_read_per_1k_usd": "_r_read",
    "cache_write_per_1k_usd": "_r_w5",
    "cache_write_1h_per_1k_usd": "_r_w1h",
}
_DERIVED = r"derived:[a-z_]+=([0-9.]+)x"
"""How `price_source` says a tier price was derived from the standard row (`pipeline.pricing.match`)."""


def _col_or(names: list[str], name: str, default: pl.Expr) -> pl.Expr:
    return pl.col(name) if name in names else default


def catalog_rates(catalog: PriceCatalog) -> pl.DataFrame:
    """Per catalog row id (`price_id`): input, cache read, 5-minute and 1-hour cache write rates per 1k tokens."""
    rows = catalog.rows
    return rows.select(
        pl.col("price_id").alias("_price_id"),
        *[
            (pl.col(col).cast(pl.Float64) if col in rows.columns else pl.lit(None, dtype=pl.Float64)).alias(alias)
            for col, alias in RATE_COLUMNS.items()
        ],
    ).unique("_price_id")


def _fine_groups(priced: Frame) -> pl.LazyFrame:
    """Sums per group and catalog row: tokens of every call, costs and tokens of priced calls."""
    lf = priced.lazy() if isinstance(priced, pl.DataFrame) else priced
    names = lf.collect_schema().names()
    ok = pl.col("priced").fill_null(False)
    cw = pl.col("cache_write_input_tokens").fill_null(0)
    cw_1h = pl.min_horizontal(_col_or(names, "cache_write_1h_input_tokens", pl.lit(0)).fill_null(0), cw)
    cw_1h_cost = _col_or(names, "cache_write_1h_cost_usd", pl.lit(0.0)).fill_null(0.0)
    cr = pl.col("cache_read_input_tokens").fill_null(0)
    inp = pl.col("input_tokens").fill_null(0)
    return (
        lf.with_columns(
            pl.coalesce(pl.col("base_model_id"), pl.col("model_id"), pl.lit(schemas.UNATTRIBUTED)).alias(
                "base_model_id"
            ),
            pl.col("application").fill_null(schemas.UNATTRIBUTED),
        )
        .group_by(*GRAIN, "price_source")
        .agg(
            pl.len().cast(pl.Int64).alias("invocations"),
            (cr > 0).sum().cast(pl.Int64).alias("invocations_with_cache_read"),
            (cw > 0).sum().cast(pl.Int64).alias("invocations_with_cache_write"),
            (~ok).sum().cast(pl.Int64).alias("unpriced_invocations"),
            ok.sum().cast(pl.Int64).alias("_priced_calls"),
            inp.sum().cast(pl.Int64).alias("input_tokens"),
            cr.sum().cast(pl.Int64).alias("cache_read_input_tokens"),
            cw.sum().cast(pl.Int64).alias("cache_write_input_tokens"),
            (cw - cw_1h).sum().cast(pl.Int64).alias("cache_write_5m_input_tokens"),
            cw_1h.sum().cast(pl.Int64).alias("cache_write_1h_input_tokens"),
            cr.filter(ok).sum().cast(pl.Float64).alias("_cr_priced"),
            (cw - cw_1h).filter(ok).sum().cast(pl.Float64).alias("_cw5_priced"),
            cw_1h.filter(ok).sum().cast(pl.Float64).alias("_cw1h_priced"),
            pl.col("cache_read_cost_usd").filter(ok).fill_null(0.0).sum().alias("cache_read_cost_usd"),
            (pl.col("cache_write_cost_usd").fill_null(0.0) - cw_1h_cost)
            .filter(ok)
            .sum()
            .alias("cache_write_5m_cost_usd"),
            cw_1h_cost.filter(ok).sum().cast(pl.Float64).alias("cache_write_1h_cost_usd"),
        )
    )


def _n(x: float) -> str:
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"


def _usd(x: float) -> str:
    """Dollars for a sentence: cents from a dollar up, four decimals below (a day's saving is often cents)."""
    return f"${x:,.2f}" if abs(x) >= 1 else f"${x:.4f}"


def recommendation(r: dict[str, Any]) -> str | None:
    """One sentence on whether caching pays in this group, or None when the numbers cannot say."""
    w5, w1h = r["cache_write_5m_input_tokens"] or 0, r["cache_write_1h_input_tokens"] or 0
    rpw, net = r["reads_per_write"], r["net_saving_usd"]
    be5, be1h = r["break_even_reads_5m"], r["break_even_reads_1h"]
    if not (w5 or w1h) or rpw is None or net is None:
        return None
    if w1h and not w5 and be1h is not None and rpw < be1h:
        text = f"1-hour writes not paying back: {_n(rpw)} reads per write (break-even {_n(be1h)})"
        if be5 is not None and rpw >= be5:
            text += f"; 5-minute writes would break even at {_n(be5)} if the prefix is reused within 5 minutes"
        return text
    if w5 and not w1h and be5 is not None and rpw < be5:
        return (
            f"5-minute writes not paying back: {_n(rpw)} reads per write (break-even {_n(be5)}); "
            "the cached prefix is rarely reused, consider not caching it"
        )
    if net < 0:
        return f"Caching costs more than it saves ({_usd(-net)} net): {_n(rpw)} reads per write"
    if w1h and w5 and be1h is not None and rpw < be1h:
        return (
            f"Caching pays back overall ({_usd(net)} net saving), but at {_n(rpw)} reads per write the 1-hour writes "
            f"do not (break-even {_n(be1h)}): prefer 5-minute writes"
        )
    return f"Caching pays back: {_n(rpw)} reads per write, {_usd(net)} net saving"


def cache_economics(priced: Frame, catalog: PriceCatalog) -> pl.DataFrame:
    """Build ``daily_cache_economics`` from a day of `priced_invocations` and the catalog that priced it."""
    rates = catalog_rates(catalog).lazy()
    mult = pl.col("price_source").str.extract(_DERIVED, 1).cast(pl.Float64, strict=False).fill_null(1.0).alias("_mult")
    price_id = pl.col("price_source").str.replace(r" derived:.*$", "").alias("_price_id")
    fine = (
        _fine_groups(priced)
        .with_columns(price_id, mult)
        .join(rates, on="_price_id", how="left")
        .with_columns(*[(pl.col(a) * pl.col("_mult")).alias(a) for a in RATE_COLUMNS.values()])
        .with_columns(
            (pl.col("_cr_priced") * pl.col("_r_in") / 1000).alias("cache_read_uncached_cost_usd"),
            (pl.col("cache_write_5m_cost_usd") - pl.col("_cw5_priced") * pl.col("_r_in") / 1000).alias(
                "write_premium_5m_usd"
            ),
            (pl.col("cache_write_1h_cost_usd") - pl.col("_cw1h_priced") * pl.col("_r_in") / 1000).alias(
                "write_premium_1h_usd"
            ),
        )
    )
    priced_calls = pl.col("_priced_calls")

    def known_sum(c: str) -> pl.Expr:
        return pl.when(pl.col(c).is_not_null().any()).then(pl.col(c).sum()).alias(c)

    def avg_rate(alias: str, name: str) -> pl.Expr:
        has = pl.col(alias).is_not_null() & (priced_calls > 0)
        return (
            pl.when(has.any())
            .then((pl.col(alias) * priced_calls).filter(has).sum() / priced_calls.filter(has).sum())
            .alias(name)
        )

    sums = [
        "invocations",
        "invocations_with_cache_read",
        "invocations_with_cache_write",
        "unpriced_invocations",
        "input_tokens",
        "cache_read_input_tokens",
        "cache_write_input_tokens",
        "cache_write_5m_input_tokens",
        "cache_write_1h_input_tokens",
        "cache_read_cost_usd",
        "cache_write_5m_cost_usd",
        "cache_write_1h_cost_usd",
    ]
    premium_gap = pl.col("input_per_1k_usd") - pl.col("cache_read_per_1k_usd")
    grouped = (
        fine.group_by(list(GRAIN))
        .agg(
            *[pl.col(c).sum() for c in sums],
            known_sum("cache_read_uncached_cost_usd"),
            known_sum("write_premium_5m_usd"),
            known_sum("write_premium_1h_usd"),
            *[avg_rate(alias, name) for name, alias in RATE_COLUMNS.items()],
        )
        .with_columns(
            pl.when(pl.col("cache_read_input_tokens") + pl.col("input_tokens") > 0)
            .then(pl.col("cache_read_input_tokens") / (pl.col("cache_read_input_tokens") + pl.col("input_tokens")))
            .alias("hit_rate"),
            pl.when(pl.col("cache_write_input_tokens") > 0)
            .then(pl.col("cache_read_input_tokens") / pl.col("cache_write_input_tokens"))
            .alias("reads_per_write"),
            (pl.col("cache_read_uncached_cost_usd") - pl.col("cache_read_cost_usd")).alias("read_saving_usd"),
            (pl.col("write_premium_5m_usd").fill_null(0.0) + pl.col("write_premium_1h_usd").fill_null(0.0)).alias(
                "write_premium_usd"
            ),
            pl.when(premium_gap > 0)
            .then((pl.col("cache_write_per_1k_usd") - pl.col("input_per_1k_usd")) / premium_gap)
            .alias("break_even_reads_5m"),
            pl.when(premium_gap > 0)
            .then((pl.col("cache_write_1h_per_1k_usd") - pl.col("input_per_1k_usd")) / premium_gap)
            .alias("break_even_reads_1h"),
        )
        .with_columns((pl.col("read_saving_usd") - pl.col("write_premium_usd")).alias("net_saving_usd"))
        # A model that cannot cache (no cache rate, no cache tokens) has nothing to say here.
        .filter(
            (pl.col("cache_read_input_tokens") + pl.col("cache_write_input_tokens") > 0)
            | pl.col("cache_read_per_1k_usd").is_not_null()
        )
        .sort(list(GRAIN))
        .collect(engine="streaming")
    )
    recs = [recommendation(r) for r in grouped.iter_rows(named=True)]
    out = grouped.with_columns(pl.Series("recommendation", recs, dtype=pl.String))
    return schemas.conform(out, schemas.DAILY_CACHE_ECONOMICS)
