"""Runs started outside the webserver (the CLI's) recorded exactly like the UI's: a run of the named job, for one
partition, filed under the `bedrock-ledger` code location.

`JobDefinition.execute_in_process` records a run with the job's name but no code location, so the job's page
and the Overview timeline (which group runs by location and repository) leave it out. Here the run is created
with the origin the webserver gives its own runs (the `python_module` entry of `workspace.yaml`) and executed in
this process with the job's in-process executor.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from dagster import DagsterInstance, JobDefinition

LOCATION_NAME = "bedrock-ledger"
"""The code location's name, as `workspace.yaml` and `[tool.dg.project]` give it."""
REPOSITORY_NAME = "__repository__"
LOCATION_MODULE = "pipeline.definitions"


def _origin(job_name: str) -> Any:
    from dagster._core.remote_origin import (
        ManagedGrpcPythonEnvCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    location = ManagedGrpcPythonEnvCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(
            executable_path=sys.executable, module_name=LOCATION_MODULE, working_directory=os.getcwd()
        ),
        location_name=LOCATION_NAME,
    )
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, REPOSITORY_NAME), job_name)


def run_partition(
    job: JobDefinition,
    partition_key: str,
    instance: DagsterInstance,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> Any:
    """Run `job` (or a subset of it) for one partition in this process; returns the execution result
    (`success`, `run_id`, `all_events`). Failures are in the result, never raised."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.api import execute_run
    from dagster._core.storage.tags import PARTITION_NAME_TAG

    selected = job.asset_layer.selected_asset_keys if job.is_subset else None
    run = instance.create_run_for_job(
        job_def=job,
        run_config=dict(run_config or {}),
        tags={**(tags or {}), PARTITION_NAME_TAG: partition_key},
        remote_job_origin=_origin(job.name),
        asset_selection=set(selected) if selected else None,
    )
    return execute_run(InMemoryJob(job), run, instance, raise_on_error=False)
