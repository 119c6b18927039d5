"""The Dagster code location (`workspace.yaml` loads this module).

The partition start date and everything else come from `ledger.yaml`, found through `$LEDGER_CONFIG`; without it
the definitions still load (empty sources) so `dagster dev` always starts.
"""

from __future__ import annotations

import os

from pipeline.config import CONFIG_ENV, load_config
from pipeline.defs.build import build_definitions

_config_path = os.environ.get(CONFIG_ENV, "")
defs = build_definitions(load_config(_config_path or None), _config_path)
