"""The batch job the triggerer runs: apply one batch file, audit it write-ahead, keep results."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from genesys_sync import audit
from genesys_sync import report as reporting
from genesys_sync.plan import Change
from genesys_sync.scim.connection import ScimConnectionConfig
from genesys_sync.stages.common import client_calls, read_optional

log = logging.getLogger(__name__)


def results_path(batch_path: str | Path) -> Path:
    """Where a batch job writes its per-operation results (``results/`` beside ``batches/``)."""
    batch_path = Path(batch_path)
    return batch_path.parent.parent / "results" / batch_path.name


async def apply_batch_file(scim: ScimConnectionConfig, batch_path: str) -> dict[str, Any]:
    """Apply one batch file and write its results file; return counts and the results path.

    Uses RFC 7644 Bulk when the plan found the target advertising it (never on Genesys).

    Write-ahead audit: the job appends each operation's intent to the audit trail before its
    write is sent and its result after it, and syncs the trail at the start and the end of the
    batch. A trail that cannot be written stops the job before its next write: the event is
    an error that says so, and no results file is written (the report closes the intents)."""
    from genesys_sync.apply import BatchApplier, BulkBatchApplier, summarise
    from genesys_sync.scim.client import AsyncScimClient

    batch = await asyncio.to_thread(reporting.read_json, Path(batch_path))
    changes = [Change.from_dict(c) for c in batch["changes"]]
    bulk = batch.get("bulk") or {}
    run_id, attempt = await asyncio.to_thread(_batch_attempt, Path(batch_path), batch)
    recorder = audit.BatchRecorder(run_id, batch["batch_id"], attempt)
    calls = 0
    try:
        await recorder.start(len(changes))
        async with AsyncScimClient(scim) as client:
            if bulk.get("supported") and scim.flavor != "genesys":
                applier = BulkBatchApplier(
                    client,
                    bulk["max_operations"],
                    bulk["max_payload"],
                    scim.users_path or "/Users",
                    on_event=recorder,
                )
            else:
                applier = BatchApplier(client, on_event=recorder)
            try:
                results = await applier.apply(changes)
            finally:
                calls = client_calls(client)
        for change, result in zip(changes, results, strict=True):
            result.fingerprint = change.fingerprint
        results_file = results_path(batch_path)
        earlier = await asyncio.to_thread(read_optional, results_file)
        latest = [r.to_dict() for r in results]
        data = merge_attempts(earlier["results"] if earlier else [], latest)
        summary = summarise(data)
        await recorder.finish(summarise(latest)["outcomes"])  # the trail first, then results
    except audit.AuditUnavailable as exc:
        message = (
            f"{exc}. The batch job stopped before its next write: {recorder.intents} of "
            f"{len(changes)} operation(s) had their intent recorded and were sent; fix the "
            "audit trail and rerun"
        )
        log.error("Batch %s: %s", batch["batch_id"], message)
        return {
            "batch_id": batch["batch_id"],
            "status": "error",
            "message": message,
            "audit_failed": True,
            "api_calls": calls,
            "outcomes": {},
            "unreachable": 0,
        }
    payload = {
        "batch_id": batch["batch_id"],
        "results": data,
        "summary": summary,
        "api_calls": calls,
    }
    await asyncio.to_thread(reporting.write_json, results_file, payload)
    return {
        "batch_id": batch["batch_id"],
        "results_path": str(results_file),
        "api_calls": calls,
        **summary,
    }


def _batch_attempt(batch_path: Path, batch: Mapping[str, Any]) -> tuple[str, int]:
    """The run id of a batch file and which attempt at it this job is (1, 2, ... counted in
    ``attempts/<batch id>`` of the run directory, one byte per attempt)."""
    run_dir = batch_path.parent.parent
    run_id = batch.get("run_id") or (read_optional(run_dir / "plan.json") or {}).get("run_id")
    attempts = run_dir / "attempts"
    attempts.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(attempts / batch["batch_id"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, b".")
        attempt = os.fstat(fd).st_size
    finally:
        os.close(fd)
    return str(run_id or run_dir.name), attempt


def merge_attempts(
    earlier: Sequence[Mapping[str, Any]], latest: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Results of a batch that ran more than once (a retried task, a restarted trigger).

    A write an earlier attempt made stays recorded as applied, even though the repeat found
    nothing left to do ("unchanged") or failed: the audit trail must not lose a write.
    """
    applied = {(r["employee_id"], r["kind"]): r for r in earlier if r.get("outcome") == "applied"}
    merged = []
    for result in latest:
        first = applied.get((result["employee_id"], result["kind"]))
        if first is not None and result.get("outcome") != "applied":
            result = {**first, "note": "applied by an earlier attempt"}
        merged.append(result)
    return merged
