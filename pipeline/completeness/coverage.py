"""`log_completeness`: the logs, the `AWS/Bedrock` metrics and the bill side by side, per hour.

Grain: date × account × region × base model × hour (UTC). The model key is resolved the same way on both sides
(`base_model_id`, else the id as logged or as the metric names it), so a call through `us.anthropic…` and the
metric series of that profile id meet on the foundation model.

What is compared. `logged_invocations` counts logged calls that are not `throttled`, because CloudWatch's
`Invocations` excludes throttled requests (docs/formats/invocation-logs.md §6.1); tokens are the four kinds in both.
`coverage` = logged / metric invocations (null without metric calls); it can exceed 1 where logs hold calls the
metrics did not count.

Status of a row, first match wins:
* `metrics_missing` — the logs have calls, the metrics none (or metrics are not read for that account/region);
* `logging_disabled` — the day's logging configuration says logging is off there, and the metrics show calls;
* `delivery_late` — logs short of the metrics in an hour whose delivery window (hour end + `late_hours`) had
  not closed when the day was checked: the logs may still arrive, rerun the day later;
* `logs_missing` — logs short of the metrics (coverage below `min_coverage`) otherwise;
* `complete`.

Billed tokens come per day (the bill has no hours): `day_billed_tokens` beside `day_logged_tokens` and
`day_metric_tokens` repeat the day's totals of the account × region × model on each of its hour rows (never sum them
over hours).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import polars as pl

from pipeline import schemas
from pipeline.config import Discover
from pipeline.vocabulary import TOKEN_KINDS, Frame

KEYS = ["date", "account_id", "region", "base_model_id", "hour"]
DAY_KEYS = ["date", "account_id", "region", "base_model_id"]
TOKENS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens")
COMPARED = ("invocations", *TOKENS)
BILLED_KINDS = TOKEN_KINDS


def _lazy(f: Frame) -> pl.LazyFrame:
    return f.lazy() if isinstance(f, pl.DataFrame) else f


def _model_key() -> pl.Expr:
    return pl.coalesce(pl.col("base_model_id"), pl.col("model_id"), pl.lit(schemas.UNATTRIBUTED))


def logged_model_ids(invocations: Frame) -> dict[tuple[str, str], set[str]]:
    """The `modelId` strings the day's logs used, per account × region (metrics are queried for these too)."""
    df = _lazy(invocations).select("account_id", "region", "model_id").unique().collect()
    out: dict[tuple[str, str], set[str]] = {}
    for acct, region, model in df.iter_rows():
        if acct and region and model:
            out.setdefault((acct, region), set()).add(model)
    return out


def _logged(invocations: Frame) -> pl.LazyFrame:
    counted = pl.col("status").fill_null("success") != "throttled"
    return (
        _lazy(invocations)
        .select("date", "timestamp", "account_id", "region", "base_model_id", "model_id", "status", *TOKENS)
        .with_columns(_model_key().alias("base_model_id"), pl.col("timestamp").dt.hour().cast(pl.Int64).alias("hour"))
        .group_by(KEYS)
        .agg(
            counted.sum().cast(pl.Int64).alias("logged_invocations"),
            *[pl.col(c).fill_null(0).sum().cast(pl.Int64).alias(f"logged_{c}") for c in TOKENS],
        )
    )


def _endpoint_is(frame: pl.LazyFrame, endpoint: str) -> pl.LazyFrame:
    """Rows of one endpoint (`runtime` where the frame predates the column or leaves it null)."""
    if "endpoint" not in frame.collect_schema().names():
        return frame if endpoint == "runtime" else frame.filter(pl.lit(False))
    return frame.filter(pl.col("endpoint").fill_null("runtime") == endpoint)


def _metric(metrics: Frame, endpoint: str = "runtime") -> pl.LazyFrame:
    return (
        _endpoint_is(_lazy(metrics), endpoint)
        .with_columns(pl.coalesce(pl.col("base_model_id"), pl.col("model_id")).alias("base_model_id"))
        .group_by(KEYS)
        .agg(
            *[pl.col(c).sum().cast(pl.Int64).alias(f"metric_{c}") for c in COMPARED],
            pl.col("throttles").sum().cast(pl.Int64).alias("metric_throttles"),
            pl.col("client_errors").sum().cast(pl.Int64).alias("metric_client_errors"),
            pl.col("server_errors").sum().cast(pl.Int64).alias("metric_server_errors"),
            pl.col("model_id").unique().sort().str.join(",").alias("metric_model_ids"),
        )
    )


def _billed(billing: Frame | None, endpoint: str = "runtime") -> pl.LazyFrame:
    schema = {"date": pl.Date, "account_id": pl.String, "region": pl.String, "base_model_id": pl.String}
    if billing is None:
        return pl.LazyFrame(schema={**schema, "day_billed_tokens": pl.Int64})
    lazy = _lazy(billing)
    names = lazy.collect_schema().names()
    if "endpoint" not in names:  # a partition written before the column
        usage_type = pl.col("usage_type") if "usage_type" in names else pl.lit(None, dtype=pl.String)
        mantle = usage_type.str.contains("-mantle-").fill_null(False)
        lazy = lazy.with_columns(pl.when(mantle).then(pl.lit("mantle")).otherwise(pl.lit("runtime")).alias("endpoint"))
    return (
        _endpoint_is(lazy, endpoint)
        .filter(pl.col("usage_kind").is_in(BILLED_KINDS) & pl.col("base_model_id").is_not_null())
        .group_by(DAY_KEYS)
        .agg(pl.col("tokens").fill_null(0).sum().cast(pl.Int64).alias("day_billed_tokens"))
    )


def _hours(hours: Iterable[int]) -> str:
    """`[1, 2, 3, 7]` → `01-03h, 07h` (UTC hours, ranges joined)."""
    hs = sorted(set(hours))
    parts: list[str] = []
    i = 0
    while i < len(hs):
        j = i
        while j + 1 < len(hs) and hs[j + 1] == hs[j] + 1:
            j += 1
        parts.append(f"{hs[i]:02d}h" if i == j else f"{hs[i]:02d}-{hs[j]:02d}h")
        i = j + 1
    return ", ".join(parts)


def _explain(r: dict[str, Any], late_hours: int, window_closes: dt.datetime | None) -> str:
    where = f"{r['base_model_id']} in {r['region']} ({r['account_id']}), {r['hour']:02d}:00-{r['hour'] + 1:02d}:00 UTC"
    logged, metric = r["logged_invocations"] or 0, r["metric_invocations"]
    status = r["status"]
    if status == "metrics_missing":
        if metric is None:
            return (
                f"{where}: the logs have {logged} calls; CloudWatch metrics are not read for this account and "
                "region (add it to sources.invocation_logs.discover to compare)."
            )
        return (
            f"{where}: the logs have {logged} calls but CloudWatch shows none: check that the metric ModelId resolves "
            "to the same model, or whether metrics lag or are older than CloudWatch's 455-day hourly retention."
        )
    gap = (metric or 0) - logged
    if status == "logging_disabled":
        source = {
            "observed": "as observed that day",
            "carried_forward": f"carried forward from {r.get('observed_on')}",
            "earliest_known": f"assumed: the earliest known configuration, observed {r.get('observed_on')}",
        }.get(r.get("config_source") or "", "configuration source unknown")
        return (
            f"{where}: model invocation logging is off here ({source}), so the {metric} calls CloudWatch counted "
            "are in no log; turn logging on to attribute and price them."
        )
    if status == "delivery_late":
        closes = f" at {window_closes:%Y-%m-%d %H:%M} UTC" if window_closes else ""
        return (
            f"{where}: {gap} of {metric} calls are not in the logs yet, and Bedrock may still be delivering this hour "
            f"(its {late_hours}-hour delivery window closes{closes}); rerun the day after that."
        )
    if status == "logs_missing":
        return (
            f"{where}: CloudWatch counted {metric} calls but the logs have {logged} ({gap} missing, coverage "
            f"{r['coverage']:.1%}): logging was switched off or failed to deliver for a while; check the "
            "configuration history and the ModelInvocationLogs*DeliveryFailure metrics."
        )
    extra = f"; the logs also hold {-gap} calls the metrics did not count" if gap < 0 else ""
    return f"{where}: the logs have {logged} of the {metric} calls CloudWatch counted{extra}."


def build_log_completeness(
    invocations: Frame,
    metrics: Frame,
    config: pl.DataFrame,
    billing: Frame | None,
    *,
    day: dt.date,
    checked_at: dt.datetime,
    read_pairs: set[tuple[str, str]],
    late_hours: int = 2,
    min_coverage: float = 0.99,
) -> pl.DataFrame:
    """The day's `log_completeness` rows (see the module docstring for every column's rule).

    `read_pairs` are the account × region pairs whose metrics were read: there a missing metric row means zero,
    elsewhere it means unknown (null).
    """
    joined = (
        _logged(invocations)
        .join(_metric(metrics), on=KEYS, how="full", coalesce=True)
        .filter(pl.col("date") == day)
        .collect()
    )
    pairs = pl.DataFrame(
        {"account_id": [a for a, _ in read_pairs], "region": [r for _, r in read_pairs], "_read": True},
        schema={"account_id": pl.String, "region": pl.String, "_read": pl.Boolean},
    )
    observed_on = pl.col("observed_on") if "observed_on" in config.columns else pl.lit(None, dtype=pl.Date)
    cfg = config.select(
        "account_id", "region", "logging_enabled", "config_source", observed_on.cast(pl.Date).alias("observed_on")
    ).unique(subset=["account_id", "region"], keep="first")
    df = (
        joined.join(pairs, on=["account_id", "region"], how="left")
        .join(cfg, on=["account_id", "region"], how="left")
        .with_columns(pl.col("_read").fill_null(False))
        .with_columns(
            *[pl.col(f"logged_{c}").fill_null(0) for c in COMPARED],
            *[
                pl.when(pl.col("_read")).then(pl.col(c).fill_null(0)).otherwise(pl.col(c)).alias(c)
                for c in (
                    *[f"metric_{c}" for c in COMPARED],
                    "metric_throttles",
                    "metric_client_errors",
                    "metric_server_errors",
                )
            ],
        )
    )
    logged_tok = pl.sum_horizontal([pl.col(f"logged_{c}") for c in TOKENS])
    metric_tok = pl.sum_horizontal([pl.col(f"metric_{c}") for c in TOKENS])
    day_start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    window_ends = [day_start + dt.timedelta(hours=h + 1 + late_hours) for h in range(24)]
    open_hours = [h for h in range(24) if window_ends[h] > checked_at]
    df = df.with_columns(
        pl.when(pl.col("metric_invocations") > 0)
        .then(pl.col("logged_invocations") / pl.col("metric_invocations"))
        .otherwise(None)
        .alias("coverage"),
        pl.when(metric_tok > 0).then(logged_tok / metric_tok).otherwise(None).alias("token_coverage"),
        logged_tok.alias("_logged_tok"),
        pl.when(pl.col("_read")).then(metric_tok).otherwise(None).alias("_metric_tok"),
    )
    short = pl.col("coverage") < min_coverage
    df = df.with_columns(
        pl.when((pl.col("metric_invocations").fill_null(0) == 0) & (pl.col("logged_invocations") > 0))
        .then(pl.lit("metrics_missing"))
        .when((pl.col("metric_invocations") > 0) & (pl.col("logging_enabled") == False))  # noqa: E712
        .then(pl.lit("logging_disabled"))
        .when(short & pl.col("hour").is_in(open_hours))
        .then(pl.lit("delivery_late"))
        .when(short)
        .then(pl.lit("logs_missing"))
        .otherwise(pl.lit("complete"))
        .alias("status")
    )
    day_tot = df.group_by(DAY_KEYS).agg(
        pl.col("_logged_tok").sum().cast(pl.Int64).alias("day_logged_tokens"),
        pl.col("_metric_tok").sum().cast(pl.Int64).alias("day_metric_tokens"),
    )
    billed = _billed(billing).collect()
    df = (
        df.join(day_tot, on=DAY_KEYS, how="left", nulls_equal=True)
        .join(billed, on=DAY_KEYS, how="left", nulls_equal=True)
        .with_columns(pl.lit(checked_at).cast(schemas.UTC_US).alias("checked_at"))
    )
    # Rows with neither logged nor metric calls (an hour of throttles only, or zero datapoints) say nothing.
    df = df.filter(
        (pl.col("logged_invocations") > 0)
        | (pl.col("metric_invocations").fill_null(0) > 0)
        | (pl.col("metric_throttles").fill_null(0) > 0)
    )
    explanations = [
        _explain(r, late_hours, window_ends[r["hour"]] if r["hour"] is not None else None)
        for r in df.iter_rows(named=True)
    ]
    df = df.with_columns(pl.Series("explanation", explanations, dtype=pl.String), pl.lit("runtime").alias("endpoint"))
    mantle = _mantle_rows(metrics, billing, day, checked_at)
    return pl.concat([schemas.conform(df, schemas.LOG_COMPLETENESS), mantle]).sort([*KEYS, "endpoint"])


MANTLE_EXPLANATION = (
    "{} calls through bedrock-mantle (AWS/BedrockMantle metrics): invocation logging covers bedrock-runtime "
    "only, so these are never in the logs; the bill's mantle rows are their cost"
)


def _mantle_rows(metrics: Frame, billing: Frame | None, day: dt.date, checked_at: dt.datetime) -> pl.DataFrame:
    """`log_completeness` rows of the mantle endpoint: metric counts beside the bill, `not_logged_by_design`."""
    metric = _metric(metrics, "mantle").filter(pl.col("date") == day).collect()
    if metric.is_empty():
        return schemas.empty(schemas.LOG_COMPLETENESS)
    metric_tok = pl.sum_horizontal([pl.col(f"metric_{c}").fill_null(0) for c in TOKENS])
    df = (
        metric.with_columns(metric_tok.alias("_metric_tok"))
        .with_columns(pl.col("_metric_tok").sum().over(DAY_KEYS).cast(pl.Int64).alias("day_metric_tokens"))
        .join(_billed(billing, "mantle").collect(), on=DAY_KEYS, how="left", nulls_equal=True)
        .with_columns(
            *[pl.lit(0, dtype=pl.Int64).alias(f"logged_{c}") for c in COMPARED],
            pl.lit(0, dtype=pl.Int64).alias("day_logged_tokens"),
            pl.lit("not_logged_by_design").alias("status"),
            pl.format(MANTLE_EXPLANATION, pl.col("metric_invocations")).alias("explanation"),
            pl.lit(checked_at).cast(schemas.UTC_US).alias("checked_at"),
            pl.lit("mantle").alias("endpoint"),
        )
        .filter(pl.col("metric_invocations").fill_null(0) > 0)
    )
    return schemas.conform(df, schemas.LOG_COMPLETENESS)


def day_coverage(df: pl.DataFrame, min_coverage: float) -> dict[str, Any]:
    """The day's coverage and who is short, for the asset check.

    Day coverage = Σ min(logged, metric) / Σ metric invocations over rows with metric calls: an hour with more
    logs than metrics cannot hide another hour's gap. `passed` compares it with `min_coverage`; `late_only` says
    the shortfall is all in hours whose delivery may still be under way (a warning, not an error). `offenders`
    lists account × region with the short hours and missing calls.
    """
    # Mantle rows are never logged by design: they say nothing about the logs' coverage.
    measured = df.filter((pl.col("metric_invocations").fill_null(0) > 0) & (pl.col("status") != "not_logged_by_design"))
    metric = int(measured["metric_invocations"].sum() or 0)
    within = int(measured.select(pl.min_horizontal("logged_invocations", "metric_invocations").sum()).item() or 0)
    coverage = within / metric if metric else None
    late = measured.filter(pl.col("status") == "delivery_late")
    late_gap = int((late["metric_invocations"] - late["logged_invocations"]).clip(lower_bound=0).sum() or 0)
    short = measured.filter(pl.col("status").is_in(["logs_missing", "logging_disabled", "delivery_late"]))
    offenders = (
        short.group_by("account_id", "region", "status")
        .agg(
            pl.col("hour").unique().sort().alias("hours"),
            (pl.col("metric_invocations") - pl.col("logged_invocations"))
            .clip(lower_bound=0)
            .sum()
            .alias("missing_calls"),
        )
        .sort("missing_calls", descending=True)
        .with_columns(pl.col("hours").map_elements(_hours, return_dtype=pl.String))
    )
    passed = coverage is None or coverage >= min_coverage
    late_only = not passed and metric > 0 and (within + late_gap) / metric >= min_coverage
    return {
        "coverage": coverage,
        "metric_invocations": metric,
        "logged_within_metrics": within,
        "passed": passed,
        "late_only": late_only,
        "offenders": offenders,
        "by_status": df.group_by("status").len().sort("len", descending=True),
    }


def apply_metric_throttles(
    by_model: pl.DataFrame, metrics: pl.DataFrame, read_pairs: set[tuple[str, str]]
) -> pl.DataFrame:
    """`daily_usage_by_model` with `throttles` from `InvocationThrottles` where metrics were read.

    Throttled requests are mostly absent from the logs, so for an account × region whose metrics were read the
    metric's daily sum replaces the logged count (0 when the metric has no data points); elsewhere the logged
    count stays. `error_rate` is recomputed with the new count. Models seen only in metrics get no row here (the
    table stays a summary of logged calls; `log_completeness` has them).
    """
    if not read_pairs or by_model.is_empty():
        return by_model
    daily = (
        metrics.with_columns(pl.coalesce(pl.col("base_model_id"), pl.col("model_id")).alias("base_model_id"))
        .group_by("account_id", "region", "base_model_id")
        .agg(pl.col("throttles").sum().cast(pl.Int64).alias("_metric_throttles"))
    )
    pairs = pl.DataFrame(
        {"account_id": [a for a, _ in read_pairs], "region": [r for _, r in read_pairs], "_read": True},
        schema={"account_id": pl.String, "region": pl.String, "_read": pl.Boolean},
    )
    out = (
        by_model.join(pairs, on=["account_id", "region"], how="left")
        .join(daily, on=["account_id", "region", "base_model_id"], how="left")
        .with_columns(
            pl.when(pl.col("_read").fill_null(False))
            .then(pl.col("_metric_throttles").fill_null(0))
            .otherwise(pl.col("throttles"))
            .alias("throttles")
        )
        .with_columns(
            pl.when(pl.col("invocations") > 0)
            .then((pl.col("client_errors") + pl.col("server_errors") + pl.col("throttles")) / pl.col("invocations"))
            .otherwise(None)
            .alias("error_rate")
        )
    )
    return out.select(by_model.columns)


def summary_lines(df: pl.DataFrame) -> list[str]:
    """A small text table of `log_completeness` by status (rows, calls the metrics counted, calls logged), plus
    each day's coverage, for the CLI's demo summary."""
    if df.is_empty():
        return ["log completeness: no rows (set sources.invocation_logs.discover to compare logs with metrics)"]
    by = (
        df.group_by("status")
        .agg(
            pl.len().alias("rows"),
            pl.col("metric_invocations").fill_null(0).sum().alias("metric_calls"),
            pl.col("logged_invocations").sum().alias("logged_calls"),
        )
        .sort("rows", descending=True)
    )
    lines = [
        "log completeness (logs vs AWS/Bedrock metrics):",
        f"  {'status':<17}{'rows':>6}{'metric':>9}{'logged':>9}",
    ]
    lines += [f"  {s:<17}{r:>6}{m:>9}{lg:>9}" for s, r, m, lg in by.iter_rows()]
    days = []
    for (day,), part in df.group_by(["date"], maintain_order=True):
        cov = day_coverage(part, 1.0)["coverage"]
        days.append(f"{day} {cov:.1%}" if cov is not None else f"{day} n/a")
    lines.append("  coverage by day: " + ", ".join(sorted(days)))
    return lines


def metric_pairs(discover: Discover | None) -> set[tuple[str, str]]:
    """Account × Region pairs whose `AWS/Bedrock` metrics are read (none without `discover` or with metrics off):
    where a metric row is missing there, the count is zero, not unknown."""
    if discover is None or not discover.metrics:
        return set()
    return {(a.account_id, r) for a in discover.accounts for r in discover.regions}
