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
            result = materialize(
                assets,
                partition_key=day.isoformat(),
                instance=instance,
                resources={"ledger": LedgerResource(config_path=config_path)},
                selection=selection,
                raise_on_error=False,
                tags={"bedrock-ledger/cli": "run"},
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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
