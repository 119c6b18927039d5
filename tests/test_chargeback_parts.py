"""`chargeback` built a share of the owners at a time (`chargeback_parts`) is the whole chargeback, row for row.

A day of millions of distinct callers is built in parts chosen by a hash of the owner; here a tiny part size forces
several parts on a small day that has every allocation path: estimate-weighted buckets (priced and unpriced calls),
bill rows naming their IAM principal (logged in the bucket, logged elsewhere that day, never logged), Provisioned
Throughput with callers and idle with a config owner, and a billed model nobody logged (`unallocated`).
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline import config, schemas
from pipeline.reconciliation.chargeback import KEYS, OWNER_KEYS, accounts_off_the_bill, chargeback, chargeback_parts
from tests.test_principals import ALICE_BILL, ALICE_LOG, GHOST_BILL, SESSION_BILL, SESSION_LOG
from tests.test_reconciliation import M2, NOVA2, PT_ARN, bill, billing_df, inv, priced_df, pt_bill, pt_call

IDLE_ARN = PT_ARN.replace("abc123xyz", "idle0reserve")


def _day() -> tuple[pl.DataFrame, pl.DataFrame, config.Attribution]:
    logs: list[dict[str, Any]] = []
    for i in range(30):
        user, app = f"user-{i}", f"app-{i % 4}"
        logs.append(inv(user=user, application=app, input_tokens=100 + i, cost=0.01 * (i + 1)))
        logs.append(inv(identity_arn=SESSION_LOG, user=user, application=app, input_tokens=50, cost=0.002 * i))
        if i % 3 == 0:
            logs.append(inv(user=user, application=app, input_tokens=40, priced=False))  # unpriced: tokens × rate
        if i % 5 == 0:
            logs.append(pt_call(100 * i, 10, 3, user=user, application=app))
    logs.append(inv(identity_arn=ALICE_LOG, user="alice", model_id=M2, base_model_id=M2, input_tokens=9, cost=0.3))
    bills = [
        bill(tokens=10_000, unblended_cost_usd=7.5),
        bill(usage_kind="output", tokens=500, unblended_cost_usd=2.25),
        bill(iam_principal=SESSION_BILL, tokens=1_500, unblended_cost_usd=1.75),
        bill(iam_principal=SESSION_BILL, region="us-west-2", tokens=10, unblended_cost_usd=0.4),  # logged elsewhere
        bill(iam_principal=ALICE_BILL, base_model_id=M2, usage_type="USE1-NovaPro-input-tokens", unblended_cost_usd=1),
        bill(iam_principal=GHOST_BILL, tokens=10, unblended_cost_usd=0.6),  # never logged: the principal's name
        bill(base_model_id="amazon.titan-text-express-v1", usage_type="USE1-TitanTextG1-Express-input-tokens",
             tokens=7, unblended_cost_usd=0.35),  # nobody logged it: unallocated
        pt_bill(),
        pt_bill(resource_id=IDLE_ARN, unblended_cost_usd=60.5),
    ]  # fmt: skip
    cfg = config.Attribution(
        provisioned_models={IDLE_ARN: {"model_id": NOVA2, "tags": {"costCenter": "platform", "applicationId": "cap"}}}
    )
    return priced_df(logs), billing_df(bills), cfg


def test_parts_are_the_whole_chargeback_owner_by_owner() -> None:
    priced, billing, cfg = _day()
    whole = chargeback(priced, billing, cfg)
    parts = list(chargeback_parts(priced, billing, cfg, owners_per_part=4))
    assert len(parts) > 3 and all(p.schema == pl.Schema(schemas.CHARGEBACK) for p in parts)
    joined = pl.concat(parts)
    assert_frame_equal(
        joined.sort(list(KEYS), nulls_last=True),
        whole.sort(list(KEYS), nulls_last=True),
        check_exact=False,
        rel_tol=1e-9,
        abs_tol=1e-12,
    )
    owners = [set(p.select(OWNER_KEYS).iter_rows()) for p in parts if p.height]
    assert sum(len(o) for o in owners) == len(set().union(*owners)), "every owner's rows are in one part"
    # the cases the day was built to have are all there, and the parts still sum to the bill
    reasons = set(joined["allocation_reason"])
    assert {"logged_calls", "bill_principal", "no_logged_caller", "provisioned_model_tags"} <= reasons
    assert accounts_off_the_bill(joined, billing).is_empty()
    assert joined.group_by("date", "account_id").agg(pl.col("share").sum())["share"].to_list() == [pytest.approx(1.0)]


def test_rounding_to_cents_is_one_part() -> None:
    """Largest-remainder rounding ranks every row of a day and account: it is never split."""
    priced, billing, cfg = _day()
    parts = list(chargeback_parts(priced, billing, cfg, round_cents=True, owners_per_part=4))
    assert len(parts) == 1
    assert_frame_equal(parts[0], chargeback(priced, billing, cfg, round_cents=True))


def test_reconciliations_logged_side_streams_the_same_sums_as_filtered_aggregations() -> None:
    """The logged side sums row-wise amounts (a filter inside an aggregation held the whole day in the streaming
    engine): per bucket and kind the same quantities, unpriced tokens, estimates and "any priced" as the filtered
    aggregation it replaced, on a day mixing priced, unpriced and image calls."""
    import importlib

    rec = importlib.import_module("pipeline.reconciliation.reconcile")  # the package exports a function by that name

    priced, _, _ = _day()
    images = [
        inv(model_id=M2, base_model_id=M2, image_count=2, image_cost_usd=0.08, cost=0.0),
        inv(model_id=M2, base_model_id=M2, image_count=3, priced=False),
    ]
    priced = pl.concat([priced, priced_df(images)], how="vertical_relaxed")
    out = rec._logged_side(priced)
    flag = pl.col("priced").fill_null(False)
    base = [*rec.MODEL_BUCKET, "routing", "tier", "context_tier"]
    calls = (
        rec.with_ttl_split(priced.lazy())
        .filter(~rec.is_provisioned_call())
        .with_columns(rec.logged_model_key().alias("base_model_id"), rec._pricing_routing().alias("routing"))
        .with_columns(rec._pricing_tier().alias("tier"))
        .collect()
    )
    kinds = [*rec.TOKEN_KINDS.items(), ("image", ("image_count", "image_cost_usd"))]
    for kind, (qty, cost) in kinds:
        amount = pl.col(qty).fill_null(0)
        any_priced = (flag & (amount > 0)) if kind == "image" else flag
        expected = (
            calls.group_by(base)
            .agg(
                amount.sum().cast(pl.Int64).alias("_logged_qty"),
                amount.filter(~flag).sum().cast(pl.Int64).alias("_unpriced_tokens"),
                pl.when(any_priced.any())
                .then(pl.col(cost).filter(flag).fill_null(0.0).sum())
                .alias("estimated_cost_usd"),
            )
            .filter(pl.col("_logged_qty") > 0)
        )
        got = out.filter(pl.col("usage_kind") == kind).select(*base, *expected.columns[len(base) :])
        assert_frame_equal(got, expected, check_row_order=False, check_dtypes=False)
