"""The plain functions behind the billing checks and sensor: unmapped usage rows, chargeback against the bill,
and the billing period of an export manifest."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from pipeline.billing.line_items import unmapped_usage_rows
from pipeline.billing.manifests import billing_period_of
from pipeline.reconciliation.chargeback import accounts_off_the_bill

D = dt.date(2026, 3, 5)


def test_unmapped_usage_rows_leave_out_adjustments_provisioned_and_other() -> None:
    items = pl.DataFrame(
        {
            "line_item_type": ["Usage", "Usage", "Usage", "Usage", "Tax", "FlatRateSubscription"],
            "usage_kind": ["input", "input", "provisioned", "other", "input", "image"],
            "base_model_id": ["m", None, None, None, None, None],
        }
    )
    out = unmapped_usage_rows(items)
    assert out.select("line_item_type", "usage_kind").rows() == [("Usage", "input"), ("FlatRateSubscription", "image")]


def test_accounts_off_the_bill_by_more_than_half_a_cent() -> None:
    billing = pl.DataFrame(
        {
            "date": [D, D, D, D],
            "account_id": ["a", "a", "b", "c"],
            "line_item_type": ["Usage", "Tax", "Usage", "Usage"],
            "unblended_cost_usd": [10.0, 5.0, 3.0, 1.0],
        }
    )
    cb = pl.DataFrame({"date": [D, D, D], "account_id": ["a", "b", "d"], "billed_cost_usd": [10.004, 2.0, 0.5]})
    off = accounts_off_the_bill(cb, billing).sort("account_id")
    assert off.select("account_id", "bill", "allocated").rows() == [("b", 3.0, 2.0), ("c", 1.0, 0.0), ("d", 0.0, 0.5)]


@pytest.mark.parametrize(
    ("path", "period"),
    [
        ("bucket/cur2/my-export/metadata/BILLING_PERIOD=2026-03/my-export-Manifest.json", "2026-03"),
        ("bucket/cur/report/20260301-20260401/report-Manifest.json", "2026-03"),
        ("bucket/cur2/my-export/metadata/BILLING_PERIOD=latest/my-export-Manifest.json", None),
        ("bucket/cur/report/20261301-20260401/report-Manifest.json", None),
    ],
)
def test_billing_period_of_a_manifest(path: str, period: str | None) -> None:
    assert billing_period_of(path) == period
