"""Crash recovery for CLI runs: free what dead runs hold, and wait for pool slots visibly and interruptibly.

A CLI run executes in its own process (no daemon watches it). Killed with `kill -9` or by the out-of-memory
killer, it stays STARTED in the Dagster instance and keeps its `aws_logs`/`aws_billing` pool slots forever, and the
next run waits for them silently. So every CLI run is tagged with its host, pid and process start time; at start
(and while waiting for a slot) the CLI marks its own runs whose process is gone as failed and frees their slots,
frees the slots of runs that have already finished, and, if a pool is still full, says which runs hold it and waits,
stopping cleanly on SIGINT or SIGTERM. Runs launched by `dagster dev` or a deployment are watched by Dagster's run
monitoring instead (dagster.yaml).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from pipeline.normalize.lifeline import alive, process_start

CLI_TAG = "bedrock-ledger/cli"
HOST_TAG = "bedrock-ledger/host"
PID_TAG = "bedrock-ledger/pid"
PID_START_TAG = "bedrock-ledger/pid-start"
POOLS = ("aws_logs", "aws_billing")
WAIT_POLL_S = 2.0


class Interrupted(RuntimeError):
    """SIGINT or SIGTERM arrived while the CLI was waiting; nothing had started."""


def run_tags() -> dict[str, str]:
    """Tags that let a later CLI run tell whether this run's process is still alive."""
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PID_START_TAG: process_start(pid) or ""}


def _dead(run: Any) -> bool:
    tags = run.tags
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return False  # not ours to judge: another host, or a run without our tags
    return not alive(int(tags[PID_TAG]), tags.get(PID_START_TAG) or None)


def recover(instance: Any) -> list[str]:
    """Mark this host's CLI runs whose process is gone as failed and free every slot held by a finished run.

    Returns one line per thing done, for the CLI to print.
    """
    from dagster import DagsterRunStatus, RunsFilter

    done: list[str] = []
    active = instance.get_runs(
        filters=RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING], tags={CLI_TAG: "run"})
    )
    for run in active:
        if _dead(run):
            instance.report_run_failed(
                run, f"the process that ran it (pid {run.tags[PID_TAG]}) is gone: killed or out of memory"
            )
            done.append(f"run {run.run_id[:8]}: its process {run.tags[PID_TAG]} is gone, marked failed")
    storage = instance.event_log_storage
    if not getattr(storage, "supports_global_concurrency_limits", False):
        return done
    for run_id in sorted(storage.get_concurrency_run_ids()):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            freed = storage.free_concurrency_slots_for_run(run_id)
            if freed:
                done.append(f"run {run_id[:8]}: freed {freed} pool slot(s) it held after it ended")
    return done


def full_pools(instance: Any, pools: tuple[str, ...] = POOLS) -> dict[str, set[str]]:
    """Pools with no free slot, each with the ids of the runs holding its slots."""
    storage = instance.event_log_storage
    if not getattr(storage, "supports_global_concurrency_limits", False):
        return {}
    out: dict[str, set[str]] = {}
    for pool in pools:
        info = storage.get_concurrency_info(pool)
        limit = info.limit if info.limit is not None else info.slot_count
        if limit and info.active_slot_count >= limit:
            out[pool] = info.active_run_ids
    return out


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C while waiting: the wait ends with `Interrupted`."""

    def stop(signum: int, _frame: Any) -> None:
        raise Interrupted(f"stopped by {signal.Signals(signum).name} while waiting for a pool slot")

    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def wait_for_pools(
    instance: Any,
    echo: Callable[[str], None],
    *,
    poll_s: float = WAIT_POLL_S,
    timeout_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once every pool the run needs has a free slot, recovering dead runs' slots on each try.

    Says once what it waits for (which pool, held by which runs). Raises `Interrupted` on SIGINT/SIGTERM and
    `TimeoutError` after `timeout_s` (default: wait as long as it takes).
    """
    said: dict[str, set[str]] = {}
    started = time.monotonic()
    with _stop_on_signals():
        while True:
            for line in recover(instance):
                echo(line)
            full = full_pools(instance)
            if not full:
                return
            if full != said:
                for pool, runs in sorted(full.items()):
                    holders = ", ".join(sorted(r[:8] for r in runs)) or "unknown runs"
                    echo(f"waiting for a free slot in pool {pool} (all held by run(s) {holders}); Ctrl-C to stop")
                said = full
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                raise TimeoutError(f"no free slot in pool(s) {', '.join(sorted(full))} after {timeout_s:.0f} s")
            sleep(poll_s)
