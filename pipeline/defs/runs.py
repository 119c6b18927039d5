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
    (`success`, `run_id`, `all_events`). Failures are in the result, never raised.

    The run is created from `job` as given, with both its asset and its check selection: the instance's
    `create_run_for_job` would subset the job again from the asset keys alone, which plans every check of those
    assets (the freshness check too, which the daily job leaves out) and builds the subset a second time.
    """
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.api import create_execution_plan, execute_run
    from dagster._core.snap import snapshot_from_execution_plan
    from dagster._core.storage.tags import PARTITION_NAME_TAG

    selected = job.asset_layer.selected_asset_keys if job.is_subset else None
    checks = job.asset_check_selection if job.is_subset else None
    run_tags = {**(tags or {}), PARTITION_NAME_TAG: partition_key}
    config = dict(run_config or {})
    plan = create_execution_plan(
        job, run_config=config, instance_ref=instance.get_ref() if instance.is_persistent else None, tags=run_tags
    )
    run = instance.create_run(
        job_name=job.name,
        run_id=None,
        run_config=config,
        status=None,
        tags=run_tags,
        root_run_id=None,
        parent_run_id=None,
        step_keys_to_execute=plan.step_keys_to_execute,
        execution_plan_snapshot=snapshot_from_execution_plan(plan, job.get_job_snapshot_id()),
        job_snapshot=job.get_job_snapshot(),
        parent_job_snapshot=job.get_parent_job_snapshot(),
        asset_selection=set(selected) if selected else None,
        asset_check_selection=set(checks) if checks is not None else None,
        resolved_op_selection=None,
        op_selection=None,
        remote_job_origin=_origin(job.name),
        job_code_origin=None,
        asset_graph=job.asset_layer.asset_graph,
    )
    return execute_run(InMemoryJob(job), run, instance, raise_on_error=False)
