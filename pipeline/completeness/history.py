"""Which logging configuration a day had, and what changed since the day before.

The Bedrock API only tells the configuration *now*. So the configuration is recorded per day from the first run
on (`config_source = observed` when the answer was fetched during that day or the next one, which is when the
daily schedule runs), and a day that was never observed borrows: the latest observation before it
(`carried_forward`), else the earliest one after it (`earliest_known`: days before the first record use the
earliest known configuration, and say so). A rerun of an observed day keeps what was observed then, so history is
never rewritten with today's view.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from pipeline import schemas


def config_for_day(
    day: dt.date,
    fetched: list[dict[str, Any]],
    observed_at: dt.datetime,
    history: pl.DataFrame,
) -> pl.DataFrame:
    """The `logging_configuration` rows of `day`: one per account × region that was asked (see module docstring).

    `fetched` are the rows discovery returned at `observed_at`; `history` holds earlier observed rows of any day
    (the table's `observed` rows without error).
    """
    fresh = observed_at.date() in (day, day + dt.timedelta(days=1))
    hist = history.filter((pl.col("config_source") == "observed") & pl.col("error").is_null())
    out = []
    for row in fetched:
        mine = hist.filter((pl.col("account_id") == row["account_id"]) & (pl.col("region") == row["region"]))
        same = mine.filter(pl.col("date") == day)
        before = mine.filter(pl.col("date") < day).sort("date")
        after = mine.filter(pl.col("date") > day).sort("date")
        if not same.is_empty():
            chosen = same.row(0, named=True)
        elif fresh:
            chosen = {**row, "config_source": "observed", "observed_on": day}
        elif not before.is_empty():
            chosen = {**before.row(-1, named=True), "config_source": "carried_forward"}
        elif not after.is_empty():
            chosen = {**after.row(0, named=True), "config_source": "earliest_known"}
        else:
            chosen = {**row, "config_source": "earliest_known", "observed_on": observed_at.date()}
        out.append({**chosen, "date": day})
    if not out:
        return schemas.empty(schemas.LOGGING_CONFIGURATION)
    return schemas.conform(pl.DataFrame(out, infer_schema_length=None), schemas.LOGGING_CONFIGURATION)


def _describe(row: dict[str, Any] | None) -> str:
    # step-only: logging_config brings boto3, which loading the definitions must not pay for
    from pipeline.sources.logging_config import DELIVERY_FLAGS, DESTINATION_COLUMNS

    if row is None:
        return "not recorded"
    if row.get("error"):
        return f"unreadable ({row['error']})"
    if not row.get("logging_enabled"):
        return "logging off"
    dests = [f"{c}={row[c]}" for c in DESTINATION_COLUMNS if row.get(c)]
    off = [c for c in DELIVERY_FLAGS if row.get(c) is False]
    return ", ".join(dests) + (f"; off: {', '.join(off)}" if off else "")


def config_drift(today: pl.DataFrame, yesterday: pl.DataFrame) -> list[dict[str, Any]]:
    """What changed per account × region since the previous day, with before/after.

    `kind` is `logging_disabled`, `delivery_off`, `destination_changed` (these fail the drift check),
    `logging_enabled` or `delivery_on` (reported only). A pair absent on either day is not compared.
    """
    # step-only: logging_config brings boto3, which loading the definitions must not pay for
    from pipeline.sources.logging_config import DELIVERY_FLAGS, DESTINATION_COLUMNS

    prev = {(r["account_id"], r["region"]): r for r in yesterday.iter_rows(named=True)}
    changes = []
    for now in today.iter_rows(named=True):
        before = prev.get((now["account_id"], now["region"]))
        if before is None or before.get("error") or now.get("error"):
            continue
        base = {"account_id": now["account_id"], "region": now["region"]}
        was, isnt = bool(before["logging_enabled"]), bool(now["logging_enabled"])
        if was and not isnt:
            changes.append({**base, "kind": "logging_disabled", "before": _describe(before), "after": _describe(now)})
            continue
        if isnt and not was:
            changes.append({**base, "kind": "logging_enabled", "before": _describe(before), "after": _describe(now)})
            continue
        if not isnt:
            continue
        for col in DESTINATION_COLUMNS:
            if col != "cloudwatch_role_arn" and before.get(col) != now.get(col):
                changes.append(
                    {
                        **base,
                        "kind": "destination_changed",
                        "before": f"{col}={before.get(col)}",
                        "after": f"{col}={now.get(col)}",
                    }
                )
        for col in DELIVERY_FLAGS:
            if before.get(col) and now.get(col) is False:
                changes.append({**base, "kind": "delivery_off", "before": f"{col}=on", "after": f"{col}=off"})
            elif before.get(col) is False and now.get(col):
                changes.append({**base, "kind": "delivery_on", "before": f"{col}=off", "after": f"{col}=on"})
    return changes


FAILING_DRIFT = ("logging_disabled", "delivery_off", "destination_changed")
