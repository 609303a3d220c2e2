"""The sync's stages as plain functions: validate, plan, finish, notify.

The DAG's tasks are thin wrappers around these. They take ids, dates, params and paths, keep
everything bulky or personal on disk under the run's directory, and return small dicts
(counts and paths) fit for XCom.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from genesys_sync import report as reporting
from genesys_sync import settings
from genesys_sync.config import SyncConfig
from genesys_sync.mapping import MANAGER_PATH
from genesys_sync.plan import Change, Kind, PlanOptions, batches, plan_sync
from genesys_sync.scim.connection import ScimConnectionConfig
from genesys_sync.state import StateStore

log = logging.getLogger(__name__)


class GateBlocked(RuntimeError):
    """The export failed a dataset-level check: nothing was written."""


class SyncFailed(RuntimeError):
    """The run applied its plan, but too much of it failed or the target was unreachable."""


@dataclass(frozen=True)
class RunParams:
    """The run's params (the DAG's ``params`` / ``make sync CONF=...``)."""

    dry_run: bool = False
    employee_ids: tuple[str, ...] = ()
    export: str | None = None
    force: bool = False
    approve_removals: bool = False
    full_reconcile: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any] | None) -> RunParams:
        params = dict(params or {})
        ids = params.get("employee_ids") or ()
        if isinstance(ids, str):
            ids = [i for i in ids.replace(",", " ").split() if i]
        return cls(
            dry_run=bool(params.get("dry_run", False)),
            employee_ids=tuple(str(i).strip() for i in ids),
            export=params.get("export") or None,
            force=bool(params.get("force", False)),
            approve_removals=bool(params.get("approve_deactivations", False)),
            full_reconcile=bool(params.get("full_reconcile", False)),
        )


def _calls(client: Any) -> int:
    return client.stats.total


def results_path(batch_path: str | Path) -> Path:
    """Where a batch job writes its per-operation results (``results/`` beside ``batches/``)."""
    batch_path = Path(batch_path)
    return batch_path.parent.parent / "results" / batch_path.name


# --- validate -------------------------------------------------------------------------------


async def _fetch_catalogue(scim: ScimConnectionConfig) -> tuple[Any, int]:
    from genesys_sync.scim.client import AsyncScimClient
    from genesys_sync.validation import Catalogue

    async with AsyncScimClient(scim) as client:
        roles = await client.list_roles()
        divisions = await client.list_divisions()
        return Catalogue(roles=frozenset(roles), divisions=frozenset(divisions)), _calls(client)


def validate_stage(
    run_id: str,
    location: str,
    config: SyncConfig,
    scim: ScimConnectionConfig | None,
    logical_date: date | None = None,
) -> dict[str, Any]:
    """Read the export and run the Great Expectations gate; raise ``GateBlocked`` on a block."""
    from genesys_sync.validation import gate_export

    run_dir = settings.run_dir(run_id)
    store = StateStore()
    try:
        catalogue, calls = None, 0
        if scim is not None and scim.api_url and scim.flavor == "genesys":
            catalogue, calls = asyncio.run(_fetch_catalogue(scim))
        # An unreadable file (encoding, delimiter, shape) is a dataset-level block like any other.
        result = gate_export(
            location,
            config=config,
            run_dir=run_dir,
            previous_row_count=store.previous_row_count(exclude_run_id=run_id),
            catalogue=catalogue,
        )
        summary = {**result.to_dict(), "api_calls": calls, "export_location": location}
        reporting.write_json(run_dir / "gate.json", summary)
        if not result.passed:
            reporting.audit(
                "GATE_BLOCKED",
                run_id,
                export_location=location,
                rules=[f.rule for f in result.dataset_failures],
                rows=result.row_count,
            )
            raise GateBlocked(result.explanation())
        store.record_export(
            run_id, logical_date, result.row_count, result.accepted_count, applied=False
        )
        reporting.audit(
            "GATE_PASSED",
            run_id,
            export_location=location,
            rows=result.row_count,
            accepted=result.accepted_count,
            rejected=result.rejected_count,
        )
        log.info("%s", result.explanation())
        return {
            "accepted_path": str(result.accepted_path),
            "rows": result.row_count,
            "accepted": result.accepted_count,
            "rejected": result.rejected_count,
            "rejects_path": str(result.rejects_path),
            "data_docs_path": str(result.data_docs_path) if result.data_docs_path else None,
        }
    finally:
        store.close()


# --- plan -----------------------------------------------------------------------------------


@dataclass
class TargetView:
    """What the plan stage read of the target: all of it, or only the users that changed."""

    users: list[dict[str, Any]]
    schemas: list[dict[str, Any]]
    spc: dict[str, Any]
    calls: int
    full: bool


LAST_FULL_READ = "last_full_reconcile"


async def _read_target(
    scim: ScimConnectionConfig, only: Mapping[str, Any] | None = None
) -> TargetView:
    """Read the whole target, or (``only``: employee id -> (target id or None, userName or
    None)) just those users, one look-up each, a few at a time."""
    from genesys_sync.scim.client import AsyncScimClient
    from genesys_sync.scim.errors import ScimNotFound

    async with AsyncScimClient(scim) as client:
        spc = await client.service_provider_config()
        schemas = await client.schemas()
        if only is None:
            users = await client.list_all_users()
            return TargetView(users, schemas, spc, _calls(client), full=True)
        semaphore = asyncio.Semaphore(4)

        async def look_up(eid: str, tid: str | None, user_name: str | None) -> list[dict]:
            async with semaphore:
                if tid:
                    try:
                        return [(await client.get_user(tid))[0]]
                    except ScimNotFound:
                        pass
                found = [await client.find_user("externalId", eid)]
                if user_name:
                    found.append(await client.find_user("userName", user_name))
                return [u for u in found if u]

        found = await asyncio.gather(*(look_up(e, t, n) for e, (t, n) in only.items()))
        users = list({u["id"]: u for batch in found for u in batch}.values())
        return TargetView(users, schemas, spc, _calls(client), full=False)


def _incremental_scope(
    desired: Mapping[str, Any], store: StateStore, params: RunParams, config: SyncConfig
) -> tuple[dict[str, Any], set[str]] | None:
    """Which users an incremental run must read, or None when this run reads everything.

    A run reads everything on the first run, when forced (param ``full_reconcile``), when the
    last full read is older than ``sync.reconcile_every_days``, or when so many users changed
    that listing is cheaper than looking each one up.
    """
    from genesys_sync.plan import fingerprint

    last = store.get_meta(LAST_FULL_READ)
    if params.full_reconcile or not last:
        return None
    age = datetime.now(UTC) - datetime.fromisoformat(last)
    if age.total_seconds() > config.sync.reconcile_every_days * 86400:
        return None
    known = store.fingerprints()
    ids = {eid: tid for eid, (tid, _, _) in known.items()}
    unchanged = {
        eid
        for eid, user in desired.items()
        if eid in known
        and known[eid][1] == fingerprint(user, ids.get(user.manager_employee_id or ""))
        # Never created (on leave or terminated before their first sync): nothing to write;
        # a same-named user made by hand is adopted at the next full reconciliation.
        or eid not in known
        and not user.active
    }
    scope = {
        eid: (ids.get(eid), user.user_name) for eid, user in desired.items() if eid not in unchanged
    }
    if not params.employee_ids:  # managed users missing from a full export
        scope |= {
            eid: (tid, None)
            for eid, (tid, _, active) in known.items()
            if eid not in desired and active
        }
    list_cost = 2 * (len(known) // 25 + 1)  # active + inactive pages of 25
    return (scope, unchanged) if len(scope) < list_cost else None


def _to_date(value: Any) -> date | None:
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(str(value)[:10])


def plan_stage(
    run_id: str,
    accepted_path: str,
    params: RunParams,
    config: SyncConfig,
    scim: ScimConnectionConfig,
    logical_date: date | None = None,
) -> dict[str, Any]:
    """Plan the run against the target; write the plan artifact and the batch files."""
    import pandas as pd

    from genesys_sync.mapping import desired_users, supported_paths
    from genesys_sync.scim.bulk import bulk_limits

    run_dir = settings.run_dir(run_id)
    for stale in ("batches", "results"):  # a retried plan starts from a clean slate
        shutil.rmtree(run_dir / stale, ignore_errors=True)
    frame = pd.read_parquet(accepted_path)
    desired = desired_users(frame.to_dict("records"))
    unknown: list[str] = []
    if params.employee_ids:
        unknown = sorted(set(params.employee_ids) - set(desired))
        desired = {eid: u for eid, u in desired.items() if eid in set(params.employee_ids)}

    store = StateStore()
    try:
        dry_run, dry_reason = params.dry_run, "param dry_run" if params.dry_run else None
        newest = _to_date(store.newest_applied_export_date(exclude_run_id=run_id))
        run_day = _to_date(logical_date)
        if not dry_run and newest and run_day and run_day < newest and not params.force:
            dry_run = True
            dry_reason = (
                f"backfill safety: this export ({run_day}) is older than the newest applied "
                f"export ({newest}); rerun with param force=true to apply it"
            )
        scope = _incremental_scope(desired, store, params, config)
        view = asyncio.run(_read_target(scim, scope[0] if scope else None))
        unchanged = scope[1] if scope else set()
        managed = store.managed_ids()
        policy = config.sync
        plan = plan_sync(
            {eid: u for eid, u in desired.items() if eid not in unchanged},
            view.users,
            PlanOptions(
                paths=supported_paths(view.schemas),
                full_export=not params.employee_ids,
                approve_removals=params.approve_removals,
                removal_threshold_count=policy.deletion_threshold_count,
                removal_threshold_fraction=policy.deletion_threshold_fraction,
                delete_after_days=policy.delete_after_days,
                # Capacity needs every active user: checked on full reads (and by the gate).
                max_tenant_users=config.gate.max_tenant_users if view.full else None,
                now=datetime.now(UTC),
                managed_total=None if view.full else len(managed),
            ),
            managed={eid: tid for eid, tid in managed.items() if eid not in unchanged},
            deactivated_at=store.deactivated_since(),
            known_ids=managed,
        )
        plan.changes += [
            Change(
                Kind.UNCHANGED,
                eid,
                target_id=managed[eid],
                reason="unchanged since the last applied run",
            )
            if eid in managed
            else Change(Kind.SKIPPED, eid, reason=f"not created: status {desired[eid].status}")
            for eid in sorted(unchanged)
        ]
        calls = view.calls
        # Users carrying our externalId are ours even if the state was lost.
        store.adopt_matched(
            {
                c.employee_id: (
                    c.target_id,
                    c.employee_id in desired
                    and desired[c.employee_id].active
                    and c.kind is not Kind.DEACTIVATE,
                )
                for c in plan.changes
                if c.target_id
                and c.kind in (Kind.UNCHANGED, Kind.UPDATE, Kind.DEACTIVATE, Kind.REACTIVATE)
                and "externalId" not in c.changed  # an adoption counts once it is written
            }
        )
        store.record_verified(
            {
                c.employee_id: (c.target_id, c.fingerprint)
                for c in plan.changes
                if c.kind is Kind.UNCHANGED and c.fingerprint and c.target_id
            }
        )
        if view.full:
            store.set_meta(LAST_FULL_READ, datetime.now(UTC).isoformat())
    finally:
        store.close()

    counts = plan.counts()
    supported, max_ops, max_payload = bulk_limits(view.spc)
    bulk = {
        "supported": supported and max_ops > 0 and max_payload > 0 and scim.flavor != "genesys",
        "max_operations": max_ops,
        "max_payload": max_payload,
    }
    plan_doc = {
        "run_id": run_id,
        "dry_run": dry_run,
        "dry_run_reason": dry_reason,
        "employee_ids": list(params.employee_ids),
        "unknown_employee_ids": unknown,
        "counts": counts,
        "managed_users": plan.managed_count,
        "removal_threshold": plan.removal_threshold,
        "active_after": plan.active_after,
        "bulk": bulk,
        "api_calls": calls,
        "target_read": "full" if view.full else f"incremental ({len(scope[0])} users looked up)",
        "changes": [c.summary() for c in plan.changes if c.kind is not Kind.UNCHANGED],
    }
    reporting.write_json(run_dir / "plan.json", plan_doc)
    (run_dir / "plan.md").write_text(plan_markdown(plan_doc), encoding="utf-8")

    phase1 = [c for c in plan.writes if c.phase == 1]
    phase2 = [c for c in plan.writes if c.phase == 2]
    out = {
        "dry_run": dry_run,
        "planned": counts,
        "held": counts["held"],
        "phase1": [] if dry_run else write_batches(run_dir, "phase1", phase1, config, bulk),
        "phase2": [] if dry_run else write_batches(run_dir, "phase2", phase2, config, bulk),
        "held_batches": [] if dry_run else write_batches(run_dir, "held", plan.held, config, bulk),
        "plan_path": str(run_dir / "plan.json"),
    }
    reporting.write_json(run_dir / "batches" / "index.json", out)
    reporting.audit("PLANNED", run_id, dry_run=dry_run, counts=counts, reason=dry_reason)
    return out


def planned_batches(run_id: str, phase: str) -> list[str]:
    """The batch files of one phase of the run's plan (``phase1``, ``phase2``, ``held``)."""
    index = _read_optional(settings.run_dir(run_id) / "batches" / "index.json") or {}
    return list(index.get(phase) or [])


def link_batches(run_id: str) -> list[str]:
    """The manager-link batches, with the target ids that the first wave's creates produced
    filled in (saves two look-ups per link; unresolved ones are looked up by the job)."""
    run_dir = settings.run_dir(run_id)
    ids: dict[str, str] = {}
    for results_file in sorted((run_dir / "results").glob("phase1-*.json")):
        for r in reporting.read_json(results_file)["results"]:
            if r.get("target_id") and r.get("outcome") in ("applied", "unchanged"):
                ids[r["employee_id"]] = r["target_id"]
    paths = planned_batches(run_id, "phase2")
    for path in paths:
        batch = reporting.read_json(Path(path))
        for change in batch["changes"]:
            change["target_id"] = change.get("target_id") or ids.get(change["employee_id"])
            manager_id = ids.get(change.get("manager_employee_id") or "")
            if manager_id:
                change["desired"] = {MANAGER_PATH: manager_id}
        reporting.write_json(Path(path), batch)
    return paths


def write_batches(
    run_dir: Path,
    phase: str,
    changes: Sequence[Change],
    config: SyncConfig,
    bulk: Mapping[str, Any] | None = None,
) -> list[str]:
    """Write a phase's changes as batch files; return their paths (the mapped tasks' input)."""
    paths = []
    for n, chunk in enumerate(batches(list(changes), config.sync.batch_size), start=1):
        path = run_dir / "batches" / f"{phase}-{n:04d}.json"
        batch = {
            "batch_id": path.stem,
            "bulk": dict(bulk or {}),
            "changes": [c.to_dict() for c in chunk],
        }
        reporting.write_json(path, batch)
        paths.append(str(path))
    return paths


def plan_markdown(plan_doc: Mapping[str, Any]) -> str:
    """The human-readable plan: one section per change type, employee ids and attribute names."""
    lines = [f"# Sync plan for run {plan_doc['run_id']}", ""]
    if plan_doc.get("dry_run"):
        lines += [f"Dry run ({plan_doc.get('dry_run_reason')}): nothing is written.", ""]
    counts = plan_doc["counts"]
    lines += ["| change | count |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in counts.items() if v]
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for change in plan_doc["changes"]:
        by_kind.setdefault(change["kind"], []).append(change)
    for kind, changes in by_kind.items():
        lines += ["", f"## {kind} ({len(changes)})", ""]
        for c in changes:
            detail = ", ".join(c.get("changed") or []) or c.get("reason") or ""
            held = " **held: needs approval**" if c.get("held") else ""
            lines.append(f"- {c['employee_id']}: {detail}{held}")
    return "\n".join(lines) + "\n"


# --- apply (the async part runs in the triggerer) ---------------------------------------------


async def apply_batch_file(scim: ScimConnectionConfig, batch_path: str) -> dict[str, Any]:
    """Apply one batch file and write its results file; return counts and the results path.

    Uses RFC 7644 Bulk when the plan found the target advertising it (never on Genesys)."""
    from genesys_sync.apply import BatchApplier, BulkBatchApplier, summarise
    from genesys_sync.scim.client import AsyncScimClient

    batch = await asyncio.to_thread(reporting.read_json, Path(batch_path))
    changes = [Change.from_dict(c) for c in batch["changes"]]
    bulk = batch.get("bulk") or {}
    async with AsyncScimClient(scim) as client:
        if bulk.get("supported") and scim.flavor != "genesys":
            applier = BulkBatchApplier(
                client, bulk["max_operations"], bulk["max_payload"], scim.users_path or "/Users"
            )
        else:
            applier = BatchApplier(client)
        results = await applier.apply(changes)
        calls = _calls(client)
    for change, result in zip(changes, results, strict=True):
        result.fingerprint = change.fingerprint
    results_file = results_path(batch_path)
    earlier = await asyncio.to_thread(_read_optional, results_file)
    data = merge_attempts(earlier["results"] if earlier else [], [r.to_dict() for r in results])
    summary = summarise(data)
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


# --- finish ---------------------------------------------------------------------------------


def finish_stage(
    run_id: str,
    config: SyncConfig,
    started_at: datetime | None,
    logical_date: date | None = None,
    employee_ids: Sequence[str] = (),
) -> dict[str, Any]:
    """Collect the batches' results, update the state, write report.json and the audit trail.

    Runs whatever happened upstream, so a half-applied run always leaves a record; the
    verdict (``check_outcome``) comes after the HR system has been told.
    """
    run_dir = settings.run_dir(run_id)
    gate = _read_optional(run_dir / "gate.json") or {}
    plan_doc = _read_optional(run_dir / "plan.json") or {}
    planned = plan_doc.get("counts") or {}
    plan_out = _read_optional(run_dir / "batches" / "index.json") or {}
    expected = [*plan_out.get("phase1", []), *plan_out.get("phase2", [])]
    held_files = list(plan_out.get("held_batches", []))
    results: list[dict[str, Any]] = []
    api_calls = int(gate.get("api_calls") or 0) + int(plan_doc.get("api_calls") or 0)
    missing = []
    held_applied = 0
    # Held batches have results only when a human approved them: absent is not missing.
    for batch_path, held in [(p, False) for p in expected] + [(p, True) for p in held_files]:
        data = _read_optional(results_path(batch_path))
        if data is None:
            if not held:
                missing.append(Path(batch_path).stem)
            continue
        results.extend(data["results"])
        api_calls += int(data.get("api_calls") or 0)
        held_applied += len(data["results"]) if held else 0

    counts = reporting.count_applied(results)
    writes = sum(counts["applied"].values())
    attempted = len(results)
    failed = counts["outcomes"]["failed"]
    failure_share = failed / attempted if attempted else 0.0
    unreachable = sum(1 for r in results if r.get("unreachable"))
    dry_run = bool(plan_out.get("dry_run", plan_doc.get("dry_run", False)))
    if not plan_out or missing or unreachable or failure_share > config.sync.max_failure_fraction:
        status = "failed"
    else:
        status = "success"

    store = StateStore()
    try:
        store.record_results(results, run_id)
        if plan_doc and not dry_run and status == "success":
            store.record_export(
                run_id,
                logical_date,
                int(gate.get("row_count") or 0),
                int(gate.get("accepted_count") or 0),
                applied=True,
                full_export=not employee_ids,
            )
    finally:
        store.close()

    duration = (datetime.now(UTC) - started_at).total_seconds() if started_at else 0.0
    report = {
        "run_id": run_id,
        "status": status,
        "dry_run": dry_run,
        "dry_run_reason": plan_doc.get("dry_run_reason"),
        "logical_date": str(logical_date) if logical_date else None,
        "export_location": gate.get("export_location"),
        "rows": gate.get("row_count", 0),
        "rejected": gate.get("rejected_count", 0),
        "planned": planned,
        "applied": counts["applied"],
        "unchanged": planned.get("unchanged", 0),
        "conflict": planned.get("conflict", 0) + counts["outcomes"]["conflict"],
        "failed": failed,
        "held": planned.get("held", 0) - held_applied,
        "writes": writes,
        "missing_batches": missing,
        "failure_share": round(failure_share, 4),
        "api_calls": api_calls,
        "duration_seconds": round(duration, 3),
        "report_path": str(run_dir / "report.json"),
        "plan_path": str(run_dir / "plan.json") if plan_doc else None,
        "plan_summary_path": str(run_dir / "plan.md") if plan_doc else None,
        "rejects_path": gate.get("rejects_path"),
        "data_docs_path": gate.get("data_docs_path"),
        "finished_at": reporting.utcnow_iso(),
    }
    reporting.audit_operations(run_id, results)
    reporting.audit(
        "SYNC_SUCCESS" if status == "success" else "SYNC_FAILURE",
        run_id,
        writes=writes,
        failed=failed,
        api_calls=api_calls,
        latency_ms=int(duration * 1000),
        dry_run=dry_run,
        missing_batches=missing,
    )
    report["failure_reason"] = (
        None
        if status == "success"
        else _failure_reason(missing, unreachable, counts, attempted, config, bool(plan_out), gate)
    )
    reporting.write_json(run_dir / "report.json", report)
    print(reporting.format_summary(report))
    return {
        k: report[k]
        for k in ("status", "writes", "failed", "held", "api_calls", "report_path", "dry_run")
    }


def _failure_reason(missing, unreachable, counts, attempted, config, planned, gate) -> str:
    if missing:
        return f"{len(missing)} batch job(s) did not finish ({', '.join(missing)})"
    if unreachable:
        return f"{unreachable} operation(s) could not reach the target"
    if planned:
        return (
            f"{counts['outcomes']['failed']} of {attempted} operations failed "
            f"(limit {config.sync.max_failure_fraction:.0%})"
        )
    if gate and not gate.get("passed", True):
        return "the validation gate blocked the export (nothing was written)"
    return "the run stopped before its plan was made (nothing was written)"


def check_outcome(run_id: str, failed_tasks: Sequence[str] = ()) -> dict[str, Any]:
    """The run's verdict: raise ``SyncFailed`` unless every task and the report say success."""
    path = settings.run_dir(run_id) / "report.json"
    report = _read_optional(path)
    if report is None:
        raise SyncFailed(f"Sync run {run_id} wrote no report: see the report task's log.")
    if failed_tasks:
        raise SyncFailed(
            f"Sync run {run_id} failed: task(s) {', '.join(failed_tasks)} failed "
            f"({report.get('failure_reason') or 'see their logs'}). Report: {path}"
        )
    if report["status"] != "success":
        raise SyncFailed(
            f"Sync run {run_id} failed: {report.get('failure_reason')}. Report: {path}"
        )
    return {"status": "success", "writes": report["writes"], "report_path": str(path)}


def _read_optional(path: Path) -> Any:
    try:
        return reporting.read_json(path)
    except FileNotFoundError:
        return None
