"""Small helpers the DAG file needs at run time (template macros, task context readers)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any


def run_date(dag_run: Any) -> date:
    """The day a run stands for: its logical date, or when it was triggered (manual runs)."""
    when = getattr(dag_run, "logical_date", None) or getattr(dag_run, "run_after", None)
    return (when or datetime.now(UTC)).date()


def export_location(override: str | None, dag_run: Any) -> str:
    """Template macro: the export this run reads (param ``export``, ``$HRIS_EXPORT_PATH``, config)."""
    from genesys_sync.config import load_config
    from genesys_sync.export import resolve_location

    return resolve_location(load_config().export, run_date(dag_run), override=override or None)


def started_at(dag_run: Any) -> datetime | None:
    return getattr(dag_run, "start_date", None)
