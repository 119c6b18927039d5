"""`bedrock-ledger`: run the pipeline for a range of days, generate sample data, or run the whole demo.

Runs go through the Dagster instance (`$DAGSTER_HOME`; the repository folder when run from it, since it holds
`dagster.yaml`), so `dagster dev` shows every run the CLI made.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline import recovery
from pipeline.config import CONFIG_ENV, ConfigError, load_config

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.callback()
def _root() -> None:
    """Bedrock cost, attribution and bill reconciliation (see README.md)."""


def _dagster_home() -> str:
    """`$DAGSTER_HOME`, else this folder when it holds `dagster.yaml`, else `./.dagster` (created)."""
    home = os.environ.get("DAGSTER_HOME")
    if home:
        return home
    cwd = Path.cwd()
    target = cwd if (cwd / "dagster.yaml").is_file() else cwd / ".dagster"
    target.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(target)
    return str(target)


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise typer.BadParameter(f"--end {end} is before --start {start}")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def run_days(config_path: str, days: list[dt.date], select: list[str] | None = None, echo: bool = True) -> bool:
    """Materialize the selected assets (all by default) for each day in the Dagster instance.

    Returns True when every run succeeded. A failed day does not stop the following days.
    """
    from dagster import AssetSelection, DagsterInstance, materialize

    from pipeline.defs.build import build_assets
    from pipeline.defs.resources import LedgerResource

    config_path = str(Path(config_path).resolve())
    os.environ[CONFIG_ENV] = config_path
    cfg = load_config(config_path)
    assets = build_assets(cfg)
    selection = AssetSelection.assets(*select) if select else None
    home = _dagster_home()
    ok = True
    with DagsterInstance.get() as instance:
        for day in days:
            if not _ready(instance, echo):
                return False
            result = materialize(
                assets,
                partition_key=day.isoformat(),
                instance=instance,
                resources={"ledger": LedgerResource(config_path=config_path)},
                selection=selection,
                raise_on_error=False,
                tags={"bedrock-ledger/cli": "run", **recovery.run_tags()},
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            )
            failed_checks = [
                e.asset_check_evaluation_data
                for e in result.all_events
                if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.asset_check_evaluation_data.passed
            ]
            status = "ok" if result.success else "FAILED"
            ok = ok and result.success
            if echo:
                typer.echo(f"{day}: run {result.run_id[:8]} {status}")
                for check in failed_checks:
                    typer.echo(f"    check {check.asset_key.to_user_string()}:{check.check_name} did not pass")
                if not result.success:
                    for event in result.all_events:
                        if event.is_failure and event.step_failure_data:
                            error = event.step_failure_data.error
                            while error.cause is not None:  # the root cause names the source and the reason
                                error = error.cause
                            typer.echo(f"    {event.step_key}: {error.message.strip()}")
    if echo:
        typer.echo(f"Runs are recorded in the Dagster instance at {home} (DAGSTER_HOME={home} uv run dagster dev)")
    return ok


def _ready(instance: object, echo: bool) -> bool:
    """Free what dead runs hold and wait for pool slots (see `pipeline.recovery`); False when stopped."""
    say = typer.echo if echo else (lambda _line: None)
    try:
        recovery.wait_for_pools(instance, say)
    except recovery.Interrupted as exc:
        typer.echo(str(exc), err=True)
        return False
    return True


@app.command()
def run(
    config: Annotated[str, typer.Option("--config", "-c", envvar=CONFIG_ENV, help="ledger.yaml")] = "ledger.yaml",
    start: Annotated[str, typer.Option(help="first UTC day, YYYY-MM-DD")] = "",
    end: Annotated[str, typer.Option(help="last UTC day (inclusive), default = start")] = "",
    select: Annotated[str, typer.Option(help="comma-separated asset names (default: all)")] = "",
) -> None:
    """Materialize every asset (or --select) for each day from --start to --end, inclusive."""
    try:
        load_config(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    first = dt.date.fromisoformat(start) if start else yesterday
    last = dt.date.fromisoformat(end) if end else first
    chosen = [s.strip() for s in select.split(",") if s.strip()] or None
    if not run_days(config, _days(first, last), chosen):
        raise typer.Exit(1)


@app.command()
def generate(
    out: Annotated[str, typer.Option(help="local folder or s3://bucket/prefix for the logs")] = "./sample",
    start: Annotated[str, typer.Option(help="first UTC day, YYYY-MM-DD")] = "2026-11-01",
    days: Annotated[int, typer.Option(min=1, max=366)] = 3,
    records_per_day: Annotated[int, typer.Option(min=1)] = 2000,
    seed: Annotated[int, typer.Option()] = 7,
    body_kb: Annotated[float, typer.Option(help="average prompt+response text per record, KB")] = 2.0,
    faults: Annotated[bool, typer.Option(help="inject malformed lines, a truncated gzip, duplicates")] = True,
    bill: Annotated[bool, typer.Option(help="also write a matching bill (CUR, CUR 2.0, FOCUS) and ledger.yaml")] = True,
    cloudwatch_group: Annotated[str, typer.Option(help="also put a share of the events into this log group")] = "",
    cloudwatch_share: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.2,
) -> None:
    """Write realistic sample invocation logs (and by default a matching bill and a ledger.yaml)."""
    from pipeline.sample.logs import generate_sample

    first = dt.date.fromisoformat(start)
    if bill and "://" not in out:
        from pipeline.sample.demo import generate_all

        sample = generate_all(out, first, days, records_per_day, seed=seed, faults=faults, body_kb=body_kb)
        summary = sample.logs
        typer.echo(f"config: {sample.config_path}")
        for fmt, files in sample.bill_files.items():
            typer.echo(f"bill ({fmt}): {len(files)} files under {Path(out).resolve() / 'billing' / fmt}")
    else:
        summary = generate_sample(
            out,
            first,
            days,
            records_per_day,
            seed=seed,
            faults=faults,
            body_kb=body_kb,
            cloudwatch_share=cloudwatch_share if cloudwatch_group else 0.0,
            deliver_to_cloudwatch=bool(cloudwatch_group),
            **({"cloudwatch_log_group": cloudwatch_group} if cloudwatch_group else {}),
        )
    typer.echo(
        f"logs: {summary.records} invocations in {summary.files} objects ({summary.bytes / 1e6:.1f} MB) under {out}"
    )


@app.command()
def demo(
    out: Annotated[str, typer.Option(help="folder for the sample data, config and warehouse")] = "./demo",
    days: Annotated[int, typer.Option(min=1, max=31)] = 3,
    records_per_day: Annotated[int, typer.Option(min=1)] = 2000,
) -> None:
    """Generate sample logs and a matching bill, write ledger.yaml, run every asset for every day, summarise."""
    from pipeline.sample.demo import DEMO_START, generate_all

    typer.echo(f"Generating {days} days of sample logs and a matching bill under {out} ...")
    sample = generate_all(out, DEMO_START, days, records_per_day)
    typer.echo(f"Running the pipeline for {sample.days[0]} .. {sample.days[-1]} ({sample.config_path}) ...")
    ok = run_days(str(sample.config_path), sample.days)
    _print_summary(str(sample.config_path), sample.days)
    if not ok:
        raise typer.Exit(1)


@app.command()
def catalog(
    database: Annotated[str, typer.Option(help="Glue database (created if missing), e.g. bedrock_ledger")],
    config: Annotated[str, typer.Option("--config", "-c", envvar=CONFIG_ENV, help="ledger.yaml")] = "ledger.yaml",
    location: Annotated[str, typer.Option(help="s3:// location of the warehouse, if not the config's")] = "",
) -> None:
    """Register every table in the AWS Glue Data Catalog, with partition projection on `date` (for Athena)."""
    from pipeline.exports.glue import CatalogError, register_tables

    try:
        cfg = load_config(config)
        result = register_tables(database, location or cfg.warehouse, cfg.start_date)
    except (ConfigError, CatalogError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # boto3/botocore raise many types; a person needs the one line, not the traceback
        typer.echo(f"catalog: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"Glue database {result.database} at {result.location}: {len(result.created)} created, "
        f"{len(result.updated)} updated, {len(result.unchanged)} unchanged ({', '.join(result.tables)})"
    )


def _print_summary(config_path: str, days: list[dt.date]) -> None:
    """What the demo produced, in a few lines: totals, reconciliation statuses, where the Parquet is."""
    import polars as pl

    from pipeline import warehouse

    cfg = load_config(config_path)
    wh = cfg.warehouse
    priced = warehouse.scan_partitions(wh, "priced_invocations", days).collect()
    rejected = warehouse.scan_partitions(wh, "rejected_records", days).collect()
    recon = warehouse.scan_partitions(wh, "cost_reconciliation", days).collect()
    budgets = warehouse.read_partition(wh, "budget_status", days[-1])
    unpriced = priced.filter(~pl.col("priced"))
    typer.echo("")
    typer.echo(f"invocations: {priced.height:,}   rejected records: {rejected.height}")
    typer.echo(
        f"estimated cost: ${priced['total_cost_usd'].sum():,.2f}   "
        f"unpriced calls: {unpriced.height} ({', '.join(sorted(set(unpriced['model_id'].to_list())))})"
    )
    by_cc = priced.group_by("cost_center").agg(pl.col("total_cost_usd").sum()).sort("total_cost_usd", descending=True)
    typer.echo("cost by cost center: " + ", ".join(f"{r[0]} ${r[1]:,.2f}" for r in by_cc.iter_rows()))
    over = budgets.filter(pl.col("status").is_in(["warning", "over_budget"]))
    typer.echo(
        "budgets needing attention: "
        + (
            ", ".join(
                f"{r[0]} {r[1]:.0f}% ({r[2]})" for r in over.select("cost_center", "pct_used", "status").iter_rows()
            )
            or "none"
        )
    )
    statuses = recon.group_by("status").len().sort("len", descending=True)
    typer.echo("reconciliation: " + ", ".join(f"{r[0]} {r[1]}" for r in statuses.iter_rows()))
    from pipeline.completeness.coverage import summary_lines

    typer.echo("\n".join(summary_lines(warehouse.scan_partitions(wh, "log_completeness", days).collect())))
    typer.echo(f"Parquet tables: {wh}/<table>/date=YYYY-MM-DD/part-0.parquet")
    typer.echo(
        f"Open the UI: DAGSTER_HOME={os.environ.get('DAGSTER_HOME')} LEDGER_CONFIG={config_path} "
        "uv run dagster dev -h 127.0.0.1"
    )
    _print_reports(wh, days[-1])


def _print_reports(wh: str, day: dt.date) -> None:
    """Where the last day's cost reports are (written by the `cost_report` asset): open them in a browser."""
    from pipeline.report.store import report_exists, report_uri

    for kind, label in (("daily", "Cost report for"), ("month_to_date", "Month-to-date cost report to")):
        uri = report_uri(wh, day, kind)
        if report_exists(uri):
            typer.echo(f"{label} {day}: {uri}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
