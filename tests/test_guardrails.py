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
