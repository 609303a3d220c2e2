"""The batch job the triggerer runs: apply one batch file, audit it write-ahead, keep results."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from genesys_sync import audit, runs
from genesys_sync import report as reporting
from genesys_sync.plan import Change
from genesys_sync.progress import BatchProgress
from genesys_sync.runs import Run, results_path
from genesys_sync.scim.connection import ScimConnectionConfig
from genesys_sync.stages.common import client_calls, client_stats

log = logging.getLogger(__name__)


#: Outcomes an earlier attempt recorded that a repeated job does not send again.
DONE_OUTCOMES = ("applied", "unchanged")


def pending_changes(
    changes: Sequence[Change], earlier: Sequence[Mapping[str, Any]]
) -> tuple[list[Change], dict[tuple[str, str], Mapping[str, Any]]]:
    """The changes a repeated batch job still has to send (no applied/unchanged result in the
    batch's results file), and the earlier results of those it skips. A create waiting for a
    manager whose create is already done gets that manager's recorded target id."""
    done = {(r["employee_id"], r["kind"]): r for r in earlier if r.get("outcome") in DONE_OUTCOMES}
    todo: list[Change] = []
    for change in changes:
        if (change.employee_id, str(change.kind)) in done:
            continue
        manager = done.get((change.manager_employee_id or "", "create"))
        if change.after_manager and manager is not None:
            from genesys_sync.apply import with_manager

            change = with_manager(change, manager.get("target_id"))
        todo.append(change)
    return todo, done


def unreachable_summary(
    results: Sequence[Mapping[str, Any]], tried_seconds: float
) -> dict[str, Any] | None:
    """How the target could not be reached, for the event and the report: how many
    operations, the last error (class and status, never the server's text) and how long the
    job tried. None when every operation reached it."""
    failed = [r for r in results if r.get("unreachable")]
    if not failed:
        return None
    last = failed[-1]
    return {
        "operations": len(failed),
        "last_error": str(last.get("error") or "unknown").split(":")[0],
        "last_status": last.get("status"),
        "tried_seconds": round(tried_seconds, 1),
    }


def describe_unreachable(info: Mapping[str, Any]) -> str:
    """``the target was unreachable (last error ..., tried for N s)``."""
    status = f" HTTP {info['last_status']}" if info.get("last_status") else ""
    return (
        f"the target was unreachable (last error {info.get('last_error')}{status}, tried for "
        f"{float(info.get('tried_seconds') or 0):.0f} s): {info.get('operations', 0)} "
        "operation(s) not applied"
    )


#: How many more times a job sends the operations that could not reach the target.
UNREACHABLE_ROUNDS = 1


async def _apply_in_rounds(
    applier: Any,
    changes: Sequence[Change],
    pause: float,
    deadline: float | None,
    rounds: int = UNREACHABLE_ROUNDS,
) -> list[Any]:
    """Apply ``changes``; then, up to ``rounds`` more times and while the deadline allows,
    pause ``pause`` seconds and send again only the operations that could not reach the
    target (each with a new intent). Unreachable is retried here, not by redoing the batch."""
    results = list(await applier.apply(changes))
    for _ in range(rounds):
        again = [i for i, r in enumerate(results) if r.unreachable]
        if not again or (deadline is not None and time.monotonic() + pause >= deadline):
            break
        log.info("%d operation(s) could not reach the target; sending them again", len(again))
        await asyncio.sleep(pause)
        for i, result in zip(again, await applier.apply([changes[i] for i in again]), strict=True):
            results[i] = result
    return results


async def apply_batch_file(
    scim: ScimConnectionConfig,
    batch_path: str,
    deadline: float | None = None,
    retry_rounds: int = UNREACHABLE_ROUNDS,
) -> dict[str, Any]:
    """Apply one batch file and write its results file; return counts and the results path.

    Uses RFC 7644 Bulk when the plan found the target advertising it (never on Genesys).

    A repeated job (a task retry, a restarted trigger) sends only the operations without an
    applied/unchanged result in the batch's results file. ``deadline`` (``time.monotonic()``
    value, the operator's ``job_timeout``) caps how long a server's ``Retry-After`` is
    honoured; the client's ``max_backoff_seconds`` caps only its own backoff.

    Write-ahead audit: the job appends each operation's intent to the audit trail before its
    write is sent and its result after it, and syncs the trail at the start and the end of the
    batch. A trail that cannot be written stops the job before its next write: the event is
    an error that says so, and no results file is written (the report closes the intents)."""
    from genesys_sync.apply import BatchApplier, BulkBatchApplier, summarise
    from genesys_sync.scim.client import AsyncScimClient

    batch = await asyncio.to_thread(runs.read_batch, batch_path)
    planned = [Change.from_dict(c) for c in batch.changes]
    bulk = batch.bulk
    results_file = results_path(batch_path)
    earlier = await asyncio.to_thread(runs.read_results, results_file)
    earlier_results = list(earlier.results) if earlier else []
    changes, done = pending_changes(planned, earlier_results)
    if done:
        log.info(
            "Batch %s ran before: %d of %d operation(s) already have a result; sending %d",
            batch.batch_id,
            len(done),
            len(planned),
            len(changes),
        )
    run_id, attempt = await asyncio.to_thread(_batch_attempt, batch_path, batch)
    recorder = audit.BatchRecorder(run_id, batch.batch_id, attempt)
    calls = 0
    stats: dict[str, Any] = {}
    started = time.monotonic()
    try:
        await recorder.start(len(changes))
        async with AsyncScimClient(scim, deadline=deadline) as client:
            progress = BatchProgress(
                batch.batch_id, len(changes), recorder, lambda: client.stats.retries
            )
            if bulk.get("supported") and scim.flavor != "genesys":
                applier = BulkBatchApplier(
                    client,
                    bulk["max_operations"],
                    bulk["max_payload"],
                    scim.users_path or "/Users",
                    on_event=progress,
                )
            else:
                applier = BatchApplier(client, on_event=progress)
            try:
                async with progress:
                    results = await _apply_in_rounds(
                        applier, changes, scim.max_backoff_seconds, deadline, retry_rounds
                    )
            finally:
                calls = client_calls(client)
                stats = client_stats(client)
        for change, result in zip(changes, results, strict=True):
            # A create that went without its manager is not in sync: no fingerprint, so the
            # next run re-diffs it and links the manager.
            result.fingerprint = None if result.without_manager else change.fingerprint
        sent = {
            (c.employee_id, str(c.kind)): r.to_dict() for c, r in zip(changes, results, strict=True)
        }
        latest = [r.to_dict() for r in results]
        data = merge_attempts(
            earlier_results,
            [
                sent.get(key) or {**done[key], "note": "done by an earlier attempt"}
                for key in ((c.employee_id, str(c.kind)) for c in planned)
            ],
        )
        summary = summarise(data)
        unreachable = unreachable_summary(data, time.monotonic() - started)
        await recorder.finish(summarise(latest)["outcomes"])  # the trail first, then results
    except audit.AuditUnavailable as exc:
        message = (
            f"{exc}. The batch job stopped before its next write: {recorder.intents} of "
            f"{len(changes)} operation(s) had their intent recorded and were sent; fix the "
            "audit trail and rerun"
        )
        log.error("Batch %s: %s", batch.batch_id, message)
        return {
            "batch_id": batch.batch_id,
            "status": "error",
            "message": message,
            "audit_failed": True,
            "api_calls": calls,
            "outcomes": {},
            "unreachable": 0,
        }
    payload = runs.BatchResults(
        batch_id=batch.batch_id,
        results=data,
        summary=summary,
        api_calls=calls,
        # Every attempt's requests (``api_calls`` is this attempt's): the report sums them.
        api_stats=reporting.merge_client_stats([earlier.api_stats if earlier else None, stats]),
        unreachable_target=unreachable,
    )
    await asyncio.to_thread(runs.write_results, results_file, payload)
    event = {
        "batch_id": batch.batch_id,
        "results_path": str(results_file),
        "api_calls": calls,
        "sent": len(changes),
        **summary,
    }
    if unreachable:
        event["message"] = describe_unreachable(unreachable)
    return event


def _batch_attempt(batch_path: str, batch: runs.Batch) -> tuple[str, int]:
    """The run id of a batch file and which attempt at it this job is (1, 2, ...)."""
    run = Run.of_batch(batch_path, batch)
    return run.run_id, run.attempt(batch.batch_id)


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
