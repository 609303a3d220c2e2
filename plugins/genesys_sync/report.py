"""Report a run: the run report (``report.json``), the audit trail and the console summary.

The audit log is append-only JSON Lines that compliance teams can ship to a SIEM: one event
per run stage and one per user operation, with employee ids and attribute *names*, never
attribute values, emails, phone numbers or secrets.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genesys_sync import settings

CHANGE_TYPES = ("create", "update", "deactivate", "reactivate", "delete", "link_manager")


def utcnow_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically (readers never see half a file), owner-readable only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def audit(event: str, run_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """Append one audit event to the audit log and return it."""
    record = {"timestamp": utcnow_iso(), "event": event, "run_id": run_id, **fields}
    line = json.dumps(record, sort_keys=True, default=str)
    with settings.audit_log_path().open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    return record


def audit_operations(run_id: str, results: Iterable[Mapping[str, Any]]) -> int:
    """One audit event per user operation (outcome, kind, changed attribute names)."""
    count = 0
    with settings.audit_log_path().open("a", encoding="utf-8") as fh:
        for r in results:
            record = {
                "timestamp": utcnow_iso(),
                "event": "USER_OPERATION",
                "run_id": run_id,
                "employee_id": r.get("employee_id"),
                "operation": r.get("kind"),
                "outcome": r.get("outcome"),
                "target_id": r.get("target_id"),
                "changed_attributes": r.get("changed") or [],
                "error": r.get("error"),
                "note": r.get("note"),
            }
            fh.write(json.dumps(record, sort_keys=True) + "\n")
            count += 1
    return count


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
        f"  failed          {report.get('failed', 0):>6}",
        f"  writes          {report.get('writes', 0):>6}",
        f"  API calls       {report.get('api_calls', 0):>6}",
        f"  duration        {report.get('duration_seconds', 0):>6.1f} s",
        f"  report          {report.get('report_path')}",
    ]
    for key, label in (
        ("rejects_path", "rejects"),
        ("plan_summary_path", "plan"),
        ("data_docs_path", "data docs"),
    ):
        if report.get(key):
            lines.append(f"  {label:<15} {report[key]}")
    return "\n".join(lines)
