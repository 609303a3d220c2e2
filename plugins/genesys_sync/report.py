"""Report a run: the run report (``report.json``) and the console summary.

The audit trail (append-only, hash-chained JSON Lines) is ``genesys_sync.audit``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# The audit trail lives in ``genesys_sync.audit``; these names stay importable from here.
from genesys_sync.audit import audit, audit_operations, utcnow_iso

__all__ = [
    "audit",
    "audit_operations",
    "count_applied",
    "format_summary",
    "read_json",
    "utcnow_iso",
    "write_json",
    "write_text",
]

CHANGE_TYPES = ("create", "update", "deactivate", "reactivate", "delete", "link_manager")


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically (readers never see half a file), owner-readable only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never world-readable
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def write_text(path: Path, text: str) -> Path:
    """Write a text artifact atomically, owner-readable only (like ``write_json``)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def count_applied(results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``applied`` writes per change type, and operations per outcome."""
    applied = dict.fromkeys(CHANGE_TYPES, 0)
    outcomes = {"applied": 0, "unchanged": 0, "conflict": 0, "failed": 0}
    for r in results:
        outcome = r.get("outcome")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome == "applied" and r.get("kind") in applied:
            applied[r["kind"]] += 1
    return {"applied": applied, "outcomes": outcomes}


def format_summary(report: Mapping[str, Any]) -> str:
    """The human-readable run summary printed by ``make demo`` / ``make sync``."""
    planned = report.get("planned") or {}
    applied = report.get("applied") or {}
    lines = [
        f"genesys_user_sync run {report.get('run_id')}: {report.get('status', '?').upper()}"
        + ("  (dry run: nothing written)" if report.get("dry_run") else ""),
        f"  export          {report.get('export_location')}",
        f"  rows            {report.get('rows', 0)} read, {report.get('rejected', 0)} rejected "
        f"by the gate",
        f"  created         {applied.get('create', 0):>6}   (planned {planned.get('create', 0)})",
        f"  updated         {applied.get('update', 0):>6}   (planned {planned.get('update', 0)})",
        f"  deactivated     {applied.get('deactivate', 0):>6}   "
        f"(planned {planned.get('deactivate', 0)}, held {report.get('held', 0)})",
        f"  reactivated     {applied.get('reactivate', 0):>6}   "
        f"(planned {planned.get('reactivate', 0)})",
        f"  deleted         {applied.get('delete', 0):>6}   (planned {planned.get('delete', 0)})",
        f"  unchanged       {planned.get('unchanged', 0):>6}",
        f"  conflicts       {report.get('conflict', 0):>6}",
        f"  rejected        {report.get('rejected', 0):>6}",
        f"  quarantined     {report.get('quarantined', 0):>6}   (present, not synced)",
        f"  failed          {report.get('failed', 0):>6}",
        f"  writes          {report.get('writes', 0):>6}",
        f"  API calls       {report.get('api_calls', 0):>6}",
        f"  duration        {report.get('duration_seconds', 0):>6.1f} s",
        f"  report          {report.get('report_path')}",
    ]
    if report.get("not_synced_attributes"):
        lines.append(
            "  not synced      the target does not declare "
            + ", ".join(report["not_synced_attributes"])
        )
    for key, label in (
        ("rejects_path", "rejects"),
        ("plan_summary_path", "plan"),
        ("data_docs_path", "data docs"),
    ):
        if report.get(key):
            lines.append(f"  {label:<15} {report[key]}")
    return "\n".join(lines)
