"""Guardrails: units from the log's trace priced per policy (outside the model cost), and guardrail bill rows
reconciled in their own bucket."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from pipeline.pricing.guardrails import load_guardrail_prices, price_of, with_guardrail_cost

D = dt.date(2026, 5, 14)


def _calls(**units: list[int]) -> pl.DataFrame:
    n = len(next(iter(units.values())))
    return pl.DataFrame(
        {"date": [D] * n, "region": ["us-east-1"] * n, **{f"guardrail_{p}_units": v for p, v in units.items()}}
    )


def test_guardrail_prices_are_catalog_rows_per_policy() -> None:
    prices = load_guardrail_prices()
    assert set(prices["model_id"]) >= {"guardrail:content", "guardrail:sensitive_information"}
    assert price_of("content", D, "us-east-1", prices) == pytest.approx(0.15 / 1000)
    assert price_of("sensitive_information", D, "eu-west-1", prices) == pytest.approx(0.10 / 1000)
    assert price_of("content", dt.date(2024, 1, 1), "us-east-1", prices) is None  # before the row's dates


def test_cost_sums_policies_and_an_unpriced_policy_is_never_zero() -> None:
    out = with_guardrail_cost(
        _calls(content=[2, 0, 0], sensitive_information=[1, 0, 0], word=[5, 0, 0], automated_reasoning=[0, 0, 3])
    )
    assert out["guardrail_cost_usd"][0] == pytest.approx(2 * 0.00015 + 0.0001)  # word filters are free
    assert out["guardrail_cost_usd"][1] == 0.0  # no units: no guardrail cost
    assert out["guardrail_cost_usd"][2] is None  # automated reasoning units without a price: unknown, not $0


def test_a_frame_without_unit_columns_costs_nothing() -> None:
    out = with_guardrail_cost(pl.DataFrame({"date": [D], "region": ["us-east-1"]}))
    assert out["guardrail_cost_usd"].to_list() == [0.0]


# --- guardrail bill rows in their own bucket ---------------------------------------------------------------------

from pipeline import schemas  # noqa: E402
from pipeline.reconciliation import gaps_over_tolerance, reconcile  # noqa: E402
from tests.test_reconciliation import AS_OF, TOL, bill, billing_df, inv, priced_df  # noqa: E402

SI_USAGE_TYPE = "USE1-Guardrail-SensitiveInformationPolicyPaidUnitsConsumed"


def _guard_bill(units: float, cost: float) -> dict[str, object]:
    return bill(
        usage_type=SI_USAGE_TYPE,
        usage_kind="sensitive_information",
        base_model_id=None,
        tier="standard",
        tokens=None,
        usage_amount=units,
        pricing_unit="Units",
        unblended_cost_usd=cost,
        spend_kind="guardrail",
    )


def _traced(units: int) -> dict[str, object]:
    return inv(
        input_tokens=1_000, cost=0.003, guardrail_sensitive_information_units=units, guardrail_trace_present=True
    )


def _guardrail_rows(logs: list[dict[str, object]], bills: list[dict[str, object]]) -> pl.DataFrame:
    out = reconcile(priced_df(logs), billing_df(bills), TOL, AS_OF)
    assert out.schema == pl.Schema(schemas.COST_RECONCILIATION)
    return out.filter(pl.col("spend_kind") == "guardrail")


def test_log_units_meet_the_bill_policy_row() -> None:
    # 2 traced calls x 600 units = 1,200 sensitive-information units at $0.10/1,000 = $0.12, billed the same.
    r = _guardrail_rows([_traced(600), _traced(600)], [_guard_bill(1200, 0.12)]).row(0, named=True)
    assert (r["usage_kind"], r["status"], r["logged_units"], r["billed_units"]) == (
        "sensitive_information",
        "matched",
        1200.0,
        1200.0,
    )
    assert r["estimated_cost_usd"] == pytest.approx(0.12) and r["base_model_id"] is None


def test_fewer_logged_units_are_a_lower_bound_not_a_failed_check() -> None:
    recon = reconcile(priced_df([_traced(600)]), billing_df([_guard_bill(1500, 0.15)]), TOL, AS_OF)
    r = recon.filter(pl.col("spend_kind") == "guardrail").row(0, named=True)
    assert r["status"] == "under_logged"
    assert "only for calls that enabled the guardrail trace" in r["explanation"]
    assert gaps_over_tolerance(recon, AS_OF, 2).filter(pl.col("spend_kind") == "guardrail").is_empty()


def test_billed_guardrail_without_any_trace_is_missing_in_logs_and_explained() -> None:
    r = _guardrail_rows([], [_guard_bill(300, 0.03)]).row(0, named=True)
    assert r["status"] == "missing_in_logs" and "ApplyGuardrail" in r["explanation"]


def test_guardrail_rows_never_enter_the_token_match() -> None:
    recon = reconcile(
        priced_df([inv(input_tokens=1_000_000, cost=3.0)]),
        billing_df([bill(tokens=1_000_000, unblended_cost_usd=3.0), _guard_bill(100, 0.01)]),
        TOL,
        AS_OF,
    )
    tokens = recon.filter(pl.col("spend_kind") == "on_demand").row(0, named=True)
    assert tokens["status"] == "matched" and tokens["billed_cost_usd"] == 3.0
