"""The demo end to end: sample logs and bill, every asset for every day through the CLI's runner, the README's
notebook snippets against the result, and the reconciliation statuses the sample was built to show."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import polars as pl
import pytest

from pipeline import schemas, warehouse
from pipeline.config import load_config

README = Path(__file__).resolve().parents[1] / "README.md"
NOTEBOOKS = README.parent / "docs" / "notebooks.md"
START = dt.date(2026, 11, 1)


def _wh(demo: Path) -> str:
    return load_config(demo / "demo" / "ledger.yaml").warehouse


def test_every_table_exists_for_every_day(demo: Path) -> None:
    wh = _wh(demo)
    for table in schemas.TABLES:  # every table of the data contract
        for day in (START, START + dt.timedelta(days=1)):
            assert warehouse.partition_exists(wh, table, day), (table, day)


def test_demo_finds_exactly_the_true_records(demo: Path) -> None:
    from pipeline.sample.aws_state import plan_undelivered
    from pipeline.sample.logs import LogGenOptions, iter_records

    opts = LogGenOptions(start=START, days=2, records_per_day=400)
    gaps = plan_undelivered(opts)  # the demo's logging gap and undelivered last hour: in no log
    expected: dict[dt.date, set[str]] = {}
    for rec in iter_records(opts):
        ts = dt.datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp()
        if any(rec["accountId"] == a and rec["region"] == r and lo <= ts < hi for a, r, lo, hi in gaps):
            continue
        day = dt.date.fromisoformat(rec["timestamp"][:10])
        expected.setdefault(day, set()).add(rec["requestId"])
    wh = _wh(demo)
    for day, ids in expected.items():
        got = warehouse.read_partition(wh, "invocations", day, columns=["request_id"])["request_id"]
        assert set(got) == ids
        assert got.n_unique() == got.len()


def test_reconciliation_shows_every_status_and_chargeback_sums_to_the_bill(demo: Path) -> None:
    wh = _wh(demo)
    days = [START, START + dt.timedelta(days=1)]
    recon = warehouse.scan_partitions(wh, "cost_reconciliation", days).collect()
    assert set(recon["status"]) == {
        "matched",
        "under_logged",
        "over_logged",
        "price_mismatch",
        "missing_in_bill",
        "missing_in_logs",
        "unmapped_billing",
        "unpriced",
        "idle_capacity",
        "not_logged_by_design",
    }
    assert recon["explanation"].str.len_chars().min() > 30
    # The sample's idle provisioned model: 24 model-unit hours × $60.50 = $1,452, charged to its configured owner.
    idle = recon.filter(pl.col("status") == "idle_capacity").row(0, named=True)
    assert (idle["provisioned_hours"], idle["billed_cost_usd"]) == (24.0, 1452.0)
    bill = warehouse.scan_partitions(wh, "billing_line_items", days).collect()
    billed = (
        bill.filter(pl.col("line_item_type").is_in(["Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"]))
        .group_by("date", "account_id")
        .agg(pl.col("unblended_cost_usd").sum().alias("bill"))
    )
    cb = warehouse.scan_partitions(wh, "chargeback", days).collect()
    allocated = cb.group_by("date", "account_id").agg(pl.col("billed_cost_usd").sum().alias("allocated"))
    joined = billed.join(allocated, on=["date", "account_id"], how="full", coalesce=True).fill_null(0.0)
    assert ((joined["bill"] - joined["allocated"]).abs() < 0.005).all()
    assert (cb["cost_center"] == "unallocated").any()
    reserve = cb.filter(pl.col("application") == "capacity-reserve")
    assert reserve["cost_center"].to_list() == ["platform"] and reserve["billed_cost_usd"].sum() == 1452.0


def test_budget_over_and_unpriced_are_visible(demo: Path) -> None:
    wh = _wh(demo)
    budgets = warehouse.read_partition(wh, "budget_status", START + dt.timedelta(days=1))
    assert set(budgets["status"]) >= {"over_budget"} or set(budgets["status"]) >= {"warning"}
    priced = warehouse.read_partition(wh, "priced_invocations", START)
    unpriced = priced.filter(~pl.col("priced"))
    assert unpriced.height > 0 and unpriced["total_cost_usd"].is_null().all()
    assert (priced.filter(pl.col("priced"))["total_cost_usd"] >= 0).all()


def _readme_snippets() -> list[str]:
    text = README.read_text()
    section = text.split("## Query the outputs from a notebook", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _notebook_page_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", NOTEBOOKS.read_text(), flags=re.S)


def test_readme_notebook_snippets_run_as_written(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snippets = _readme_snippets()
    assert len(snippets) >= 2
    monkeypatch.chdir(demo)  # the snippets read demo/warehouse relative to the working directory
    for code in snippets:
        exec(compile(code, "README.md", "exec"), {})


def test_notebook_page_snippets_run_as_written(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snippets = _notebook_page_snippets()
    assert len(snippets) >= 4
    monkeypatch.chdir(demo)
    for code in snippets:
        exec(compile(code, "docs/notebooks.md", "exec"), {})


def test_injected_discrepancies_are_listed(demo: Path) -> None:
    listed = json.loads((demo / "demo" / "billing" / "cur2" / "injected_discrepancies.json").read_text())
    kinds = {d["kind"] for d in listed["discrepancies"]}
    assert {"price_change", "tax", "credit", "provisioned_throughput"} <= kinds


def test_demo_reconciles_and_charges_back_per_principal(demo: Path) -> None:
    """The demo's CUR 2.0 names principals: per-principal rows, the unlogged role, a chargeback from the bill."""
    wh = _wh(demo)
    days = [START, START + dt.timedelta(days=1)]
    bill = warehouse.scan_partitions(wh, "billing_line_items", days).collect()
    named = bill.filter(pl.col("iam_principal").is_not_null())
    assert named.height > 0 and bill.filter(pl.col("iam_principal").is_null()).height > 0  # Marketplace rows
    recon = warehouse.scan_partitions(wh, "cost_reconciliation", days).collect()
    per_principal = recon.filter(pl.col("iam_principal").is_not_null())
    assert (per_principal["status"] == "matched").any()
    ghost = per_principal.filter(pl.col("iam_principal").str.contains(":assumed-role/nightly-summarizer/"))
    assert set(ghost["status"]) == {"missing_in_logs"} and ghost["explanation"].str.contains("logging").all()
    cb = warehouse.scan_partitions(wh, "chargeback", days).collect()
    owner = cb.filter(pl.col("application") == "nightly-summarizer")
    assert owner.height > 0 and set(owner["cost_center"]) == {"platform"}
    ghost_billed = named.filter(pl.col("iam_principal").str.contains("nightly-summarizer"))["unblended_cost_usd"].sum()
    assert round(owner["billed_cost_usd"].sum(), 2) == round(ghost_billed, 2)


def test_demo_writes_the_outputs_for_other_tools(demo: Path) -> None:
    from pipeline.exports.focus import focus_conservation, focus_problems

    wh = _wh(demo)
    days = [START, START + dt.timedelta(days=1)]
    focus = warehouse.scan_partitions(wh, "focus_chargeback", days).collect()
    assert focus.height > 0 and focus_problems(focus) == []
    assert focus_conservation(focus, warehouse.scan_partitions(wh, "chargeback", days).collect()).is_empty()
    assert set(focus["x_AllocationStatus"]) >= {"allocated", "unallocated"}
    econ = warehouse.scan_partitions(wh, "daily_cache_economics", days).collect()
    assert econ.filter(pl.col("recommendation").is_not_null()).height > 0
    assert econ["hit_rate"].drop_nulls().is_between(0, 1).all()
    assert econ["cache_write_1h_input_tokens"].sum() > 0  # the demo's 1-hour writes, priced at the 1-hour rate
    assert econ.filter(pl.col("cache_write_1h_input_tokens") > 0)["break_even_reads_1h"].drop_nulls().len() > 0
    dist = (
        warehouse.scan_partitions(wh, "daily_user_cost_distribution", days)
        .collect()
        .drop_nulls("p50_cost_per_user_usd")
    )
    assert dist.height > 0
    assert (dist["p50_cost_per_user_usd"] <= dist["p90_cost_per_user_usd"]).all()
    assert (dist["p99_cost_per_user_usd"] <= dist["max_cost_per_user_usd"] + 1e-12).all()


def test_catalog_registers_the_demo_warehouse_in_glue(demo: Path, aws: str, bucket: str) -> None:
    import boto3
    from typer.testing import CliRunner

    from pipeline.cli import app

    wh = Path(_wh(demo))
    s3 = boto3.client("s3", endpoint_url=aws, region_name="us-east-1")
    for f in wh.rglob("*.parquet"):  # the warehouse synced to S3, as `--location` expects
        s3.upload_file(str(f), bucket, f"warehouse/{f.relative_to(wh).as_posix()}")
    config = demo / "demo" / "ledger.yaml"
    args = ["catalog", "--database", "demo_ledger", "--config", str(config), "--location", f"s3://{bucket}/warehouse"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    glue = boto3.client("glue", endpoint_url=aws, region_name="us-east-1")
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName="demo_ledger")["TableList"]}
    assert set(tables) == set(schemas.TABLES)
    for name, table in tables.items():  # the projected location of a demo day holds that day's file
        template = table["Parameters"]["storage.location.template"]
        key = template.replace("${date}", START.isoformat()).removeprefix(f"s3://{bucket}/") + "/part-0.parquet"
        s3.head_object(Bucket=bucket, Key=key)
        assert name in key


def test_completeness_shows_every_status_and_the_drift(demo: Path) -> None:
    """The demo's recorded AWS world (logging configuration history, metrics) gives every completeness status."""
    wh = _wh(demo)
    lc = pl.read_parquet(f"{wh}/log_completeness/**/*.parquet")
    assert set(lc["status"]) == set(schemas.COMPLETENESS_STATUSES)
    assert lc["explanation"].str.len_chars().min() > 30
    configs = pl.read_parquet(f"{wh}/logging_configuration/**/*.parquet")
    assert (~configs["logging_enabled"]).any() and (~configs["text_data_delivery"]).any()
    usage = pl.read_parquet(f"{wh}/daily_usage_by_model/**/*.parquet")
    assert usage["throttles"].sum() > 0


def test_bill_coverage_shows_every_kind_owned_except_the_rows_built_to_have_none(demo: Path) -> None:
    """The demo bill carries every kind of Bedrock spend; each is attributed to an owner except the evaluation job
    and the prompt-cache storage built to have none (and model tokens no log explains), which say why."""
    wh = _wh(demo)
    cov = warehouse.read_partition(wh, "bill_coverage", START)
    kinds = set(cov["spend_kind"])
    assert kinds >= {"on_demand", "provisioned", "guardrail", "rerank", "knowledge_base", "agent", "flow",
                     "data_automation", "custom_model", "evaluation", "cache_storage"}  # fmt: skip
    by_kind = cov.group_by("spend_kind").agg(pl.col("billed_cost_usd", "unallocated_cost_usd").sum())
    owned = {k for k, billed, left in by_kind.iter_rows() if billed > 0 and left == 0}
    assert owned >= {"guardrail", "rerank", "knowledge_base", "agent", "flow", "data_automation", "custom_model"}
    unowned = cov.filter(pl.col("spend_kind").is_in(["evaluation", "cache_storage"]))
    assert (unowned["unallocated_share"] == 1.0).all() and set(unowned["unallocated_reasons"].str.slice(0, 8)) == {
        "no_owner"
    }
    # The sample's provisioned model sits idle all day, owned by its config tags: capacity, idle, never "unknown".
    from pipeline.reconciliation.bill_coverage import summary_line

    pt = cov.filter(pl.col("spend_kind") == "provisioned").row(0, named=True)
    assert pt["capacity_cost_usd"] == pt["idle_capacity_cost_usd"] == pt["billed_cost_usd"] == pytest.approx(1452.0)
    assert pt["unallocated_cost_usd"] == 0.0
    assert "capacity (Provisioned Throughput: $1,452 idle, owned)" in summary_line(cov)
    lc = warehouse.read_partition(wh, "log_completeness", START)
    mantle = lc.filter(pl.col("endpoint") == "mantle")
    assert mantle.height > 0 and set(mantle["status"]) == {"not_logged_by_design"}


def test_bill_list_rates_price_a_model_the_catalog_lacks_and_check_the_catalog(demo: Path) -> None:
    from pipeline.pricing import load_catalog
    from pipeline.pricing.bill_rates import catalog_disagreements
    from pipeline.sample.world import BILL_ONLY_MODEL_ID

    wh = _wh(demo)
    first, second = START, START + dt.timedelta(days=1)
    rates = warehouse.read_partition(wh, "bill_list_rates", first)
    base = BILL_ONLY_MODEL_ID.removeprefix("us.")
    assert base in set(rates["base_model_id"])
    # No earlier bill on the first day: unpriced, never $0. The next day: priced from the first day's list rate.
    day1 = warehouse.read_partition(wh, "priced_invocations", first).filter(pl.col("model_id") == BILL_ONLY_MODEL_ID)
    assert day1.height and not day1["priced"].any() and day1["total_cost_usd"].null_count() == day1.height
    day2 = warehouse.read_partition(wh, "priced_invocations", second).filter(pl.col("model_id") == BILL_ONLY_MODEL_ID)
    assert day2.height and day2["priced"].all() and set(day2["price_origin"]) == {"bill"}
    assert all(
        s.startswith("bill:USE1-Nova2.0Omni-") and s.endswith(f"|us-east-1|{first}") for s in day2["price_source"]
    )
    assert (day2["total_cost_usd"] > 0).all()
    # Every other priced call says where its price came from.
    priced = warehouse.read_partition(wh, "priced_invocations", second).filter(pl.col("priced"))
    assert set(priced["price_origin"]) <= {"catalog", "override", "derived", "bill"}
    assert priced["price_origin"].null_count() == 0
    # The check lists the planted 1.2x price and the model the catalog lacks.
    injected = json.loads((demo / "demo" / "billing" / "cur2" / "injected_discrepancies.json").read_text())
    planted = {d["base_model_id"] for d in injected["discrepancies"] if d["kind"] == "price_change"}
    overrides = load_config(demo / "demo" / "ledger.yaml").pricing.overrides
    bad = catalog_disagreements(rates, load_catalog(overrides), first, 0.005)
    assert planted <= set(bad["base_model_id"]) and base in set(bad["base_model_id"])
    assert bad.filter(pl.col("base_model_id") == base)["catalog_rate_per_1k_usd"].null_count() > 0


def test_foresight_on_the_default_demo_waits_for_history_and_still_forecasts_and_finds_savings(demo: Path) -> None:
    """Two days are too few to judge anyone (every key is `insufficient_history`, no alert), yet the month-end
    forecast is there with an interval, budgets take it, and the day's calls are repriced."""
    wh = _wh(demo)
    day = START + dt.timedelta(days=1)
    found = warehouse.read_partition(wh, "cost_anomalies", day)
    assert found.height and set(found["kind"]) == {"insufficient_history"} and found["severity"].is_null().all()
    forecast = warehouse.read_partition(wh, "spend_forecast", day)
    total = forecast.filter(pl.col("scope") == "total").row(0, named=True)
    assert total["low_usd"] < total["forecast_usd"] < total["high_usd"] and total["days_left"] == 28
    budgets = warehouse.read_partition(wh, "budget_status", day).filter(pl.col("budget_usd").is_not_null())
    assert budgets["p_over_budget"].is_not_null().all() and budgets["forecast_low_usd"].is_not_null().all()
    savings = warehouse.read_partition(wh, "savings_opportunities", day)
    assert {"global_routing", "batch"} <= set(savings["scenario"]) and (savings["savings_usd"] > 0).all()
