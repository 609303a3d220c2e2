"""The sync's stages as plain functions: validate, plan, finish, notify.

The DAG's tasks are thin wrappers around these. They take ids, dates, params and paths, keep
everything bulky or personal on disk under the run's directory, and return small dicts
(counts and paths) fit for XCom.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from genesys_sync import audit, run_lock, settings
from genesys_sync import report as reporting
from genesys_sync.config import SyncConfig
from genesys_sync.mapping import MANAGER_PATH
from genesys_sync.plan import Change, Kind, PlanOptions, batches, order_creates, plan_sync
from genesys_sync.scim.connection import ScimConnectionConfig
from genesys_sync.state import StateStore

log = logging.getLogger(__name__)


class GateBlocked(RuntimeError):
    """The export failed a dataset-level check: nothing was written."""


class SyncFailed(RuntimeError):
    """The run applied its plan, but too much of it failed or the target was unreachable."""


class PlanStopped(RuntimeError):
    """The target could not be read in a way the plan can trust: nothing was written."""


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


CATALOGUE = "catalogue"
CATALOGUE_MISSES = "catalogue_misses"
CATALOGUE_RULES = ("unknown_role", "unknown_division")


def _cached_catalogue(store: StateStore, scim: ScimConnectionConfig, config: SyncConfig) -> Any:
    """The role and division names as last read, while younger than
    ``sync.reconcile_every_days`` (None: read them)."""
    from genesys_sync.validation import Catalogue

    cached = store.get_document(CATALOGUE)
    if not isinstance(cached, dict) or cached.get("api_url") != scim.api_url:
        return None
    try:
        age = datetime.now(UTC) - datetime.fromisoformat(cached["read_at"])
    except (KeyError, TypeError, ValueError):
        return None
    if age.total_seconds() > config.sync.reconcile_every_days * 86400:
        return None
    return Catalogue(
        roles=frozenset(cached.get("roles") or ()),
        divisions=frozenset(cached.get("divisions") or ()),
    )


def _store_catalogue(store: StateStore, scim: ScimConnectionConfig, catalogue: Any) -> None:
    store.set_document(
        CATALOGUE,
        {
            "api_url": scim.api_url,
            "read_at": datetime.now(UTC).isoformat(),
            "roles": sorted(catalogue.roles),
            "divisions": sorted(catalogue.divisions),
        },
    )


def _catalogue_misses(result: Any) -> int:
    """Rows the gate refused for a role or division name the catalogue lacks."""
    by_rule = getattr(result, "row_failures_by_rule", None) or {}
    return sum(int(by_rule.get(rule) or 0) for rule in CATALOGUE_RULES)


def _catalogue_misses_before(store: StateStore) -> int:
    try:
        return int(store.get_meta(CATALOGUE_MISSES) or 0)
    except ValueError:
        return 0


def validate_stage(
    run_id: str,
    location: str,
    config: SyncConfig,
    scim: ScimConnectionConfig | None,
    logical_date: date | None = None,
    lock_holder: str | None = None,
    run_gone: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """Take the run lock, read the export and run the Great Expectations gate.

    Raises ``RunLocked`` while another run holds the lock (``lock_holder``: who takes it,
    default this process; ``run_gone(run_id)``: whether an Airflow run that holds it has
    ended) and ``GateBlocked`` on a block.
    """
    from genesys_sync.validation import gate_export

    run_dir = settings.run_dir(run_id)
    store = StateStore()
    try:
        stale = run_lock.acquire(
            store.engine,
            run_id,
            lock_holder,
            max_age=timedelta(hours=config.sync.run_lock_hours),
            run_gone=run_gone,
        )
        if stale:
            log.warning("Took over the run lock of a run that is gone (%s)", stale.describe())
        catalogue, calls, cached = None, 0, False
        if scim is not None and scim.api_url and scim.flavor == "genesys":
            catalogue = _cached_catalogue(store, scim, config)
            cached = catalogue is not None
            if catalogue is None:
                catalogue, calls = asyncio.run(_fetch_catalogue(scim))
                _store_catalogue(store, scim, catalogue)
        # An unreadable file (encoding, delimiter, shape) is a dataset-level block like any other.
        result = gate_export(
            location,
            config=config,
            run_dir=run_dir,
            previous_row_count=store.previous_row_count(exclude_run_id=run_id),
            catalogue=catalogue,
        )
        if cached and _catalogue_misses(result) > _catalogue_misses_before(store):
            # A name the cached catalogue lacks: perhaps created since; read it again.
            catalogue, calls = asyncio.run(_fetch_catalogue(scim))  # type: ignore[arg-type]
            _store_catalogue(store, scim, catalogue)  # type: ignore[arg-type]
            result = gate_export(
                location,
                config=config,
                run_dir=run_dir,
                previous_row_count=store.previous_row_count(exclude_run_id=run_id),
                catalogue=catalogue,
            )
        if catalogue is not None and scim is not None and scim.flavor == "genesys":
            store.set_meta(CATALOGUE_MISSES, str(_catalogue_misses(result)))
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
            "quarantined_path": str(result.quarantined_path) if result.quarantined_path else None,
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
    scim: ScimConnectionConfig,
    only: Mapping[str, Any] | None = None,
    managed_ids: Mapping[str, str] | None = None,
    discovery: Mapping[str, Any] | None = None,
) -> TargetView:
    """Read the whole target, or (``only``: employee id -> (target id or None, userName or
    None)) just those users, one look-up each, a few at a time.

    A full read is checked page by page (``ScimListingInconsistent``), and a managed user
    (``managed_ids``: employee id -> target id) that the listing lacks is looked up by id
    before the plan decides anything about it. ``discovery`` (the cached ServiceProviderConfig
    and Schemas, see :func:`_cached_discovery`) spares an incremental read its discovery
    requests: one with nothing to look up sends no request at all."""
    from genesys_sync.mapping import unsupported_paths
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
            users = await client.list_all_users()
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
            return TargetView(users, schemas, spc, _calls(client), full=True)

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
        if known[eid][1] == fingerprint(user, manager_id, authoritative):
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


DISCOVERY = "discovery"
#: Write errors that mean the cached /Schemas may be out of date (refreshed next run).
SCHEMA_ERRORS = ("invalidPath", "mutability", "noTarget")


def _cached_discovery(store: StateStore, scim: ScimConnectionConfig) -> dict[str, Any] | None:
    """The target's ServiceProviderConfig and Schemas as last read (None: read them)."""
    cached = store.get_document(DISCOVERY)
    if not isinstance(cached, dict) or cached.get("base_url") != scim.base_url:
        return None
    if not isinstance(cached.get("spc"), dict) or not isinstance(cached.get("schemas"), list):
        return None
    return cached


async def _discover(scim: ScimConnectionConfig) -> tuple[dict[str, Any], int]:
    """The target's ServiceProviderConfig and Schemas, as cached, and the requests it took."""
    from genesys_sync.scim.client import AsyncScimClient

    async with AsyncScimClient(scim) as client:
        spc = await client.service_provider_config()
        schemas = await client.schemas()
        return {"base_url": scim.base_url, "spc": spc, "schemas": schemas}, _calls(client)


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
    import pandas as pd

    from genesys_sync.mapping import desired_users, supported_paths, unsupported_paths
    from genesys_sync.scim.bulk import bulk_limits
    from genesys_sync.scim.errors import ScimListingInconsistent
    from genesys_sync.validation.quarantine import read_quarantine

    run_dir = settings.run_dir(run_id)
    for stale in ("batches", "results"):  # a retried plan starts from a clean slate
        shutil.rmtree(run_dir / stale, ignore_errors=True)
    frame = pd.read_parquet(accepted_path)
    desired = desired_users(frame.to_dict("records"), config.sync.phone_types)
    quarantine = read_quarantine(run_dir)
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
        discovery_calls = 0
        if discovery is None and not full_due:  # dropped: read once, before planning on it
            discovery, discovery_calls = asyncio.run(_discover(scim))
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
                )
            )
        except ScimListingInconsistent as exc:
            message = (
                f"The plan stopped: {exc}. A partial listing would make present users look "
                "missing, so nothing was planned or written. Check the target's paging "
                "(startIndex, count, totalResults) and rerun."
            )
            reporting.write_json(
                run_dir / "plan.json",
                {"run_id": run_id, "error": message, "check": exc.check, "counts": {}},
            )
            reporting.audit("PLAN_STOPPED", run_id, check=exc.check)
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
                phone_types=tuple(t for c, t in policy.phone_types.items() if c in frame),
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
        calls = view.calls + discovery_calls
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
        "target_read": "full"
        if view.full
        else f"incremental ({len(scope.look_up)} users looked up"
        + (f", {len(scope.from_state)} planned from the state)" if scope.from_state else ")"),
        # Mapped attributes the target does not declare: never synced there (named once).
        "not_synced_attributes": list(unsupported_paths(view.schemas)),
        "quarantined_employee_ids": sorted(quarantined),
        "changes": [c.summary() for c in plan.changes if c.kind is not Kind.UNCHANGED],
    }
    reporting.write_json(run_dir / "plan.json", plan_doc)
    reporting.write_text(run_dir / "plan.md", plan_markdown(plan_doc))

    # New users in dependency order: a create after its manager's, with manager.value set;
    # the second wave links only those whose order a batch cannot keep.
    phase1, phase2 = order_creates(
        [c for c in plan.writes if c.phase == 1],
        [c for c in plan.writes if c.phase == 2],
        config.sync.batch_size,
    )
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
    """The second wave's batches, with the target ids that the first wave's creates produced
    filled in: the new users under a top manager (``plan.order_creates``), created with their
    manager set, and the manager links that remain (saves two look-ups per link; unresolved
    ones are looked up by the job)."""
    from genesys_sync.apply import with_manager

    run_dir = settings.run_dir(run_id)
    ids: dict[str, str] = {}
    for results_file in sorted((run_dir / "results").glob("phase1-*.json")):
        for r in reporting.read_json(results_file)["results"]:
            if r.get("target_id") and r.get("outcome") in ("applied", "unchanged"):
                ids[r["employee_id"]] = r["target_id"]
    paths = planned_batches(run_id, "phase2")
    for path in paths:
        batch = reporting.read_json(Path(path))
        for n, change in enumerate(batch["changes"]):
            manager_id = ids.get(change.get("manager_employee_id") or "")
            if change["kind"] == str(Kind.CREATE):  # a second-wave create: under a top manager
                if manager_id and not change.get("after_manager"):
                    filled = with_manager(Change.from_dict(change), manager_id)
                    batch["changes"][n] = filled.to_dict()
                continue
            change["target_id"] = change.get("target_id") or ids.get(change["employee_id"])
            if manager_id:
                change["desired"] = {MANAGER_PATH: manager_id}
                change["applied"] = {MANAGER_PATH: manager_id}
        reporting.write_json(Path(path), batch)
    return paths


def write_batches(
    run_dir: Path,
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
    """The human-readable plan: one section per change type, employee ids and attribute names.

    Every value in it is escaped (``markup.md_text``): an employee id, a reason or a run id
    shows as text, never as HTML, a link or a formula."""
    from genesys_sync.markup import md_code, md_text

    lines = [f"# Sync plan for run {md_text(plan_doc['run_id'])}", ""]
    if plan_doc.get("dry_run"):
        reason = md_text(plan_doc.get("dry_run_reason"))
        lines += [f"Dry run ({reason}): nothing is written.", ""]
    counts = plan_doc["counts"]
    lines += ["| change | count |", "|---|---|"]
    lines += [f"| {md_text(k)} | {md_text(v)} |" for k, v in counts.items() if v]
    if plan_doc.get("not_synced_attributes"):
        lines += [
            "",
            "**Not synced**: the target does not declare "
            + ", ".join(md_code(p) for p in plan_doc["not_synced_attributes"])
            + " in its /Schemas.",
        ]
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for change in plan_doc["changes"]:
        by_kind.setdefault(change["kind"], []).append(change)
    for kind, changes in by_kind.items():
        lines += ["", f"## {md_text(kind)} ({len(changes)})", ""]
        for c in changes:
            detail = ", ".join(c.get("changed") or []) or c.get("reason") or ""
            held = " **held: needs approval**" if c.get("held") else ""
            lines.append(f"- {md_text(c['employee_id'])}: {md_text(detail)}{held}")
    return "\n".join(lines) + "\n"


# --- apply (the async part runs in the triggerer) ---------------------------------------------


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
                calls = _calls(client)
        for change, result in zip(changes, results, strict=True):
            result.fingerprint = change.fingerprint
        results_file = results_path(batch_path)
        earlier = await asyncio.to_thread(_read_optional, results_file)
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
    run_id = batch.get("run_id") or (_read_optional(run_dir / "plan.json") or {}).get("run_id")
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


# --- finish ---------------------------------------------------------------------------------


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
    granted: dict[tuple[str, str], list[str]] = {}  # the roles the sync owns once applied
    applied: dict[tuple[str, str], dict[str, Any]] = {}  # the values it last applied
    waited: dict[str, str] = {}  # creates sent after their manager's: employee id -> manager
    # Held batches have results only when a human approved them: absent is not missing.
    for batch_path, held in [(p, False) for p in expected] + [(p, True) for p in held_files]:
        data = _read_optional(results_path(batch_path))
        if data is None:
            if not held:
                missing.append(Path(batch_path).stem)
            continue
        for change in (_read_optional(Path(batch_path)) or {}).get("changes", []):
            if change.get("granted_roles") is not None:
                granted[(change["employee_id"], change["kind"])] = change["granted_roles"]
            if change.get("applied") is not None:
                applied[(change["employee_id"], change["kind"])] = change["applied"]
            if change.get("after_manager") and change.get("manager_employee_id"):
                waited[change["employee_id"]] = change["manager_employee_id"]
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
    audit_error: str | None = None
    try:
        try:  # the audit trail first: the state is never ahead of it
            closed = _close_open_intents(store, scim)
        except audit.AuditUnavailable as exc:
            audit_error, closed, status = f"{exc}; the state was not updated", {}, "failed"
        if audit_error is None:
            _applied_managers(results, applied, waited)
            store.record_results(results, run_id, granted_roles=granted, applied=applied)
            if any(any(e in str(r.get("error") or "") for e in SCHEMA_ERRORS) for r in results):
                store.set_document(DISCOVERY, None)  # a write refused for a schema reason
        run_lock.release(store.engine, run_id)  # every write of this run is behind us
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
        # Present in the export but quarantined by the gate: left exactly as they are.
        "quarantined": planned.get("quarantined", 0),
        "quarantined_employee_ids": plan_doc.get("quarantined_employee_ids") or [],
        # Mapped attributes the target does not declare in its /Schemas: not synced there.
        "not_synced_attributes": plan_doc.get("not_synced_attributes") or [],
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
        # Intents without a result line, closed now (by outcome): writes a killed job made.
        "intents_closed": closed,
    }
    try:
        reporting.audit(
            "SYNC_SUCCESS" if status == "success" else "SYNC_FAILURE",
            run_id,
            writes=writes,
            failed=failed,
            api_calls=api_calls,
            latency_ms=int(duration * 1000),
            dry_run=dry_run,
            missing_batches=missing,
            intents_closed=closed,
        )
    except audit.AuditUnavailable as exc:
        audit_error = audit_error or str(exc)
        report["status"] = status = "failed"
    report["failure_reason"] = (
        None
        if status == "success"
        else audit_error
        or plan_doc.get("error")
        or _failure_reason(missing, unreachable, counts, attempted, config, bool(plan_out), gate)
    )
    reporting.write_json(run_dir / "report.json", report)
    settings.restrict_tree(run_dir)  # every run artifact owner-only, whatever the umask
    print(reporting.format_summary(report))
    return {
        k: report[k]
        for k in ("status", "writes", "failed", "held", "api_calls", "report_path", "dry_run")
    }


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
            path = _run_path(batch[0]) / "results" / f"{batch[1]}.json"
            data = _read_optional(path) or {}
            results[batch] = {(r["employee_id"], r["kind"]): r for r in data.get("results", [])}
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


def _run_path(run_id: str) -> Path:
    """A run's directory, without creating it (an old run's may be gone)."""
    return settings.sync_home() / "runs" / settings.safe_run_id(run_id)


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
            data = _read_optional(_run_path(key[0]) / "batches" / f"{key[1]}.json") or {}
            batches[key] = {(c["employee_id"], c["kind"]): c for c in data.get("changes", [])}
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
