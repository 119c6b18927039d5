"""The sample world's Bedrock logging configuration history and `AWS/Bedrock` metrics, as a replayable recording.

`bedrock-ledger demo` discovers its log destinations and reads its metrics through the same calls as against AWS
(`pipeline.sources.aws_accounts.SnapshotAws` answers them from these files). The metrics are computed from the
same planned calls as the logs, so they agree with the logs except where the world says otherwise:

* a logging gap: a few hours of one account × region whose calls were never logged (→ `logs_missing`);
* calls of the last hour of the last day not delivered yet when the day is checked (→ `delivery_late`);
* a region where logging is off in every account, with calls in the metrics only (→ `logging_disabled`);
* the custom (imported) model publishes no runtime metrics in this world (→ `metrics_missing`);
* throttles: the metric counts the logged throttled calls plus throttled retries no log has;
* drift: on the last day one account × region turns text data delivery off.

The cache metrics use both spellings (one account the documented `CacheReadInputTokens`, the others
`CacheReadInputTokenCount`), so the reader must query both.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.sample.calls import LogGenOptions, plan_day
from pipeline.sample.world import MODELS
from pipeline.sources.aws_accounts import SNAPSHOT_FORMAT

BUCKET = "demo-bedrock-logs"
DARK_REGION = "ap-northeast-1"
"""Logging is off here in every account; one account still calls Bedrock in it."""
DOCUMENTED_CACHE_NAMES_ACCOUNT = "777788889999"
REPLAY_DELAY_HOURS = 1


@dataclass(frozen=True)
class SampleAwsWorld:
    """What the recording holds, for the demo's config and for tests."""

    root: Path
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    drift: tuple[str, str] | None


def _epoch(day: dt.date, hour: int = 0) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC).timestamp())


def plan_undelivered(opts: LogGenOptions) -> tuple[tuple[str, str, int, int], ...]:
    """The logging gap (first day, 09-12h, the busiest account × region then) and the calls of the last day's
    23h not yet delivered (the busiest other pair then). Decided from the planned calls, before logs are written."""
    first, last = opts.dates[0], opts.dates[-1]
    busy: dict[tuple[str, str], int] = defaultdict(int)
    for c in plan_day(opts, first):
        if _epoch(first, 9) <= c.ts < _epoch(first, 12) and c.model.family != "imported_llama":
            busy[(c.account, c.region)] += 1
    windows: list[tuple[str, str, int, int]] = []
    if busy:
        a, r = max(busy, key=lambda k: (busy[k], k))
        windows.append((a, r, _epoch(first, 9), _epoch(first, 12)))
    late: dict[tuple[str, str], int] = defaultdict(int)
    for c in plan_day(opts, last):
        if c.ts >= _epoch(last, 23) and c.model.family != "imported_llama":
            late[(c.account, c.region)] += 1
    if windows:
        late.pop((windows[0][0], windows[0][1]), None)
    if late:
        a, r = max(late, key=lambda k: (late[k], k))
        end = _epoch(last + dt.timedelta(days=1))
        windows.append((a, r, end - 3600, end))
    return tuple(windows)


def _logging_config(text: bool = True) -> dict[str, Any]:
    return {
        "loggingConfig": {
            "s3Config": {"bucketName": BUCKET, "keyPrefix": ""},
            "textDataDeliveryEnabled": text,
            "imageDataDeliveryEnabled": True,
            "embeddingDataDeliveryEnabled": True,
            "videoDataDeliveryEnabled": True,
        }
    }


def write_aws_state(root: str | Path, opts: LogGenOptions, logs_folder: str | Path, *, seed: int = 7) -> SampleAwsWorld:
    """Write the recording under `root` (see the module docstring); `logs_folder` is where the bucket's logs are."""
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    regions = (*opts.regions, DARK_REGION)
    # Buckets resolve against the recording's folder: a relative path, so the demo folder can move.
    manifest = {
        "format": SNAPSHOT_FORMAT,
        "replay_delay_hours": REPLAY_DELAY_HOURS,
        "buckets": {BUCKET: Path(os.path.relpath(Path(logs_folder).resolve(), root)).as_posix()},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")

    # Logging configuration: recorded half an hour after each day; logging off in the dark region throughout.
    drift = None
    if len(opts.dates) >= 2:
        eu = [a for a in opts.accounts if a == DOCUMENTED_CACHE_NAMES_ACCOUNT] or list(opts.accounts)
        drift = (eu[0], opts.regions[-1])
    for i, day in enumerate(opts.dates):
        at = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(days=1, minutes=30)
        for account in opts.accounts:
            for region in regions:
                folder = root / "bedrock" / account / region / "logging-configuration"
                folder.mkdir(parents=True, exist_ok=True)
                if region == DARK_REGION:
                    answer: dict[str, Any] = {}
                else:
                    text_off = drift == (account, region) and i == len(opts.dates) - 1
                    answer = _logging_config(text=not text_off)
                (folder / f"{at:%Y%m%dT%H%M%SZ}.json").write_text(json.dumps(answer) + "\n")

    # Metrics: hourly sums per account × region × ModelId from the same planned calls as the logs.
    rng = random.Random(f"{seed}:metrics")
    sums: dict[tuple[str, str, str, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for day in opts.dates:
        for c in plan_day(opts, day):
            if c.model.family == "imported_llama":
                continue  # this world's imported model publishes no runtime metrics
            hour_ts = c.ts - c.ts % 3600
            cell = sums[(c.account, c.region, c.model_id, hour_ts)]
            if c.status == "throttled":
                cell["InvocationThrottles"] += 1
                continue
            cell["Invocations"] += 1
            cell["InvocationClientErrors"] += c.status == "client_error"
            cell["InvocationServerErrors"] += c.status == "server_error"
            cell["InputTokenCount"] += c.input_tokens
            cell["OutputTokenCount"] += c.output_tokens
            documented = c.account == DOCUMENTED_CACHE_NAMES_ACCOUNT
            cell["CacheReadInputTokens" if documented else "CacheReadInputTokenCount"] += c.cache_read
            cell["CacheWriteInputTokens" if documented else "CacheWriteInputTokenCount"] += c.cache_write
        # Throttled retries that no log records, and the dark region's unlogged calls.
        for (_account, _region, _model, hour_ts), cell in list(sums.items()):
            if _epoch(day) <= hour_ts < _epoch(day + dt.timedelta(days=1)) and cell.get("Invocations", 0) >= 20:
                cell["InvocationThrottles"] += rng.randint(0, 3)
        dark_account = opts.accounts[min(1, len(opts.accounts) - 1)]
        dark_model = MODELS["claude-3-haiku"].logged_id(dark_account, DARK_REGION)
        for hour in range(8, 18):
            cell = sums[(dark_account, DARK_REGION, dark_model, _epoch(day, hour))]
            n = rng.randint(3, 12)
            cell["Invocations"] += n
            cell["InputTokenCount"] += n * rng.randint(300, 900)
            cell["OutputTokenCount"] += n * rng.randint(80, 300)
    files: dict[tuple[str, str], list[str]] = defaultdict(list)
    for (account, region, model, hour_ts), cell in sorted(sums.items()):
        ts = dt.datetime.fromtimestamp(hour_ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for name, value in sorted(cell.items()):
            datum = {
                "Namespace": "AWS/Bedrock",
                "MetricName": name,
                "Dimensions": [{"Name": "ModelId", "Value": model}],
                "Timestamp": ts,
                "Value": value,
            }
            files[(account, region)].append(json.dumps(datum))
    files[(opts.accounts[0], MANTLE_REGION if MANTLE_REGION in regions else regions[0])] += _mantle_datums(opts, seed)
    for (account, region), lines in files.items():
        folder = root / "cloudwatch" / account / region
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metric-data.jsonl").write_text("\n".join(lines) + "\n")
    return SampleAwsWorld(root, tuple(opts.accounts), regions, drift)


MANTLE_REGION = "us-east-1"
MANTLE_MODEL = "openai.gpt-oss-120b"


def _mantle_datums(opts: LogGenOptions, seed: int) -> list[str]:
    """`AWS/BedrockMantle` metrics (per `Model`) of the notebooks calling gpt-oss through bedrock-mantle in the
    first account, office hours each day: traffic that no invocation log shows (the bill's mantle rows)."""
    rng = random.Random(f"{seed}:mantle")
    out = []
    for day in opts.dates:
        for hour in range(9, 17):
            n = rng.randint(5, 20)
            ts = dt.datetime.fromtimestamp(_epoch(day, hour), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            for name, value in (
                ("Inferences", n),
                ("TotalInputTokens", n * rng.randint(800, 2_000)),
                ("TotalOutputTokens", n * rng.randint(150, 500)),
            ):
                datum = {
                    "Namespace": "AWS/BedrockMantle",
                    "MetricName": name,
                    "Dimensions": [{"Name": "Model", "Value": MANTLE_MODEL}],
                    "Timestamp": ts,
                    "Value": float(value),
                }
                out.append(json.dumps(datum))
    return out


def discover_config(world: SampleAwsWorld, config_dir: Path) -> dict[str, Any]:
    """The `sources.invocation_logs.discover` block that reads the recording (path relative to the config)."""
    try:
        snapshot = "./" + world.root.relative_to(config_dir.resolve()).as_posix()
    except ValueError:
        snapshot = str(world.root)
    return {
        "regions": list(world.regions),
        "accounts": [{"account_id": a} for a in world.accounts],
        "snapshot": snapshot,
    }
