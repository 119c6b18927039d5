"""Where a ledger's Dagster history lives: one Dagster home per warehouse, never the working folder.

Runs, check results and materializations are recorded in a Dagster instance. Had every ledger shared one (the
folder the CLI happened to run from), the demo's UI would show days "materialized" at another ledger's `s3://`
path. So, unless `DAGSTER_HOME` says otherwise, a ledger's home is `$XDG_STATE_HOME/bedrock-ledger/<slug>` (default
`~/.local/state/bedrock-ledger/<slug>`), where the slug names the warehouse: the same warehouse always finds its
history, from any folder, and two warehouses never mix. The CLI writes the project's instance settings there
(`dagster.yaml`: telemetry off, the run queue, the AWS pools, run monitoring) and a `workspace.yaml` that loads
the code location, so `bedrock-ledger ui` starts the UI on that home from any folder.

A `DAGSTER_HOME` set by the user (a deployment, a shared Postgres instance) is used as it is: nothing is written.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "DAGSTER_HOME"
STATE_ENV = "XDG_STATE_HOME"
APP_FOLDER = "bedrock-ledger"
LOCATION_NAME = "bedrock-ledger"
LOCATION_MODULE = "pipeline.definitions"

DAGSTER_YAML = """\
# Written by bedrock-ledger for this ledger's Dagster home (runs, schedules and the event log are kept beside it).
# Edit freely: it is written only when missing. The same settings as the repository's dagster.yaml.

telemetry:
  enabled: false

concurrency:
  # Runs wait in a queue; at most this many run at once on this machine.
  runs:
    max_concurrent_runs: 2
    tag_concurrency_limits:
      - key: "dagster/backfill"
        limit: 2
  # Steps that call AWS APIs declare a pool (`aws_logs`, `aws_billing`); this caps how many run at once.
  pools:
    default_limit: 2

# Crash recovery: the daemon marks runs whose worker died as failed and frees the pool slots of ended runs.
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
"""

WORKSPACE_YAML = f"""\
# Written by bedrock-ledger: the code location `bedrock-ledger ui` loads (the config comes from LEDGER_CONFIG).
load_from:
  - python_module:
      module_name: {LOCATION_MODULE}
      location_name: {LOCATION_NAME}
"""


@dataclass(frozen=True)
class Home:
    """A Dagster home and whether it was chosen for the ledger (`ours`) or given by the user (`DAGSTER_HOME`)."""

    path: Path
    ours: bool

    @property
    def workspace(self) -> Path:
        """The `workspace.yaml` the UI loads: ours in our homes, the user's own beside a `DAGSTER_HOME` if any."""
        return self.path / "workspace.yaml"


def slug(warehouse: str) -> str:
    """A folder name for a warehouse: its readable part (at most 60 characters) and a short hash of the whole URI,
    so `s3://a/b-c` and `s3://a/b/c` (the same readable slug) stay apart."""
    readable = re.sub(r"[^a-z0-9]+", "-", warehouse.lower()).strip("-")[-60:].strip("-") or "warehouse"
    digest = hashlib.sha256(warehouse.encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def state_root() -> Path:
    """`$XDG_STATE_HOME/bedrock-ledger`, or `~/.local/state/bedrock-ledger` (the XDG default)."""
    base = os.environ.get(STATE_ENV) or str(Path.home() / ".local" / "state")
    return Path(base) / APP_FOLDER


def home_for(warehouse: str) -> Home:
    """The Dagster home of the ledger whose warehouse is `warehouse` (resolved, as the config loads it):
    `$DAGSTER_HOME` when set, else a folder under `state_root()` named by `slug`."""
    given = os.environ.get(HOME_ENV)
    if given:
        return Home(Path(given), ours=False)
    return Home(state_root() / slug(warehouse), ours=True)


def prepare(home: Home) -> Home:
    """Create our home with its `dagster.yaml` and `workspace.yaml` when missing (a user's home is left alone)."""
    if not home.ours:
        return home
    home.path.mkdir(parents=True, exist_ok=True)
    for name, text in (("dagster.yaml", DAGSTER_YAML), ("workspace.yaml", WORKSPACE_YAML)):
        target = home.path / name
        if not target.exists():
            target.write_text(text)
    return home
