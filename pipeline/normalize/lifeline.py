"""Crash hygiene for the day's helpers: workers that die with the run, spill folders that do not outlive it.

A run killed with `kill -9` (or by the out-of-memory killer) gets no chance to clean up. Its worker processes are
children of the multiprocessing forkserver, not of the run, so they would go on parsing for nobody, and its spill
folder would stay on disk. Workers therefore watch the run's process id (and ask Linux to kill them when their own
parent dies), and every spill folder carries its owner's pid and start time so the next run can remove the
folders of runs that are gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

POLL_S = 1.0
OWNER_FILE = "owner"
SPILL_PREFIX = "ledger-"
_PR_SET_PDEATHSIG = 1


def process_start(pid: int) -> str | None:
    """The kernel's start time of a process (field 22 of /proc/<pid>/stat): with the pid, it names one process
    even after the pid is reused. None where /proc does not exist or the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat.rsplit(b")", 1)[-1].split()[19].decode()


def alive(pid: int, start: str | None = None) -> bool:
    """Whether the process `pid` (started at `start`, when known) still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours to judge
    if start is not None:
        now = process_start(pid)
        return now is None or now == start
    return True


def die_with(parent: int) -> None:
    """End this process when `parent` ends: `PR_SET_PDEATHSIG` for the direct parent where Linux offers it, and a
    daemon thread that polls `parent` (the run's process, which with a forkserver is not the direct parent)."""
    with contextlib.suppress(Exception):  # not Linux, or no libc: the polling thread still works
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    start = process_start(parent)

    def watch() -> None:
        while alive(parent, start):
            time.sleep(POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="ledger-lifeline", daemon=True).start()


def mark_owner(folder: Path) -> None:
    """Record this process as the owner of a spill folder."""
    pid = os.getpid()
    (folder / OWNER_FILE).write_text(f"{socket.gethostname()} {pid} {process_start(pid) or ''}\n")


def remove_orphans(parent: Path, prefix: str = SPILL_PREFIX) -> list[str]:
    """Remove spill folders under `parent` whose owner (on this host) is gone; returns what was removed.

    Folders of another host (a shared scratch disk) or without an owner file are left alone: their owner may be
    alive elsewhere, or they are not ours.
    """
    removed: list[str] = []
    host = socket.gethostname()
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for folder in entries:
        if not folder.name.startswith(prefix) or not folder.is_dir():
            continue
        try:
            owner_host, pid, *rest = (folder / OWNER_FILE).read_text().split()
        except (OSError, ValueError):
            continue
        if owner_host != host or alive(int(pid), rest[0] if rest else None):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(str(folder))
    return removed
