"""Small helpers the DAG file needs at run time (template macros, task context readers)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any


def run_date(dag_run: Any) -> date:
    """The day a run stands for: its logical date, or when it was triggered (manual runs)."""
    when = getattr(dag_run, "logical_date", None) or getattr(dag_run, "run_after", None)
    return (when or datetime.now(UTC)).date()


def export_location(override: str | None, dag_run: Any) -> str:
    """Template macro: the export a run reads (param, ``$HRIS_EXPORT_PATH``, or the config).

    The param ``export`` may only name a location on the allow-list
    (``export.allowed_locations``); anything else raises ``ExportNotAllowed`` while the task's
    templates render, before anything is read (``HrisExportSensor`` fails the run on it).
    """
    from genesys_sync.config import load_config
    from genesys_sync.export import resolve_run_location

    return resolve_run_location(load_config().export, run_date(dag_run), param=override or None)


def held_summary(run_id: str) -> str:
    """Template macro: the approval request's body (employee ids and counts only), Markdown
    with every value escaped (``markup.md_text``)."""
    from genesys_sync import runs
    from genesys_sync.markup import md_code, md_text

    run = runs.Run(run_id)
    plan = run.load(runs.PlanDocument) or runs.PlanDocument(run_id=run_id)
    held = [c for c in plan.changes if c.get("held")]
    threshold, managed = md_text(plan.removal_threshold), md_text(plan.managed_users)
    lines = [
        f"The export would deactivate or delete **{len(held)}** users, more than the safety "
        f"threshold ({threshold} of {managed} managed users).",
        "Approve to apply them now; reject (or let the request expire) to keep them.",
        f"Full plan: {md_code(run.path(runs.PLAN_MARKDOWN))}",
        "",
    ]
    lines += [
        f"- {md_text(c['employee_id'])}: {md_text(c['kind'])} "
        f"({md_text(c.get('reason') or 'HR status')})"
        for c in held[:200]
    ]
    if len(held) > 200:
        lines.append(f"- ... and {len(held) - 200} more (see the plan)")
    return "\n".join(lines)


def run_lock_owner(ti: Any) -> tuple[str, Callable[[str], bool]]:
    """Who holds the run lock for this task's run, and how to tell that a holder run has ended.

    ``make sync`` names its own process (``$GENESYS_SYNC_RUN_HOLDER``); a run the scheduler
    drives is held by "airflow", and gone once its dag run is no longer queued or running.
    """
    from genesys_sync.run_lock import HOLDER_ENV

    def run_gone(run_id: str) -> bool:
        return ti.get_dagrun_state(dag_id=ti.dag_id, run_id=run_id) not in ("queued", "running")

    return os.environ.get(HOLDER_ENV) or "airflow", run_gone


def started_at(dag_run: Any) -> datetime | None:
    return getattr(dag_run, "start_date", None)
