"""The sample world's history (`--history-days`): foresight finds the planted spike, new spender and stop, and
nothing else; the forecast covers the sample month's true end; the assets run on real warehouse files.

The world is 35 days × ~50 calls (32 days of history before the demo's 3). Its daily tables are made once per
module with the pipeline's own functions (parse, price, attribute, aggregate) and written to a warehouse, so the
Dagster assets read real partitions without 35 full pipeline runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from pipeline import warehouse
from pipeline.aggregates import usage_by_cost_center, usage_by_model, usage_by_user
from pipeline.config import parse_config
from pipeline.foresight.anomalies import cost_anomalies, dimension_series
from pipeline.foresight.forecast import month_end
from pipeline.normalize.day import rows_to_frame
from pipeline.normalize.records import RecordError, parse_record
from pipeline.pricing import load_catalog
from pipeline.pricing.priced import price_and_attribute
from pipeline.sample.demo import DEMO_START
from pipeline.sample.ledger_config import sample_ledger_config, write_price_overrides
from pipeline.sample.logs import LogGenOptions, iter_records
from pipeline.sample.world import PLANTED

HISTORY = 32
FIRST = DEMO_START - dt.timedelta(days=HISTORY)
LAST = DEMO_START + dt.timedelta(days=2)
OPTS = LogGenOptions(start=FIRST, days=HISTORY + 3, records_per_day=50, plant_day=LAST)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The history's priced calls and daily tables, written under a warehouse with a matching ledger.yaml."""
    import yaml

    root = tmp_path_factory.mktemp("foresight-world")
    write_price_overrides(str(root / "prices.csv"))
    data = sample_ledger_config(str(root / "logs"), str(root / "warehouse"), opts=OPTS, overrides_path="prices.csv")
    (root / "ledger.yaml").write_text(yaml.safe_dump(data))
    cfg = parse_config(data, base_dir=root)
    app_profiles = tuple((arn, p.model_id) for arn, p in cfg.attribution.inference_profiles.items())
    rows = []
    for rec in iter_records(OPTS):
        try:
            row = parse_record(rec, source="s3", source_uri="sample", app_profiles=app_profiles)
        except RecordError:
            continue
        row["date"] = row["timestamp"].date()
        rows.append(row)
    priced = price_and_attribute(rows_to_frame(rows), cfg, load_catalog(cfg.pricing.overrides), {})
    tables: dict[str, list[pl.DataFrame]] = {"cc": [], "user": [], "model": []}
    for (day,), part in priced.partition_by("date", as_dict=True).items():
        assert isinstance(day, dt.date)
        tables["cc"].append(usage_by_cost_center(part))
        tables["user"].append(usage_by_user(part))
        tables["model"].append(usage_by_model(part))
        for name, frame in (
            ("priced_invocations", part),
            ("daily_usage_by_cost_center", tables["cc"][-1]),
            ("daily_usage_by_user", tables["user"][-1]),
            ("daily_usage_by_model", tables["model"][-1]),
        ):
            warehouse.write_partition(frame, cfg.warehouse, name, day)
    return {
        "root": root,
        "config": root / "ledger.yaml",
        "priced": priced,
        "series": dimension_series(pl.concat(tables["cc"]), pl.concat(tables["user"]), pl.concat(tables["model"])),
    }


def _planted_keys() -> dict[tuple[str, str], str]:
    """(dimension, key) -> event for everything a planted workload spends under."""
    keys: dict[tuple[str, str], str] = {}
    for p in PLANTED:
        wl = p.workload
        keys[("cost_center", wl.metadata["costCenter"])] = p.event
        keys[("application", wl.metadata["applicationId"])] = p.event
        for session in wl.sessions:
            keys[("user", session)] = p.event
    return keys


def test_the_planted_spike_new_spender_and_stop_are_found_and_nothing_else(world: dict[str, Any]) -> None:
    found = cost_anomalies(world["series"], LAST)
    judged = found.filter(pl.col("kind") != "insufficient_history")
    got = {(r["dimension"], r["key"]): r["kind"] for r in judged.iter_rows(named=True)}
    planted = _planted_keys()
    for p in PLANTED:
        cc = p.workload.metadata["costCenter"]
        app = p.workload.metadata["applicationId"]
        assert got.get(("cost_center", cc)) == p.event, (cc, judged)
        assert got.get(("application", app)) == p.event, (app, judged)
    # Everything else flagged is one of those events seen from another side: the planted workloads' own user, or
    # the model they call moving the same way.
    planted_models = {
        "anthropic.claude-sonnet-4-5-20250929-v1:0": "spike",
        "anthropic.claude-3-5-sonnet-20240620-v1:0": "stopped",
    }
    for (dimension, key), kind in got.items():
        if dimension == "model":
            assert planted_models.get(key) in (kind, "stopped" if kind == "drop" else kind), (key, kind)
        else:
            assert planted.get((dimension, key)) == kind, (dimension, key, kind, judged)
    spike = judged.filter((pl.col("dimension") == "cost_center") & (pl.col("kind") == "spike")).row(0, named=True)
    assert spike["severity"] == "high" and spike["ratio"] > 4 and spike["history_days"] == HISTORY + 2
    for back in range(1, 21):  # the 20 judged days before the plant day: the sample's own noise raises nothing
        day = LAST - dt.timedelta(days=back)
        quiet = cost_anomalies(world["series"].filter(pl.col("date") <= day), day)
        assert quiet.filter(pl.col("kind") != "insufficient_history").is_empty(), (day, quiet)


def test_the_forecast_covers_the_sample_months_true_end(world: dict[str, Any]) -> None:
    """A backtest over the generated history: October forecast from its 14th and its 21st, against its true end."""
    total = world["series"].filter(pl.col("dimension") == "cost_center").group_by("date").agg(pl.col("cost_usd").sum())
    by_day = dict(total.sort("date").iter_rows())
    truth = sum(v for d, v in by_day.items() if d.month == 10)
    for as_of in (dt.date(2026, 10, 14), dt.date(2026, 10, 21)):
        days = [d for d in sorted(by_day) if d <= as_of]
        f = month_end(days, [by_day[d] for d in days], as_of)
        assert f["low_usd"] <= truth <= f["high_usd"], (as_of, f, truth)  # type: ignore[operator]


def test_each_day_of_history_has_the_planted_workloads(world: dict[str, Any]) -> None:
    priced = world["priced"]
    per_day = priced.group_by("date", "cost_center").len()
    finance = dict(per_day.filter(pl.col("cost_center") == "finance").select("date", "len").iter_rows())
    assert finance[LAST] == 6 * finance[LAST - dt.timedelta(days=1)]
    assert "legal" not in per_day.filter(pl.col("date") < LAST)["cost_center"].to_list()
    assert "data" not in per_day.filter(pl.col("date") == LAST)["cost_center"].to_list()


def test_without_a_plant_day_the_world_is_unchanged() -> None:
    plain = LogGenOptions(start=DEMO_START, days=1, records_per_day=50)
    planted = LogGenOptions(start=DEMO_START, days=1, records_per_day=50, plant_day=LAST)
    ids = {r["requestId"] for r in iter_records(plain)}
    assert ids < {r["requestId"] for r in iter_records(planted)}


def test_the_assets_write_their_tables_and_the_check_fails_on_the_planted_anomalies(world: dict[str, Any]) -> None:
    from dagster import materialize

    from pipeline.config import load_config
    from pipeline.defs.contract import present
    from pipeline.defs.foresight import ANOMALY_CHECK, build_foresight_assets
    from pipeline.defs.partitions import daily_partitions
    from pipeline.defs.resources import LedgerResource

    cfg = load_config(world["config"])
    assets = present(build_foresight_assets(daily_partitions(cfg.start_date)))
    result = materialize(
        assets, partition_key=LAST.isoformat(), resources={"ledger": LedgerResource(config_path=str(world["config"]))}
    )
    assert result.success
    found = warehouse.read_partition(cfg.warehouse, "cost_anomalies", LAST)
    assert {"spike", "new", "stopped"} <= set(found["kind"])
    check = result.get_asset_check_evaluations()[0]
    assert check.check_name == ANOMALY_CHECK and not check.passed
    assert "finance" in (check.description or "") and "legal" in (check.description or "")
    forecast = warehouse.read_partition(cfg.warehouse, "spend_forecast", LAST)
    assert set(forecast["scope"]) == {"cost_center", "total"} and forecast["month"][0] == "2026-11"
    savings = warehouse.read_partition(cfg.warehouse, "savings_opportunities", LAST)
    # The nightly reports are large non-streaming calls at night through a `us.` profile: batch and global both apply.
    finance = savings.filter((pl.col("dimension") == "cost_center") & (pl.col("key") == "finance"))
    assert {"batch", "global_routing"} <= set(finance["scenario"])
    anomaly_metadata = result.asset_materializations_for_node("cost_anomalies")[0].metadata
    assert anomaly_metadata["anomalies"].value >= 9 and anomaly_metadata["severity_high"].value >= 9
    assert str(anomaly_metadata["finding"].value).startswith("9 anomalies today")
    from pipeline.report.foresight import foresight_sections
    from pipeline.report.render import section_html

    sections = {s.key: s for s in foresight_sections(cfg.warehouse, LAST)}
    assert sections["anomalies"].finding.startswith("9 anomalies today; the largest: ")
    assert sections["forecast"].finding.startswith("Month ends at $")
    assert "saves $" in sections["savings"].finding and " a month " in sections["savings"].finding
    assert all(s.figure is not None for s in sections.values())
    assert "What is unusual today?" in section_html(sections["anomalies"])


def test_the_alert_for_the_anomaly_check_carries_its_sentences(tmp_path: Any) -> None:
    from pipeline.config import DEFAULT_ALERT_CHECKS, Alerts
    from pipeline.report.alerts import CheckOutcome, alert_for, matters

    assert matters("cost_anomalies", "anomalies_below_severity", DEFAULT_ALERT_CHECKS)
    outcome = CheckOutcome(
        asset="cost_anomalies",
        check="anomalies_below_severity",
        partition=LAST.isoformat(),
        passed=False,
        severity="ERROR",
        description="3 anomalies at medium severity or above: Cost center finance's spend is $4.48, 6.0× its usual "
        "Tuesday ($0.75).",
        metadata={},
        storage_id=1,
    )
    alert = alert_for(outcome, Alerts(), str(tmp_path))
    assert "Cost center finance's spend is $4.48, 6.0× its usual Tuesday" in alert.text
