"""The Dagster code location (`workspace.yaml` loads this module).

The partition start date and everything else come from `ledger.yaml`, found through `$LEDGER_CONFIG`. Without it
the location refuses to load, with a message that says how to get one: default settings would mean no sources
and a `./warehouse` in whatever folder the server started in, and every run would succeed with empty tables.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.config import CONFIG_ENV, ConfigError, load_config
from pipeline.defs.build import build_definitions

NO_CONFIG = (
    f"bedrock-ledger: no configuration: set {CONFIG_ENV} to your ledger.yaml (docs/configuration.md), "
    f"or run `uv run bedrock-ledger demo` and start the UI with {CONFIG_ENV}=demo/ledger.yaml"
)

_config_path = os.environ.get(CONFIG_ENV, "")
if not _config_path:
    raise ConfigError(NO_CONFIG)
_config_path = str(Path(_config_path).resolve())
defs = build_definitions(load_config(_config_path), _config_path)
