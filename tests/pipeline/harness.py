"""The stage tier's runner: the DAG's stages called in-process, in the DAG's order, against a real
target, with the real gate, SCIM client and state store. Only Airflow is left out.

``run_stages`` does what one DAG run does (``wait_for_export`` aside): validate, plan, every
first-wave batch job, the manager links, the held batches when told they were approved, the
report and the verdict. A scenario here costs seconds; ``tests/e2e`` keeps what Airflow itself
does (deferral, the triggerer, params, HITL, alerts, kills).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from genesys_sync.config import SyncConfig, load_config
from genesys_sync.export import resolve_location
from genesys_sync.runs import Run
from genesys_sync.stages.apply import apply_batch_file
from genesys_sync.stages.common import RunParams, SyncFailed
from genesys_sync.stages.finish import check_outcome, finish_stage
from genesys_sync.stages.plan import link_batches, plan_stage
from genesys_sync.stages.validate import validate_stage
from tests.fixtures.targets import Target

_RUNS = itertools.count(1)


@dataclass
class StageRun:
    """What one in-process run left: its id, the verdict, the report, and the run directory."""

    run_id: str
    ok: bool
    report: dict[str, Any] | None
    error: Exception | None
    run_dir: Path
    batch_events: list[dict[str, Any]]

    @property
    def plan(self) -> dict[str, Any]:
        return json.loads((self.run_dir / "plan.json").read_text())

    @property
    def plan_markdown(self) -> str:
        return (self.run_dir / "plan.md").read_text()


@contextlib.contextmanager
def sync_home_env(home: Path) -> Iterator[None]:
    """Point the stages at ``home`` (they read ``$GENESYS_SYNC_HOME`` on every call)."""
    before = os.environ.get("GENESYS_SYNC_HOME")
    os.environ["GENESYS_SYNC_HOME"] = str(home)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("GENESYS_SYNC_HOME", None)
        else:
            os.environ["GENESYS_SYNC_HOME"] = before


def stage_config(**gate: Any) -> SyncConfig:
    """The shipped config with Data Docs off (one test checks them) and ``gate`` overrides."""
    config = load_config()
    return dataclasses.replace(
        config, gate=dataclasses.replace(config.gate, **{"data_docs": False, **gate})
    )


def run_stages(
    home: Path,
    export: Path | str,
    target: Target,
    conf: dict[str, Any] | None = None,
    logical_date: str | None = None,
    approve_held: bool = False,
    config: SyncConfig | None = None,
) -> StageRun:
    """One run of the DAG's stages, in order, as the DAG wires them (see the module docstring).

    ``approve_held`` stands for a human approving held removals (``approve_removals``); without
    it held batches stay unapplied, as under ``make sync``.
    """
    config = config or stage_config()
    params = RunParams.from_mapping(conf)
    scim = target.scim_config()
    day = date.fromisoformat(logical_date) if logical_date else datetime.now(UTC).date()
    started = datetime.now(UTC)
    run_id = f"stage__{started.isoformat()}_{next(_RUNS)}"
    events: list[dict[str, Any]] = []
    failed_tasks: list[str] = []
    error: Exception | None = None
    with sync_home_env(home):
        location = resolve_location(config.export, day, override=params.export or str(export))
        task_id = "validate"
        try:  # a failed task stops its branch; the report runs whatever happened (all_done)
            gate = validate_stage(run_id, location, config, scim, logical_date=day)
            task_id = "plan"
            planned = plan_stage(
                run_id, gate["accepted_path"], params, config, scim, logical_date=day
            )
            waves = [("apply_batch", planned["phase1"]), ("link_managers", None)]
            if approve_held:
                waves.append(("apply_held", planned["held_batches"]))
            for task_id, paths in waves:  # link_managers: from the plan's XCom, as in the DAG
                for path in link_batches(run_id, planned["phase2"]) if paths is None else paths:
                    event = asyncio.run(apply_batch_file(scim, path))
                    events.append(event)
                    if event.get("unreachable"):  # the trigger's "error" event: task failed
                        failed_tasks.append(task_id)
        except Exception as exc:  # what Airflow does with a task's exception: the task fails
            error = exc
            failed_tasks.append(task_id)
        finish_stage(
            run_id,
            config,
            started,
            logical_date=day,
            employee_ids=params.employee_ids,
            scim=scim,
        )
        try:
            check_outcome(run_id, failed_tasks=sorted(set(failed_tasks)))
        except SyncFailed as exc:
            error = error or exc
        run_dir = Run(run_id).root
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return StageRun(run_id, error is None, report, error, run_dir, events)
