"""The cost report: built by the `cost_report` asset from the demo's warehouse, one chart per section with the
rows it should draw, no prompt text, plotly inlined (no network), the bridge summing exactly, the optional
completeness and cache sections when their tables exist, and — where Debian's chromium is installed — a headless
render without console errors."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipeline import warehouse
from pipeline.config import load_config
from pipeline.report.bridge import bridge_parts
from pipeline.report.build import build_reports
from pipeline.report.cost import movers
from pipeline.report.store import report_uri
from pipeline.report.words import short_model

START = dt.date(2026, 11, 1)
DAYS = [START, START + dt.timedelta(days=1)]
CORE_SECTIONS = {"cost_by_cost_center", "cost_by_base_model_id", "bill_bridge", "budgets", "model_health"}


class ReportParser(HTMLParser):
    """Sections, their captions, figure JSON blocks and data tables, and every external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict[str, Any]] = {}
        self.current: str | None = None
        self.external: list[str] = []
        self._in: str | None = None
        self._buf: list[str] = []
        self._rows_section: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for attr in ("src", "href"):
            value = a.get(attr) or ""
            if value.startswith(("http://", "https://", "//")):
                self.external.append(value)
        if tag == "section" and a.get("data-section"):
            self.current = a["data-section"]
            self.sections[self.current] = {"figures": [], "caption": "", "rows": 0}
        elif tag == "figcaption" and self.current:
            self._in, self._buf = "caption", []
        elif tag == "script" and a.get("type") == "application/json" and self.current:
            self._in, self._buf = "figure", []
        elif tag == "div" and a.get("data-rows"):
            self._rows_section = a["data-rows"]
        elif tag == "tr" and self._rows_section:
            self.sections[self._rows_section]["rows"] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "figcaption" and self._in == "caption":
            self.sections[self.current]["caption"] = "".join(self._buf)  # type: ignore[index]
            self._in = None
        elif tag == "script" and self._in == "figure":
            self.sections[self.current]["figures"].append(json.loads("".join(self._buf)))  # type: ignore[index]
            self._in = None
        elif tag == "details":
            self._rows_section = None
        elif tag == "section":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self._buf.append(data)


def _parse(path: str) -> ReportParser:
    parser = ReportParser()
    parser.feed(Path(path).read_text())
    return parser


def _wh(demo: Path) -> str:
    return load_config(demo / "demo" / "ledger.yaml").warehouse


def test_demo_writes_a_daily_and_a_month_to_date_report_per_day(demo: Path) -> None:
    wh = _wh(demo)
    for day in DAYS:
        for kind in ("daily", "month_to_date"):
            path = Path(report_uri(wh, day, kind))
            assert path.is_file(), path
            text = path.read_text()
            assert "Plotly.newPlot" in text and len(text) > 1_000_000  # plotly.js is inlined, not fetched


def test_report_has_one_chart_per_section_with_the_expected_rows(demo: Path) -> None:
    wh = _wh(demo)
    day = DAYS[-1]
    report = _parse(report_uri(wh, day, "daily"))
    assert report.external == []
    assert set(report.sections) >= CORE_SECTIONS
    for key, section in report.sections.items():
        assert len(section["figures"]) == 1, key
        assert section["caption"].strip(), key
        assert section["rows"] > 1, key  # a header row and at least one data row
    by_cc = warehouse.read_partition(wh, "daily_usage_by_cost_center", day)
    cc_fig = report.sections["cost_by_cost_center"]["figures"][0]
    # The daily report's trend covers every demo day; the last x of every trace is the report's day.
    drawn_today = sum(t["y"][t["x"].index(day.isoformat())] for t in cc_fig["data"] if day.isoformat() in t["x"])
    assert drawn_today == pytest.approx(by_cc["total_cost_usd"].sum(), abs=0.05)
    assert {t["name"] for t in cc_fig["data"]} <= set(by_cc["cost_center"]) | {"others"}

    models = warehouse.read_partition(wh, "daily_usage_by_model", day)["base_model_id"].unique().to_list()
    health = report.sections["model_health"]["figures"][0]
    assert set(health["data"][0]["y"]) == {short_model(m) for m in models}

    recon = warehouse.read_partition(wh, "cost_reconciliation", day)
    bridge = report.sections["bill_bridge"]["figures"][0]["data"][0]
    assert bridge["type"] == "waterfall"
    assert bridge["measure"][0] == "absolute" and bridge["measure"][-1] == "total"
    assert bridge["y"][0] == pytest.approx(recon["estimated_cost_usd"].fill_null(0).sum(), abs=1e-3)
    assert bridge["y"][-1] == pytest.approx(recon["billed_cost_usd"].sum(), abs=1e-3)
    steps = set(bridge["x"][0])
    assert steps == {"estimate", "volume variance", "price variance", "billed"}
    caption = report.sections["bill_bridge"]["caption"]
    assert "estimate" in caption

    budgets = warehouse.read_partition(wh, "budget_status", day).filter(pl.col("budget_usd").is_not_null())
    burn = report.sections["budgets"]["figures"][0]
    assert len(burn["data"]) == 3 * budgets.height  # spend, forecast and budget per cost center
    worst = budgets.sort("pct_used", descending=True).row(0, named=True)
    assert (
        f"{worst['cost_center']} is at {worst['pct_used']:.0f}% of its monthly budget"
        in (report.sections["budgets"]["caption"])
    )


def test_month_to_date_bridge_covers_the_month(demo: Path) -> None:
    wh = _wh(demo)
    recon = pl.concat([warehouse.read_partition(wh, "cost_reconciliation", d) for d in DAYS])
    report = _parse(report_uri(wh, DAYS[-1], "month_to_date"))
    bridge = report.sections["bill_bridge"]["figures"][0]["data"][0]
    assert bridge["y"][-1] == pytest.approx(recon["billed_cost_usd"].sum(), abs=1e-3)
    assert "unlogged usage" in bridge["x"][1]  # the sample's never-logged model is a labelled part of volume


def _texts(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _texts(v)]
    if isinstance(obj, list):
        return [t for v in obj for t in _texts(v)]
    return []


def test_report_embeds_no_prompt_or_response_text(demo: Path) -> None:
    bodies: set[str] = set()
    for path in sorted((demo / "demo" / "logs").rglob("*.json.gz"))[:5]:
        try:
            lines = gzip.decompress(path.read_bytes()).decode(errors="replace").splitlines()
        except (OSError, EOFError):  # the sample's injected truncated object
            continue
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict):
                continue
            for part in ("input", "output"):
                body = (rec.get(part) or {}).get(f"{part}BodyJson")
                bodies.update(t for t in _texts(body) if len(t) >= 25)
    assert bodies, "the sample should carry prompt text to test against"
    html_text = Path(report_uri(_wh(demo), DAYS[-1], "daily")).read_text()
    html_text += Path(report_uri(_wh(demo), DAYS[-1], "month_to_date")).read_text()
    leaked = [b for b in bodies if b in html_text]
    assert leaked == []


def test_demo_cli_prints_the_report_paths(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import _print_reports

    _print_reports(_wh(demo), DAYS[-1])
    out = capsys.readouterr().out
    assert f"Cost report for {DAYS[-1]}: " in out and out.count(".html") == 2


def test_bridge_parts_sum_exactly_to_billed_minus_estimated() -> None:
    recon = pl.DataFrame(
        {
            "status": ["matched", "under_logged", "price_mismatch", "missing_in_logs", "unmapped_billing", "unpriced"]
            + ["missing_in_bill", "missing_in_logs"],
            "usage_kind": ["input", "output", "input", "input", "output", "image", "input", "provisioned"],
            "estimated_cost_usd": [1.0, 2.0, 3.0, 0.0, 0.0, None, 0.7, 0.0],
            "billed_cost_usd": [1.001, 2.5, 3.3, 4.0, 0.25, 0.64, 0.0, 576.0],
            "volume_variance_usd": [0.001, 0.45, 0.0, 4.0, 0.25, 0.0, None, None],
            "price_variance_usd": [0.0, 0.05, 0.3, 0.0, 0.0, None, None, None],
        }
    )
    estimate, billed, parts = bridge_parts(recon)
    assert estimate == pytest.approx(6.7) and billed == pytest.approx(587.691)
    assert estimate + parts["usd"].sum() == pytest.approx(billed, abs=1e-9)
    by_part = dict(zip(parts["part"], parts["usd"], strict=True))
    assert by_part["unlogged usage"] == pytest.approx(580.0)  # never-logged tokens and idle provisioned hours
    assert by_part["unmapped bill rows"] == pytest.approx(0.25)
    assert by_part["not yet billed"] == pytest.approx(-0.7)
    assert by_part["unpriced calls"] == pytest.approx(0.64)
    assert set(parts["step"]) == {"volume variance", "price variance"}


def test_movers_compare_the_last_week_with_the_one_before() -> None:
    day = dt.date(2026, 11, 14)
    daily = pl.DataFrame(
        {
            "date": [day - dt.timedelta(days=i) for i in range(14)] * 2,
            "cost_center": ["a"] * 14 + ["b"] * 14,
            "total_cost_usd": [2.0] * 7 + [1.0] * 7 + [1.0] * 14,
        }
    )
    mv = movers(daily, "cost_center", day)
    top = mv.row(0, named=True)
    assert top["cost_center"] == "a" and top["change"] == pytest.approx(7.0) and top["change_pct"] == pytest.approx(1.0)
    assert mv.filter(pl.col("cost_center") == "b")["change"][0] == pytest.approx(0.0)


def test_short_model_names() -> None:
    assert short_model("anthropic.claude-3-haiku-20240307-v1:0") == "anthropic.claude-3-haiku"


def test_completeness_and_cache_sections_appear_when_their_tables_exist(tmp_path: Path) -> None:
    wh = str(tmp_path / "wh")
    day = dt.date(2026, 11, 5)
    completeness = pl.DataFrame(
        {
            "date": [day] * 4,
            "account_id": ["111122223333"] * 4,
            "region": ["us-east-1", "us-east-1", "eu-west-1", "eu-west-1"],
            "base_model_id": ["m"] * 4,
            "hour": [3, 4, 3, 4],
            "logged_invocations": [100, 50, 0, 80],
            "metric_invocations": [100, 100, 40, 80],
            "coverage": [1.0, 0.5, 0.0, 1.0],
        }
    )
    cache = pl.DataFrame(
        {
            "date": [day] * 3,
            "account_id": ["111122223333"] * 3,
            "base_model_id": ["m"] * 3,
            "application": ["docs-helper", "chat", "docs-helper"],
            "net_saving_usd": [4.0, -1.5, 2.0],
        }
    )
    warehouse.write_partition(completeness, wh, "log_completeness", day)
    warehouse.write_partition(cache, wh, "daily_cache_economics", day)
    files = build_reports(wh, day)
    report = _parse(files.daily)
    assert set(report.sections) == CORE_SECTIONS | {"coverage", "cache_savings"}
    heat = report.sections["coverage"]["figures"][0]["data"][0]
    assert heat["type"] == "heatmap"
    z = dict(zip(heat["y"], heat["z"], strict=True))
    assert z["us-east-1"][3] == 100.0 and z["us-east-1"][4] == 50.0 and z["eu-west-1"][3] == 0.0
    assert "eu-west-1 03:00 UTC at 0%" in report.sections["coverage"]["caption"]
    bars = report.sections["cache_savings"]["figures"][0]["data"][0]
    assert dict(zip(bars["y"], bars["x"], strict=True)) == {"docs-helper": 6.0, "chat": -1.5}
    assert "chat lost $1.50" in report.sections["cache_savings"]["caption"]
    # With no usage, bill or budgets the other sections still render and say so.
    assert "No reconciliation rows" in report.sections["bill_bridge"]["caption"]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium_without_console_errors(demo: Path, tmp_path: Path) -> None:
    path = Path(report_uri(_wh(demo), DAYS[-1], "daily"))
    proc = subprocess.run(
        [
            CHROMIUM,  # type: ignore[list-item]
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=8000",
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = proc.stdout
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    assert dom.count('class="main-svg"') >= 2 * len(CORE_SECTIONS)  # every chart was drawn, offline


@pytest.mark.slow
def test_reports_are_written_to_an_s3_warehouse_as_html(bucket: str, aws: str) -> None:
    import boto3

    wh = f"s3://{bucket}/ledger"
    day = dt.date(2026, 11, 5)
    usage = pl.DataFrame(
        {"date": [day, day], "cost_center": ["support", "sales"], "invocations": [10, 5], "total_cost_usd": [3.0, 1.0]}
    )
    warehouse.write_partition(usage, wh, "daily_usage_by_cost_center", day)
    files = build_reports(wh, day)
    assert files.daily == f"{wh}/reports/date={day}/daily.html"
    s3 = boto3.client("s3", endpoint_url=aws, region_name="us-east-1")
    obj = s3.get_object(Bucket=bucket, Key=f"ledger/reports/date={day}/month_to_date.html")
    assert obj["ContentType"].startswith("text/html")
    body = obj["Body"].read().decode()
    assert "support spent the most of any cost center: $3.00 of $4.00" in body
