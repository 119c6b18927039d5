"""Daily usage tables: `daily_usage_by_model`, `daily_usage_by_user`, `daily_usage_by_cost_center`.

The three tables share one set of metrics (see `schemas._USAGE_METRICS`) and differ only in their keys, so they are
built from three light queries (`_parts`: masked sums, latency percentiles keyed by a group hash, distinct users),
collected one after another so a large day's peak memory is the largest of them, not their sum (one combined query
peaks at about twice that; docs/performance.md has the figures).

Definitions, chosen so that the tables add up to each other and to the invocations:

* ``error_rate`` = (client_errors + server_errors + throttles) / invocations. Guardrail interventions are the
  guardrail doing its job, not a failure of the call, so they are counted on their own and not as errors.
* Costs sum over *priced* calls only. A call without a price is never counted as $0 of spend in disguise: it shows
  in ``unpriced_invocations`` and its tokens are still summed, while the cost columns cover what could be priced.
  A group whose calls are all unpriced therefore has ``total_cost_usd`` 0.0 and ``unpriced_invocations`` > 0.
* ``cache_cost_usd`` = cache-read cost + cache-write cost.
* ``avg_cost_per_invocation_usd`` = total cost / priced invocations (null when no call was priced), so unpriced
  calls do not drag the average down.
* Latency average and percentiles use the calls with a logged latency only. Percentiles use linear interpolation
  between closest ranks (position q·(n−1) in the sorted values), the same as numpy's default.
* ``unique_users`` counts distinct users other than ``unattributed``: an unknown caller is not a person, and
  counting it as one would inflate adoption figures. A group with only unattributed calls has 0 users.
* The cost-center table adds ``avg_cost_per_user_usd`` = total cost / unique_users, null when there are no users.

Missing key values become ``unattributed`` (never null) so that group sums add up across tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from pipeline import schemas
from pipeline.vocabulary import Frame, as_lazy

MODEL_KEYS: tuple[str, ...] = ("date", "account_id", "region", "base_model_id")
USER_KEYS: tuple[str, ...] = ("date", "user", "cost_center", "application")
COST_CENTER_KEYS: tuple[str, ...] = ("date", "cost_center")

TOKEN_COLUMNS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
)
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("latency_ms_p50", 0.50),
    ("latency_ms_p95", 0.95),
    ("latency_ms_p99", 0.99),
)


def _key_expr(name: str) -> pl.Expr:
    """A grouping key with nulls turned into ``unattributed``, so no spend falls into a null group.

    The model key falls back to the logged ``model_id`` before ``unattributed``: a model that did not resolve to a
    foundation model is still worth seeing by name.
    """
    if name == "date":
        return pl.col("date")
    if name == "base_model_id":
        return pl.coalesce(pl.col("base_model_id"), pl.col("model_id"), pl.lit(schemas.UNATTRIBUTED)).alias(name)
    return pl.col(name).fill_null(schemas.UNATTRIBUTED).alias(name)


EXACT_SUM = pl.Decimal(38, 18)
"""Costs are summed as 18-decimal fixed point: integer addition is exact, so a sum does not depend on the order
polars' threads meet the rows in, and a rerun of a day gives bit-identical tables (float sums differed in the 12th
digit). 20 integer digits hold any bill; 1e-18 USD is far below a token's price."""


def exact_sum(expr: pl.Expr) -> pl.Expr:
    """Order-independent sum of a float column, as Float64 (see `EXACT_SUM`)."""
    return expr.cast(EXACT_SUM).sum().cast(pl.Float64)


def _priced_sum(column: str) -> pl.Expr:
    """Sum of a cost column over priced calls only (a null cost on a priced call counts as 0).

    A mask, not a filter: masked sums stream, filters inside a group-by make polars hold the groups.
    """
    priced = pl.col("priced").fill_null(False)
    return exact_sum(pl.when(priced).then(pl.col(column).fill_null(0.0)).otherwise(0.0))


def _status_count(status: str) -> pl.Expr:
    return (pl.col("status") == status).fill_null(False).sum().cast(pl.Int64)


_NEEDED = (
    "status",
    "priced",
    "latency_ms",
    "user",
    "input_cost_usd",
    "output_cost_usd",
    "cache_read_cost_usd",
    "cache_write_cost_usd",
    "total_cost_usd",
    *TOKEN_COLUMNS,
)


def _parts(priced: Frame, keys: Sequence[str]) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
    """Three queries over the same calls, each light on memory on its own: sums and counts over every call
    (masked, so they stream), latency statistics over the calls with a latency (keyed by a hash of the group),
    and distinct users per group."""
    lf = as_lazy(priced)
    model_source = ["base_model_id", "model_id"] if "base_model_id" in keys else []
    base = lf.select(*sorted({*keys, *model_source, *_NEEDED})).with_columns([_key_expr(k) for k in keys])
    priced_flag = pl.col("priced").fill_null(False)
    real_user = pl.col("user").fill_null(schemas.UNATTRIBUTED)
    aggs: list[pl.Expr] = [
        pl.len().cast(pl.Int64).alias("invocations"),
        _status_count("success").alias("successes"),
        _status_count("client_error").alias("client_errors"),
        _status_count("server_error").alias("server_errors"),
        _status_count("throttled").alias("throttles"),
        _status_count("guardrail_intervened").alias("guardrail_interventions"),
        *[pl.col(c).fill_null(0).sum().cast(pl.Int64).alias(c) for c in TOKEN_COLUMNS],
        _priced_sum("input_cost_usd").alias("input_cost_usd"),
        _priced_sum("output_cost_usd").alias("output_cost_usd"),
        (_priced_sum("cache_read_cost_usd") + _priced_sum("cache_write_cost_usd")).alias("cache_cost_usd"),
        _priced_sum("total_cost_usd").alias("total_cost_usd"),
        priced_flag.sum().cast(pl.Int64).alias("_priced_invocations"),
        (~priced_flag).sum().cast(pl.Int64).alias("unpriced_invocations"),
    ]
    users = (
        base.select(*keys, real_user.alias("_user"))
        .filter(pl.col("_user") != schemas.UNATTRIBUTED)
        .unique()
        .group_by(list(keys))
        .agg(pl.len().cast(pl.Int64).alias("unique_users"))
    )
    latency = pl.col("latency_ms").cast(pl.Float64)
    # Exact percentiles need every value of a group in memory: keep that to a 64-bit key hash and the latency
    # (16 bytes a call) instead of the string keys, and join back on the same hash.
    group_hash = pl.struct(list(keys)).hash(seed=7).alias("_group")
    latencies = (
        base.filter(pl.col("latency_ms").is_not_null())
        .select(group_hash, "latency_ms")
        .group_by("_group")
        .agg(
            latency.mean().alias("latency_ms_avg"),
            *[latency.quantile(q, interpolation="linear").alias(name) for name, q in PERCENTILES],
        )
    )
    main = base.group_by(list(keys)).agg(aggs).with_columns(group_hash)
    return main, latencies, users


FAILED_CALL_COLUMNS: tuple[str, ...] = ("client_errors", "server_errors", "throttles")
"""The counts `error_rate` is made of: the one definition the tables, the report's tile and its health chart use."""


def failed_calls() -> pl.Expr:
    """client_errors + server_errors + throttles, per row of a daily usage table (the numerator of `error_rate`)."""
    return pl.sum_horizontal(pl.col(c).fill_null(0) for c in FAILED_CALL_COLUMNS)


def _finish(main: Frame, latencies: Frame, users: Frame, keys: Sequence[str]) -> pl.LazyFrame:
    """Join the three parts and derive the ratios."""
    errors = failed_calls()
    return (
        as_lazy(main)
        .join(as_lazy(latencies), on="_group", how="left")
        .drop("_group")
        .join(as_lazy(users), on=list(keys), how="left", nulls_equal=True)
        .with_columns(pl.col("unique_users").fill_null(0))
        .with_columns(
            pl.when(pl.col("invocations") > 0).then(errors / pl.col("invocations")).otherwise(None).alias("error_rate"),
            pl.when(pl.col("_priced_invocations") > 0)
            .then(pl.col("total_cost_usd") / pl.col("_priced_invocations"))
            .otherwise(None)
            .alias("avg_cost_per_invocation_usd"),
            pl.when(pl.col("unique_users") > 0)
            .then(pl.col("total_cost_usd") / pl.col("unique_users"))
            .otherwise(None)
            .alias("avg_cost_per_user_usd"),
        )
    )


def usage_lazy(priced: Frame, keys: Sequence[str]) -> pl.LazyFrame:
    """The shared usage metrics grouped by ``keys``, as one LazyFrame (not yet conformed or sorted)."""
    return _finish(*_parts(priced, keys), keys)


def _collect(priced: Frame, keys: Sequence[str], schema: dict[str, schemas.DType]) -> pl.DataFrame:
    """Collect the parts one after another (a large day's peak is the largest part, not their sum), then join."""
    main, latencies, users = (part.collect(engine="streaming") for part in _parts(priced, keys))
    out = _finish(main, latencies, users, keys).sort(list(keys)).collect()
    return schemas.conform(out, schema)


def usage_by_model(priced: Frame) -> pl.DataFrame:
    """``daily_usage_by_model``: keys ``date, account_id, region, base_model_id`` (see module docstring)."""
    return _collect(priced, MODEL_KEYS, schemas.DAILY_USAGE_BY_MODEL)


def usage_by_user(priced: Frame) -> pl.DataFrame:
    """``daily_usage_by_user``: keys ``date, user, cost_center, application`` (see module docstring)."""
    return _collect(priced, USER_KEYS, schemas.DAILY_USAGE_BY_USER)


def usage_by_cost_center(priced: Frame) -> pl.DataFrame:
    """``daily_usage_by_cost_center``: key ``date, cost_center``, plus ``avg_cost_per_user_usd``."""
    return _collect(priced, COST_CENTER_KEYS, schemas.DAILY_USAGE_BY_COST_CENTER)


_TOTAL_METRICS: tuple[str, ...] = (
    "invocations",
    "unpriced_invocations",
    *TOKEN_COLUMNS,
    "total_cost_usd",
)


def _source_totals(priced: Frame) -> dict[str, Any]:
    row = (
        as_lazy(priced)
        .select(
            pl.len().cast(pl.Int64).alias("invocations"),
            (~pl.col("priced").fill_null(False)).sum().cast(pl.Int64).alias("unpriced_invocations"),
            *[pl.col(c).fill_null(0).sum().cast(pl.Int64).alias(c) for c in TOKEN_COLUMNS],
            _priced_sum("total_cost_usd").alias("total_cost_usd"),
        )
        .collect()
        .row(0, named=True)
    )
    return row


def table_totals(table: pl.DataFrame) -> dict[str, Any]:
    """The totals `totals_agree` compares, of one daily usage table (or of one part of it: parts add up)."""
    return table.select(
        exact_sum(pl.col(c)).alias(c) if table.schema[c].is_float() else pl.col(c).sum() for c in _TOTAL_METRICS
    ).row(0, named=True)


def add_totals(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two parts' `table_totals` added up."""
    return {m: (a.get(m) or 0) + (b.get(m) or 0) for m in _TOTAL_METRICS}


def _totals_of(table: pl.DataFrame | Mapping[str, Any]) -> Mapping[str, Any]:
    return table_totals(table) if isinstance(table, pl.DataFrame) else table


def totals_agree(
    priced: Frame,
    by_model: pl.DataFrame | Mapping[str, Any],
    by_user: pl.DataFrame | Mapping[str, Any],
    by_cc: pl.DataFrame | Mapping[str, Any],
    tol: float = 1e-6,
) -> tuple[bool, dict[str, Any]]:
    """Check that the three daily tables and ``priced_invocations`` report the same totals (an asset check).
    A table written in parts is given as its totals, added up part by part (`table_totals`, `add_totals`).

    Counts and tokens must agree exactly; cost may differ by float summation order only, so it is compared with
    ``|a − b| ≤ tol × max(1, |reference|)``. Returns ``(ok, details)`` where details holds, per metric, the value in
    each table and a list of human-readable ``mismatches`` (empty when ok), ready for Dagster metadata.
    """
    tables = {
        "priced_invocations": _source_totals(priced),
        "daily_usage_by_model": _totals_of(by_model),
        "daily_usage_by_user": _totals_of(by_user),
        "daily_usage_by_cost_center": _totals_of(by_cc),
    }
    details: dict[str, Any] = {}
    mismatches: list[str] = []
    for metric in _TOTAL_METRICS:
        values = {name: totals[metric] or 0 for name, totals in tables.items()}
        details[metric] = values
        reference = values["priced_invocations"]
        for name, value in values.items():
            if metric == "total_cost_usd":
                ok = math.isclose(value, reference, rel_tol=0.0, abs_tol=tol * max(1.0, abs(reference)))
            else:
                ok = value == reference
            if not ok:
                mismatches.append(f"{metric}: {name} has {value} but priced_invocations has {reference}")
    details["mismatches"] = mismatches
    return not mismatches, details
