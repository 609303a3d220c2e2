"""The finish stage: collect the batches' results, close open intents, report; and the verdict."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from genesys_sync import audit, metrics, run_lock, runs
from genesys_sync import report as reporting
from genesys_sync.config import SyncConfig
from genesys_sync.failpoints import failpoint
from genesys_sync.mapping import MANAGER_PATH
from genesys_sync.runs import Run, results_path
from genesys_sync.scim.connection import ScimConnectionConfig
from genesys_sync.stages.common import SyncFailed
from genesys_sync.stages.plan import DISCOVERY
from genesys_sync.state import StateStore

log = logging.getLogger(__name__)


#: Write errors that mean the cached /Schemas may be out of date (refreshed next run).
SCHEMA_ERRORS = ("invalidPath", "mutability", "noTarget")


def finish_stage(
    run_id: str,
    config: SyncConfig,
    started_at: datetime | None,
    logical_date: date | None = None,
    employee_ids: Sequence[str] = (),
    scim: ScimConnectionConfig | None = None,
) -> dict[str, Any]:
    """Collect the batches' results, close the audit trail's open intents, update the state,
    write report.json.

    Runs whatever happened upstream, so a half-applied run always leaves a record; the
    verdict (``check_outcome``) comes after the HR system has been told. The audit trail is
    written before the state (the state is never ahead of it): every intent of this run or
    an earlier one that has no result line gets its ``INTENT_CLOSED`` record, from the
    results files, else (given ``scim``) from what the target holds now, else ``unknown``.
    A trail that cannot be written fails the run and leaves the state as it was.
    """
    run = Run(run_id)
    run.prepare()
    gate = run.load(runs.GateSummary)
    blocked = gate is not None and not gate.passed
    gate = gate or runs.GateSummary()  # none: the gate never ran, so nothing was read
    plan_doc = run.load(runs.PlanDocument)
    plan = plan_doc or runs.PlanDocument(run_id=run_id)  # none: the plan was never made
    planned = plan.counts
    index = run.load(runs.BatchIndex)
    expected = [*index.phase1, *index.phase2] if index else []
    held_files = list(index.held_batches) if index else []
    results: list[dict[str, Any]] = []
    api_stats = [_api_stats(gate), _api_stats(plan)]  # every client's, summed below
    missing = []
    held_applied = 0
    granted: dict[tuple[str, str], list[str]] = {}  # the roles the sync owns once applied
    applied: dict[tuple[str, str], dict[str, Any]] = {}  # the values it last applied
    waited: dict[str, str] = {}  # creates sent after their manager's: employee id -> manager
    unreachable_jobs: list[dict[str, Any]] = []  # how each batch job could not reach the target
    # Held batches have results only when a human approved them: absent is not missing.
    for batch_path, held in [(p, False) for p in expected] + [(p, True) for p in held_files]:
        done = runs.read_results(results_path(batch_path))
        if done is None:
            if not held:
                missing.append(runs.batch_id_of(batch_path))
            continue
        ran = runs.effective_batch(batch_path)
        for change in ran.changes if ran else []:
            if change.get("granted_roles") is not None:
                granted[(change["employee_id"], change["kind"])] = change["granted_roles"]
            if change.get("applied") is not None:
                applied[(change["employee_id"], change["kind"])] = change["applied"]
            if change.get("after_manager") and change.get("manager_employee_id"):
                waited[change["employee_id"]] = change["manager_employee_id"]
        results.extend(done.results)
        if done.unreachable_target:
            unreachable_jobs.append(done.unreachable_target)
        api_stats.append(done.api_stats or {"total": done.api_calls})
        held_applied += len(done.results) if held else 0

    counts = reporting.count_applied(results)
    writes = sum(counts["applied"].values())
    attempted = len(results)
    failed = counts["outcomes"]["failed"]
    failure_share = failed / attempted if attempted else 0.0
    unreachable = sum(1 for r in results if r.get("unreachable"))
    dry_run = index.dry_run if index else plan.dry_run
    if not index or missing or unreachable or failure_share > config.sync.max_failure_fraction:
        status = "failed"
    else:
        status = "success"

    store = StateStore()
    audit_error: str | None = None
    try:
        try:  # the audit trail first: the state is never ahead of it
            closed = _close_open_intents(store, scim)
        except audit.AuditUnavailable as exc:
            audit_error, closed, status = f"{exc}; the state was not updated", {}, "failed"
        if audit_error is None:
            _applied_managers(results, applied, waited)
            store.record_results(results, run_id, granted_roles=granted, applied=applied)
            failpoint("report.after_state")
            if any(any(e in str(r.get("error") or "") for e in SCHEMA_ERRORS) for r in results):
                store.set_document(DISCOVERY, None)  # a write refused for a schema reason
        run_lock.release(store.engine, run_id)  # every write of this run is behind us
        if plan_doc and not dry_run and status == "success":
            store.record_export(
                run_id,
                logical_date,
                gate.row_count,
                gate.accepted_count,
                applied=True,
                full_export=not employee_ids,
            )
    finally:
        store.close()

    duration = (datetime.now(UTC) - started_at).total_seconds() if started_at else 0.0
    figures = reporting.api_figures(api_stats)  # what every stage's client sent, summed
    report = runs.Report(
        run_id=run_id,
        status=status,
        dry_run=dry_run,
        dry_run_reason=plan.dry_run_reason,
        logical_date=str(logical_date) if logical_date else None,
        export_location=gate.export_location,
        rows=gate.row_count,
        rejected=gate.rejected_count,
        planned=planned,
        applied=counts["applied"],
        operations=counts["operations"],
        unchanged=planned.get("unchanged", 0),
        conflict=planned.get("conflict", 0) + counts["outcomes"]["conflict"],
        failed=failed,
        held=planned.get("held", 0) - held_applied,
        quarantined=planned.get("quarantined", 0),
        quarantined_employee_ids=plan.quarantined_employee_ids,
        not_synced_attributes=plan.not_synced_attributes,
        writes=writes,
        missing_batches=missing,
        failure_share=round(failure_share, 4),
        **figures,  # every attempt of every stage's client, as the target counts them
        duration_s=round(duration, 3),
        duration_seconds=round(duration, 3),
        report_path=str(run.path(runs.REPORT)),
        plan_path=str(run.path(runs.PLAN)) if plan_doc else None,
        plan_summary_path=str(run.path(runs.PLAN_MARKDOWN)) if plan_doc else None,
        rejects_path=gate.rejects_path,
        data_docs_path=gate.data_docs_path,
        finished_at=audit.utcnow_iso(),
        intents_closed=closed,
        refused=refused_operations(results),
    )
    try:
        audit.audit(
            "SYNC_SUCCESS" if status == "success" else "SYNC_FAILURE",
            run_id,
            writes=writes,
            failed=failed,
            api_calls=report.api_calls,
            latency_ms=int(duration * 1000),
            dry_run=dry_run,
            missing_batches=missing,
            intents_closed=closed,
        )
    except audit.AuditUnavailable as exc:
        audit_error = audit_error or str(exc)
        report.status = status = "failed"
    report.failure_reason = (
        None
        if status == "success"
        else audit_error
        or plan.error
        or _failure_reason(
            missing, unreachable, counts, attempted, config, bool(index), blocked, unreachable_jobs
        )
    )
    if report.refused:  # the same list for a human, every server text escaped
        path = run.write_text(runs.REFUSED, refused_markdown(run_id, report.refused))
        report.refused_summary_path = str(path)
    failpoint("report.before_file")
    run.save(report)
    run.restrict()  # every run artifact owner-only, whatever the umask
    document = report.to_dict()
    for line in reporting.format_summary(document).splitlines():
        log.info("%s", line)  # the task log's main section (the CLI prints the report it reads)
    metrics.emit_run_metrics(document)  # the report's figures, where Airflow's [metrics] says
    return {
        k: document[k]
        for k in ("status", "writes", "failed", "held", "api_calls", "report_path", "dry_run")
    }


def _api_stats(doc: runs.GateSummary | runs.PlanDocument) -> dict[str, Any]:
    """A stage artifact's client stats (``api_stats``), or just its ``api_calls`` when it was
    written before stats were kept."""
    return doc.api_stats or {"total": doc.api_calls}


def _applied_managers(
    results: Sequence[Mapping[str, Any]],
    applied: dict[tuple[str, str], dict[str, Any]],
    waited: Mapping[str, str],
) -> None:
    """Add the manager set by a create that waited for its manager's (``after_manager``) to
    what that create applied: the manager's target id, from its create's result."""
    created = {
        r["employee_id"]: r["target_id"]
        for r in results
        if r.get("kind") == "create" and r.get("outcome") in ("applied", "unchanged")
        if r.get("target_id")
    }
    for r in results:
        eid = r.get("employee_id")
        if MANAGER_PATH not in (r.get("changed") or ()):
            continue  # sent without its manager: the next run links it
        if eid in waited and r.get("kind") == "create" and r.get("outcome") == "applied":
            manager_id = created.get(waited[eid])
            if manager_id and (eid, "create") in applied:
                applied[(eid, "create")] = {**applied[(eid, "create")], MANAGER_PATH: manager_id}


AUDIT_CHECKPOINT = "audit_checkpoint"


def _close_open_intents(
    store: StateStore, scim: ScimConnectionConfig | None = None
) -> dict[str, int]:
    """Close every intent in the audit trail that has no result line (this run's or an
    earlier run's, killed before its report): from its batch's results file when there is
    one, else from what the target holds (``scim``), else as ``unknown``. Returns the
    closures by outcome; raises ``AuditUnavailable``."""
    found = audit.scan(checkpoint=store.get_meta(AUDIT_CHECKPOINT))
    results: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
    pending: list[dict[str, Any]] = []
    closures: list[dict[str, Any]] = []
    for intent in found.open:
        batch = (str(intent.get("run_id")), str(intent.get("batch_id")))
        if batch not in results:
            done = runs.read_results(results_path(Run(batch[0]).batch_path(batch[1])))
            results[batch] = (
                {(r["employee_id"], r["kind"]): r for r in done.results} if done else {}
            )
        got = results[batch].get((intent.get("employee_id"), intent.get("operation")))
        if got is None:
            pending.append(intent)
            continue
        closures.append(
            audit.closure_record(
                intent, got["outcome"], "results", "report", target_id=got.get("target_id")
            )
        )
    held = asyncio.run(_read_back(scim, pending)) if scim is not None and pending else {}
    for intent in pending:
        outcome, target_id = held.get(id(intent), ("unknown", None))
        basis = "none" if outcome == "unknown" else "target"
        closures.append(audit.closure_record(intent, outcome, basis, "report", target_id=target_id))
    if closures:
        audit.append(closures, fsync=True)
    if found.checkpoint:
        store.set_meta(AUDIT_CHECKPOINT, found.checkpoint)
    by_outcome: dict[str, int] = {}
    for record in closures:
        by_outcome[record["outcome"]] = by_outcome.get(record["outcome"], 0) + 1
    if closures:
        log.warning("Closed %d open audit intent(s): %s", len(closures), by_outcome)
    return by_outcome


def _held_by(kind: str, change: Mapping[str, Any] | None, user: Mapping[str, Any] | None) -> str:
    """Whether the target holds what an operation was to write: applied / not_applied /
    unknown."""
    from genesys_sync.apply import remaining_changes
    from genesys_sync.mapping import Ownership

    if user is None:
        return "applied" if kind == "delete" else "not_applied"
    if kind == "delete":
        return "not_applied"
    if kind == "deactivate":
        return "applied" if user.get("active") is False else "not_applied"
    if kind == "reactivate":
        return "applied" if user.get("active", True) is not False else "not_applied"
    if kind == "create":
        return "applied"
    desired = (change or {}).get("desired")
    if not desired:
        return "unknown"
    owned = Ownership.from_dict((change or {}).get("owned"))
    return "not_applied" if remaining_changes(desired, user, owned) else "applied"


async def _read_back(
    scim: ScimConnectionConfig, intents: Sequence[Mapping[str, Any]], budget: float = 60.0
) -> dict[int, tuple[str, str | None]]:
    """What the target holds for each open intent (``id(intent)`` -> (outcome, target id)),
    a few look-ups at a time within ``budget`` seconds; what could not be read is left out."""
    from genesys_sync.scim.client import AsyncScimClient
    from genesys_sync.scim.errors import ScimError, ScimNotFound

    batches: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
    for intent in intents:
        key = (str(intent.get("run_id")), str(intent.get("batch_id")))
        if key not in batches:
            ran = runs.effective_batch(Run(key[0]).batch_path(key[1]))
            batches[key] = {(c["employee_id"], c["kind"]): c for c in ran.changes} if ran else {}
    semaphore = asyncio.Semaphore(4)
    out: dict[int, tuple[str, str | None]] = {}
    async with AsyncScimClient(scim) as client:

        async def one(intent: Mapping[str, Any]) -> None:
            key = (str(intent.get("run_id")), str(intent.get("batch_id")))
            eid, kind = intent.get("employee_id"), intent.get("operation")
            change = batches[key].get((eid, kind))
            target_id = intent.get("target_id") or (change or {}).get("target_id")
            async with semaphore:
                try:
                    user = None
                    if target_id:
                        with contextlib.suppress(ScimNotFound):
                            user = (await client.get_user(target_id))[0]
                    if user is None and eid:
                        user = await client.find_user("externalId", str(eid))
                except ScimError:
                    return
            out[id(intent)] = (_held_by(str(kind), change, user), (user or {}).get("id"))

        tasks = [asyncio.ensure_future(one(i)) for i in intents]
        _, late = await asyncio.wait(tasks, timeout=budget)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
    return out


def refused_operations(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per employee, the operations the target refused and its own explanation (SCIM
    ``detail``, Genesys ``message``), for ``report.json`` only: never logged."""
    refused = []
    for r in results:
        if r.get("outcome") != "failed" or r.get("unreachable") or not r.get("status"):
            continue
        refused.append(
            {
                "employee_id": r.get("employee_id"),
                "operation": r.get("kind"),
                "status": r.get("status"),
                "scim_type": r.get("scim_type"),
                "code": r.get("code"),
                "detail": r.get("detail"),
            }
        )
    return refused


def refused_markdown(run_id: str, refused: Sequence[Mapping[str, Any]]) -> str:
    """``refused.md``: one line per refused operation; every value escaped (``md_text``): a
    server's ``detail`` may quote whatever the export held."""
    from genesys_sync.markup import md_text

    lines = [f"# Operations the target refused in run {md_text(run_id)}", ""]
    for r in refused:
        kind = "/".join(str(v) for v in (r.get("scim_type"), r.get("code")) if v) or "-"
        lines.append(
            f"- {md_text(r.get('employee_id'))}: {md_text(r.get('operation'))} "
            f"HTTP {md_text(r.get('status'))} ({md_text(kind)}): {md_text(r.get('detail') or '-')}"
        )
    return "\n".join(lines) + "\n"


def _unreachable_reason(jobs: Sequence[Mapping[str, Any]], operations: int) -> str:
    """``the target was unreachable (last error ..., tried for N s)`` over the batch jobs."""
    from genesys_sync.stages.apply import describe_unreachable

    last = dict(jobs[-1])
    last["operations"] = operations or sum(int(j.get("operations") or 0) for j in jobs)
    last["tried_seconds"] = max(float(j.get("tried_seconds") or 0) for j in jobs)
    return describe_unreachable(last)


def _failure_reason(
    missing, unreachable, counts, attempted, config, planned, blocked, unreachable_jobs=()
) -> str:
    if unreachable_jobs:
        reason = _unreachable_reason(unreachable_jobs, unreachable)
        if missing:
            reason += f"; {len(missing)} batch job(s) did not finish ({', '.join(missing)})"
        return reason
    if missing:
        return f"{len(missing)} batch job(s) did not finish ({', '.join(missing)})"
    if unreachable:
        return f"the target was unreachable: {unreachable} operation(s) not applied"
    if planned:
        return (
            f"{counts['outcomes']['failed']} of {attempted} operations failed "
            f"(limit {config.sync.max_failure_fraction:.0%})"
        )
    if blocked:
        return "the validation gate blocked the export (nothing was written)"
    return "the run stopped before its plan was made (nothing was written)"


def failed_tasks_of(
    states: Mapping[str, str | None], order: Sequence[str] = (), exclude: str | None = None
) -> list[str]:
    """The tasks that failed (state ``failed``; ``upstream_failed`` and ``skipped`` did not
    run, so they are not failures), in stage order (``order``: the DAG's task ids from first
    stage to last), the first to fail first."""
    rank = {task: i for i, task in enumerate(order)}
    failed = {t for t, state in states.items() if state == "failed" and t != exclude}
    return sorted(failed, key=lambda t: (rank.get(t.split(".")[-1], len(rank)), t))


def check_outcome(run_id: str, failed_tasks: Sequence[str] = ()) -> dict[str, Any]:
    """The run's verdict: raise ``SyncFailed`` unless every task and the report say success.
    ``failed_tasks``: the tasks in state ``failed``, the earliest stage first."""
    run = Run(run_id)
    path, report = run.path(runs.REPORT), run.load(runs.Report)
    if report is None:
        _record_verdict(run_id, failed_tasks, "the run wrote no report: see the report task's log")
        raise SyncFailed(f"Sync run {run_id} wrote no report: see the report task's log.")
    if failed_tasks:
        reason = report.failure_reason or "see its log"
        _record_verdict(run_id, failed_tasks, reason)
        raise SyncFailed(
            f"Sync run {run_id} failed: stage {failed_tasks[0]} failed first"
            + (f" (then {', '.join(failed_tasks[1:])})" if failed_tasks[1:] else "")
            + f" ({reason}). Report: {path}"
        )
    if report.status != "success":
        _record_verdict(run_id, ("report",), report.failure_reason or "see the report")
        raise SyncFailed(f"Sync run {run_id} failed: {report.failure_reason}. Report: {path}")
    return {"status": "success", "writes": report.writes, "report_path": str(path)}


def _record_verdict(run_id: str, failed_tasks: Sequence[str], reason: str) -> None:
    """``verdict.json``: the failed run's earliest failed stage and reason, what the run's
    failure alert (``notifiers.RunFailureAlert``) names."""
    stage = failed_tasks[0] if failed_tasks else "outcome"
    verdict = {
        "run_id": run_id,
        "status": "failed",
        "stage": stage,
        "failed_tasks": list(failed_tasks),
        "reason": reason,
    }
    try:
        Run(run_id).write_json(runs.VERDICT, verdict)
    except OSError as exc:  # the alert then falls back to the report
        log.warning("verdict.json not written: %s", type(exc).__name__)
