"""Money and amounts of a bill checked row by row before anything is summed or compared.

A NaN cost compares false with everything, so a tolerance test written as "not over tolerance" passes it
(`$nan billed: within tolerance`), and one NaN makes every sum it joins NaN. An infinite or absurd amount
(1e300 tokens) overflows the integer token column downstream. Such rows are not money anyone was charged: they
are quarantined (kept out of `billing_line_items`) with the file, the row and the reason, and the
`bill_numbers_valid` check fails until the export is fixed, so the day is never reported as reconciled.
"""

from __future__ import annotations

import polars as pl

from pipeline.schemas import DType

MAX_ABS_USD = 1e9
"""One bill row of a billion dollars or more is corruption, not usage."""
MAX_ABS_USAGE = 1e15
"""A quadrillion tokens (or hours, or images) on one row is corruption too (and past Int64 once scaled)."""
LIMITS: dict[str, float] = {
    "usage_amount": MAX_ABS_USAGE,
    "rate": MAX_ABS_USD,
    "unblended_cost": MAX_ABS_USD,
    "net_cost": MAX_ABS_USD,
    "list_cost": MAX_ABS_USD,
    "discounts": MAX_ABS_USD,
}
QUARANTINE_SCHEMA: dict[str, DType] = {"source_uri": pl.String, "row": pl.Int64, "reason": pl.String}
ROW_COLUMN = "_source_row"
"""Row number in the source file (1-based, data rows; for Parquet, among the rows read for the days asked)."""


def empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def _reason(column: str, shown: str, limit: float) -> pl.Expr:
    v = pl.col(column)
    return (
        pl.when(v.is_nan())
        .then(pl.lit(f"{shown} is NaN"))
        .when(v.is_infinite())
        .then(pl.lit(f"{shown} is infinite"))
        .when(v.abs() >= limit)
        .then(pl.format(f"{shown} = {{}} is beyond ±{limit:g}", v))
    )


def split_invalid(df: pl.DataFrame, uri: str, display: dict[str, str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows whose numbers are sane, quarantined rows as `source_uri, row, reason`).

    `display` maps canonical columns to the export's own names, so a reason names what the user can grep for.
    A null amount is not invalid here (tax and credit rows have none).
    """
    present = [c for c in LIMITS if c in df.columns and df.schema[c].is_float()]
    checks = [_reason(c, display.get(c, c), LIMITS[c]) for c in present]
    if not checks or df.is_empty():
        return df, empty_quarantine()
    reason = pl.concat_str(checks, separator="; ", ignore_nulls=True)
    marked = df.with_columns(reason.alias("_invalid"))
    bad_mask = pl.col("_invalid").is_not_null() & (pl.col("_invalid") != "")
    bad = marked.filter(bad_mask)
    if bad.is_empty():
        return df, empty_quarantine()
    rows = bad[ROW_COLUMN] if ROW_COLUMN in bad.columns else pl.Series([None] * bad.height, dtype=pl.Int64)
    quarantined = pl.DataFrame(
        {"source_uri": [uri] * bad.height, "row": rows.cast(pl.Int64), "reason": bad["_invalid"]},
        schema=QUARANTINE_SCHEMA,
    )
    return marked.filter(~bad_mask).drop("_invalid"), quarantined
