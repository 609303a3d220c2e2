"""The plan stage: read the target (all of it or only what changed), plan, write the batches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from genesys_sync import audit, runs
from genesys_sync import report as reporting
from genesys_sync.config import SyncConfig
from genesys_sync.mapping import MANAGER_PATH
from genesys_sync.plan import Change, Kind, PlanOptions, batches, order_creates, plan_sync
from genesys_sync.runs import BatchIndex, Run
from genesys_sync.scim.connection import ScimConnectionConfig
from genesys_sync.stages.common import (
    PlanStopped,
    RunParams,
    client_calls,
    client_stats,
    names_unreachable,
)
from genesys_sync.state import StateStore

log = logging.getLogger(__name__)


@dataclass
class TargetView:
    """What the plan stage read of the target: all of it, or only the users that changed."""

    users: list[dict[str, Any]]
    schemas: list[dict[str, Any]]
    spc: dict[str, Any]
    calls: int
    full: bool
    stats: dict[str, Any] = field(default_factory=dict)  # the client's (``api_stats``)


LAST_FULL_READ = "last_full_reconcile"


async def _read_target(
    scim: ScimConnectionConfig,
    only: Mapping[str, Any] | None = None,
    managed_ids: Mapping[str, str] | None = None,
    discovery: Mapping[str, Any] | None = None,
    applied: Mapping[str, tuple[str, str | None, Mapping[str, Any]]] | None = None,
) -> TargetView:
    """Read the whole target, or (``only``: employee id -> (target id or None, userName or
    None)) just those users, one look-up each, a few at a time.

    A full read is checked page by page (``ScimListingInconsistent``), and a managed user
    (``managed_ids``: employee id -> target id) that the listing lacks is looked up by id
    before the plan decides anything about it. ``discovery`` (the cached ServiceProviderConfig
    and Schemas, see :func:`_cached_discovery`) spares an incremental read its discovery
    requests: one with nothing to look up sends no request at all. A full read asks for the
    owned attributes only, at the largest page the target allows
    (:func:`~genesys_sync.scim.listing.read_all_users`; ``applied``: the state's
    employee id -> (target id, ETag, last-applied values))."""
    from genesys_sync.mapping import supported_paths, unsupported_paths
    from genesys_sync.scim.client import AsyncScimClient
    from genesys_sync.scim.errors import ScimNotFound

    if only is not None and not only and discovery:
        return TargetView([], list(discovery["schemas"]), dict(discovery["spc"]), 0, full=False)
    async with AsyncScimClient(scim) as client:
        if discovery:
            spc, schemas = dict(discovery["spc"]), list(discovery["schemas"])
        else:
            spc = await client.service_provider_config()
            schemas = await client.schemas()
        not_synced = unsupported_paths(schemas)
        if not_synced:
            log.warning(
                "not synced: the target does not declare %s in its /Schemas",
                ", ".join(not_synced),
            )
        semaphore = asyncio.Semaphore(4)
        if only is None:
            from genesys_sync.scim.listing import read_all_users

            known = {
                tid: (eid, etag, values) for eid, (tid, etag, values) in (applied or {}).items()
            }
            read = await read_all_users(client, supported_paths(schemas), spc, known)
            users = read.users
            log.info(
                "full read: pages of %d%s; %d user(s) with their expensive attributes from the "
                "state (ETag unchanged), %d read by id%s",
                read.page_size,
                " (owned cheap attributes)" if read.trimmed else " (owned attributes)",
                read.from_state,
                read.read_by_id,
                ", then an untrimmed listing" if read.untrimmed_listing else "",
            )
            listed = {u.get("id") for u in users}
            owners = {u.get("externalId") for u in users}
            lacking = {
                eid: tid
                for eid, tid in (managed_ids or {}).items()
                if tid not in listed and eid not in owners
            }

            async def by_id(tid: str) -> dict[str, Any] | None:
                async with semaphore:
                    try:
                        return (await client.get_user(tid))[0]
                    except ScimNotFound:
                        return None

            if lacking:
                found = [u for u in await asyncio.gather(*map(by_id, lacking.values())) if u]
                log.warning(
                    "the listing lacked %d managed user(s); looked up by id: %d found (%s)",
                    len(lacking),
                    len(found),
                    ", ".join(sorted(lacking)[:20]),
                )
                users += [u for u in found if u.get("id") not in listed]
            return TargetView(
                users, schemas, spc, client_calls(client), full=True, stats=client_stats(client)
            )

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
        return TargetView(
            users, schemas, spc, client_calls(client), full=False, stats=client_stats(client)
        )


def _full_read_due(store: StateStore, params: RunParams, config: SyncConfig) -> bool:
    """Whether this run reads the whole target: the first run, when forced (param
    ``full_reconcile``), or when the last full read is older than
    ``sync.reconcile_every_days``."""
    last = store.get_meta(LAST_FULL_READ)
    if params.full_reconcile or not last:
        return True
    age = datetime.now(UTC) - datetime.fromisoformat(last)
    return age.total_seconds() > config.sync.reconcile_every_days * 86400


@dataclass
class Scope:
    """What an incremental run reads and what it plans from the state alone.

    ``look_up``: employee id -> (target id or None, userName or None), read one by one;
    ``unchanged``: nothing to send; ``from_state``: the users as the sync last left them
    (:func:`~genesys_sync.plan.user_from_applied`), diffed without a read. New hires are in
    none of them: they are created directly (a 409 is resolved by the applier's look-up)."""

    look_up: dict[str, tuple[str | None, str | None]]
    unchanged: set[str]
    from_state: list[dict[str, Any]] = field(default_factory=list)


def _incremental_scope(
    desired: Mapping[str, Any],
    store: StateStore,
    params: RunParams,
    config: SyncConfig,
    quarantined: Collection[str] = frozenset(),
    paths: Sequence[str] | None = None,
) -> Scope | None:
    """Which users an incremental run must read, or None when this run reads everything.

    A run reads everything when a full read is due (:func:`_full_read_due`) or when so many
    users must be looked up that listing is cheaper. A user whose last-applied values and ETag
    the state holds is planned from them (``paths``: the attribute paths the target supports;
    without them every changed user is looked up). Quarantined employees are present but not
    synced: they are not read.
    """
    from genesys_sync.plan import fingerprint, same_as_applied, user_from_applied

    if _full_read_due(store, params, config):
        return None
    authoritative = config.sync.roles_authoritative
    known = store.fingerprints()
    last = store.applied() if paths is not None else {}
    ids = {eid: tid for eid, (tid, _, _) in known.items()}
    unchanged: set[str] = set()
    look_up: dict[str, tuple[str | None, str | None]] = {}
    from_state: list[dict[str, Any]] = []
    for eid, user in desired.items():
        manager_id = ids.get(user.manager_employee_id or "")
        if eid not in known:
            # Never created (on leave or terminated before their first sync): nothing to
            # write; a same-named user made by hand is adopted at the next full
            # reconciliation. An active one is a new hire: created directly.
            if not user.active:
                unchanged.add(eid)
            continue
        if _manager_created_now(user, desired, known):
            look_up[eid] = (ids.get(eid), user.user_name)  # planned with its manager's link
        elif known[eid][1] == fingerprint(user, manager_id, authoritative):
            unchanged.add(eid)
        elif eid in last and paths is not None:
            tid, etag, applied = last[eid]
            if same_as_applied(user, applied, paths, manager_id, authoritative):
                unchanged.add(eid)
            else:
                from_state.append(user_from_applied(eid, tid, etag, applied))
        else:
            look_up[eid] = (ids.get(eid), user.user_name)
    if not params.employee_ids:  # managed users missing from a full export
        for eid, (tid, _, active) in known.items():
            if eid in desired or eid in quarantined or not active:
                continue
            if eid in last:
                from_state.append(user_from_applied(eid, *last[eid]))
            else:
                look_up[eid] = (tid, None)
    list_cost = 2 * (len(known) // 25 + 1)  # active + inactive pages of 25
    return Scope(look_up, unchanged, from_state) if len(look_up) < list_cost else None


def _manager_created_now(user: Any, desired: Mapping[str, Any], known: Mapping[str, Any]) -> bool:
    """Whether ``user``'s manager is an active employee the state holds no target id for: it
    is created in this run (or is created again after a conflict), so ``user`` cannot be
    judged from the state, where it has no manager, and is read and linked instead."""
    mid = user.manager_employee_id
    manager = desired.get(mid or "")
    return (
        bool(mid)
        and mid != user.employee_id
        and mid not in known
        and bool(manager and manager.active)
    )


DISCOVERY = "discovery"


def _cached_discovery(store: StateStore, scim: ScimConnectionConfig) -> dict[str, Any] | None:
    """The target's ServiceProviderConfig and Schemas as last read (None: read them)."""
    cached = store.get_document(DISCOVERY)
    if not isinstance(cached, dict) or cached.get("base_url") != scim.base_url:
        return None
    if not isinstance(cached.get("spc"), dict) or not isinstance(cached.get("schemas"), list):
        return None
    return cached


async def _discover(scim: ScimConnectionConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The target's ServiceProviderConfig and Schemas, as cached, and the requests it took."""
    from genesys_sync.scim.client import AsyncScimClient

    async with AsyncScimClient(scim) as client:
        spc = await client.service_provider_config()
        schemas = await client.schemas()
        return {"base_url": scim.base_url, "spc": spc, "schemas": schemas}, client_stats(client)


def _store_discovery(store: StateStore, scim: ScimConnectionConfig, view: TargetView) -> None:
    store.set_document(
        DISCOVERY, {"base_url": scim.base_url, "spc": view.spc, "schemas": view.schemas}
    )


def _to_date(value: Any) -> date | None:
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(str(value)[:10])


@names_unreachable("plan")
def plan_stage(
    run_id: str,
    accepted_path: str,
    params: RunParams,
    config: SyncConfig,
    scim: ScimConnectionConfig,
    logical_date: date | None = None,
) -> dict[str, Any]:
    """Plan the run against the target; write the plan artifact and the batch files.

    Employees the gate quarantined are present but not synced: left exactly as they are.
    A target listing that contradicts itself stops the plan (``PlanStopped``) before any
    batch is written."""
    import pyarrow.parquet

    from genesys_sync.mapping import desired_users, supported_paths, unsupported_paths
    from genesys_sync.scim.bulk import bulk_limits
    from genesys_sync.scim.errors import ScimListingInconsistent
    from genesys_sync.validation.quarantine import read_quarantine

    run = Run(run_id)
    run.clear_batches()  # a retried plan starts from a clean slate
    # The accepted rows as dicts, built by Arrow (several times faster than pandas' to_dict).
    with runs.store_path(accepted_path).open("rb") as accepted:
        table = pyarrow.parquet.read_table(accepted)
    desired = desired_users(table.to_pylist(), config.sync.phone_types)
    quarantine = read_quarantine(run.root)
    quarantined = set(quarantine.employee_ids) if quarantine else set()
    desired = {eid: u for eid, u in desired.items() if eid not in quarantined}
    hold_missing = None
    if quarantine is None:
        hold_missing = "the gate wrote no quarantine list, so the export cannot be trusted full"
    elif quarantine.unreadable_rows:
        hold_missing = (
            f"{quarantine.unreadable_rows} quarantined row(s) have no readable employee id "
            "and may be these employees"
        )
    unknown: list[str] = []
    if params.employee_ids:
        wanted = set(params.employee_ids)
        unknown = sorted(wanted - set(desired) - quarantined)
        desired = {eid: u for eid, u in desired.items() if eid in wanted}
        quarantined &= wanted

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
        full_due = _full_read_due(store, params, config)
        discovery = None if full_due else _cached_discovery(store, scim)
        discovery_stats: dict[str, Any] = {}
        if discovery is None and not full_due:  # dropped: read once, before planning on it
            discovery, discovery_stats = asyncio.run(_discover(scim))
            store.set_document(DISCOVERY, discovery)
        paths = supported_paths(discovery["schemas"]) if discovery else None
        scope = _incremental_scope(desired, store, params, config, quarantined, paths)
        managed = store.managed_ids()
        try:
            view = asyncio.run(
                _read_target(
                    scim,
                    scope.look_up if scope else None,
                    managed,
                    discovery,  # None on a full reconciliation: read again
                    store.applied() if scope is None else None,
                )
            )
        except ScimListingInconsistent as exc:
            message = (
                f"The plan stopped: {exc}. A partial listing would make present users look "
                "missing, so nothing was planned or written. Check the target's paging "
                "(startIndex, count, totalResults) and rerun."
            )
            run.save(runs.PlanDocument(run_id=run_id, error=message, check=exc.check))
            audit.audit("PLAN_STOPPED", run_id, check=exc.check)
            raise PlanStopped(message) from exc
        if discovery is None:  # read from the target: cache it for incremental runs
            _store_discovery(store, scim, view)
        unchanged = scope.unchanged if scope else set()
        policy = config.sync
        plan = plan_sync(
            {eid: u for eid, u in desired.items() if eid not in unchanged},
            [*view.users, *(scope.from_state if scope else [])],
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
                # A phone column the export lacks: its numbers are left alone this run.
                phone_types=tuple(
                    t for c, t in policy.phone_types.items() if c in table.column_names
                ),
                roles_authoritative=policy.roles_authoritative,
                hold_missing_reason=hold_missing,
            ),
            managed={eid: tid for eid, tid in managed.items() if eid not in unchanged},
            deactivated_at=store.deactivated_since(),
            known_ids=managed,
            quarantined=quarantined,
            granted=store.granted_roles(),
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
        calls = view.calls + int(discovery_stats.get("total") or 0)
        api_stats = reporting.merge_client_stats([view.stats, discovery_stats])
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
        # Seen holding what HR lists: those roles are the sync's from now on (a dry run only
        # forgets roles HR no longer lists; it never gains ownership).
        store.record_granted_roles(
            {
                c.employee_id: c.granted_roles
                for c in plan.changes
                if c.kind is Kind.UNCHANGED and c.granted_roles is not None
            },
            shrink_only=dry_run,
        )
        # Seen holding what HR lists: what the sync would apply is what it last applied (a dry
        # run claims nothing).
        if not dry_run:
            store.record_applied(
                {
                    c.employee_id: (c.target_id, c.etag, c.applied)
                    for c in plan.changes
                    if c.kind is Kind.UNCHANGED and c.applied is not None and c.target_id
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
    plan_doc = runs.PlanDocument(
        run_id=run_id,
        dry_run=dry_run,
        dry_run_reason=dry_reason,
        employee_ids=list(params.employee_ids),
        unknown_employee_ids=unknown,
        counts=counts,
        managed_users=plan.managed_count,
        removal_threshold=plan.removal_threshold,
        active_after=plan.active_after,
        bulk=bulk,
        api_calls=calls,
        api_stats=api_stats,
        target_read="full"
        if view.full
        else f"incremental ({len(scope.look_up)} users looked up"
        + (f", {len(scope.from_state)} planned from the state)" if scope.from_state else ")"),
        # Mapped attributes the target does not declare: never synced there (named once).
        not_synced_attributes=list(unsupported_paths(view.schemas)),
        quarantined_employee_ids=sorted(quarantined),
        changes=[c.summary() for c in plan.changes if c.kind is not Kind.UNCHANGED],
    )
    run.save(plan_doc)
    run.write_text(runs.PLAN_MARKDOWN, plan_markdown(plan_doc))

    # New users in dependency order: a create after its manager's, with manager.value set;
    # the second wave links only those whose order a batch cannot keep.
    phase1, phase2 = order_creates(
        [c for c in plan.writes if c.phase == 1],
        [c for c in plan.writes if c.phase == 2],
        config.sync.batch_size,
    )
    index = BatchIndex(
        dry_run=dry_run,
        planned=counts,
        held=counts["held"],
        phase1=[] if dry_run else write_batches(run, "phase1", phase1, config, bulk),
        phase2=[] if dry_run else write_batches(run, "phase2", phase2, config, bulk),
        held_batches=[] if dry_run else write_batches(run, "held", plan.held, config, bulk),
        plan_path=str(run.path(runs.PLAN)),
    )
    run.save(index)
    audit.audit("PLANNED", run_id, dry_run=dry_run, counts=counts, reason=dry_reason)
    return index.to_dict()


def link_batches(run_id: str, planned: Sequence[str]) -> list[str]:
    """The second wave's batches (``planned``: the plan's ``phase2``, from its XCom),
    with the target ids that the first wave's creates produced filled in: the new users under
    a top manager (``plan.order_creates``), created with their manager set, and the manager
    links that remain (saves two look-ups per link; unresolved ones are looked up by the job).
    Each is written as its own artifact (``batches/linked/``): the planned batch stays as
    planned. Returns the linked batches' paths."""
    from genesys_sync.apply import with_manager

    run = Run(run_id)
    ids: dict[str, str] = {}
    for done in run.results("phase1"):
        for r in done.results:
            if r.get("target_id") and r.get("outcome") in ("applied", "unchanged"):
                ids[r["employee_id"]] = r["target_id"]
    paths = list(planned)
    linked = []
    for path in paths:
        batch = runs.read_batch(path)
        for n, change in enumerate(batch.changes):
            manager_id = ids.get(change.get("manager_employee_id") or "")
            if change["kind"] == str(Kind.CREATE):  # a second-wave create: under a top manager
                if manager_id and not change.get("after_manager"):
                    filled = with_manager(Change.from_dict(change), manager_id)
                    batch.changes[n] = filled.to_dict()
                continue
            change["target_id"] = change.get("target_id") or ids.get(change["employee_id"])
            if manager_id:
                change["desired"] = {MANAGER_PATH: manager_id}
                change["applied"] = {MANAGER_PATH: manager_id}
        linked.append(str(runs.write_linked(path, batch)))
    return linked


def write_batches(
    run: Run,
    phase: str,
    changes: Sequence[Change] | Sequence[Sequence[Change]],
    config: SyncConfig,
    bulk: Mapping[str, Any] | None = None,
) -> list[str]:
    """Write a phase's changes (or its changes already cut into batches) as batch files;
    return their paths (the mapped tasks' input)."""
    paths = []
    chunks = (
        [list(c) for c in changes]
        if changes and not isinstance(changes[0], Change)
        else batches(list(changes), config.sync.batch_size)  # type: ignore[arg-type]
    )
    for n, chunk in enumerate(chunks, start=1):
        batch = runs.Batch(
            run_id=run.run_id,
            batch_id=f"{phase}-{n:04d}",
            bulk=dict(bulk or {}),
            changes=[c.to_dict() for c in chunk],
        )
        paths.append(str(run.write_batch(batch)))
    return paths


def plan_markdown(plan_doc: runs.PlanDocument) -> str:
    """The human-readable plan: one section per change type, employee ids and attribute names.

    Every value in it is escaped (``markup.md_text``): an employee id, a reason or a run id
    shows as text, never as HTML, a link or a formula."""
    from genesys_sync.markup import md_code, md_text

    lines = [f"# Sync plan for run {md_text(plan_doc.run_id)}", ""]
    if plan_doc.dry_run:
        reason = md_text(plan_doc.dry_run_reason)
        lines += [f"Dry run ({reason}): nothing is written.", ""]
    counts = plan_doc.counts
    lines += ["| change | count |", "|---|---|"]
    lines += [f"| {md_text(k)} | {md_text(v)} |" for k, v in counts.items() if v]
    if plan_doc.not_synced_attributes:
        lines += [
            "",
            "**Not synced**: the target does not declare "
            + ", ".join(md_code(p) for p in plan_doc.not_synced_attributes)
            + " in its /Schemas.",
        ]
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for change in plan_doc.changes:
        by_kind.setdefault(change["kind"], []).append(change)
    for kind, changes in by_kind.items():
        lines += ["", f"## {md_text(kind)} ({len(changes)})", ""]
        for c in changes:
            detail = ", ".join(c.get("changed") or []) or c.get("reason") or ""
            held = " **held: needs approval**" if c.get("held") else ""
            lines.append(f"- {md_text(c['employee_id'])}: {md_text(detail)}{held}")
    return "\n".join(lines) + "\n"
