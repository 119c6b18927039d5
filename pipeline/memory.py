"""Memory handed back between steps: a whole day runs in one process, each step after the last, so what one step
freed must be free for the next, not kept by an allocator for later.

Two allocators hold freed memory on purpose: polars' jemalloc keeps freed pages for a while to reuse them (polars
sets their decay to 500 ms for dirty and 1 s for muzzy pages, then appends `_RJEM_MALLOC_CONF`), and Arrow's
default pool (mimalloc) keeps freed segments until asked to release them. Measured on a day of a million callers,
a step's Parquet write left ~180 MiB in Arrow's pool, and jemalloc's retained pages added ~10 % to a step's peak;
both showed up as the next step's starting point.
"""

from __future__ import annotations

import os
import sys

JEMALLOC_CONF_ENV = "_RJEM_MALLOC_CONF"
JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:0,muzzy_decay_ms:0"
"""Freed pages go back to the system at once (decay 0): a few per cent more CPU in the largest steps, measured,
for a peak that is the step's live data, not its live data plus what it freed. jemalloc reads this once, when
polars is imported (polars appends it to its own defaults, so these win); a value the user set is kept."""


def tune_allocators() -> None:
    """Ask polars' jemalloc to return freed pages at once, unless the user configured it (call before polars is
    imported: afterwards it has no effect, and no harm)."""
    os.environ.setdefault(JEMALLOC_CONF_ENV, JEMALLOC_CONF)


def release_unused() -> None:
    """Give Arrow's pool's freed memory back to the system (after a table is written or read through pyarrow).
    Does nothing when pyarrow was never imported by this process."""
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
