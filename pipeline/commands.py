"""`bedrock-ledger`: run the pipeline for a range of days, generate sample data, or run the whole demo.

Runs go through the ledger's own Dagster instance (`pipeline.home`: `$DAGSTER_HOME` when set, else a home under
`~/.local/state/bedrock-ledger/` named by the warehouse, never the working folder) as runs of the named jobs
(`ledger_daily_job`, or `billing_refresh_job` for a billing-only `--select`), one per day, so `bedrock-ledger ui`
shows every run the CLI made for that ledger on the job's page, and no other ledger's.

Every failure ends in a short message that names the thing, the cause and the fix, and an exit code: 1 a run
failed, 2 what was asked is wrong (config, dates, asset names, paths), 3 a source or the warehouse cannot be
reached, read or written. `--verbose` adds the traceback (the Dagster event log always has it).
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeline import recovery
from pipeline.config import CONFIG_ENV, ConfigError, load_config
from pipeline.preflight import InputError, UnreachableError
from pipeline.text import escape_for, usd

if TYPE_CHECKING:
    from dagster import Definitions

    from pipeline.home import Home
    from pipeline.preflight import Selection

CONFIG_TAG = "bedrock-ledger/config"
WAREHOUSE_TAG = "bedrock-ledger/warehouse"
"""Every CLI run names the config and the warehouse it ran for (filter on them in the UI's run list)."""
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
_VERBOSE = {"on": False}
_PROCESS = {"ours": False}
"""True when `main` runs the process (the console script, `python -m pipeline.cli`), not a caller of `run_cli`."""

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show tracebacks and Dagster's log")] = False,
) -> None:
    """Bedrock cost, attribution and bill reconciliation (see README.md)."""
    _VERBOSE["on"] = verbose


def _ledger_home(warehouse: str) -> Home:
    """The ledger's Dagster home (see `pipeline.home`), created with its settings when it is ours."""
    from pipeline.home import home_for, prepare

    return prepare(home_for(warehouse))


def ui_command(config_path: str) -> str:
    """The command that opens the UI on a ledger's home and config, runnable from any folder: through
    `uv run --project <checkout>` when this is a source checkout, else the installed `bedrock-ledger`."""
    import shlex

    checkout = Path(__file__).resolve().parents[1]
    tail = f"bedrock-ledger ui --config {shlex.quote(config_path)}"
    if (checkout / "pyproject.toml").is_file() and (checkout / "uv.lock").is_file():
        return f"uv run --project {shlex.quote(str(checkout))} {tail}"
    return tail


def _one_line(error: Any) -> str:
    """The message a person needs from a step's error: the first error in the chain that is not Dagster's own
    wrapper (ours name the source and the cause), on one line, with its class when it is not one of ours."""
    current = error
    while current.cls_name and current.cls_name.startswith("Dagster") and (current.cause or current.context):
        current = current.cause or current.context
    message = (current.message or "").strip()
    head, sep, rest = message.partition(": ")
    if sep and head.rsplit(".", 1)[-1] == current.cls_name:
        message = rest
    first = message.splitlines()[0].strip() if message else ""
    if current.cls_name not in _OURS:
        first = f"{current.cls_name}: {first} (rerun with --verbose for the traceback)"
    return first if len(first) <= 600 else first[:597] + "..."


_OURS = {
    "ConfigError",
    "InputError",
    "UnreachableError",
    "SourceError",
    "ServiceUnavailable",
    "PriceCatalogError",
    "BillingFormatError",
    "BillingNameMapError",
}


def run_days(
    config_path: str,
    days: list[dt.date],
    select: list[str] | None = None,
    echo: bool = True,
    expected: dict[str, str] | None = None,
    footer: bool = True,
    defs: Definitions | None = None,
    gc_paused: bool = False,
) -> bool:
    """Run the daily job (or the billing job, for a billing-only `select`) once per day, as that day's partition.

    Each run is recorded in the Dagster instance under the job's name with its partition, so the job's page and
    the asset pages show it. Returns True when every run succeeded; a failed day does not stop the following
    days. `expected` maps `asset:check` to why the sample was built to fail it (the demo announces those).
    `defs`: the definitions `plan_run` already built for this config (built here when not given). `gc_paused`:
    the caller paused the cyclic garbage collector for the start-up (see `run`); it is resumed before the runs.
    """
    from dagster import AssetKey, DagsterInstance

    from pipeline.defs.build import ALL_JOB, BILLING_ASSETS, BILLING_JOB, build_definitions
    from pipeline.defs.runs import run_partition
    from pipeline.preflight import resolve_selection

    config_path = str(Path(config_path).resolve())
    os.environ[CONFIG_ENV] = config_path
    cfg = load_config(config_path)
    if defs is None:
        defs = build_definitions(cfg, config_path)
    selection = resolve_selection(select, defs.assets or []) if select else None
    job_name = BILLING_JOB if selection and set(selection.names) <= set(BILLING_ASSETS) else ALL_JOB
    job = defs.resolve_job_def(job_name)
    if selection:
        # The job's checks on the chosen assets only: a plain asset subset would add every check of those assets,
        # including ones the job leaves out on purpose (the freshness check is about now, not about a day).
        keys = {AssetKey(n) for n in selection.names}
        checks = {c for c in job.asset_layer.asset_graph.asset_check_keys if c.asset_key in keys}
        job = job.get_subset(asset_selection=keys, asset_check_selection=checks)
    home = _ledger_home(cfg.warehouse)
    if echo:
        where = "this ledger's runs" if home.ours else "from DAGSTER_HOME"
        typer.echo(f"Dagster home: {home.path} ({where})")
    log_level = "INFO" if _VERBOSE["on"] else "CRITICAL"  # the event log keeps everything; the terminal, a summary
    ok = True
    ledger_tags = {CONFIG_TAG: config_path, WAREHOUSE_TAG: cfg.warehouse}
    with DagsterInstance.from_config(str(home.path)) as instance:
        if gc_paused:
            _resume_gc()
        for day in days:
            if not _ready(instance, echo):
                return False
            result = run_partition(
                job,
                day.isoformat(),
                instance,
                tags={"bedrock-ledger/cli": "run", **ledger_tags, **recovery.run_tags()},
                run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
            )
            ok = ok and result.success
            if echo:
                _echo_run(day, job_name, result, expected or {})
    if echo and footer:
        typer.echo(f"To see them in the UI: {ui_command(config_path)}")
    return ok


def _resume_gc() -> None:
    """End of the start-up: what it built (Dagster, the definitions, the instance's storage) lives until the process
    exits, so it is moved out of the collector's sight (`gc.freeze`) and the collector resumes for the runs."""
    gc.freeze()
    gc.enable()


def _ready(instance: object, echo: bool) -> bool:
    """Free what dead runs hold and wait for pool slots (see `pipeline.recovery`); False when stopped."""
    say = typer.echo if echo else (lambda _line: None)
    try:
        recovery.wait_for_pools(instance, say)
    except recovery.Interrupted as exc:
        typer.echo(str(exc), err=True)
        return False
    return True


def _echo_run(day: dt.date, job_name: str, result: Any, expected: dict[str, str]) -> None:
    """A few lines per day: the run, each failed step's cause, each check that did not pass."""
    status = "ok" if result.success else "FAILED"
    typer.echo(f"{day}: {job_name} run {result.run_id[:8]} {status}")
    failures = 0
    for event in result.all_events:
        if event.is_step_failure:
            failures += 1
            error = event.step_failure_data.error
            typer.echo(f"    step {event.step_key} failed: {_one_line(error)}")
            if _VERBOSE["on"]:
                typer.echo(error.to_string(), err=True)
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            check = event.asset_check_evaluation_data
            if check.passed:
                continue
            typer.echo(check_line(check, expected))
    if not result.success and not failures:
        typer.echo("    the run failed before its steps started: open the run in the UI, or rerun with --verbose")


def check_line(check: Any, expected: dict[str, str]) -> str:
    """One line for a check that did not pass: its name, its severity (WARN or ERROR) and why
    (`pipeline.check_reasons`); a failure the demo's sample is built to show says so instead of alarming."""
    from pipeline.check_reasons import reason

    asset = check.asset_key.to_user_string()
    name = f"{asset}:{check.check_name}"
    severity = getattr(check.severity, "value", str(check.severity))
    why = _plain(reason(asset, check.check_name, check.description, check.metadata))  # data names as plain text
    if name in expected:
        return f"    check {name} failed [{severity}], as the sample intends: {expected[name]} ({why})"
    return f"    check {name} did not pass [{severity}]: {why}"


def plan_run(
    config: str, start: str, end: str, yesterday: bool, select: str
) -> tuple[str, list[dt.date], list[str], Definitions]:
    """Everything `run` checks before work starts (see `pipeline.preflight`): config, days, names, paths, reach.
    Also returns the definitions, built once: the names are checked against them and the runs use them."""
    from pipeline import preflight
    from pipeline.defs.build import build_definitions

    config_path = str(Path(config).resolve())
    cfg = load_config(config)  # as given: an error names the path the way the user wrote it
    days = preflight.days_to_run(start, end, yesterday, cfg)
    defs = build_definitions(cfg, config_path)
    requested = [s.strip() for s in select.split(",") if s.strip()]
    names: list[str] = []
    if requested:
        chosen: Selection = preflight.resolve_selection(requested, defs.assets or [])
        for name, extra in chosen.added.items():
            typer.echo(f"--select {name} also runs {', '.join(extra)} (written by the same step)")
        names = chosen.names
    preflight.check_paths(cfg, config)
    preflight.check_reachable(
        cfg,
        billing=not names or "billing_line_items" in names,
        logs=not names or "invocations" in names,
    )
    return config_path, days, names, defs


@app.command()
def run(
    config: Annotated[str, typer.Option("--config", "-c", envvar=CONFIG_ENV, help="ledger.yaml")] = "ledger.yaml",
    start: Annotated[str, typer.Option(help="first UTC day, YYYY-MM-DD")] = "",
    end: Annotated[str, typer.Option(help="last UTC day (inclusive), YYYY-MM-DD")] = "",
    yesterday: Annotated[bool, typer.Option("--yesterday", help="run the last complete UTC day")] = False,
    select: Annotated[str, typer.Option(help="comma-separated asset names (default: all)")] = "",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show tracebacks and Dagster's log")] = False,
) -> None:
    """Materialize every asset (or --select) for each day from --start to --end, inclusive, or --yesterday."""
    _VERBOSE["on"] = _VERBOSE["on"] or verbose
    # The start-up (importing Dagster, building the definitions, opening the instance) leaves some 300,000 tracked
    # objects that live as long as the process, and the cyclic collector walked them again and again while they
    # piled up: about half a CPU second of an empty day. Paused until the runs start (`_resume_gc`).
    paused = _PROCESS["ours"] and gc.isenabled()  # only in a process of our own: a caller's objects are theirs
    if paused:
        gc.disable()
    try:
        config_path, days, names, defs = plan_run(config, start, end, yesterday, select)
        ok = run_days(config_path, days, names or None, defs=defs, gc_paused=paused)
    finally:
        if paused:
            gc.enable()
    if not ok:
        raise typer.Exit(EXIT_RUN_FAILED)


@app.command()
def ui(
    config: Annotated[str, typer.Option("--config", "-c", envvar=CONFIG_ENV, help="ledger.yaml")] = "ledger.yaml",
    host: Annotated[str, typer.Option("--host", "-h", help="address the UI listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535)] = 3000,
) -> None:
    """Open the Dagster UI (webserver and daemon) on this ledger's history and config, from any folder."""
    import subprocess

    from pipeline.home import HOME_ENV, state_root

    config_path = str(Path(config).resolve())
    cfg = load_config(config)
    home = _ledger_home(cfg.warehouse)
    workspace = home.workspace if home.ours else state_root() / "workspace.yaml"
    if not workspace.exists():
        from pipeline.home import WORKSPACE_YAML

        workspace.parent.mkdir(parents=True, exist_ok=True)
        workspace.write_text(WORKSPACE_YAML)
    env = {**os.environ, HOME_ENV: str(home.path), CONFIG_ENV: config_path}
    typer.echo(f"Dagster home: {home.path}; config: {config_path}; UI at http://{host}:{port} (Ctrl-C stops it)")
    argv = [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-h", host, "-p", str(port)]
    # The UI runs from the home: whatever Dagster leaves in its working folder stays there, not in the user's.
    code = _serve(subprocess.Popen(argv, env=env, cwd=home.path))
    if code not in (0, -2, -15, 130):  # Ctrl-C (or a SIGTERM passed on) is how it is stopped
        raise typer.Exit(EXIT_RUN_FAILED)


def _serve(proc: Any) -> int:
    """Wait for `dagster dev`; a SIGTERM to us is passed on (so its webserver and daemon stop with us), and Ctrl-C,
    which the terminal sends to both, waits for it to finish shutting down."""
    import signal

    def stop(_signum: int, _frame: Any) -> None:
        proc.terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            try:
                return int(proc.wait())
            except KeyboardInterrupt:
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)


CLOUDWATCH_MAX_AGE_DAYS = 14
"""CloudWatch Logs refuses events older than 14 days (PutLogEvents; docs/first-real-day.md)."""


def _check_generate(out: str, first: dt.date, days: int, bill: bool | None, cloudwatch_group: str) -> bool:
    """The `generate` options that cannot all be honoured are refused in one line before anything is written;
    returns whether to write the bill and `ledger.yaml` (by default: with a local `--out` only)."""
    from pipeline.preflight import InputError, check_writable, today_utc

    remote = "://" in out
    if bill and remote:
        raise InputError(
            f"--bill with --out {out}: the bill and ledger.yaml are written to a local folder only: use a local "
            "--out, or --no-bill to write only the logs to S3"
        )
    if cloudwatch_group:
        today = today_utc()
        oldest = today - dt.timedelta(days=CLOUDWATCH_MAX_AGE_DAYS - 1)
        last = first + dt.timedelta(days=days - 1)
        if first < oldest or last >= today:
            raise InputError(
                f"--cloudwatch-group {cloudwatch_group}: CloudWatch Logs refuses events older than "
                f"{CLOUDWATCH_MAX_AGE_DAYS} days or in the future, and {first}..{last} is not within "
                f"{oldest}..{today - dt.timedelta(days=1)}: pass --start {today - dt.timedelta(days=days)} "
                f"(with --days {min(days, CLOUDWATCH_MAX_AGE_DAYS - 1)} at most)"
            )
    check_writable(out, "the output", "--out")
    return (not remote) if bill is None else bill


@app.command()
def generate(
    out: Annotated[str, typer.Option(help="local folder or s3://bucket/prefix for the logs")] = "./sample",
    start: Annotated[str, typer.Option(help="first UTC day, YYYY-MM-DD")] = "2026-11-01",
    days: Annotated[int, typer.Option(min=1, max=366)] = 3,
    records_per_day: Annotated[int, typer.Option(min=1)] = 2000,
    seed: Annotated[int, typer.Option()] = 7,
    body_kb: Annotated[float, typer.Option(help="average prompt+response text per record, KB")] = 2.0,
    faults: Annotated[bool, typer.Option(help="inject malformed lines, a truncated gzip, duplicates")] = True,
    bill: Annotated[
        bool | None,
        typer.Option(help="also write a matching bill (CUR, CUR 2.0, FOCUS) and ledger.yaml (default: local --out)"),
    ] = None,
    cloudwatch_group: Annotated[
        str, typer.Option(help="also put a share of the events into this log group (days within the last 14)")
    ] = "",
    cloudwatch_share: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.2,
    history_days: Annotated[
        int, typer.Option(min=0, max=120, help="also write this many earlier days, ending in planted anomalies")
    ] = 0,
) -> None:
    """Write realistic sample invocation logs (and, with a local --out, a matching bill and a ledger.yaml)."""
    from pipeline.preflight import parse_day
    from pipeline.sample.logs import generate_sample

    first = parse_day(start, "--start")
    with_bill = _check_generate(out, first, days, bill, cloudwatch_group)
    share = cloudwatch_share if cloudwatch_group else 0.0
    if with_bill:
        from pipeline.sample.demo import generate_all

        sample = generate_all(
            out,
            first,
            days,
            records_per_day,
            seed=seed,
            faults=faults,
            body_kb=body_kb,
            cloudwatch_group=cloudwatch_group,
            cloudwatch_share=share,
            history_days=history_days,
        )
        summary = sample.logs
        typer.echo(f"config: {sample.config_path}")
        for fmt, files in sample.bill_files.items():
            typer.echo(f"bill ({fmt}): {len(files)} files under {Path(out).resolve() / 'billing' / fmt}")
    else:
        if history_days:
            raise InputError("--history-days needs the bill and ledger.yaml (--bill) and a local --out folder")
        cloudwatch_options: dict[str, Any] = {"cloudwatch_log_group": cloudwatch_group} if cloudwatch_group else {}
        summary = generate_sample(
            out,
            first,
            days,
            records_per_day,
            seed=seed,
            faults=faults,
            body_kb=body_kb,
            cloudwatch_share=share,
            deliver_to_cloudwatch=bool(cloudwatch_group),
            **cloudwatch_options,
        )
        if "://" in out:
            typer.echo("no bill or ledger.yaml: they are written with a local --out only")
    typer.echo(
        f"logs: {summary.records} invocations in {summary.files} objects ({summary.bytes / 1e6:.1f} MB) under {out}"
    )
    if cloudwatch_group:
        sent = len(summary.cloudwatch_records)
        refused = sent - summary.cloudwatch_events
        typer.echo(
            f"CloudWatch Logs {cloudwatch_group}: {summary.cloudwatch_events} of {sent} events accepted"
            + (f", {refused} refused (older than 14 days or in the future)" if refused else "")
        )
        if refused:
            raise typer.Exit(EXIT_RUN_FAILED)


@app.command()
def demo(
    out: Annotated[str, typer.Option(help="folder for the sample data, config and warehouse")] = "./demo",
    days: Annotated[int, typer.Option(min=1, max=31)] = 3,
    records_per_day: Annotated[int, typer.Option(min=1)] = 2000,
    history_days: Annotated[
        int,
        typer.Option(
            min=0,
            max=120,
            help="also write and run this many earlier days (same size) for foresight to learn from; the last day "
            "then has a planted spend spike, new spender and stop (try --history-days 35 --records-per-day 50)",
        ),
    ] = 0,
) -> None:
    """Generate sample logs and a matching bill, write ledger.yaml, run every asset for every day, summarise."""
    from pipeline.sample.demo import DEMO_START, generate_all
    from pipeline.sample.expected import EXPECTED_CHECK_FAILURES

    earlier = f" (and {history_days} earlier days)" if history_days else ""
    typer.echo(f"Generating {days} days of sample logs{earlier} and a matching bill under {out} ...")
    sample = generate_all(out, DEMO_START, days, records_per_day, history_days=history_days)
    typer.echo(f"Running the pipeline for {sample.days[0]} .. {sample.days[-1]} ({sample.config_path}) ...")
    ok = run_days(str(sample.config_path), sample.days, expected=EXPECTED_CHECK_FAILURES, footer=False)
    _print_summary(str(sample.config_path), sample.days)
    if not ok:
        raise typer.Exit(EXIT_RUN_FAILED)


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


prices_app = typer.Typer(
    no_args_is_help=True, help="The price catalog: refresh it from the AWS Price List, or see what a model costs."
)
app.add_typer(prices_app, name="prices")


@prices_app.command("sync")
def prices_sync(
    out: Annotated[str, typer.Option(help="price CSV to merge into (default: <warehouse>/_catalog/prices.csv)")] = "",
    config: Annotated[str, typer.Option("--config", "-c", envvar=CONFIG_ENV, help="ledger.yaml")] = "ledger.yaml",
) -> None:
    """Read the AWS Price List for Bedrock and merge it into a price catalog: changed prices open new dated rows."""
    from pipeline.pricing.layers import fetch_synced, publish_synced, synced_catalog_uri
    from pipeline.pricing.price_list import PriceListError, sync_catalog

    region, warehouse = "us-east-1", None
    if not out or Path(config).is_file():
        try:
            cfg = load_config(config)
        except ConfigError as exc:
            if out:
                cfg = None
            else:
                typer.echo(f"{exc} (or give --out PATH: a price CSV to merge the Price List into)", err=True)
                raise typer.Exit(EXIT_BAD_INPUT) from None
        if cfg is not None:
            region, warehouse = cfg.pricing.endpoint_region, cfg.warehouse
    target = out
    if not out:
        assert warehouse is not None
        target = fetch_synced(warehouse) or _fresh_local_catalog()
    try:
        report = sync_catalog(target, endpoint_region=region)
    except PriceListError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    where = target
    if not out and warehouse is not None:
        where = publish_synced(target, warehouse) if report.merge.touched else synced_catalog_uri(warehouse)
    m = report.merge
    typer.echo(
        f"Price List: {report.offers} prices read; {len(m.opened)} rows opened, {len(m.changed)} changed "
        f"(old rows closed), {m.unchanged} unchanged; {len(report.unmapped)} prices not mapped. Catalog: {where}"
    )
    for label in m.opened[:20]:
        typer.echo(f"  new      {label}")
    for label in m.changed[:20]:
        typer.echo(f"  changed  {label}")
    seen: set[tuple[str, str]] = set()
    for u in report.unmapped:
        if (u.usage_type, u.reason) in seen:
            continue
        seen.add((u.usage_type, u.reason))
        if len(seen) <= 30:
            typer.echo(f"  unmapped {u.service_code} {u.usage_type or '?'}: {u.reason}")
    if len(seen) > 30:
        typer.echo(f"  … and {len(seen) - 30} more unmapped (map their billing names in billing_model_names.csv)")


def _fresh_local_catalog() -> str:
    import tempfile

    return str(Path(tempfile.mkdtemp(prefix="ledger-sync-")) / "prices.csv")


@prices_app.command("show")
def prices_show(
    model_id: Annotated[str, typer.Argument(help="the model id as logged, e.g. us.anthropic.claude-haiku-4-5")],
    region: Annotated[str, typer.Option(help="the Region the call is sent to")] = "us-east-1",
    date: Annotated[str, typer.Option(help="the day (YYYY-MM-DD), default today (UTC)")] = "",
    config: Annotated[str, typer.Option("--config", "-c", envvar=CONFIG_ENV, help="ledger.yaml")] = "ledger.yaml",
) -> None:
    """What a model id costs on a day, and which catalog row says so and why (bundled, synced, override)."""
    from pipeline.pricing.explain import explain

    try:
        day = dt.date.fromisoformat(date) if date else dt.datetime.now(dt.UTC).date()
    except ValueError:
        typer.echo(f"prices show: --date {date!r} is not a date (YYYY-MM-DD)", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    catalog_cfg = load_config(config) if Path(config).is_file() else None
    for line in explain(model_id, region, day, catalog_cfg):
        typer.echo(line)


def _plain(value: object) -> str:
    """A string from the data (a cost center, a model id) as terminal text: no control characters, capped."""
    return escape_for(value, "plain")


def _names(values: list[Any], shown: int = 10) -> str:
    """At most `shown` names from the data, then how many more."""
    names = ", ".join(_plain(v) for v in values[:shown])
    return names + (f" and {len(values) - shown:,} more" if len(values) > shown else "")


def _print_summary(config_path: str, days: list[dt.date]) -> None:
    """What the demo produced, in a few lines: totals, reconciliation statuses, where the Parquet is."""
    import polars as pl

    from pipeline import warehouse
    from pipeline.vocabulary import BUDGET_ALERT_STATUSES

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
        f"estimated cost: {usd(float(priced['total_cost_usd'].sum() or 0.0))}   "
        f"unpriced calls: {unpriced.height} ({_names(unpriced['model_id'].unique().sort().to_list())})"
    )
    origins = priced.filter(pl.col("priced")).group_by("price_origin").len().sort("len", descending=True)
    from_bill = sorted(set(priced.filter(pl.col("price_origin") == "bill")["model_id"].to_list()))
    typer.echo(
        "prices from: "
        + ", ".join(f"{r[0]} {r[1]:,}" for r in origins.iter_rows())
        + (f" (the bill prices {', '.join(from_bill)}, which the catalog lacks)" if from_bill else "")
    )
    by_cc = priced.group_by("cost_center").agg(pl.col("total_cost_usd").sum()).sort("total_cost_usd", descending=True)
    typer.echo("cost by cost center: " + _names([f"{r[0]} {usd(r[1])}" for r in by_cc.iter_rows()], 20))
    over = budgets.filter(pl.col("status").is_in(list(BUDGET_ALERT_STATUSES)))
    typer.echo(
        "budgets needing attention: "
        + (
            ", ".join(
                f"{_plain(r[0])} {r[1]:.0f}% ({r[2]})"
                for r in over.select("cost_center", "pct_used", "status").iter_rows()
            )
            or "none"
        )
    )
    statuses = recon.group_by("status").len().sort("len", descending=True)
    typer.echo("reconciliation: " + ", ".join(f"{r[0]} {r[1]}" for r in statuses.iter_rows()))
    from pipeline.reconciliation.bill_coverage import summary_line

    typer.echo(summary_line(warehouse.scan_partitions(wh, "bill_coverage", days).collect()))
    from pipeline.completeness.coverage import summary_lines

    typer.echo("\n".join(summary_lines(warehouse.scan_partitions(wh, "log_completeness", days).collect())))
    typer.echo(f"Parquet tables: {wh}/<table>/date=YYYY-MM-DD/part-0.parquet")
    typer.echo(f"Open the UI: {ui_command(config_path)}")
    _print_reports(wh, days[-1])


def _print_reports(wh: str, day: dt.date) -> None:
    """Where the last day's cost reports are (written by the `cost_report` asset): open them in a browser."""
    from pipeline.report.store import ReportKind, report_exists, report_uri

    reports: tuple[tuple[ReportKind, str], ...] = (
        ("daily", "Cost report for"),
        ("month_to_date", "Month-to-date cost report to"),
    )
    for kind, label in reports:
        uri = report_uri(wh, day, kind)
        if report_exists(uri):
            typer.echo(f"{label} {day}: {uri}")


def run_cli(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; every error becomes one message (the traceback with --verbose)."""
    try:
        app(args=argv, prog_name="bedrock-ledger")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except (ConfigError, InputError) as exc:
        return _fail(exc, EXIT_BAD_INPUT)
    except UnreachableError as exc:
        return _fail(exc, EXIT_UNREACHABLE)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, the traceback only on request
        ours = type(exc).__name__ in _OURS
        return _fail(exc, EXIT_RUN_FAILED, prefix="" if ours else f"unexpected {type(exc).__name__}: ")
    return 0


def _fail(exc: BaseException, code: int, prefix: str = "") -> int:
    if _VERBOSE["on"]:
        traceback.print_exception(exc, file=sys.stderr)
    hint = "" if _VERBOSE["on"] or not prefix else " (rerun with --verbose for the traceback)"
    print(f"error: {prefix}{exc}{hint}", file=sys.stderr)
    return code


BYTECODE_HINT = (
    "hint: the installed packages have no compiled bytecode yet, so every command compiles what it imports: "
    "run `uv sync --compile-bytecode` once (about halves each command's start-up)"
)


def bytecode_hint(module: str = "dagster") -> str | None:
    """`BYTECODE_HINT` when `module` (the largest import) has no cached bytecode for this Python, else None.

    A `uv sync` without `--compile-bytecode` leaves none, and where site-packages is read-only (or
    PYTHONDONTWRITEBYTECODE is set) Python never writes it, so each start compiles Dagster again. Never fixed
    with uv's `compile-bytecode = true`, which recompiles everything on every `uv run` (uv #12202)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    origin = spec.origin if spec else None
    if not origin or not origin.endswith(".py"):
        return None
    return None if Path(importlib.util.cache_from_source(origin)).is_file() else BYTECODE_HINT


def main() -> None:
    """Console-script entry point (through `pipeline.cli`)."""
    _PROCESS["ours"] = True
    hint = bytecode_hint()
    if hint:
        print(hint, file=sys.stderr)
    sys.exit(run_cli(sys.argv[1:]))
