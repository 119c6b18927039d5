"""The whole bill in the chargeback: every kind of Bedrock spend owned once, by logs, jobs, tags, principal or rule,
and what has no owner stays `unallocated` with the reason."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from pipeline import config, schemas
from pipeline.reconciliation import chargeback
from pipeline.reconciliation.chargeback import accounts_off_the_bill
from tests.test_reconciliation import ACCT, M1, NOVA2, PT_ARN, D, bill, billing_df, inv, priced_df, pt_bill, pt_call

CFG = config.Attribution(
    principals=[config.PrincipalRule(match="arn:aws:bedrock:*:knowledge-base/SALES*", tags={"costCenter": "sales"})]
)
RERANK = "USE1-cohere.rerank-english-v3-search-units"


def other(usage_type: str, cost: float, **kw: Any) -> dict[str, Any]:
    fields = {"usage_kind": "other", "base_model_id": None, "tokens": None, "usage_amount": 1.0,
              "pricing_unit": "Units", **kw}  # fmt: skip
    return bill(usage_type=usage_type, unblended_cost_usd=cost, **fields)


def tags(**kv: str) -> list[dict[str, str]]:
    return schemas.dict_to_map(kv)


def cb_of(logs: list[dict[str, Any]], bills: list[dict[str, Any]], **kw: Any) -> pl.DataFrame:
    billing = billing_df(bills)
    out = chargeback(priced_df(logs), billing, CFG, **kw)
    assert out.columns == list(schemas.CHARGEBACK)
    assert accounts_off_the_bill(out, billing).is_empty(), "the chargeback must still sum to the bill"
    keys = ["date", "account_id", "cost_center", "application", "user", "spend_kind", "usage_source"]
    assert out.select(keys).is_unique().all(), "one row per key"
    return out


def row(cb: pl.DataFrame, **where: str) -> dict[str, Any]:
    hit = cb.filter(pl.all_horizontal([pl.col(k) == v for k, v in where.items()]))
    assert hit.height == 1, cb
    return hit.row(0, named=True)


def test_model_tokens_keep_their_log_allocation() -> None:
    cb = cb_of([inv(input_tokens=1_000, cost=3.0)], [bill(tokens=1_000, unblended_cost_usd=3.0)])
    r = row(cb, user="alice")
    assert (r["spend_kind"], r["usage_source"], r["allocation_reason"]) == (
        "on_demand",
        "invocation_log",
        "logged_calls",
    )
    assert r["billed_cost_usd"] == 3.0 and r["estimated_cost_usd"] == 3.0


def test_bill_only_row_owned_by_its_resource_tags() -> None:
    cb = cb_of([], [other(RERANK, 0.5, tags=tags(user_cost_center="search", user_application_id="finder"))])
    r = row(cb, spend_kind="rerank")
    assert (r["cost_center"], r["application"], r["user"]) == ("search", "finder", "unattributed")
    assert (r["usage_source"], r["allocation_reason"]) == ("bill_only", "resource_tags")


def test_bill_only_row_owned_by_the_principal_the_bill_names() -> None:
    arn = "arn:aws:sts::111122223333:assumed-role/kb-writer/carol"
    bills = [other("USE1-KnowledgeBase-StructuredRetrieve", 0.2, iam_principal=arn,
                   tags=tags(**{"iamPrincipal/costCenter": "legal"}))]  # fmt: skip
    r = row(cb_of([], bills), spend_kind="knowledge_base")
    assert (r["cost_center"], r["user"], r["allocation_reason"]) == ("legal", "carol", "bill_principal")


def test_bill_only_row_owned_by_a_config_rule_on_its_resource() -> None:
    kb = "arn:aws:bedrock:us-east-1:111122223333:knowledge-base/SALESKB1"
    r = row(
        cb_of([], [other("USE1-KnowledgeBase-StructuredRetrieve", 0.2, resource_id=kb)]), spend_kind="knowledge_base"
    )
    assert (r["cost_center"], r["allocation_reason"]) == ("sales", "config_rule")


def test_a_row_with_no_owner_anywhere_stays_unallocated_with_the_reason() -> None:
    cb = cb_of([], [other("USE1-MP:USE1_CacheStorage-Units", 0.07)])
    r = row(cb, spend_kind="cache_storage")
    assert (r["cost_center"], r["application"], r["user"]) == ("unallocated",) * 3
    assert r["allocation_reason"] == "no_owner" and r["billed_cost_usd"] == 0.07


def test_mantle_tokens_are_never_allocated_by_runtime_logs() -> None:
    mantle = bill(usage_type="USE1-openai.gpt-oss-120b-mantle-input-tokens-standard", tokens=512_000,
                  unblended_cost_usd=0.08, tags=tags(user_cost_center="research"))  # fmt: skip
    cb = cb_of([inv(input_tokens=1_000, cost=3.0)], [bill(tokens=1_000, unblended_cost_usd=3.0), mantle])
    assert row(cb, cost_center="research")["billed_cost_usd"] == pytest.approx(0.08)
    assert row(cb, user="alice")["billed_cost_usd"] == pytest.approx(3.0)


def _batch_bill(cost: float, **kw: Any) -> dict[str, Any]:
    return bill(usage_type="USE1-Claude3Haiku-input-tokens-batch", tier="batch", tokens=100_000,
                unblended_cost_usd=cost, **kw)  # fmt: skip


def _jobs(*rows: dict[str, Any]) -> pl.DataFrame:
    base = {"date": D, "account_id": ACCT, "region": "us-east-1", "base_model_id": M1, "input_tokens": 100_000,
            "output_tokens": 0, "user": None, "application": None, "cost_center": None, "environment": None,
            "attribution_reason": None, "job_arn": f"arn:aws:bedrock:us-east-1:{ACCT}:model-invocation-job/j",
            }  # fmt: skip
    return pl.DataFrame([{**base, **r} for r in rows])


def test_batch_rows_go_to_their_jobs_owners_by_cost() -> None:
    jobs = _jobs(
        {"total_cost_usd": 3.0, "cost_center": "risk", "user": "dana", "application": "scoring"},
        {"total_cost_usd": 1.0, "attribution_reason": "batch_job_untagged"},
    )
    cb = cb_of([], [_batch_bill(2.0)], batch_jobs=jobs)
    owned = row(cb, cost_center="risk")
    assert (owned["spend_kind"], owned["usage_source"], owned["allocation_reason"]) == (
        "batch",
        "batch_job",
        "batch_job",
    )
    assert owned["billed_cost_usd"] == pytest.approx(1.5)
    left = row(cb, cost_center="unallocated")
    assert left["billed_cost_usd"] == pytest.approx(0.5) and left["allocation_reason"] == "batch_job_untagged"


def test_batch_without_jobs_goes_to_the_bill_principal_else_unallocated() -> None:
    arn = "arn:aws:iam::111122223333:user/erin"
    cb = cb_of([], [_batch_bill(1.0, iam_principal=arn), _batch_bill(0.5, region="us-west-2")])
    assert row(cb, user="erin")["allocation_reason"] == "bill_principal"
    assert row(cb, cost_center="unallocated")["allocation_reason"] == "batch_job_untagged"


def test_guardrail_rows_follow_the_logged_traces() -> None:
    logs = [
        inv(input_tokens=10, cost=0.1, user="alice", guardrail_content_units=3, guardrail_cost_usd=0.00045),
        inv(input_tokens=10, cost=0.1, user="bob", guardrail_content_units=1, guardrail_cost_usd=0.00015),
    ]
    guard = other("USE1-Guardrail-ContentPolicyUnitsConsumed", 0.8, usage_kind="content")
    cb = cb_of(logs, [guard])
    alice = row(cb, user="alice", spend_kind="guardrail")
    assert alice["billed_cost_usd"] == pytest.approx(0.6)
    assert alice["estimated_cost_usd"] == pytest.approx(0.00045)  # the trace's units at guardrail prices
    assert (alice["usage_source"], alice["allocation_reason"]) == ("invocation_log", "guardrail_traces")


def test_focus_rows_carry_spend_kind_source_and_reason_and_still_conserve() -> None:
    from pipeline.exports.focus import focus_chargeback, focus_conservation, focus_problems

    logs = [inv(input_tokens=1_000, cost=3.0)]
    bills = [
        bill(tokens=1_000, unblended_cost_usd=3.0),
        other(RERANK, 0.5, tags=tags(user_cost_center="search")),
        other("USE1-MP:USE1_CacheStorage-Units", 0.07),
    ]
    priced, billing = priced_df(logs), billing_df(bills)
    cb = chargeback(priced, billing, CFG)
    focus = focus_chargeback(priced, billing, cb, attribution=CFG)
    assert focus_problems(focus) == [] and focus_conservation(focus, cb).is_empty()
    got = {
        (r["x_SpendKind"], r["x_UsageSource"], r["x_AllocationReason"], r["x_CostCenter"]): r["BilledCost"]
        for r in focus.iter_rows(named=True)
    }
    assert got == {
        ("on_demand", "invocation_log", "logged_calls", "sales"): pytest.approx(3.0),
        ("rerank", "bill_only", "resource_tags", "search"): pytest.approx(0.5),
        ("cache_storage", "bill_only", "no_owner", "unallocated"): pytest.approx(0.07),
    }


def test_bill_coverage_per_spend_kind_and_its_check() -> None:
    from pipeline.reconciliation.bill_coverage import bill_coverage, unallocated_verdict

    logs = [inv(input_tokens=1_000, cost=3.0)]
    bills = [
        bill(tokens=1_000, unblended_cost_usd=3.0),
        other(RERANK, 0.5, tags=tags(user_cost_center="search")),
        other("USE1-MP:USE1_CacheStorage-Units", 0.5),
    ]
    cov = bill_coverage(cb_of(logs, bills))
    assert cov.columns == list(schemas.BILL_COVERAGE)
    by_kind = {r["spend_kind"]: r for r in cov.iter_rows(named=True)}
    assert set(by_kind) == {"on_demand", "rerank", "cache_storage"}
    od = by_kind["on_demand"]
    assert (od["billed_cost_usd"], od["explained_cost_usd"], od["attributed_cost_usd"]) == (3.0, 3.0, 3.0)
    rerank = by_kind["rerank"]
    assert (rerank["explained_cost_usd"], rerank["attributed_cost_usd"], rerank["usage_sources"]) == (
        0.0,
        0.5,
        "bill_only",
    )
    cache = by_kind["cache_storage"]
    assert cache["unallocated_share"] == 1.0 and cache["unallocated_reasons"] == "no_owner $0.50"
    # $0.50 of $4.00 (12.5%) has no owner: over a 10% limit, within a 20% one.
    failed = unallocated_verdict(cov, 0.10)
    assert not failed.passed and "12.5%" in failed.description and "cache_storage" in failed.description
    assert unallocated_verdict(cov, 0.20).passed
    assert unallocated_verdict(schemas.empty(schemas.BILL_COVERAGE), 0.0).passed


def test_chargeback_and_bill_coverage_assets_read_batch_jobs_when_written(tmp_path: Any) -> None:
    """The assets on real warehouse files: chargeback reads the day's `batch_jobs` when it exists, bill_coverage
    follows, and its check fails when the unallocated share passes the configured limit."""
    from pipeline import warehouse
    from tests.helpers import run_day, write_config

    config_path = write_config(
        tmp_path,
        sources={
            "invocation_logs": {"s3": [str(tmp_path / "logs")]},
            "billing": [{"uri": str(tmp_path / "bill"), "format": "cur2"}],  # a ledger with a bill
        },
        quality={"max_unallocated_share": 0.05},
    )
    wh = str(tmp_path / "wh")
    warehouse.write_partition(priced_df([inv(input_tokens=1_000, cost=3.0)]), wh, "priced_invocations", D)
    bills = [bill(tokens=1_000, unblended_cost_usd=3.0), _batch_bill(2.0), other("USE1-Evaluations-HumanTasks", 1.0)]
    warehouse.write_partition(billing_df(bills), wh, "billing_line_items", D)
    jobs = _jobs({"total_cost_usd": 1.0, "cost_center": "risk", "user": "dana", "application": "scoring"})
    warehouse.write_partition(jobs, wh, "batch_jobs", D)

    result = run_day(config_path, D.isoformat(), ["chargeback", "bill_coverage"])
    cb = warehouse.read_partition(wh, "chargeback", D)
    assert row(cb, cost_center="risk")["billed_cost_usd"] == pytest.approx(2.0)
    cov = warehouse.read_partition(wh, "bill_coverage", D)
    assert dict(zip(cov["spend_kind"], cov["unallocated_cost_usd"], strict=True)) == {
        "batch": 0.0,
        "evaluation": 1.0,
        "on_demand": 0.0,
    }
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    verdict = checks["unallocated_within_limit"]
    assert not verdict.passed and "16.7%" in (verdict.description or "")


def test_coverage_by_kind_parts_add_up_to_the_bill() -> None:
    from pipeline.reconciliation.bill_coverage import bill_coverage, by_kind

    logs = [inv(input_tokens=1_000, cost=3.0)]
    bills = [
        bill(tokens=1_000, unblended_cost_usd=3.0),
        other(RERANK, 0.5, tags=tags(user_cost_center="search")),
        other("USE1-MP:USE1_CacheStorage-Units", 0.25),
    ]
    table = by_kind(bill_coverage(cb_of(logs, bills)))
    assert table["spend_kind"].to_list() == ["on_demand", "rerank", "cache_storage"]
    parts = table["explained_cost_usd"] + table["owned_not_explained_usd"] + table["unallocated_cost_usd"]
    assert (parts - table["billed_cost_usd"]).abs().max() < 1e-12
    assert table["unallocated_reasons"].to_list() == [None, None, "no_owner $0.25"]


def test_report_section_parts_and_finding() -> None:
    from pipeline.reconciliation.bill_coverage import bill_coverage
    from pipeline.report.bill_coverage import coverage_figure, coverage_finding, coverage_table

    logs = [inv(input_tokens=1_000, cost=3.0)]
    bills = [bill(tokens=1_000, unblended_cost_usd=3.0), other("USE1-MP:USE1_CacheStorage-Units", 1.0)]
    table = coverage_table(bill_coverage(cb_of(logs, bills)))
    finding = coverage_finding(table)
    assert finding.startswith("Of $4.00 billed, 75% is explained") and "cache_storage $1.00 (no_owner $1.00)" in finding
    fig = coverage_figure(table, {"height": 200})
    assert [t["name"] for t in fig["data"]] == ["explained by logs or batch jobs", "owned by tags, principal or rule",
                                                "no owner"]  # fmt: skip


def test_batch_rows_follow_the_jobs_share_of_the_bill_where_the_table_has_it() -> None:
    jobs = _jobs(
        {"total_cost_usd": 1.0, "billed_cost_usd": 1.5, "cost_center": "risk", "user": "dana", "application": "a"},
        {"total_cost_usd": 1.0, "billed_cost_usd": 0.5, "cost_center": "ops", "user": "eve", "application": "b"},
    )
    cb = cb_of([], [_batch_bill(2.0)], batch_jobs=jobs)
    assert row(cb, cost_center="risk")["billed_cost_usd"] == pytest.approx(1.5)
    assert row(cb, cost_center="ops")["billed_cost_usd"] == pytest.approx(0.5)


def test_report_reads_bill_coverage_and_draws_its_section(tmp_path: Any) -> None:
    from pipeline import warehouse
    from pipeline.reconciliation.bill_coverage import bill_coverage
    from pipeline.report.data import load_inputs
    from pipeline.report.sections import all_sections

    wh = str(tmp_path / "wh")
    bills = [bill(tokens=1_000, unblended_cost_usd=3.0), other("USE1-MP:USE1_CacheStorage-Units", 1.0)]
    warehouse.write_partition(bill_coverage(cb_of([inv(input_tokens=1_000, cost=3.0)], bills)), wh, "bill_coverage", D)
    inputs = load_inputs(wh, D)["daily"]
    section = next(s for s in all_sections(inputs) if s.key == "bill_coverage")
    assert "cache_storage $1.00" in section.finding and section.figure is not None
    assert load_inputs(str(tmp_path / "empty"), D)["daily"].bill_coverage is None  # no table, no section


IDLE_ARN = PT_ARN.replace("abc123xyz", "idle0reserve")
OWNED = {IDLE_ARN: config.ProvisionedModel(model_id=NOVA2, tags={"costCenter": "platform"})}


def _coverage(logs: list[dict[str, Any]], bills: list[dict[str, Any]], **kw: Any) -> pl.DataFrame:
    from pipeline.reconciliation.bill_coverage import bill_coverage

    cov = bill_coverage(cb_of(logs, bills, **kw))
    assert cov.columns == list(schemas.BILL_COVERAGE)
    return cov


def _kind(cov: pl.DataFrame, kind: str) -> dict[str, Any]:
    return row(cov, spend_kind=kind)


def test_provisioned_hours_that_served_logged_calls_are_capacity_used_and_explained() -> None:
    from pipeline.reconciliation.bill_coverage import by_kind

    cov = _coverage([pt_call(150_000, 50_000, hour) for hour in (8, 9)], [pt_bill()])
    pt = _kind(cov, "provisioned")
    assert (pt["billed_cost_usd"], pt["capacity_cost_usd"], pt["idle_capacity_cost_usd"]) == (1452.0, 1452.0, 0.0)
    assert (pt["explained_cost_usd"], pt["attributed_cost_usd"], pt["unallocated_cost_usd"]) == (1452.0,) * 2 + (0.0,)
    assert pt["capacity_share"] == 1.0
    parts = by_kind(cov).row(0, named=True)
    assert (parts["capacity_used_usd"], parts["idle_capacity_usd"], parts["explained_cost_usd"]) == (1452.0, 0, 0)


def test_idle_provisioned_hours_are_owned_idle_capacity_not_unknown() -> None:
    from pipeline.reconciliation.bill_coverage import by_kind, summary_line

    cov = _coverage([], [pt_bill(resource_id=IDLE_ARN)], provisioned_models=OWNED)
    pt = _kind(cov, "provisioned")
    assert (pt["capacity_cost_usd"], pt["idle_capacity_cost_usd"], pt["explained_cost_usd"]) == (1452.0, 1452.0, 0.0)
    assert (pt["attributed_cost_usd"], pt["unallocated_cost_usd"]) == (1452.0, 0.0)
    parts = by_kind(cov).row(0, named=True)
    assert (parts["idle_capacity_usd"], parts["owned_not_explained_usd"], parts["unallocated_cost_usd"]) == (1452, 0, 0)
    assert summary_line(cov) == (
        "bill coverage: $1,452 billed: 100.0% capacity (Provisioned Throughput: $1,452 idle, owned), "
        "0.0% explained from logs or jobs, 0.0% owned by tags, principal or rule, 0.0% unallocated"
    )


def test_idle_provisioned_hours_without_an_owner_stay_unallocated_for_the_check() -> None:
    from pipeline.reconciliation.bill_coverage import by_kind, summary_line, unallocated_verdict

    cov = _coverage([inv(input_tokens=1_000, cost=48.0)], [bill(tokens=1_000, unblended_cost_usd=48.0), pt_bill()])
    pt = _kind(cov, "provisioned")
    assert (pt["idle_capacity_cost_usd"], pt["unallocated_cost_usd"]) == (1452.0, 1452.0)
    assert pt["unallocated_reasons"] == "no_logged_caller $1,452"
    parts = by_kind(cov).filter(pl.col("spend_kind") == "provisioned").row(0, named=True)
    assert (parts["capacity_used_usd"], parts["idle_capacity_usd"], parts["unallocated_cost_usd"]) == (0, 0, 1452)
    # The check keeps its meaning: $1,452 of $1,500 has no owner, and the fix names the provisioned models' owners.
    verdict = unallocated_verdict(cov, 0.10)
    assert not verdict.passed and "96.8%" in verdict.description
    assert "attribution.provisioned_models" in verdict.description
    assert summary_line(cov).endswith("96.8% unallocated (provisioned $1,452 idle capacity)")


def test_coverage_parts_with_capacity_add_up_to_the_bill() -> None:
    """Used and idle capacity, logged tokens, tagged and untagged bill-only rows: the parts of `by_kind` and of the
    CLI line add up to the billed cost, and the unallocated part is exactly what the check counts."""
    from pipeline.reconciliation.bill_coverage import by_kind, summary_line, unallocated_verdict

    logs = [inv(input_tokens=1_000, cost=3.0), pt_call(150_000, 50_000, 8)]
    bills = [
        bill(tokens=1_000, unblended_cost_usd=3.0),
        pt_bill(unblended_cost_usd=60.5, usage_amount=1.0),
        pt_bill(resource_id=IDLE_ARN, unblended_cost_usd=121.0, usage_amount=2.0),
        other(RERANK, 0.5, tags=tags(user_cost_center="search")),
        other("USE1-MP:USE1_CacheStorage-Units", 0.25),
    ]
    cov = _coverage(logs, bills, provisioned_models=OWNED)
    pt = _kind(cov, "provisioned")
    assert (pt["capacity_cost_usd"], pt["idle_capacity_cost_usd"], pt["explained_cost_usd"]) == (181.5, 121.0, 60.5)
    assert cov.filter(pl.col("spend_kind") != "provisioned")["capacity_cost_usd"].to_list() == [0.0, 0.0, 0.0]
    table = by_kind(cov)
    usd_parts = ["capacity_used_usd", "idle_capacity_usd", "explained_cost_usd", "owned_not_explained_usd"]
    parts = pl.sum_horizontal(*usd_parts, "unallocated_cost_usd")
    assert (table.select(parts - pl.col("billed_cost_usd")).to_series().abs().max() or 0.0) < 1e-9
    assert table["billed_cost_usd"].sum() == pytest.approx(185.25)
    assert table["unallocated_cost_usd"].sum() == pytest.approx(0.25)
    assert unallocated_verdict(cov, 0.10).unallocated_share == pytest.approx(0.25 / 185.25)
    assert summary_line(cov) == (
        "bill coverage: $185 billed: 98.0% capacity (Provisioned Throughput: $60.50 serving logged calls, $121 idle, "
        "owned), 1.6% explained from logs or jobs, 0.3% owned by tags, principal or rule, "
        "0.1% unallocated (cache_storage $0.25)"
    )


def test_coverage_written_before_the_capacity_columns_reads_idle_from_the_unexplained_part() -> None:
    from pipeline.reconciliation.bill_coverage import by_kind

    cov = _coverage([], [pt_bill(resource_id=IDLE_ARN)], provisioned_models=OWNED)
    old = cov.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in ("capacity_cost_usd",
                                                                             "idle_capacity_cost_usd"))  # fmt: skip
    assert by_kind(old).row(0, named=True)["idle_capacity_usd"] == 1452.0


def test_report_section_names_capacity_and_its_idle_hours() -> None:
    from pipeline.report.bill_coverage import coverage_figure, coverage_finding, coverage_table

    logs = [inv(input_tokens=1_000, cost=3.2), pt_call(150_000, 50_000, 8)]
    bills = [
        bill(tokens=1_000, unblended_cost_usd=3.2),
        pt_bill(unblended_cost_usd=60.5, usage_amount=1.0),
        pt_bill(resource_id=IDLE_ARN, unblended_cost_usd=121.0, usage_amount=2.0),
    ]
    table = coverage_table(_coverage(logs, bills, provisioned_models=OWNED))
    assert coverage_finding(table) == (
        "Of $185 billed, 98% is capacity (Provisioned Throughput: $60.50 served logged calls and $121 sat idle), 2% "
        "is explained by invocation logs or batch jobs and 100% has an owner; nothing is unallocated."
    )
    names = [t["name"] for t in coverage_figure(table, {"height": 200})["data"]]
    assert names[:2] == ["capacity serving logged calls", "idle capacity, owned"]
