"""Foresight logic without Dagster: anomalies on noisy weekly traffic, a forecast backtest, savings by hand."""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

import polars as pl
import pytest

from pipeline import schemas
from pipeline.foresight.anomalies import (
    SOURCES,
    AnomalySettings,
    alerting,
    cost_anomalies,
    cost_anomalies_by_day,
    dimension_series,
    headline,
    spend_rows,
)
from pipeline.foresight.baseline import baseline
from pipeline.foresight.forecast import month_end, spend_forecast
from pipeline.foresight.savings import SMALLER_SIBLING, savings_opportunities
from pipeline.pricing import load_catalog, price_invocations

DAY = dt.date(2026, 11, 24)  # a Tuesday
WEEKLY = (1.0, 1.05, 1.1, 1.0, 0.95, 0.35, 0.3)  # Monday .. Sunday


def _series(keys: dict[tuple[str, str], float], days: int, seed: int, sigma: float = 0.25) -> pl.DataFrame:
    """`days` days up to DAY of lognormal noise around `level × weekday` for each (dimension, key)."""
    rng = random.Random(seed)
    rows = []
    for i in range(days, -1, -1):
        d = DAY - dt.timedelta(days=i)
        for (dim, key), level in keys.items():
            mean = level * WEEKLY[d.weekday()]
            cost = rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)
            rows.append({"date": d, "dimension": dim, "key": key, "cost_usd": cost, "tokens": int(cost * 1000)})
    return pl.DataFrame(rows)


STEADY = {
    **{("cost_center", f"cc{i}"): 50.0 * (i + 1) for i in range(8)},
    **{("application", f"app{i}"): 20.0 * (i + 1) for i in range(10)},
    **{("model", f"model{i}"): 30.0 * (i + 1) for i in range(6)},
    **{("user", f"user{i}"): 8.0 + i for i in range(20)},
}


def test_steady_noisy_traffic_raises_almost_no_alarms() -> None:
    """44 keys with 25 % day-to-day noise and weekends at a third, judged on 14 days each (616 key-days): at most
    two alarms (0.3 %; both days of those keys are 2.2× and 3× their true mean, ≥ 3 sigma in the noise itself)."""
    series = _series(STEADY, 70, seed=1)
    alarms = 0
    for back in range(14):
        day = DAY - dt.timedelta(days=back)
        found = cost_anomalies(series.filter(pl.col("date") <= day), day)
        alarms += found.filter(pl.col("kind") != "insufficient_history").height
    assert alarms <= 2, f"{alarms} false alarms on steady traffic"


def _with_today(series: pl.DataFrame, dim: str, key: str, cost: float | None) -> pl.DataFrame:
    rest = series.filter(~((pl.col("date") == DAY) & (pl.col("dimension") == dim) & (pl.col("key") == key)))
    if cost is None:
        return rest
    row = pl.DataFrame([{"date": DAY, "dimension": dim, "key": key, "cost_usd": cost, "tokens": 1}])
    return pl.concat([rest, row.cast(rest.schema)])  # type: ignore[arg-type]


def test_a_spike_a_new_spender_and_a_stop_are_found_and_nothing_else() -> None:
    series = _series(STEADY, 60, seed=2)
    usual = 50.0 * 4 * WEEKLY[DAY.weekday()]
    series = _with_today(series, "cost_center", "cc3", usual * 6)
    series = _with_today(series, "application", "app5", None)
    series = _with_today(series, "cost_center", "legal", 85.0)
    found = cost_anomalies(series, DAY)
    assert sorted(found.select("dimension", "key", "kind").iter_rows()) == [
        ("application", "app5", "stopped"),
        ("cost_center", "cc3", "spike"),
        ("cost_center", "legal", "new"),
    ]
    spike = found.filter(pl.col("kind") == "spike").row(0, named=True)
    assert spike["severity"] == "high" and spike["low_usd"] <= spike["expected_usd"] <= spike["high_usd"]
    assert spike["cost_usd"] > spike["high_usd"] and spike["score"] > 4
    assert "its usual Tuesday" in spike["sentence"] and f"{spike['ratio']:.1f}×" in spike["sentence"]
    assert spike["history_days"] == 56
    assert headline(found).startswith("3 anomalies today; the largest: ")
    assert alerting(found, "high").height >= 1


def test_a_key_younger_than_the_minimum_history_is_listed_not_judged() -> None:
    series = _series({("cost_center", "old"): 40.0, ("cost_center", "young"): 40.0}, 30, seed=3)
    young_start = DAY - dt.timedelta(days=5)
    series = series.filter((pl.col("key") == "old") | (pl.col("date") >= young_start))
    series = _with_today(series, "cost_center", "young", 400.0)
    found = cost_anomalies(series, DAY, AnomalySettings(min_history_days=14))
    row = found.filter(pl.col("key") == "young").row(0, named=True)
    assert row["kind"] == "insufficient_history" and row["severity"] is None and row["history_days"] == 5
    assert alerting(found, "low").is_empty()
    # With under 14 days of ledger history, even a brand-new key is not called new.
    short = cost_anomalies(_with_today(series.filter(pl.col("date") >= DAY - dt.timedelta(days=5)), "cost_center",
                                       "legal", 90.0), DAY)  # fmt: skip
    assert short.filter(pl.col("key") == "legal")["kind"].to_list() == ["insufficient_history"]


def test_users_below_the_floor_outside_the_top_are_not_judged() -> None:
    keys = {("user", "big"): 50.0, ("user", "tiny"): 0.2}
    series = _series(keys, 40, seed=4)
    series = _with_today(_with_today(series, "user", "tiny", 3.0), "user", "big", 400.0)
    found = cost_anomalies(series, DAY, AnomalySettings(top_users=1, min_user_cost_usd=5.0))
    assert found["key"].to_list() == ["big"]


def test_applications_are_judged_like_users_once_there_are_more_than_top_users() -> None:
    apps = {("application", f"app{i}"): 0.5 + i for i in range(5)}
    series = _with_today(_series(apps, 40, seed=5), "application", "app0", 9.0)
    many = cost_anomalies(series, DAY, AnomalySettings(top_users=2, min_user_cost_usd=5.0, min_history_days=60))
    # the top two by 28-day spend, and app0 whose day reached the floor; app1 and app2 are not listed
    assert sorted(many["key"]) == ["app0", "app3", "app4"]
    few = cost_anomalies(series, DAY, AnomalySettings(top_users=5, min_user_cost_usd=5.0, min_history_days=60))
    assert sorted(few["key"]) == [f"app{i}" for i in range(5)]


def test_a_median_day_exactly_between_two_days_is_computed_not_counted() -> None:
    """Two days each, one of them at the floor: counting days cannot tell, so the median is computed."""
    rows = [(DAY - dt.timedelta(days=2), 4.0, 4.0), (DAY - dt.timedelta(days=1), 7.0, 5.5), (DAY, 1.0, 1.0)]
    series = pl.DataFrame(
        [(d, "user", key, cost, 1) for d, a, b in rows for key, cost in (("a", a), ("b", b))],
        schema=["date", "dimension", "key", "cost_usd", "tokens"],
        orient="row",
    )
    found = cost_anomalies(series, DAY, AnomalySettings(top_users=0, min_user_cost_usd=5.0))
    assert found["key"].to_list() == ["a"]  # median 5.5 reaches $5; b's 4.75 does not


def test_the_window_read_day_by_day_from_the_tables_equals_the_long_series() -> None:
    """What the asset does (one day of each daily table at a time) gives the rows of the whole long frame."""
    keys = {**STEADY, **{("user", f"tiny{i}"): 0.3 for i in range(30)}}
    series = _with_today(_series(keys, 60, seed=6), "cost_center", "cc2", 900.0)
    tables = {
        "daily_usage_by_cost_center": series.filter(pl.col("dimension") == "cost_center").select(
            "date", pl.col("key").alias("cost_center"), pl.col("cost_usd").alias("total_cost_usd"),
            pl.col("tokens").alias("input_tokens"),
        ),
        "daily_usage_by_model": series.filter(pl.col("dimension") == "model").select(
            "date", pl.col("key").alias("base_model_id"), pl.col("cost_usd").alias("total_cost_usd"),
            pl.col("tokens").alias("output_tokens"),
        ),
        # users and applications share a table: each user row under one application, split in two rows a day
        "daily_usage_by_user": pl.concat(
            [
                series.filter(pl.col("dimension") == "user").select(
                    "date", pl.col("key").alias("user"), pl.lit(app).alias("application"),
                    (pl.col("cost_usd") / 2).alias("total_cost_usd"), (pl.col("tokens") // 2).alias("input_tokens"),
                )
                for app in ("x", "y")
            ]
        ),
    }  # fmt: skip
    settings = AnomalySettings(top_users=5)
    whole = cost_anomalies(
        dimension_series(
            *(tables[t] for t in ("daily_usage_by_cost_center", "daily_usage_by_user", "daily_usage_by_model"))
        ),
        DAY,
        settings,
    )

    def reader(table: str, key: str) -> Any:
        return lambda d: spend_rows(tables[table].filter(pl.col("date") == d), key).select("key", "cost_usd", "tokens")

    by_day = cost_anomalies_by_day({dim: reader(table, key) for dim, table, key in SOURCES}, DAY, settings)
    assert by_day.equals(whole)
    assert ("cost_center", "cc2", "spike") in by_day.select("dimension", "key", "kind").rows()


def test_the_key_summary_folded_in_buckets_equals_one_fold() -> None:
    from pipeline.foresight.anomalies import _key_summary, readers_from_series

    series = _series({("user", f"u{i}"): 1.0 + i for i in range(40)}, 30, seed=7)
    reader = readers_from_series(series)["user"]
    days = sorted(set(series["date"]))
    ledger = [d for d in days if d < DAY]
    one = _key_summary(reader, days, ledger, DAY, AnomalySettings())
    several = _key_summary(reader, days, ledger, DAY, AnomalySettings(), buckets=4)
    assert several.sort("key").equals(one.sort("key")) and one.height == 40


def test_dimension_series_reads_the_daily_tables() -> None:
    cc = pl.DataFrame({"date": [DAY], "cost_center": ["a"], "total_cost_usd": [2.0], "input_tokens": [5]})
    user = pl.DataFrame(
        {"date": [DAY, DAY], "user": ["u", "v"], "application": ["x", None], "total_cost_usd": [1.0, 1.0]}
    )
    model = pl.DataFrame({"date": [DAY], "base_model_id": ["m"], "total_cost_usd": [2.0], "output_tokens": [3]})
    out = dimension_series(cc, user, model).sort("dimension", "key")
    assert out.select("dimension", "key", "cost_usd").rows() == [
        ("application", "unattributed", 1.0),
        ("application", "x", 1.0),
        ("cost_center", "a", 2.0),
        ("model", "m", 2.0),
        ("user", "u", 1.0),
        ("user", "v", 1.0),
    ]


def test_baseline_follows_the_weekday_and_ignores_one_spike() -> None:
    start = DAY - dt.timedelta(days=28)
    days = [start + dt.timedelta(days=i) for i in range(28)]
    values = [100.0 * WEEKLY[d.weekday()] for d in days]
    values[-3] = 5000.0
    base = baseline(days, values)
    assert base.expected(DAY) == pytest.approx(100.0 * WEEKLY[DAY.weekday()], rel=0.02)
    assert base.expected(DAY + dt.timedelta(days=4)) == pytest.approx(100.0 * WEEKLY[5], rel=0.05)


# --- forecast ------------------------------------------------------------------------------------------------------


def _month(seed: int, level: float = 1000.0, sigma: float = 0.2) -> tuple[list[dt.date], list[float]]:
    rng = random.Random(seed)
    days = [dt.date(2026, 9, 1) + dt.timedelta(days=i) for i in range(61)]  # September and October
    values = [level * WEEKLY[d.weekday()] * rng.lognormvariate(-sigma * sigma / 2, sigma) for d in days]
    return days, values


def test_the_forecast_interval_covers_the_true_month_end_in_a_backtest() -> None:
    """Twenty simulated Octobers, each forecast from its 12th: the 80 % interval holds the true end in at least
    14 (binomial: 20 × 0.8 = 16 expected), and the weekly-pattern forecast beats the run rate on average."""
    covered, ours, run_rate = 0, 0.0, 0.0
    for seed in range(20):
        days, values = _month(seed)
        truth = sum(v for d, v in zip(days, values, strict=True) if d.month == 10)
        as_of = dt.date(2026, 10, 12)
        known = [(d, v) for d, v in zip(days, values, strict=True) if d <= as_of]
        f = month_end([d for d, _ in known], [v for _, v in known], as_of)
        covered += f["low_usd"] <= truth <= f["high_usd"]  # type: ignore[operator]
        ours += abs(f["forecast_usd"] - truth)  # type: ignore[operator]
        run_rate += abs(f["run_rate_usd"] - truth)  # type: ignore[operator]
    assert covered >= 14
    assert ours < run_rate


def test_spend_forecast_rows_and_budget_probability() -> None:
    days, values = _month(7)
    rows = [{"date": d, "cost_center": "research", "total_cost_usd": v} for d, v in zip(days, values, strict=True)]
    rows += [{"date": d, "cost_center": "sales", "total_cost_usd": 10.0} for d in days]
    as_of = dt.date(2026, 10, 20)
    daily = pl.DataFrame(rows).filter(pl.col("date") <= as_of)
    out = spend_forecast(daily, as_of, {"research": 10_000.0, "sales": 1_000.0})
    assert out.columns == list(schemas.SPEND_FORECAST)
    research = out.filter(pl.col("key") == "research").row(0, named=True)
    assert research["scope"] == "cost_center" and research["month"] == "2026-10" and research["days_left"] == 11
    assert research["low_usd"] <= research["forecast_usd"] <= research["high_usd"]
    assert research["p_over_budget"] > 0.95  # a ~$24K month against a $10K budget
    sales = out.filter(pl.col("key") == "sales").row(0, named=True)
    assert sales["forecast_usd"] == pytest.approx(310.0) and sales["p_over_budget"] == 0.0
    total = out.filter(pl.col("scope") == "total").row(0, named=True)
    assert total["spend_to_date_usd"] == pytest.approx(research["spend_to_date_usd"] + sales["spend_to_date_usd"])
    again = spend_forecast(daily, as_of, {"research": 10_000.0, "sales": 1_000.0})
    assert again.equals(out)  # seeded: a rerun writes the same numbers


# --- savings -------------------------------------------------------------------------------------------------------

SONNET45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA_PRO = "amazon.nova-pro-v1:0"


def _priced(*rows: dict[str, Any]) -> pl.DataFrame:
    full = []
    for i, r in enumerate(rows):
        model = r.get("model_id", SONNET45)
        base = {
            "request_id": f"r{i}",
            "date": DAY,
            "timestamp": dt.datetime(2026, 11, 24, 15, tzinfo=dt.UTC),
            "region": "us-east-1",
            "operation": "ConverseStream",
            "model_id": model,
            "base_model_id": model,
            "routing": "in_region",
            "status": "success",
            "input_tokens": 1000,
            "output_tokens": 500,
            "cache_read_input_tokens": 0,
            "cache_write_input_tokens": 0,
            "cost_center": "research",
            "application": "notebooks",
        }
        full.append({**base, **r})
    inv = schemas.conform(pl.DataFrame(full, infer_schema_length=None), schemas.INVOCATIONS)
    extra = pl.DataFrame(full, infer_schema_length=None).select("cost_center", "application")
    return price_invocations(inv, load_catalog()).with_columns(extra)


def _rate(model_id: str, column: str) -> float:
    """A rate read straight from the bundled catalog file's standard row (any region, open-ended)."""
    rows = load_catalog().rows.filter(
        (pl.col("model_id") == model_id)
        & (pl.col("tier") == "standard")
        & (pl.col("context_tier") == "standard")
        & (pl.col("region") == "*")
        & pl.col("effective_to").is_null()
    )
    assert rows.height == 1, rows
    return float(rows[column][0])


def test_global_routing_savings_recomputed_by_hand_from_the_catalog() -> None:
    priced = _priced(
        {"input_tokens": 12_000, "output_tokens": 800},
        {"input_tokens": 3_000, "output_tokens": 2_000, "cost_center": "sales", "application": "copilot"},
    )
    out = savings_opportunities(priced, load_catalog(), DAY)
    row = out.filter((pl.col("scenario") == "global_routing") & (pl.col("dimension") == "total")).row(0, named=True)
    regional = (15_000 * _rate(SONNET45, "input_per_1k_usd") + 2_800 * _rate(SONNET45, "output_per_1k_usd")) / 1000
    g = "global." + SONNET45
    global_ = (15_000 * _rate(g, "input_per_1k_usd") + 2_800 * _rate(g, "output_per_1k_usd")) / 1000
    assert row["current_cost_usd"] == pytest.approx(regional)
    assert row["alternative_cost_usd"] == pytest.approx(global_)
    assert row["savings_usd"] == pytest.approx(regional - global_)
    assert row["monthly_savings_usd"] == pytest.approx((regional - global_) * 30)
    assert row["target_model_id"] == g and row["target_routing"] == "global" and row["share_of_traffic"] == 1.0
    assert row["rate_source"].startswith(f"catalog:{g}|")
    research = out.filter((pl.col("scenario") == "global_routing") & (pl.col("key") == "research")).row(0, named=True)
    assert research["dimension"] == "cost_center" and research["calls"] == 1


def test_batch_and_flex_price_asynchronous_looking_calls_at_the_derived_tier() -> None:
    big = {"operation": "InvokeModel", "input_tokens": 5_000, "output_tokens": 400}
    priced = _priced(big, {"operation": "ConverseStream", "input_tokens": 5_000})
    out = savings_opportunities(priced, load_catalog(), DAY)
    batch = out.filter((pl.col("scenario") == "batch") & (pl.col("dimension") == "total")).row(0, named=True)
    cost = (5_000 * _rate(SONNET45, "input_per_1k_usd") + 400 * _rate(SONNET45, "output_per_1k_usd")) / 1000
    assert batch["calls"] == 1 and batch["current_cost_usd"] == pytest.approx(cost)
    assert batch["savings_usd"] == pytest.approx(cost * 0.5) and batch["target_tier"] == "batch"
    assert "derived:batch=0.5x standard" in batch["rate_source"]
    assert out.filter(pl.col("scenario") == "flex").height > 0


def test_smaller_model_and_more_caching_follow_their_assumptions() -> None:
    priced = _priced(
        {"model_id": NOVA_PRO, "input_tokens": 800, "output_tokens": 100, "application": "qa"},
        {"input_tokens": 500, "output_tokens": 50, "cache_write_input_tokens": 4_000, "application": "bot"},
        {"input_tokens": 500, "output_tokens": 50, "cache_read_input_tokens": 4_000, "application": "bot"},
        {"input_tokens": 500, "output_tokens": 50, "cache_write_input_tokens": 4_000, "application": "nocache"},
    )
    out = savings_opportunities(priced, load_catalog(), DAY)
    small = out.filter((pl.col("scenario") == "smaller_model") & (pl.col("key") == "qa")).row(0, named=True)
    lite = SMALLER_SIBLING[NOVA_PRO]
    now = (800 * _rate(NOVA_PRO, "input_per_1k_usd") + 100 * _rate(NOVA_PRO, "output_per_1k_usd")) / 1000
    alt = (800 * _rate(lite, "input_per_1k_usd") + 100 * _rate(lite, "output_per_1k_usd")) / 1000
    assert small["target_model_id"] == lite and small["savings_usd"] == pytest.approx(0.5 * (now - alt))
    caching = out.filter(pl.col("scenario") == "more_caching")
    assert set(caching.filter(pl.col("dimension") == "application")["key"]) == {"bot"}  # only where it caches
    row = caching.filter(pl.col("key") == "bot").row(0, named=True)
    write, read = _rate(SONNET45, "cache_write_per_1k_usd"), _rate(SONNET45, "cache_read_per_1k_usd")
    assert row["savings_usd"] == pytest.approx(0.5 * 4_000 * (write - read) / 1000)


def test_unpriced_alternatives_are_left_out_never_guessed() -> None:
    llama8 = "meta.llama3-1-8b-instruct-v1:0"  # no global. row and no smaller sibling
    out = savings_opportunities(_priced({"model_id": llama8, "input_tokens": 100}), load_catalog(), DAY)
    assert out.filter(pl.col("scenario").is_in(["global_routing", "smaller_model"])).is_empty()
    assert savings_opportunities(schemas.empty(schemas.PRICED_INVOCATIONS), load_catalog(), DAY).is_empty()


def test_savings_in_parts_and_bands_equal_the_day_in_one_part(monkeypatch: pytest.MonkeyPatch) -> None:
    """A large day is repriced in parts of whole applications and its rows come back in bands of savings: the
    same rows, values and order as one part sorted in memory."""
    from pipeline.foresight import savings

    rows = [
        {
            "operation": "InvokeModel" if i % 2 else "ConverseStream",
            "model_id": NOVA_PRO if i % 3 == 0 else SONNET45,
            "input_tokens": 600 + 300 * i,
            "output_tokens": 50 + 7 * i,
            "cache_read_input_tokens": 100 if i % 5 == 0 else 0,
            "cache_write_input_tokens": 200 if i % 4 == 0 else 0,
            "cost_center": f"cc{i % 3}",
            "application": f"app{i % 7}",
        }
        for i in range(24)
    ]
    priced = _priced(*rows)
    whole = savings_opportunities(priced, load_catalog(), DAY)
    monkeypatch.setattr(savings, "ROWS_PER_BAND", 3)
    parted = savings_opportunities(priced, load_catalog(), DAY, calls_per_part=4)
    assert parted.height == whole.height > 20
    assert parted.select("scenario", "dimension", "key").equals(whole.select("scenario", "dimension", "key"))
    for column, dtype in whole.schema.items():
        if dtype == pl.Float64:
            assert parted[column].to_list() == pytest.approx(whole[column].to_list()), column
        else:
            assert parted[column].equals(whole[column]), column
