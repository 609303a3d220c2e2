"""Small helpers the DAG file needs at run time (template macros, task context readers)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any


def run_date(dag_run: Any) -> date:
    """The day a run stands for: its logical date, or when it was triggered (manual runs)."""
    when = getattr(dag_run, "logical_date", None) or getattr(dag_run, "run_after", None)
    return (when or datetime.now(UTC)).date()


def export_location(override: str | None, dag_run: Any) -> str:
    """Template macro: the export a run reads (param, ``$HRIS_EXPORT_PATH``, or the config)."""
    from genesys_sync.config import load_config
    from genesys_sync.export import resolve_location

    return resolve_location(load_config().export, run_date(dag_run), override=override or None)


def held_summary(run_id: str) -> str:
    """Template macro: the approval request's body (employee ids and counts only)."""
    from genesys_sync import settings
    from genesys_sync.report import read_json

    plan_path = settings.run_dir(run_id) / "plan.json"
    plan = read_json(plan_path)
    held = [c for c in plan["changes"] if c.get("held")]
    lines = [
        f"The export would deactivate or delete **{len(held)}** users, more than the safety "
        f"threshold ({plan['removal_threshold']} of {plan['managed_users']} managed users).",
        "Approve to apply them now; reject (or let the request expire) to keep them.",
        f"Full plan: `{settings.run_dir(run_id) / 'plan.md'}`",
        "",
    ]
    lines += [
        f"- {c['employee_id']}: {c['kind']} ({c.get('reason') or 'HR status'})" for c in held[:200]
    ]
    if len(held) > 200:
        lines.append(f"- ... and {len(held) - 200} more (see the plan)")
    return "\n".join(lines)


def started_at(dag_run: Any) -> datetime | None:
    return getattr(dag_run, "start_date", None)
