"""Report a run: the run report (``report.json``) and the console summary.

The audit trail (append-only, hash-chained JSON Lines) is ``genesys_sync.audit``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "api_figures",
    "count_applied",
    "merge_client_stats",
    "format_summary",
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


def count_applied(results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``applied`` writes per change type, operations per outcome, and operations per change
    type and outcome (``operations``: what the metrics send)."""
    applied = dict.fromkeys(CHANGE_TYPES, 0)
    outcomes = {"applied": 0, "unchanged": 0, "conflict": 0, "failed": 0}
    operations: dict[str, dict[str, int]] = {}
    for r in results:
        outcome = r.get("outcome")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome == "applied" and r.get("kind") in applied:
            applied[r["kind"]] += 1
        by_outcome = operations.setdefault(str(r.get("kind")), {})
        by_outcome[str(outcome)] = by_outcome.get(str(outcome), 0) + 1
    return {"applied": applied, "outcomes": outcomes, "operations": operations}


def merge_client_stats(stats: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Several SCIM clients' stats (``ScimClientStats.as_dict()``) summed into one, in the same
    shape: what a stage or a batch job's attempts sent in all."""
    total, retries, rate_limited, token_fetches = 0, 0, 0, 0
    by_method: dict[str, int] = {}
    by_status: dict[str, int] = {}
    latencies: list[float] = []
    for one in stats:
        if not one:
            continue
        total += int(one.get("total") or 0)
        retries += int(one.get("retries") or 0)
        rate_limited += int(one.get("rate_limited") or 0)
        token_fetches += int(one.get("token_fetches") or 0)
        for method, count in (one.get("by_method") or {}).items():
            by_method[method] = by_method.get(method, 0) + int(count)
        for status, count in (one.get("by_status") or {}).items():
            by_status[str(status)] = by_status.get(str(status), 0) + int(count)
        latencies.extend(float(ms) for ms in one.get("latencies_ms") or ())
    return {
        "total": total,
        "by_method": by_method,
        "retries": retries,
        "rate_limited": rate_limited,
        "token_fetches": token_fetches,
        "latencies_ms": latencies,
        "by_status": by_status,
    }


def _percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted values (0 for none)."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def api_figures(stats: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """The run report's request figures from every client's stats of the run: ``api_calls``,
    ``api_calls_by_method``, ``http_429``, ``retries`` and ``latency_ms`` (p50, p95, max)."""
    merged = merge_client_stats(stats)
    ordered = sorted(merged["latencies_ms"])
    return {
        "api_calls": merged["total"],
        "api_calls_by_method": dict(sorted(merged["by_method"].items())),
        # Answered requests by HTTP status (timeouts and resets have none).
        "api_calls_by_status": dict(sorted(merged["by_status"].items())),
        "http_429": merged["rate_limited"],
        "retries": merged["retries"],
        "token_requests": merged["token_fetches"],
        "latency_ms": {
            "p50": round(_percentile(ordered, 0.50), 1),
            "p95": round(_percentile(ordered, 0.95), 1),
            "max": round(ordered[-1], 1) if ordered else 0.0,
        },
    }


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
        f"  API calls       {report.get('api_calls', 0):>6}   "
        f"({report.get('http_429', 0)} answered 429, {report.get('retries', 0)} retried)",
        f"  duration        {report.get('duration_seconds', 0):>6.1f} s",
        f"  report          {report.get('report_path')}",
    ]
    latency = report.get("latency_ms") or {}
    if report.get("api_calls"):
        lines.insert(
            -2,
            f"  latency         p50 {latency.get('p50', 0)} ms, p95 {latency.get('p95', 0)} ms, "
            f"max {latency.get('max', 0)} ms",
        )
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
