"""Daily usage tables and budget status on small hand-built fixtures; every expectation is worked out by hand."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import polars as pl
import pytest

from pipeline import schemas
from pipeline.aggregates import (
    budget_status,
    totals_agree,
    usage_by_cost_center,
    usage_by_model,
    usage_by_user,
)
from pipeline.config import Budget

D1 = dt.date(2026, 1, 5)
_ids = itertools.count()


def inv(**kw: Any) -> dict[str, Any]:
    """One priced invocation with sensible defaults; costs are null unless given (and null when unpriced)."""
    row: dict[str, Any] = {
        "request_id": f"r{next(_ids)}",
        "date": D1,
        "account_id": "111122223333",
        "region": "us-east-1",
        "model_id": "anthropic.claude-3-haiku-20240307-v1:0",
        "base_model_id": "anthropic.claude-3-haiku-20240307-v1:0",
        "routing": "in_region",
        "pricing_routing": "in_region",
        "pricing_tier": "standard",
        "user": "alice",
        "application": "chat",
        "cost_center": "sales",
        "environment": "production",
        "status": "success",
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_write_input_tokens": 0,
        "priced": True,
    }
    row.update(kw)
    if row["priced"]:
        for c in ("input_cost_usd", "output_cost_usd", "cache_read_cost_usd", "cache_write_cost_usd"):
            row.setdefault(c, 0.0)
        row.setdefault(
            "total_cost_usd",
            row["input_cost_usd"] + row["output_cost_usd"] + row["cache_read_cost_usd"] + row["cache_write_cost_usd"],
        )
    return row


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = schemas.PRICED_INVOCATIONS
    return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema)


def sales_day() -> pl.DataFrame:
    """Five `sales` calls plus one call with no attribution at all.

    a: alice, success, 10 ms, tokens 1000/500/200/100, cost .003/.0075/.0002/.0004 → .0111
    b: bob, client_error, 20 ms, priced at 0
    c: bob, throttled, 30 ms, priced at 0
    d: unattributed user, guardrail_intervened, 40 ms, 100 input tokens at .0003
    e: carol, server_error, no latency, unpriced, 50 input tokens
    f: no cost center / user / application (null), success, 7 ms, unpriced, 10 input tokens
    """
    return frame(
        [
            inv(
                latency_ms=10,
                input_tokens=1000,
                output_tokens=500,
                cache_read_input_tokens=200,
                cache_write_input_tokens=100,
                input_cost_usd=0.003,
                output_cost_usd=0.0075,
                cache_read_cost_usd=0.0002,
                cache_write_cost_usd=0.0004,
            ),
            inv(user="bob", status="client_error", latency_ms=20),
            inv(user="bob", status="throttled", latency_ms=30),
            inv(
                user=schemas.UNATTRIBUTED,
                status="guardrail_intervened",
                latency_ms=40,
                input_tokens=100,
                input_cost_usd=0.0003,
            ),
            inv(user="carol", status="server_error", latency_ms=None, input_tokens=50, priced=False),
            inv(
                user=None,
                cost_center=None,
                application=None,
                latency_ms=7,
                input_tokens=10,
                priced=False,
                model_id="vendor.new-model-v1",
                base_model_id=None,
            ),
        ]
    )


def test_cost_center_metrics_hand_computed() -> None:
    out = usage_by_cost_center(sales_day())
    assert out.columns == list(schemas.DAILY_USAGE_BY_COST_CENTER)
    assert out.schema == pl.Schema(schemas.DAILY_USAGE_BY_COST_CENTER)
    assert out["cost_center"].to_list() == ["sales", schemas.UNATTRIBUTED]  # sorted; null became unattributed
    s = out.row(0, named=True)
    assert (s["invocations"], s["successes"], s["client_errors"], s["server_errors"], s["throttles"]) == (5, 1, 1, 1, 1)
    assert s["guardrail_interventions"] == 1
    # errors = client 1 + server 1 + throttled 1 = 3 of 5 calls; the guardrail intervention is not an error.
    assert s["error_rate"] == pytest.approx(3 / 5)
    assert (s["input_tokens"], s["output_tokens"]) == (1000 + 100 + 50, 500)
    assert (s["cache_read_input_tokens"], s["cache_write_input_tokens"]) == (200, 100)
    assert s["input_cost_usd"] == pytest.approx(0.003 + 0.0003)
    assert s["output_cost_usd"] == pytest.approx(0.0075)
    assert s["cache_cost_usd"] == pytest.approx(0.0002 + 0.0004)
    assert s["total_cost_usd"] == pytest.approx(0.0111 + 0.0003)
    # 4 priced calls (a, b, c, d): .0114 / 4; the unpriced call e does not dilute the average.
    assert s["avg_cost_per_invocation_usd"] == pytest.approx(0.0114 / 4)
    assert s["unpriced_invocations"] == 1
    # latencies 10, 20, 30, 40 (e has none): mean 25; linear p50 at pos 1.5 → 25; p95 at pos 2.85 → 30 + .85·10;
    # p99 at pos 2.97 → 30 + .97·10.
    assert s["latency_ms_avg"] == pytest.approx(25.0)
    assert s["latency_ms_p50"] == pytest.approx(25.0)
    assert s["latency_ms_p95"] == pytest.approx(38.5)
    assert s["latency_ms_p99"] == pytest.approx(39.7)
    # alice, bob, carol; `unattributed` is not a user.
    assert s["unique_users"] == 3
    assert s["avg_cost_per_user_usd"] == pytest.approx(0.0114 / 3)

    u = out.row(1, named=True)
    assert (u["invocations"], u["unpriced_invocations"], u["total_cost_usd"]) == (1, 1, 0.0)
    assert u["avg_cost_per_invocation_usd"] is None  # nothing priced
    assert u["unique_users"] == 0
    assert u["avg_cost_per_user_usd"] is None  # no users to divide by
    assert u["latency_ms_p99"] == pytest.approx(7.0)
    assert u["error_rate"] == 0.0


def test_percentiles_linear_interpolation() -> None:
    lat = [1000, 100, 400, 200, 300]
    out = usage_by_cost_center(frame([inv(latency_ms=x) for x in lat] + [inv(latency_ms=None)]))
    r = out.row(0, named=True)
    # sorted 100, 200, 300, 400, 1000: p50 pos 2 → 300; p95 pos 3.8 → 400 + .8·600 = 880; p99 pos 3.96 → 976.
    assert r["latency_ms_p50"] == pytest.approx(300.0)
    assert r["latency_ms_p95"] == pytest.approx(880.0)
    assert r["latency_ms_p99"] == pytest.approx(976.0)
    assert r["latency_ms_avg"] == pytest.approx(2000 / 5)
    assert r["invocations"] == 6


def test_by_user_keys_and_unattributed_rows() -> None:
    out = usage_by_user(sales_day())
    assert out.columns == list(schemas.DAILY_USAGE_BY_USER)
    for key in ("user", "cost_center", "application"):
        assert out[key].null_count() == 0
    rows = {(r["user"], r["cost_center"], r["application"]): r for r in out.iter_rows(named=True)}
    assert set(rows) == {
        ("alice", "sales", "chat"),
        ("bob", "sales", "chat"),
        ("carol", "sales", "chat"),
        (schemas.UNATTRIBUTED, "sales", "chat"),
        (schemas.UNATTRIBUTED, schemas.UNATTRIBUTED, schemas.UNATTRIBUTED),
    }
    bob = rows[("bob", "sales", "chat")]
    assert (bob["invocations"], bob["error_rate"], bob["unique_users"]) == (2, 1.0, 1)  # 2 errors of 2 calls
    assert bob["total_cost_usd"] == 0.0 and bob["avg_cost_per_invocation_usd"] == 0.0  # priced at $0 is not null
    assert rows[(schemas.UNATTRIBUTED, "sales", "chat")]["unique_users"] == 0
    carol = rows[("carol", "sales", "chat")]
    assert (carol["total_cost_usd"], carol["unpriced_invocations"], carol["unique_users"]) == (0.0, 1, 1)


def test_by_model_keys_fall_back_to_logged_model_id() -> None:
    out = usage_by_model(sales_day())
    assert out.columns == list(schemas.DAILY_USAGE_BY_MODEL)
    assert out["base_model_id"].to_list() == ["anthropic.claude-3-haiku-20240307-v1:0", "vendor.new-model-v1"]
    haiku = out.row(0, named=True)
    assert haiku["invocations"] == 5 and haiku["unique_users"] == 3


def test_all_unpriced_day_has_zero_cost_but_counts_calls() -> None:
    out = usage_by_model(frame([inv(priced=False, input_tokens=5), inv(priced=False, input_tokens=7)]))
    r = out.row(0, named=True)
    assert (r["total_cost_usd"], r["input_cost_usd"], r["cache_cost_usd"]) == (0.0, 0.0, 0.0)
    assert r["unpriced_invocations"] == 2 and r["input_tokens"] == 12
    assert r["avg_cost_per_invocation_usd"] is None


def test_lazy_input_equals_eager_and_empty_input_conforms() -> None:
    df = sales_day()
    assert usage_by_user(df.lazy()).equals(usage_by_user(df))
    empty = usage_by_cost_center(schemas.empty(schemas.PRICED_INVOCATIONS))
    assert empty.height == 0 and empty.schema == pl.Schema(schemas.DAILY_USAGE_BY_COST_CENTER)


def test_totals_agree_and_detects_a_lost_row() -> None:
    df = sales_day()
    by_model, by_user, by_cc = usage_by_model(df), usage_by_user(df), usage_by_cost_center(df)
    ok, details = totals_agree(df, by_model, by_user, by_cc)
    assert ok, details["mismatches"]
    assert details["invocations"]["daily_usage_by_user"] == 6
    assert details["total_cost_usd"]["priced_invocations"] == pytest.approx(0.0114)

    ok, details = totals_agree(df, by_model, by_user.filter(pl.col("user") != "alice"), by_cc)
    assert not ok
    assert any(m.startswith("invocations: daily_usage_by_user") for m in details["mismatches"])
    assert any(m.startswith("total_cost_usd: daily_usage_by_user") for m in details["mismatches"])


# --- budgets -------------------------------------------------------------------------------------------------------


def cc_days(spend: dict[tuple[dt.date, str], float]) -> pl.DataFrame:
    rows = [{"date": d, "cost_center": cc, "total_cost_usd": v} for (d, cc), v in spend.items()]
    return schemas.conform(pl.DataFrame(rows), schemas.DAILY_USAGE_BY_COST_CENTER)


AS_OF = dt.date(2026, 4, 10)  # April has 30 days


def _spend_300(cc: str) -> dict[tuple[dt.date, str], float]:
    # $30 a day on April 1..10 = $300 by day 10.
    return {(dt.date(2026, 4, d), cc): 30.0 for d in range(1, 11)}


@pytest.mark.parametrize(
    ("budget", "status", "pct"),
    [
        (1000.0, "ok", 30.0),  # forecast 900 ≤ 1000
        (800.0, "forecast_over", 37.5),  # forecast 900 > 800 while only 37.5 % used
        (375.0, "warning", 80.0),  # 300 / 375 = exactly 80 %
        (300.0, "over_budget", 100.0),  # exactly 100 %
        (250.0, "over_budget", 120.0),
    ],
)
def test_budget_status_forecast_and_thresholds(budget: float, status: str, pct: float) -> None:
    out = budget_status(cc_days(_spend_300("sales")), [Budget(cost_center="sales", monthly_usd=budget)], AS_OF)
    assert out.columns == list(schemas.BUDGET_STATUS)
    r = out.row(0, named=True)
    assert r["month"] == "2026-04" and r["date"] == AS_OF
    assert (r["days_elapsed"], r["days_in_month"]) == (10, 30)
    assert r["spend_to_date_usd"] == pytest.approx(300.0)
    # run rate: 300 / 10 days × 30 days = 900
    assert r["forecast_month_end_usd"] == pytest.approx(900.0)
    assert r["pct_used"] == pytest.approx(pct)
    assert r["status"] == status


def test_budget_status_takes_its_forecast_from_spend_forecast() -> None:
    """The weekly-pattern forecast replaces the run rate where spend_forecast has a row; its interval and the
    probability of going over come along; a cost center without a row keeps the run rate."""
    from pipeline.foresight.forecast import spend_forecast

    spend = {**_spend_300("sales"), **_spend_300("search")}
    daily = cc_days(spend)
    forecast = spend_forecast(daily, AS_OF, {"sales": 800.0}).filter(pl.col("key") != "search")
    budgets = [Budget(cost_center="sales", monthly_usd=800), Budget(cost_center="search", monthly_usd=2000)]
    rows = {r["cost_center"]: r for r in budget_status(daily, budgets, AS_OF, forecast=forecast).iter_rows(named=True)}
    sales = forecast.filter(pl.col("key") == "sales").row(0, named=True)
    assert rows["sales"]["forecast_month_end_usd"] == pytest.approx(sales["forecast_usd"])
    assert rows["sales"]["forecast_low_usd"] <= rows["sales"]["forecast_month_end_usd"]
    assert rows["sales"]["forecast_high_usd"] >= rows["sales"]["forecast_month_end_usd"]
    assert (
        rows["sales"]["p_over_budget"] == pytest.approx(sales["p_over_budget"]) and rows["sales"]["p_over_budget"] > 0.9
    )
    assert rows["sales"]["status"] == "forecast_over"
    assert rows["search"]["forecast_month_end_usd"] == pytest.approx(900.0) and rows["search"]["p_over_budget"] is None


def test_budget_status_no_budget_no_spend_and_window() -> None:
    spend = {
        **_spend_300("search"),
        (dt.date(2026, 3, 31), "sales"): 1000.0,  # previous month: ignored
        (dt.date(2026, 4, 11), "sales"): 1000.0,  # after as_of: ignored (rerun of an old partition)
        (dt.date(2026, 4, 2), "sales"): 50.0,
    }
    budgets = [
        Budget(cost_center="sales", monthly_usd=500),
        Budget(cost_center="legal", monthly_usd=100),
    ]
    out = budget_status(cc_days(spend), budgets, AS_OF)
    rows = {r["cost_center"]: r for r in out.iter_rows(named=True)}
    assert set(rows) == {"sales", "legal", "search"}
    assert rows["sales"]["spend_to_date_usd"] == pytest.approx(50.0)
    assert rows["sales"]["forecast_month_end_usd"] == pytest.approx(150.0)  # 50 / 10 × 30
    assert rows["sales"]["status"] == "ok"
    legal = rows["legal"]
    assert (legal["spend_to_date_usd"], legal["forecast_month_end_usd"], legal["pct_used"]) == (0.0, 0.0, 0.0)
    assert legal["status"] == "ok"
    search = rows["search"]
    assert search["budget_usd"] is None and search["pct_used"] is None
    assert search["status"] == "no_budget"
    assert search["forecast_month_end_usd"] == pytest.approx(900.0)


def test_budget_status_leap_february_and_first_day() -> None:
    as_of = dt.date(2028, 2, 1)
    out = budget_status(cc_days({(as_of, "sales"): 10.0}), [Budget(cost_center="sales", monthly_usd=100)], as_of)
    r = out.row(0, named=True)
    assert (r["days_elapsed"], r["days_in_month"]) == (1, 29)
    assert r["forecast_month_end_usd"] == pytest.approx(290.0)  # 10 / 1 × 29
    assert r["status"] == "forecast_over"  # 10 % used, but the run rate ends at 290 %


def test_budget_run_rate_over_days_with_data() -> None:
    # Data starts on April 6 (logging switched on mid-month): $60 a day on April 6..10 = $300 by day 10.
    # Days with data: April 6..10 = 5. Run rate 300 / 5 = $60 a day; 20 days left after April 10:
    # forecast = 300 + 60 × 20 = 1500. Calendar days would have said 300 / 10 × 30 = 900 (too low).
    spend = {(dt.date(2026, 4, d), "sales"): 60.0 for d in range(6, 11)}
    out = budget_status(cc_days(spend), [Budget(cost_center="sales", monthly_usd=1200)], AS_OF)
    r = out.row(0, named=True)
    assert (r["first_data_date"], r["days_with_data"]) == (dt.date(2026, 4, 6), 5)
    assert r["forecast_month_end_usd"] == pytest.approx(1500.0)
    assert r["status"] == "forecast_over"  # 25 % used, but the run rate ends at 125 %


def test_budget_first_data_is_any_cost_center_and_gaps_count() -> None:
    # search has data from April 3; sales only spends on April 9 ($70). Days with data are April 3..10 = 8
    # (April 5, with no rows, still counts: it lies between the first data and as_of).
    # sales: 70 + 70 / 8 × 20 = 70 + 175 = 245.
    spend = {(dt.date(2026, 4, 3), "search"): 8.0, (dt.date(2026, 4, 9), "sales"): 70.0}
    out = budget_status(cc_days(spend), [Budget(cost_center="sales", monthly_usd=1000)], AS_OF)
    rows = {r["cost_center"]: r for r in out.iter_rows(named=True)}
    assert rows["sales"]["days_with_data"] == 8
    assert rows["sales"]["forecast_month_end_usd"] == pytest.approx(245.0)


def test_budget_month_without_data_says_so() -> None:
    out = budget_status(
        cc_days({(dt.date(2026, 3, 31), "sales"): 5.0}), [Budget(cost_center="sales", monthly_usd=100)], AS_OF
    )
    r = out.row(0, named=True)
    assert (r["status"], r["days_with_data"], r["first_data_date"]) == ("no_data", 0, None)
    assert r["spend_to_date_usd"] == 0.0 and r["forecast_month_end_usd"] is None


def test_budget_unpriced_share_beside_the_forecast() -> None:
    # 40 calls on April 10 of which 10 unpriced: 10 / 40 = 0.25 of the calls carry no price.
    rows = [
        {"date": AS_OF, "cost_center": "sales", "total_cost_usd": 3.0, "invocations": 40, "unpriced_invocations": 10}
    ]
    daily = schemas.conform(pl.DataFrame(rows), schemas.DAILY_USAGE_BY_COST_CENTER)
    r = budget_status(daily, [Budget(cost_center="sales", monthly_usd=100)], AS_OF).row(0, named=True)
    assert (r["invocations"], r["unpriced_invocations"]) == (40, 10)
    assert r["unpriced_share"] == pytest.approx(0.25)
    # one day of data on the as-of day: 3 + 3 / 1 × 20 = 63
    assert r["forecast_month_end_usd"] == pytest.approx(63.0)


def test_forecasts_over_budget_largest_first_with_one_sentence() -> None:
    from pipeline.aggregates.budgets import forecasts_over_budget

    status = pl.DataFrame(
        {
            "cost_center": ["search", "sales", "legal", "ops"],
            "budget_usd": [1000.0, 100.0, None, 50.0],
            "forecast_month_end_usd": [900.0, 150.0, 70.0, 60.0],
        }
    )
    over, words = forecasts_over_budget(status)
    assert over["cost_center"].to_list() == ["sales", "ops"]  # no budget (legal) is never "over"
    # usd(): whole dollars from $100, cents below
    assert words == "sales forecast $150 = 150% of its $100 budget; ops forecast $60.00 = 120% of its $50.00 budget"
    assert forecasts_over_budget(status.head(1))[1] == ""
