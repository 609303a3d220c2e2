"""The gate's quarantine list: employee ids whose rows were quarantined, for the planner.

A quarantined row is present in the export but unreadable: its employee must be left exactly
as it is, never taken for "missing from the export" and deactivated. The gate writes
``quarantined.json`` in the run directory (ids and a count, no other data); the plan stage
reads it back with :func:`read_quarantine`. Rows whose employee id itself is unreadable (empty,
or outside ``gate.employee_id_pattern``) cannot be matched to anyone: they are only counted,
and while there are any, the planner holds every "missing from the export" removal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUARANTINE_FILE = "quarantined.json"
VERSION = 1


@dataclass(frozen=True)
class Quarantine:
    """Who the gate quarantined: readable employee ids, and rows without a readable id."""

    employee_ids: frozenset[str] = frozenset()
    unreadable_rows: int = 0


def quarantine_path(run_dir: Any) -> Any:
    """Where the gate of a run keeps its quarantine list (``run_dir``: a local directory or
    the run store's path of the run)."""
    return (Path(run_dir) if isinstance(run_dir, str) else run_dir) / QUARANTINE_FILE


def write_quarantine(run_dir: Path, employee_ids: Iterable[str], unreadable_rows: int) -> Path:
    """Write the run's quarantine list atomically (owner-readable only)."""
    path = quarantine_path(run_dir)
    data = {
        "version": VERSION,
        "employee_ids": sorted({str(i).strip() for i in employee_ids if str(i).strip()}),
        "unreadable_rows": int(unreadable_rows),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def read_quarantine(run_dir: Any) -> Quarantine | None:
    """The run's quarantine list, or None when the gate wrote none (an older run directory)."""
    path = quarantine_path(run_dir)
    if not path.exists():
        return None
    data = json.loads(path.read_bytes().decode("utf-8"))
    return Quarantine(
        employee_ids=frozenset(data.get("employee_ids") or ()),
        unreadable_rows=int(data.get("unreadable_rows") or 0),
    )
