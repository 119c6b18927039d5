"""Prices from the AWS Price List: sync through a local fake of the Pricing API, merge with history, id aliases,
the synced layer's precedence, bill list rates and bill-priced calls, `prices show`."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipeline.billing.list_rates import bill_list_rates, first_seen
from pipeline.billing.readers import public_rate
from pipeline.pricing import load_catalog, price_invocations
from pipeline.pricing.bill_rates import catalog_disagreements, price_from_bill
from pipeline.pricing.catalog import BUNDLED_PRICES
from pipeline.pricing.price_list import merge_records, sync_catalog
from pipeline.schemas import BILL_LIST_RATES
from tests.pricing_fake import BEDROCK, FakePricing, default_products, product, serve_pricing

DAY = dt.date(2026, 12, 1)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    with serve_pricing() as f:
        monkeypatch.setenv("AWS_ENDPOINT_URL_PRICING", f.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("LEDGER_AWS_MAX_ATTEMPTS", "1")
        yield f


def _lines(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


EXPECTED_KEYS = {
    ("amazon.nova-lite-v1:0", "us-east-1", "in_region", "standard", "token"),
    ("amazon.nova-lite-v1:0", "us-east-1", "geo", "standard", "token"),
    ("amazon.nova-pro-v1:0", "us-east-1", "in_region", "standard", "token"),
    ("amazon.nova-pro-v1:0", "us-east-1", "geo", "standard", "token"),
    ("amazon.nova-2-lite-v1:0", "us-east-1", "global", "standard", "token"),
    ("amazon.nova-2-lite-v1:0", "us-east-1", "in_region", "batch", "token"),
    ("amazon.nova-2-lite-v1:0", "us-east-1", "geo", "batch", "token"),
    ("amazon.nova-2-lite-v1:0", "us-east-1", "in_region", "flex", "token"),
    ("amazon.nova-2-lite-v1:0", "us-east-1", "geo", "flex", "token"),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", "us-east-1", "in_region", "standard", "token"),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", "us-east-1", "geo", "standard", "token"),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", "us-east-1", "global", "standard", "token"),
    ("anthropic.claude-sonnet-4-5-20250929-v1:0", "us-east-1", "global", "standard", "token"),
    ("openai.gpt-oss-120b", "us-east-1", "in_region", "standard", "token"),
    ("openai.gpt-oss-120b", "us-east-1", "geo", "standard", "token"),
    ("amazon.rerank-v1:0", "us-west-2", "", "standard", "query"),
    ("guardrail:sensitive_information", "us-east-1", "", "standard", "text_unit"),
}


def test_sync_over_the_committed_catalog_changes_exactly_the_fixtures_rows(fake: FakePricing, tmp_path: Path):
    out = tmp_path / "prices.csv"
    shutil.copy(BUNDLED_PRICES, out)
    before = _lines(out)
    report = sync_catalog(out)
    after = _lines(out)
    assert after[: len(before)] == before, "no existing row may change when no price changed"
    header = after[0]
    added = [dict(zip(header, r, strict=True)) for r in after[len(before) :]]
    keys = {(r["model_id"], r["region"], r["routing"], r["tier"], r["unit"]) for r in added}
    assert keys == EXPECTED_KEYS
    assert all(r["source"].startswith("aws-price-list:Amazon") and r["source"].endswith("@2026-11-20") for r in added)
    by_key = {(r["model_id"], r["routing"], r["tier"], r["context_tier"]): r for r in added}
    # Units: 1K tokens as is, Marketplace `Units` and `1M tokens` per million, `1K Text Units` per unit.
    assert by_key[("amazon.nova-2-lite-v1:0", "in_region", "batch", "standard")]["input_per_1k_usd"] == "0.0001595"
    assert (
        by_key[("anthropic.claude-haiku-4-5-20251001-v1:0", "global", "standard", "standard")]["input_per_1k_usd"]
        == "0.001"
    )
    assert by_key[("openai.gpt-oss-120b", "in_region", "standard", "standard")]["input_per_1k_usd"] == "0.00015"
    long = by_key[("anthropic.claude-sonnet-4-5-20250929-v1:0", "global", "standard", "long")]
    assert (long["input_per_1k_usd"], long["min_input_tokens"]) == ("0.006", "200000")
    guard = by_key[("guardrail:sensitive_information", "", "standard", "standard")]
    assert guard["per_unit_usd"] == "0.0001"
    # Listed, never guessed: an unknown billing name, two image qualities for one key, Provisioned Throughput.
    reasons = {u.usage_type: u.reason for u in report.unmapped}
    assert "not in billing_model_names.csv" in reasons["USE1-FooBar9-input-tokens"]
    assert "different prices" in reasons["USE1-NovaCanvas-T2I-1024-Premium"]
    assert "Provisioned Throughput" in reasons["USE1-Nova2.0Lite-ProvisionedThroughput-NoCommit-ModelUnits"]
    # Paged: more calls than offers (the fake serves 5 products a page).
    assert len([c for c in fake.calls if c["ServiceCode"] == BEDROCK]) == 3
    load_catalog(bundled_path=out)  # the merged file is a valid catalog

    text = out.read_bytes()
    again = sync_catalog(out)
    assert again.merge.touched == 0 and again.merge.unchanged == len(EXPECTED_KEYS)
    assert out.read_bytes() == text, "a second sync of the same response changes nothing"


def test_a_changed_price_closes_the_old_row_and_opens_a_dated_one(fake: FakePricing, tmp_path: Path):
    out = tmp_path / "_catalog" / "prices.csv"
    sync_catalog(out)
    fake.products[BEDROCK] = [
        product(
            BEDROCK,
            "USE1-NovaLite-input-tokens",
            "0.0000500000",
            "1K tokens",
            effective="2026-12-10T00:00:00Z",
            publication="2026-12-10T00:00:00Z",
        ),
        *[
            p
            for p in default_products()[BEDROCK]
            if p["product"]["attributes"]["usagetype"] != "USE1-NovaLite-input-tokens"
        ],
    ]
    report = sync_catalog(out)
    assert sorted(report.merge.changed) == [
        "amazon.nova-lite-v1:0|us-east-1|geo|standard|standard|token",
        "amazon.nova-lite-v1:0|us-east-1|in_region|standard|standard|token",
    ]
    rows = pl.read_csv(out, infer_schema=False).filter(
        (pl.col("model_id") == "amazon.nova-lite-v1:0") & (pl.col("routing") == "in_region")
    )
    assert rows.select("effective_from", "effective_to", "input_per_1k_usd", "output_per_1k_usd").rows() == [
        ("2026-11-01", "2026-12-09", "0.00006", "0.00024"),
        ("2026-12-10", None, "0.00005", "0.00024"),
    ]
    assert rows["source"].to_list()[1] == "aws-price-list:AmazonBedrock@2026-12-10"
    cat = load_catalog(synced_path=out)
    inv = _calls(["us.amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"], day=dt.date(2026, 12, 9))
    later = inv.with_columns(pl.lit(dt.date(2026, 12, 10)).alias("date"))
    priced = price_invocations(pl.concat([inv, later]), cat)
    assert priced["input_cost_usd"].to_list() == pytest.approx([0.00006, 0.00006, 0.00005, 0.00005])
    assert all(s.startswith("synced:amazon.nova-lite-v1:0|us-east-1|") for s in priced["price_source"])
    assert set(priced["price_origin"]) == {"catalog"}


def test_merge_keeps_rows_from_other_sources_and_history():
    header = [
        "model_id",
        "region",
        "routing",
        "tier",
        "effective_from",
        "effective_to",
        "input_per_1k_usd",
        "output_per_1k_usd",
        "cache_read_per_1k_usd",
        "cache_write_per_1k_usd",
        "source",
    ]
    base = dict.fromkeys(header, "")
    old = {
        **base,
        "model_id": "m",
        "region": "us-east-1",
        "routing": "in_region",
        "tier": "standard",
        "effective_from": "2025-01-01",
        "effective_to": "2025-06-30",
        "input_per_1k_usd": "1",
        "source": "https://example.com/old",
    }
    cur = {**old, "effective_from": "2025-07-01", "effective_to": "", "input_per_1k_usd": "2"}
    other = {**old, "model_id": "n", "effective_to": "", "source": "unpublished:hand"}
    new = {
        **cur,
        "effective_from": "2025-03-01",
        "input_per_1k_usd": "3",
        "source": "aws-price-list:AmazonBedrock@2025-03-01",
    }
    result = merge_records(header, [old, cur, other], [new])
    assert result.records[:3] == [old, {**cur, "effective_to": "2025-07-01"}, other]
    # Never before the open row's second day, so no row is ever emptied or deleted.
    assert result.records[3]["effective_from"] == "2025-07-02"


def _calls(model_ids: list[str], day: dt.date = DAY, region: str = "us-east-1", tokens: int = 1000) -> pl.DataFrame:
    from pipeline.normalize.model_ids import resolve_model_id

    res = [resolve_model_id(m) for m in model_ids]
    n = len(model_ids)
    return pl.DataFrame(
        {
            "model_id": model_ids,
            "base_model_id": [r.base_model_id for r in res],
            "routing": [r.routing for r in res],
            "inference_profile": [r.inference_profile for r in res],
            "region": [region] * n,
            "date": [day] * n,
            "service_tier": [None] * n,
            "input_tokens": [tokens] * n,
            "output_tokens": [0] * n,
            "cache_read_input_tokens": [0] * n,
            "cache_write_input_tokens": [0] * n,
            "image_count": [0] * n,
        },
        schema_overrides={"service_tier": pl.String, "inference_profile": pl.String},
    )


def test_short_and_geo_ids_resolve_through_the_alias_file():
    priced = price_invocations(
        _calls(
            [
                "anthropic.claude-haiku-4-5",
                "global.anthropic.claude-haiku-4-5",
                "anthropic.claude-haiku-4-5-20251001-v1:0",
                "anthropic.claude-sonnet-5",  # not an alias of anything: never matched to sonnet-5-5 or sonnet-4-5
            ]
        ),
        load_catalog(),
    )
    assert priced["input_cost_usd"].to_list()[:3] == pytest.approx([0.0011, 0.001, 0.0011])
    assert priced["price_source"][1].startswith("catalog:global.anthropic.claude-haiku-4-5-20251001-v1:0|")
    assert "sonnet-5-5" not in (priced["price_source"][3] or "")


def test_a_govcloud_call_at_the_us_row_is_marked_not_silent():
    priced = price_invocations(_calls(["amazon.nova-lite-v1:0"], region="us-gov-west-1"), load_catalog())
    assert priced["priced"][0]
    assert "derived:region=1x" in priced["price_source"][0] and "us-gov-west-1" in priced["price_source"][0]
    assert priced["price_origin"][0] == "derived"
    own = price_invocations(_calls(["amazon.nova-pro-v1:0"], region="us-gov-west-1"), load_catalog())
    assert own["price_source"][0].startswith("catalog:amazon.nova-pro-v1:0|us-gov-west-1|")
    assert own["price_origin"][0] == "catalog"


def _bill_items() -> pl.DataFrame:
    rows = [
        # date, model, usage_type, kind, routing, unit, amount, list rate (string in CUR)
        (DAY, "amazon.nova-lite-v1:0", "USE1-NovaLite-input-tokens", "input", "in_region", "1K tokens", 0.00007),
        (DAY, "zai.glm-9", "USE1-GLM9-input-tokens", "input", "in_region", "1K tokens", 0.0005),
        (DAY, "zai.glm-9", "USE1-GLM9-output-tokens", "output", "in_region", "1K tokens", 0.002),
        (DAY, "zai.glm-9", "USE1-GLM9-output-tokens", "output", "in_region", "1K tokens", 0.0),
        (
            DAY,
            "anthropic.claude-haiku-4-5-20251001-v1:0",
            "USE1-MP:USE1_InputTokenCount_Global-Units",
            "input",
            "global",
            "Units",
            1.0,
        ),
    ]
    return pl.DataFrame(
        {
            "date": [r[0] for r in rows],
            "base_model_id": [r[1] for r in rows],
            "usage_type": [r[2] for r in rows],
            "usage_kind": [r[3] for r in rows],
            "routing": [r[4] for r in rows],
            "pricing_unit": [r[5] for r in rows],
            "list_unit_price_usd": [r[6] for r in rows],
            "region": ["us-east-1"] * len(rows),
            "tier": ["standard"] * len(rows),
            "context_tier": ["standard"] * len(rows),
            "line_item_type": ["Usage"] * len(rows),
            "source_format": ["cur2"] * len(rows),
        }
    )


def test_bill_list_rates_check_and_bill_priced_calls():
    rates = bill_list_rates(_bill_items())
    assert rates.columns == list(BILL_LIST_RATES)
    assert dict(zip(rates["usage_type"], rates["rate_per_1k_usd"], strict=True)) == pytest.approx(
        {
            "USE1-NovaLite-input-tokens": 0.00007,
            "USE1-GLM9-input-tokens": 0.0005,
            "USE1-GLM9-output-tokens": 0.002,  # the 0 rate is never a rate
            "USE1-MP:USE1_InputTokenCount_Global-Units": 0.001,
        }
    )
    cat = load_catalog()
    bad = catalog_disagreements(rates, cat, DAY, 0.005)
    assert set(bad["base_model_id"]) == {"amazon.nova-lite-v1:0", "zai.glm-9"}  # Haiku 4.5 global agrees
    nova = bad.filter(pl.col("base_model_id") == "amazon.nova-lite-v1:0").row(0, named=True)
    assert (nova["bill_rate_per_1k_usd"], nova["catalog_rate_per_1k_usd"]) == pytest.approx((0.00007, 0.00006))

    next_day = DAY + dt.timedelta(days=1)
    usable = first_seen(rates, next_day)
    assert first_seen(rates, DAY).is_empty()  # a rate first billed on the day itself is not used for that day
    calls = _calls(["zai.glm-9", "zai.glm-9"], day=next_day).with_columns(
        pl.Series("output_tokens", [500, 0]), pl.Series("cache_read_input_tokens", [0, 10])
    )
    priced = price_from_bill(price_invocations(calls, cat), usable)
    first, second = priced.row(0, named=True), priced.row(1, named=True)
    assert first["priced"] and first["price_origin"] == "bill"
    assert first["total_cost_usd"] == pytest.approx(1000 * 0.0005 / 1000 + 500 * 0.002 / 1000)
    assert first["price_source"] == f"bill:USE1-GLM9-input-tokens|us-east-1|{DAY}"
    # Cache reads the bill never priced: stays unpriced, never $0.
    assert not second["priced"] and second["total_cost_usd"] is None and second["unpriced_reason"] == "no_price"


def test_cur_public_rate_strings_are_parsed():
    df = pl.DataFrame({"r": ["0.0000600000", "$0.002", "1,000.5", "", None, "n/a"]})
    assert df.select(public_rate(pl.col("r")))["r"].to_list() == [0.00006, 0.002, 1000.5, None, None, None]


def test_prices_show_names_the_row_and_the_tiers():
    from pipeline.pricing.explain import explain

    lines = explain("anthropic.claude-haiku-4-5", "us-east-1", DAY)
    text = "\n".join(lines)
    assert "id form of anthropic.claude-haiku-4-5-20251001-v1:0" in text
    assert "input $1.10" in text and "row:    catalog:anthropic.claude-haiku-4-5-20251001-v1:0|*|" in text
    assert "batch:" in text and "derived: 0.5x standard" in text
    unknown = "\n".join(explain("zai.glm-9", "us-east-1", DAY))
    assert "NOT PRICED" in unknown and "never $0" in unknown


@pytest.mark.parametrize(
    ("model_id", "tokens", "tier", "per_1k_in", "per_1k_out", "context"),
    [
        ("us.amazon.nova-2-pro-preview-20251202-v1:0", 1000, None, 0.001375, 0.011, "standard"),
        ("eu.amazon.nova-2-pro-preview-20251202-v1:0", 1000, None, 0.001375, 0.011, "standard"),
        ("qwen.qwen3-coder-480b-a35b-v1:0", 1000, None, 0.00045, 0.0018, "standard"),
        ("cohere.command-text-v14", 1000, None, 0.001, 0.002, "standard"),
        ("amazon.nova-2-lite-v1:0", 1000, "batch", 0.0001595, 0.001342, "standard"),
        ("global.amazon.nova-2-lite-v1:0", 1000, "priority", 0.000525, 0.004375, "standard"),
        ("global.anthropic.claude-haiku-5-5", 100_000, None, 0.0001, 0.0005, "standard"),
        ("global.anthropic.claude-haiku-5-5", 100_001, None, 0.0005, 0.0025, "long"),
        ("anthropic.claude-haiku-5-5", 150_000, None, 0.00055, 0.00275, "long"),
        ("openai.gpt-5.6-sol", 272_000, None, 0.0044, 0.022, "standard"),
        ("openai.gpt-5.6-sol", 272_001, None, 0.0088, 0.033, "long"),
        ("global.openai.gpt-5.6-luna", 300_000, None, 0.0004, 0.0018, "long"),
    ],
)
def test_corrected_rates_and_long_context_thresholds(model_id, tokens, tier, per_1k_in, per_1k_out, context):
    calls = _calls([model_id], tokens=tokens).with_columns(
        pl.lit(1000).alias("output_tokens"), pl.lit(tier, pl.String).alias("service_tier")
    )
    row = price_invocations(calls, load_catalog()).row(0, named=True)
    assert row["context_tier"] == context
    assert row["input_cost_usd"] == pytest.approx(tokens * per_1k_in / 1000)
    assert row["output_cost_usd"] == pytest.approx(per_1k_out)
    assert " derived:" not in row["price_source"]  # AWS's own tier rates, not a multiplier


def test_cli_prices_sync_into_the_warehouse_and_show(fake: FakePricing, tmp_path: Path, capsys):
    from pipeline.cli import run_cli
    from pipeline.pricing.layers import catalog_for, synced_catalog_uri

    cfg_path = tmp_path / "ledger.yaml"
    cfg_path.write_text(f"warehouse: {tmp_path / 'wh'}\nstart_date: '2026-11-01'\n")
    assert run_cli(["prices", "sync", "--config", str(cfg_path)]) == 0
    out = capsys.readouterr().out
    assert f"{len(EXPECTED_KEYS)} rows opened" in out and "unmapped AmazonBedrock USE1-FooBar9-input-tokens" in out
    assert Path(synced_catalog_uri(str(tmp_path / "wh"))).is_file()
    assert run_cli(["prices", "sync", "--config", str(cfg_path)]) == 0
    assert "0 rows opened, 0 changed" in capsys.readouterr().out

    from pipeline.config import load_config

    cat = catalog_for(load_config(cfg_path))
    assert any(f.endswith("_catalog/prices.csv") for f in cat.files)
    assert run_cli(["prices", "show", "us.amazon.nova-lite-v1:0", "--date", "2026-12-01", "-c", str(cfg_path)]) == 0
    shown = capsys.readouterr().out
    assert "row:    synced:amazon.nova-lite-v1:0|us-east-1|geo|standard|2026-11-01" in shown
    assert "aws-price-list:AmazonBedrock@2026-11-20" in shown


def test_cli_prices_sync_says_why_when_the_price_list_is_unreachable(tmp_path: Path, monkeypatch, capsys):
    from pipeline.cli import run_cli
    from tests.helpers import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL_PRICING", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("LEDGER_AWS_MAX_ATTEMPTS", "0")
    assert run_cli(["prices", "sync", "--out", str(tmp_path / "p.csv")]) == 3
    err = capsys.readouterr().err
    assert "Price List offer AmazonBedrock" in err and "pricing:GetProducts" in err
    assert not (tmp_path / "p.csv").exists()


def test_scheduled_sync_is_off_by_default_and_writes_the_synced_catalog_when_on(fake: FakePricing, tmp_path: Path):
    from pipeline.config import load_config
    from pipeline.defs.build import build_definitions
    from pipeline.defs.price_sync import SYNC_JOB
    from pipeline.defs.resources import LedgerResource
    from pipeline.pricing.layers import synced_catalog_uri

    off = tmp_path / "off.yaml"
    off.write_text(f"warehouse: {tmp_path / 'wh'}\nstart_date: '2026-11-01'\n")
    names = {s.name for s in build_definitions(load_config(off), str(off)).schedules or []}
    assert "price_list_sync_schedule" not in names
    on = tmp_path / "on.yaml"
    on.write_text(f"warehouse: {tmp_path / 'wh'}\nstart_date: '2026-11-01'\npricing: {{sync: {{enabled: true}}}}\n")
    defs = build_definitions(load_config(on), str(on))
    assert "price_list_sync_schedule" in {s.name for s in defs.schedules or []}
    result = defs.resolve_job_def(SYNC_JOB).execute_in_process(
        resources={"ledger": LedgerResource(config_path=str(on))}
    )
    assert result.success
    rows = pl.read_csv(synced_catalog_uri(str(tmp_path / "wh")), infer_schema=False)
    assert rows.height == len(EXPECTED_KEYS)


def test_prices_show_names_the_bill_rate_of_a_model_the_catalog_lacks(tmp_path: Path):
    from pipeline import warehouse
    from pipeline.config import load_config
    from pipeline.pricing.explain import explain

    cfg_path = tmp_path / "ledger.yaml"
    cfg_path.write_text(f"warehouse: {tmp_path / 'wh'}\nstart_date: '2026-11-01'\n")
    cfg = load_config(cfg_path)
    assert "No bill has priced it yet" in "\n".join(explain("zai.glm-9", "us-east-1", DAY, cfg))
    warehouse.write_partition(bill_list_rates(_bill_items()), cfg.warehouse, "bill_list_rates", DAY)
    text = "\n".join(explain("zai.glm-9", "us-east-1", DAY + dt.timedelta(days=1), cfg))
    assert "standard input: $0.50 (bill:USE1-GLM9-input-tokens|us-east-1|2026-12-01)" in text
    assert "standard output: $2.00" in text


def test_a_token_model_with_a_per_image_row_is_priced_by_its_token_row(tmp_path: Path):
    synced = tmp_path / "prices.csv"
    synced.write_text(
        "model_id,region,routing,tier,effective_from,effective_to,input_per_1k_usd,output_per_1k_usd,"
        "cache_read_per_1k_usd,cache_write_per_1k_usd,unit,per_unit_usd,source\n"
        "zai.glm-9,us-east-1,in_region,standard,2026-01-01,,,,,,image,0.5,aws-price-list:AmazonBedrock@2026-11-20\n"
        "zai.glm-9,us-east-1,in_region,standard,2026-01-01,,0.001,0.002,,,token,,aws-price-list:AmazonBedrock@2026-11-20\n"
        "guardrail:content,us-east-1,,standard,2026-01-01,,,,,,text_unit,0.00015,https://aws.amazon.com/bedrock/pricing/\n"
    )
    row = price_invocations(_calls(["zai.glm-9"]), load_catalog(synced_path=synced)).row(0, named=True)
    assert row["input_cost_usd"] == pytest.approx(0.001) and row["image_cost_usd"] == 0.0
    assert row["price_source"].startswith("synced:zai.glm-9|us-east-1|in_region|standard|2026-01-01")
    assert "|image" not in row["price_source"]


def test_prices_show_marks_a_region_fallback():
    from pipeline.pricing.explain import explain

    text = "\n".join(explain("amazon.nova-lite-v1:0", "us-gov-west-1", DAY))
    assert "NOTE:   no us-gov-west-1 row" in text and "price_origin = derived" in text


def test_a_synced_row_must_say_where_its_price_came_from(tmp_path: Path):
    from pipeline.pricing import PriceCatalogError

    synced = tmp_path / "prices.csv"
    synced.write_text(
        "model_id,region,routing,tier,effective_from,effective_to,input_per_1k_usd,output_per_1k_usd,"
        "cache_read_per_1k_usd,cache_write_per_1k_usd,source\n"
        "zai.glm-9,us-east-1,in_region,standard,2026-01-01,,0.001,0.002,,,someone said so\n"
    )
    with pytest.raises(PriceCatalogError, match=r"line 2: source 'someone said so' is not aws-price-list:"):
        load_catalog(synced_path=synced)


def test_sync_into_an_s3_warehouse_and_price_from_it(bucket: str, fake: FakePricing, tmp_path: Path, capsys):
    from pipeline.cli import run_cli
    from pipeline.config import load_config
    from pipeline.pricing.layers import catalog_for, fetch_synced

    cfg_path = tmp_path / "ledger.yaml"
    cfg_path.write_text(f"warehouse: s3://{bucket}/warehouse\nstart_date: '2026-11-01'\n")
    cfg = load_config(cfg_path)
    assert fetch_synced(cfg.warehouse) is None
    assert run_cli(["prices", "sync", "--config", str(cfg_path)]) == 0
    assert f"Catalog: s3://{bucket}/warehouse/_catalog/prices.csv" in capsys.readouterr().out
    priced = price_invocations(_calls(["us.amazon.nova-lite-v1:0"]), catalog_for(cfg))
    assert priced["price_source"][0].startswith("synced:amazon.nova-lite-v1:0|us-east-1|geo|")
    assert run_cli(["prices", "sync", "--config", str(cfg_path)]) == 0
    assert "0 rows opened, 0 changed" in capsys.readouterr().out


def test_bill_rates_are_read_from_an_s3_warehouse(bucket: str):
    from pipeline import warehouse
    from pipeline.pricing.bill_rates import usable_bill_rates

    wh = f"s3://{bucket}/warehouse"
    assert usable_bill_rates(wh, DAY).is_empty()
    warehouse.write_partition(bill_list_rates(_bill_items()), wh, "bill_list_rates", DAY)
    assert warehouse.partition_days(wh, "bill_list_rates") == [DAY]
    assert usable_bill_rates(wh, DAY).is_empty()  # first billed on the day itself: not for that day's first run
    assert usable_bill_rates(wh, DAY, rerun=True).height == 4
    assert usable_bill_rates(wh, DAY + dt.timedelta(days=1)).height == 4
