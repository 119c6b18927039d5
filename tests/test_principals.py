"""IAM principal in the bill (CUR 2.0 `line_item_iam_principal`): keys, reconciliation and chargeback per principal.

Golden cases: IAM users, assumed-role sessions, federated sessions and an API-key user meeting their log
identities; a principal billed and never logged; `iamPrincipal/` tags at their rank in attribution; a principal's
chargeback equal to its billed cost to the cent; bills without principal data giving exactly today's tables.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import config, schemas
from pipeline.billing import billing_line_items_for_day
from pipeline.billing.principals import principal_coverage
from pipeline.config import BillingSource
from pipeline.reconciliation import chargeback, reconcile
from pipeline.reconciliation.principals import principal_key
from pipeline.sample.bill import write_bill
from tests.test_reconciliation import ACCT, AS_OF, M1, M2, TOL, bill, billing_df, inv, priced_df

ALICE_LOG = f"arn:aws:iam::{ACCT}:user/engineering/alice"  # IAM path in the log, none on the bill
ALICE_BILL = f"arn:aws:iam::{ACCT}:user/alice"
SESSION_LOG = f"arn:aws:sts::{ACCT}:assumed-role/search-api/8d2f1c9e"
SESSION_BILL = f"arn:aws:iam::{ACCT}:assumed-role/search-api/8d2f1c9e"  # service part spelled `iam`
FED_LOG = f"arn:aws:sts::{ACCT}:assumed-role/AWSReservedSSO_Analyst_0a1b2c/dana@corp.example"
FED_BILL = "assumed-role/AWSReservedSSO_Analyst_0a1b2c/dana@corp.example"  # bare form: the row's account fills in
APIKEY_LOG = f"arn:aws:iam::{ACCT}:user/BedrockAPIKey-7q2x"
APIKEY_BILL = f"arn:aws:iam::{ACCT}:user/BedrockAPIKey-7q2x"
GHOST_BILL = f"arn:aws:sts::{ACCT}:assumed-role/nightly-batch/job-17"  # billed, never logged


def attribution(**kw: Any) -> config.Attribution:
    return config.Attribution(**kw)


# --- keys ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "account", "key"),
    [
        (ALICE_LOG, None, ALICE_BILL),
        (ALICE_BILL, None, ALICE_BILL),
        (SESSION_LOG, None, SESSION_LOG),
        (SESSION_BILL, None, SESSION_LOG),
        (FED_BILL, ACCT, FED_LOG),
        (FED_LOG, None, FED_LOG),
        (APIKEY_LOG, None, APIKEY_BILL),
        (f"arn:aws:sts::{ACCT}:federated-user/bob", None, f"arn:aws:sts::{ACCT}:federated-user/bob"),
        (f"arn:aws-us-gov:sts::{ACCT}:assumed-role/r/s", None, f"arn:aws-us-gov:sts::{ACCT}:assumed-role/r/s"),
        (f"  {ALICE_BILL} ", None, ALICE_BILL),
        (None, ACCT, None),
        ("", ACCT, None),
        ("not-an-arn", ACCT, "not-an-arn"),
        ("arn:aws:sts::1:assumed-role/no-session", None, "arn:aws:sts::1:assumed-role/no-session"),
    ],
)
def test_principal_key(value: str | None, account: str | None, key: str | None) -> None:
    assert principal_key(value, account) == key


# --- reconciliation ------------------------------------------------------------------------------------------------


def _recon(logs: list[dict[str, Any]], bills: list[dict[str, Any]]) -> pl.DataFrame:
    out = reconcile(priced_df(logs), billing_df(bills), TOL, AS_OF)
    assert out.schema == pl.Schema(schemas.COST_RECONCILIATION)
    return out


def _by_principal(recon: pl.DataFrame) -> dict[str | None, dict[str, Any]]:
    rows = {r["iam_principal"]: r for r in recon.iter_rows(named=True)}
    assert len(rows) == recon.height, recon
    return rows


def test_each_kind_of_identity_meets_its_bill_row() -> None:
    """Users (with and without IAM path), assumed-role and federated sessions, an API-key user: all matched."""
    pairs = [(ALICE_LOG, ALICE_BILL), (SESSION_LOG, SESSION_BILL), (FED_LOG, FED_BILL), (APIKEY_LOG, APIKEY_BILL)]
    logs = [
        inv(identity_arn=log, input_tokens=1_000 * (i + 1), cost=0.003 * (i + 1)) for i, (log, _) in enumerate(pairs)
    ]
    bills = [
        bill(iam_principal=b, tokens=1_000 * (i + 1), unblended_cost_usd=0.003 * (i + 1))
        for i, (_, b) in enumerate(pairs)
    ]
    rows = _by_principal(_recon(logs, bills))
    assert set(rows) == {ALICE_BILL, SESSION_LOG, FED_LOG, APIKEY_BILL}
    for i, key in enumerate([ALICE_BILL, SESSION_LOG, FED_LOG, APIKEY_BILL]):
        r = rows[key]
        assert (r["status"], r["logged_tokens"], r["billed_tokens"]) == ("matched", 1_000 * (i + 1), 1_000 * (i + 1))
        assert r["explanation"].startswith(f"principal {key}: ")


def test_principal_billed_but_never_logged_is_missing_in_logs_for_that_principal() -> None:
    logs = [inv(identity_arn=ALICE_LOG, input_tokens=1_000, cost=0.003)]
    bills = [
        bill(iam_principal=ALICE_BILL, tokens=1_000, unblended_cost_usd=0.003),
        bill(iam_principal=GHOST_BILL, tokens=40_000, unblended_cost_usd=0.12),
    ]
    rows = _by_principal(_recon(logs, bills))
    assert rows[ALICE_BILL]["status"] == "matched"
    ghost = rows[GHOST_BILL]
    assert (ghost["status"], ghost["billed_tokens"], ghost["logged_tokens"]) == ("missing_in_logs", 40_000, 0)
    text = ghost["explanation"]
    assert text.startswith(f"principal {GHOST_BILL} is billed 40,000 input tokens of {M1} ($0.1200)")
    assert "invocation logging may be off for account 111122223333 in us-east-1" in text
    assert "a path the logs do not cover" in text


def test_principal_logged_but_not_billed_is_missing_in_bill() -> None:
    logs = [
        inv(identity_arn=ALICE_LOG, input_tokens=1_000, cost=0.003),
        inv(identity_arn=SESSION_LOG, input_tokens=500, cost=0.0015),
    ]
    bills = [bill(iam_principal=ALICE_BILL, tokens=1_000, unblended_cost_usd=0.003)]
    rows = _by_principal(_recon(logs, bills))
    r = rows[SESSION_LOG]
    assert (r["status"], r["logged_tokens"], r["billed_tokens"]) == ("missing_in_bill", 500, 0)
    assert f"principal {SESSION_LOG} logged 500 input tokens" in r["explanation"]
    assert "another principal" in r["explanation"]
    # Within the billing lag the sentence says the bill may not be final, with the principal named.
    late = reconcile(priced_df(logs), billing_df(bills), TOL, as_of=logs[0]["date"])
    text = late.filter(pl.col("iam_principal") == SESSION_LOG)["explanation"][0]
    assert text.startswith(f"principal {SESSION_LOG}: ") and "may not be final yet" in text


def test_buckets_the_bill_does_not_split_stay_as_they_are() -> None:
    """A model whose bill rows name no principal (Marketplace, say) reconciles without the principal key."""
    logs = [
        inv(identity_arn=ALICE_LOG, input_tokens=1_000, cost=0.003),
        inv(identity_arn=ALICE_LOG, model_id=M2, base_model_id=M2, input_tokens=2_000, cost=0.0016),
        inv(identity_arn=SESSION_LOG, model_id=M2, base_model_id=M2, input_tokens=2_000, cost=0.0016),
    ]
    bills = [
        bill(iam_principal=ALICE_BILL, tokens=1_000, unblended_cost_usd=0.003),
        bill(base_model_id=M2, usage_type="USE1-NovaPro-input-tokens", tokens=4_000, unblended_cost_usd=0.0032),
    ]
    recon = _recon(logs, bills)
    m2 = recon.filter(pl.col("base_model_id") == M2).row(0, named=True)
    assert recon.filter(pl.col("base_model_id") == M2).height == 1
    assert (m2["iam_principal"], m2["status"], m2["logged_tokens"]) == (None, "matched", 4_000)
    # Provisioned calls are never split: the bill charges hours.
    pt = inv(identity_arn=ALICE_LOG, routing="provisioned", pricing_routing="provisioned", input_tokens=10)
    recon = _recon([*logs, pt], bills)
    assert recon.filter(pl.col("usage_kind") == "provisioned")["iam_principal"].to_list() == [None]


def test_exports_without_principal_data_give_todays_tables() -> None:
    logs = [inv(identity_arn=ALICE_LOG, input_tokens=1_000, cost=3.0), inv(user="bob", input_tokens=1_000, cost=1.0)]
    bills = [bill(tokens=2_000, unblended_cost_usd=8.0), bill(base_model_id=M2, tokens=5, unblended_cost_usd=1.5)]
    with_null = billing_df(bills)
    without = with_null.drop("iam_principal")  # a partition written before the column existed
    for frame in (with_null, without):
        recon = reconcile(priced_df(logs), frame, TOL, AS_OF)
        assert recon["iam_principal"].null_count() == recon.height
        assert recon.drop("iam_principal").equals(
            reconcile(priced_df(logs), with_null, TOL, AS_OF).drop("iam_principal")
        )
        cb = chargeback(priced_df(logs), frame)
        assert cb.equals(chargeback(priced_df(logs), with_null))
        assert cb.filter(pl.col("cost_center") == schemas.UNALLOCATED)["billed_cost_usd"].sum() == pytest.approx(1.5)


# --- chargeback ----------------------------------------------------------------------------------------------------


def _cb(logs: list[dict[str, Any]], bills: list[dict[str, Any]], cfg: config.Attribution | None = None) -> dict:
    cb = chargeback(priced_df(logs), billing_df(bills), attribution=cfg)
    assert cb.schema == pl.Schema(schemas.CHARGEBACK)
    total = sum(b["unblended_cost_usd"] for b in bills if b["line_item_type"] == "Usage")
    assert cb["billed_cost_usd"].sum() == pytest.approx(total, abs=1e-9)  # still sums to the invoice
    return {(r["cost_center"], r["application"], r["user"]): r for r in cb.iter_rows(named=True)}


def test_chargeback_takes_each_principals_billed_cost_to_the_cent() -> None:
    """The estimate would split $10 by 3:1; the bill says alice $7.13 and the session $2.87."""
    logs = [
        inv(identity_arn=ALICE_LOG, user="alice", cost_center="sales", input_tokens=1_000, cost=3.0),
        inv(identity_arn=SESSION_LOG, user="8d2f1c9e", cost_center="search", input_tokens=1_000, cost=1.0),
    ]
    bills = [
        bill(iam_principal=ALICE_BILL, tokens=1_000, unblended_cost_usd=7.13),
        bill(iam_principal=SESSION_BILL, tokens=1_000, unblended_cost_usd=2.87),
    ]
    rows = _cb(logs, bills)
    alice, session = rows[("sales", "chat", "alice")], rows[("search", "chat", "8d2f1c9e")]
    assert round(alice["billed_cost_usd"], 2) == 7.13 and round(session["billed_cost_usd"], 2) == 2.87
    assert (alice["estimated_cost_usd"], session["estimated_cost_usd"]) == (pytest.approx(3.0), pytest.approx(1.0))
    assert (schemas.UNALLOCATED,) * 3 not in rows


def test_unallocated_shrinks_to_what_has_no_owner() -> None:
    """A billed, unlogged principal goes to its bill tags; only the principal-less, unlogged model stays
    unallocated. Rows without a principal are still allocated by estimate."""
    logs = [
        inv(identity_arn=ALICE_LOG, input_tokens=1_000, cost=3.0),
        inv(
            identity_arn=SESSION_LOG,
            user="bob",
            cost_center="search",
            application="finder",
            input_tokens=1_000,
            cost=1.0,
        ),
    ]
    ghost_tags = [
        {"key": "iamPrincipal/costCenter", "value": "platform"},
        {"key": "iamPrincipal/applicationId", "value": "etl"},
    ]
    bills = [
        bill(iam_principal=ALICE_BILL, tokens=1_000, unblended_cost_usd=3.0),
        bill(usage_kind="output", tokens=100, unblended_cost_usd=2.0),  # no principal: by estimate, 3:1
        bill(iam_principal=GHOST_BILL, base_model_id=M2, tokens=10, unblended_cost_usd=1.25, tags=ghost_tags),
        bill(base_model_id=M2, usage_type="USE1-NovaPro-input-tokens", tokens=5, unblended_cost_usd=0.5),
    ]
    rows = _cb(logs, bills)
    assert rows[("sales", "chat", "alice")]["billed_cost_usd"] == pytest.approx(3.0 + 1.5)
    assert rows[("search", "finder", "bob")]["billed_cost_usd"] == pytest.approx(0.5)
    # The session name is the user of an unlogged assumed role.
    assert rows[("platform", "etl", "job-17")]["billed_cost_usd"] == pytest.approx(1.25)
    assert rows[(schemas.UNALLOCATED,) * 3]["billed_cost_usd"] == pytest.approx(0.5)


def test_one_principal_with_several_owners_splits_by_estimated_cost() -> None:
    logs = [
        inv(identity_arn=SESSION_LOG, user="u1", application="chat", input_tokens=1_000, cost=0.6),
        inv(identity_arn=SESSION_LOG, user="u2", application="search", input_tokens=1_000, cost=0.2),
        # The same principal on another model: billed there for a bucket it did log.
        inv(
            identity_arn=SESSION_LOG,
            user="u1",
            application="chat",
            model_id=M2,
            base_model_id=M2,
            input_tokens=5,
            cost=0.2,
        ),
    ]
    bills = [
        bill(iam_principal=SESSION_BILL, tokens=2_000, unblended_cost_usd=1.0),
        # Billed in us-west-2 where this principal logged nothing: its owners of the day, 0.8 : 0.2.
        bill(iam_principal=SESSION_BILL, region="us-west-2", tokens=10, unblended_cost_usd=0.5),
    ]
    rows = _cb(logs, bills)
    assert rows[("sales", "chat", "u1")]["billed_cost_usd"] == pytest.approx(0.75 + 0.5 * 0.8)
    assert rows[("sales", "search", "u2")]["billed_cost_usd"] == pytest.approx(0.25 + 0.5 * 0.2)


PROFILE = f"arn:aws:bedrock:us-east-1:{ACCT}:application-inference-profile/a1b2c3d4e5f6"


def test_principal_tags_rank_between_profiles_and_principal_rules() -> None:
    """metadata > application profile > bill `iamPrincipal/` tags > principal rule > user name."""
    cfg = attribution(
        inference_profiles={PROFILE: {"model_id": M1, "tags": {"costCenter": "docs"}}},
        principals=[{"match": "arn:aws:sts::*:assumed-role/search-api/*", "tags": {"costCenter": "search"}}],
    )
    tags = [
        {"key": "iamPrincipal/costCenter", "value": "search-infra"},
        {"key": "iamPrincipal/userId", "value": "svc-search"},
    ]
    md = [{"key": "costCenter", "value": "sales"}]
    logs = [
        # priced_invocations already resolved: metadata → sales; profile → docs; rule → search (user = session).
        inv(
            identity_arn=SESSION_LOG,
            request_metadata=md,
            cost_center="sales",
            user="8d2f1c9e",
            input_tokens=10,
            cost=1.0,
        ),
        inv(
            identity_arn=SESSION_LOG,
            inference_profile=PROFILE,
            cost_center="docs",
            user="8d2f1c9e",
            input_tokens=10,
            cost=2.0,
        ),
        inv(identity_arn=SESSION_LOG, cost_center="search", user="8d2f1c9e", input_tokens=10, cost=3.0),
    ]
    bills = [bill(iam_principal=SESSION_BILL, tokens=30, unblended_cost_usd=6.0, tags=tags)]
    rows = _cb(logs, bills, cfg)
    billed = {k: round(r["billed_cost_usd"], 6) for k, r in rows.items() if r["billed_cost_usd"]}
    # Metadata keeps its cost center and the profile its own; the rule gives way to the bill's tag; the user came
    # from the session name on every call, so the bill's `userId` tag names it.
    assert billed == {
        ("sales", "chat", "svc-search"): 1.0,
        ("docs", "chat", "svc-search"): 2.0,
        ("search-infra", "chat", "svc-search"): 3.0,
    }
    assert rows[("sales", "chat", "svc-search")]["billed_cost_usd"] == pytest.approx(1.0)
    assert rows[("docs", "chat", "svc-search")]["billed_cost_usd"] == pytest.approx(2.0)
    assert rows[("search-infra", "chat", "svc-search")]["billed_cost_usd"] == pytest.approx(3.0)
    # Metadata naming the user beats the bill's tag too.
    md_user = [{"key": "userId", "value": "erin"}]
    logs = [
        inv(
            identity_arn=SESSION_LOG,
            request_metadata=md_user,
            user="erin",
            cost_center="search",
            input_tokens=10,
            cost=1.0,
        )
    ]
    rows = _cb(logs, [bill(iam_principal=SESSION_BILL, tokens=10, unblended_cost_usd=1.0, tags=tags)], cfg)
    assert rows[("search-infra", "chat", "erin")]["billed_cost_usd"] == pytest.approx(1.0)


def test_principal_tag_keys_are_read_tolerantly() -> None:
    """`iamPrincipal/user:CostCenter` and `iamPrincipal/cost_center` feed `cost_center` (spelling unverified)."""
    for key in ("iamPrincipal/user:costCenter", "iamPrincipal/CostCenter", "iamPrincipal/cost_center"):
        tags = [{"key": key, "value": "finance"}]
        rows = _cb([], [bill(iam_principal=ALICE_BILL, tokens=10, unblended_cost_usd=0.4, tags=tags)])
        assert rows[("finance", schemas.UNATTRIBUTED, "alice")]["billed_cost_usd"] == pytest.approx(0.4)


# --- reading and coverage ------------------------------------------------------------------------------------------

D1 = dt.date(2026, 5, 14)


def _usage() -> pl.DataFrame:
    rows = [
        (D1, ACCT, "us-east-1", "amazon.nova-pro-v1:0", "input", "in_region", "standard", 100_000, 0.08, None),
        (D1, ACCT, "us-east-1", "amazon.nova-pro-v1:0", "output", "in_region", "standard", 10_000, 0.032, None),
    ]
    cols = [
        "date",
        "account_id",
        "region",
        "base_model_id",
        "usage_kind",
        "routing",
        "tier",
        "tokens",
        "cost_usd",
        "profile_id",
    ]
    return pl.DataFrame(rows, schema=cols, orient="row")


def test_reader_keeps_the_principal_and_its_tags(tmp_path: Path) -> None:
    write_bill(str(tmp_path), _usage(), "cur2", discrepancies=False)
    (f,) = tmp_path.glob("bedrock-ledger-cur2/data/*/*.parquet")
    t = pq.read_table(f)
    without = billing_line_items_for_day(BillingSource(uri=str(tmp_path), format="cur2"), D1)
    assert without["iam_principal"].null_count() == without.height == 2
    principals = [ALICE_BILL, None]
    tags = [[("resourceTags/user:team", "x"), ("iamPrincipal/costCenter", "sales"), ("iamPrincipal/team", "")], []]
    str_map = pa.map_(pa.string(), pa.string())
    t = t.append_column("line_item_iam_principal", pa.array(principals, type=pa.string()))
    t = t.set_column(t.schema.get_field_index("tags"), "tags", pa.array(tags, type=str_map))
    pq.write_table(t, f)
    got = billing_line_items_for_day(BillingSource(uri=str(tmp_path), format="cur2"), D1).sort("usage_kind")
    assert got["iam_principal"].to_list() == [ALICE_BILL, None]
    assert {"key": "iamPrincipal/costCenter", "value": "sales"} in got["tags"][0].to_list()
    assert not any(e["key"] == "iamPrincipal/team" for e in got["tags"][0].to_list())  # empty values dropped
    cov = principal_coverage(got)
    assert cov["enabled"] and cov["principals"] == 1 and cov["rows_without_principal"] == 1
    assert cov["principal_cost_share"] == pytest.approx(0.08 / 0.112)


def test_legacy_cur_and_focus_read_a_null_principal(tmp_path: Path) -> None:
    for fmt in ("cur", "focus"):
        write_bill(str(tmp_path / fmt), _usage(), fmt, discrepancies=False)  # type: ignore[arg-type]
        got = billing_line_items_for_day(BillingSource(uri=str(tmp_path / fmt)), D1)
        assert got.height == 2 and got["iam_principal"].null_count() == 2
        assert principal_coverage(got)["enabled"] is False


def test_principal_summary_puts_each_principals_bill_beside_its_estimate() -> None:
    from pipeline.reconciliation.principals import principal_summary

    logs = [inv(identity_arn=ALICE_LOG, input_tokens=1_000, cost=0.003)]
    bills = [
        bill(iam_principal=ALICE_BILL, tokens=1_000, unblended_cost_usd=0.003),
        bill(iam_principal=GHOST_BILL, tokens=40_000, unblended_cost_usd=0.12),
    ]
    summary = principal_summary(_recon(logs, bills), priced_df([{**logs[0], "latency_ms": 420}]))
    assert summary["iam_principal"].to_list() == [GHOST_BILL, ALICE_BILL]
    ghost, alice = summary.rows(named=True)
    assert ghost["gaps"] == "missing_in_logs" and ghost["calls"] is None
    assert (alice["gaps"], alice["calls"], alice["tokens"], alice["latency_ms_p50"]) == ("", 1, 1_000, 420.0)
    assert principal_summary(_recon(logs, [bill(tokens=1_000, unblended_cost_usd=0.003)])).is_empty()


# --- properties ----------------------------------------------------------------------------------------------------

_IDENTITIES = st.sampled_from([ALICE_LOG, SESSION_LOG, FED_LOG, APIKEY_LOG, None])
_BILLED = st.sampled_from([ALICE_BILL, SESSION_BILL, FED_BILL, GHOST_BILL, None])
_DAY = st.sampled_from([dt.date(2026, 1, 10), dt.date(2026, 1, 11)])
_MODEL = st.sampled_from([M1, M2])
_MONEY = st.integers(min_value=0, max_value=5_000_000).map(lambda c: c / 1_000_000)
_principal_call = st.builds(
    lambda who, model, day, tokens, cost, priced, user: inv(
        identity_arn=who,
        model_id=model,
        base_model_id=model,
        date=day,
        user=user,
        input_tokens=tokens,
        priced=priced,
        **({"cost": cost} if priced else {}),
    ),
    _IDENTITIES,
    _MODEL,
    _DAY,
    st.integers(0, 20_000),
    _MONEY,
    st.booleans(),
    st.sampled_from(["u1", "u2", schemas.UNATTRIBUTED]),
)
_principal_bill = st.builds(
    lambda who, model, day, cost, kind: bill(
        iam_principal=who, base_model_id=model, date=day, tokens=1, unblended_cost_usd=cost, line_item_type=kind
    ),
    _BILLED,
    st.one_of(_MODEL, st.none()),
    _DAY,
    _MONEY,
    st.sampled_from(["Usage", "Usage", "Usage", "Credit"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=st.lists(_principal_call, max_size=15), bills=st.lists(_principal_bill, max_size=10))
def test_principal_chargeback_always_sums_to_the_bill(calls: list[dict[str, Any]], bills: list[dict[str, Any]]) -> None:
    cb = chargeback(priced_df(calls), billing_df(bills))
    usage = [b for b in bills if b["line_item_type"] == "Usage"]
    for day in {b["date"] for b in usage}:
        billed = sum(b["unblended_cost_usd"] for b in usage if b["date"] == day)
        assert cb.filter(pl.col("date") == day)["billed_cost_usd"].sum() == pytest.approx(billed, abs=1e-9)
    assert cb["billed_cost_usd"].min() is None or cb["billed_cost_usd"].min() >= 0.0
    est = sum(c["total_cost_usd"] for c in calls if c["priced"])
    assert cb["estimated_cost_usd"].sum() == pytest.approx(est, abs=1e-9)
    # Billed principals are never `unallocated`: only rows without a principal can be.
    named = sum(b["unblended_cost_usd"] for b in usage if b["iam_principal"])
    unallocated = cb.filter(pl.col("cost_center") == schemas.UNALLOCATED)["billed_cost_usd"].sum()
    assert unallocated <= sum(b["unblended_cost_usd"] for b in usage) - named + 1e-9


def test_principal_coverage_check_result() -> None:
    from pipeline.defs.billing import principal_coverage_result

    named = billing_df([bill(iam_principal=ALICE_BILL, unblended_cost_usd=3.0), bill(unblended_cost_usd=1.0)])
    result = principal_coverage_result(named)
    assert result.passed is False and result.metadata["principal_cost_share"].value == pytest.approx(0.75)
    result = principal_coverage_result(billing_df([bill(unblended_cost_usd=1.0)]).drop("iam_principal"))
    assert result.passed is True and result.metadata["iam_principal_data"].value is False
    assert "INCLUDE_IAM_PRINCIPAL_DATA" in result.metadata["note"].value
