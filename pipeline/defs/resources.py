"""The one resource every asset uses: the validated `ledger.yaml`, loaded when a run starts.

Kept as a `ConfigurableResource` holding only the path, so the UI shows where the config comes from and a run
launched on another machine (Kubernetes, ECS) loads the same file from its own environment.
"""

from functools import cached_property

from dagster import ConfigurableResource

from pipeline.config import LedgerConfig, load_config


class LedgerResource(ConfigurableResource):
    """Access to the pipeline configuration (`ledger.yaml`); empty path means `$LEDGER_CONFIG` or defaults."""

    config_path: str = ""

    @cached_property
    def config(self) -> LedgerConfig:
        return load_config(self.config_path or None)

    @property
    def warehouse(self) -> str:
        return self.config.warehouse
