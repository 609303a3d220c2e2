"""Plan a sync: compare desired users with the target's users and decide every change.

Pure logic: no I/O, no Airflow. The result says, per employee, whether the user is created,
updated (with the attribute paths that differ), deactivated, reactivated, deleted, left
unchanged, quarantined (its row failed the gate: left exactly as it is), or is a conflict that
the sync must leave alone. Only the values the sync owns are compared and written
(:class:`~genesys_sync.mapping.Ownership`); only a managed user absent from a full export, and
not quarantined, is deactivated.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from genesys_sync.mapping import (
    DEFAULT_PHONE_TYPES,
    MANAGER_COLUMN,
    MANAGER_PATH,
    ROLES_PATH,
    DesiredUser,
    Ownership,
    canonical,
    create_payload,
    diff_operations,
    role_names,
)


class Kind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"
    DELETE = "delete"
    LINK_MANAGER = "link_manager"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    SKIPPED = "skipped"
    QUARANTINED = "quarantined"

    @property
    def writes(self) -> bool:
        return self not in (Kind.UNCHANGED, Kind.CONFLICT, Kind.SKIPPED, Kind.QUARANTINED)


REMOVALS = (Kind.DEACTIVATE, Kind.DELETE)
MISSING_REASON = "missing from the export"
QUARANTINE_REASON = "quarantined, not synced: its export row failed the gate (see rejects.csv)"


@dataclass
class Change:
    """One planned change for one employee. ``body``/``desired``/``operations`` hold values:
    keep them on disk.

    ``operations``: attribute path -> the PatchOp operations computed against the user as
    read (with ``etag``); a stale version makes the applier recompute them from a fresh read,
    with ``owned`` (an :class:`Ownership` as a dict). ``granted_roles``: the roles the sync owns
    on this user once the change is applied (None: this change does not reconcile roles).
    ``applied``: the attribute values the user holds once the change is applied (merged into
    the state's last-applied values). ``after_manager``: a create that waits, in its batch, for
    its manager's create and is sent with ``manager.value`` set (see :func:`order_creates`).
    """

    kind: Kind
    employee_id: str
    target_id: str | None = None
    etag: str | None = None
    changed: list[str] = field(default_factory=list)
    body: dict[str, Any] | None = None
    desired: dict[str, Any] | None = None
    manager_employee_id: str | None = None
    phase: int = 1
    held: bool = False
    reason: str | None = None
    fingerprint: str | None = None
    operations: dict[str, list[dict[str, Any]]] | None = None
    owned: dict[str, Any] | None = None
    granted_roles: list[str] | None = None
    applied: dict[str, Any] | None = None
    after_manager: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = str(self.kind)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Change:
        return cls(**{**data, "kind": Kind(data["kind"])})

    def summary(self) -> dict[str, Any]:
        """What a reviewer may see: no attribute values."""
        out: dict[str, Any] = {"employee_id": self.employee_id, "kind": str(self.kind)}
        if self.changed:
            out["changed"] = self.changed
        if self.held:
            out["held"] = True
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class PlanOptions:
    paths: tuple[str, ...]
    full_export: bool = True
    approve_removals: bool = False
    removal_threshold_count: int = 10
    removal_threshold_fraction: float = 0.05
    delete_after_days: float | None = None
    max_tenant_users: int | None = None
    now: datetime | None = None
    managed_total: int | None = None  # managed users in all (when the target was read in part)
    phone_types: tuple[str, ...] = tuple(DEFAULT_PHONE_TYPES.values())  # the types the sync owns
    roles_authoritative: bool = False  # HR owns every role (sync.roles: authoritative)
    # Why "missing from the export" removals must wait for approval although below the
    # threshold (e.g. quarantined rows without a readable employee id might be those people).
    hold_missing_reason: str | None = None


@dataclass
class Plan:
    changes: list[Change]
    managed_count: int
    removal_threshold: int
    active_after: int

    def counts(self) -> dict[str, int]:
        counts = {str(k): 0 for k in Kind}
        for change in self.changes:
            counts[str(change.kind)] += 1
        counts["held"] = sum(1 for c in self.changes if c.held)
        return counts

    @property
    def writes(self) -> list[Change]:
        return [c for c in self.changes if c.kind.writes and not c.held]

    @property
    def held(self) -> list[Change]:
        return [c for c in self.changes if c.held]


class CapacityExceeded(ValueError):
    """The sync would leave more active users than the tenant's licence allows."""


@dataclass
class _Target:
    by_external: dict[str, dict[str, Any]]
    by_user_name: dict[str, dict[str, Any]]
    by_id: dict[str, dict[str, Any]]

    @classmethod
    def index(cls, users: Iterable[Mapping[str, Any]]) -> _Target:
        target = cls({}, {}, {})
        for user in users:
            target.by_id[user["id"]] = dict(user)
            if user.get("externalId"):
                target.by_external[user["externalId"]] = dict(user)
            if user.get("userName"):
                target.by_user_name[user["userName"].lower()] = dict(user)
        return target


def _etag(user: Mapping[str, Any]) -> str | None:
    return (user.get("meta") or {}).get("version")


def fingerprint(
    user: DesiredUser, manager_id: str | None, roles_authoritative: bool = False
) -> str:
    """A digest of everything the sync would write for a user (its resolved manager included).

    Stored after a successful write; an incremental run skips users whose digest is unchanged.
    Switching ``sync.roles`` to authoritative changes every digest (those users are re-read).
    """
    data = {p: canonical(p, v) for p, v in user.attributes.items()}
    data |= {"status": user.status, "manager": manager_id}
    if roles_authoritative:
        data["roles_authoritative"] = True
    return hashlib.sha256(_FINGERPRINT_JSON.encode(data).encode()).hexdigest()


#: ``json.dumps(data, sort_keys=True, default=str)``, built once (not at every call).
_FINGERPRINT_JSON = json.JSONEncoder(sort_keys=True, default=str)


def plan_sync(
    desired: Mapping[str, DesiredUser],
    target_users: Iterable[Mapping[str, Any]],
    options: PlanOptions,
    managed: Mapping[str, str] | None = None,
    deactivated_at: Mapping[str, datetime] | None = None,
    known_ids: Mapping[str, str] | None = None,
    quarantined: Collection[str] = (),
    granted: Mapping[str, Collection[str]] | None = None,
) -> Plan:
    """Plan the changes that make the target hold what ``desired`` says.

    ``managed`` maps employee ids the sync has managed before to their target ids (the
    state store); ``deactivated_at`` says since when a managed user is inactive (for the
    deletion grace period). ``known_ids`` resolves managers that are not in ``target_users``
    (an incremental run reads only the users that changed). ``quarantined``: employee ids whose
    export rows the gate quarantined: present in the export, but unreadable, so their users are
    left exactly as they are (never deactivated). ``granted``: employee id -> the roles the
    sync granted that user (the state); only those can be removed. Users the sync does not
    manage are never changed.
    """
    managed = dict(managed or {})
    deactivated_at = deactivated_at or {}
    granted = granted or {}
    quarantined = set(quarantined)
    desired = {eid: u for eid, u in desired.items() if eid not in quarantined}
    target = _Target.index(target_users)
    paths = options.paths
    authoritative = options.roles_authoritative

    owners: dict[tuple[str, ...], Ownership] = {}

    def ownership(eid: str) -> Ownership:
        roles = tuple(sorted(granted.get(eid) or ()))
        if roles not in owners:
            owners[roles] = Ownership(options.phone_types, roles, authoritative)
        return owners[roles]

    # 1. Match every desired user to a target user: externalId, then state, then userName.
    matched: dict[str, dict[str, Any] | None] = {}
    changes: list[Change] = []
    for eid in sorted(quarantined):  # present but unreadable: reported, never written
        found = target.by_external.get(eid) or target.by_id.get(managed.get(eid, ""))
        tid = found["id"] if found else managed.get(eid)
        changes.append(Change(Kind.QUARANTINED, eid, target_id=tid, reason=QUARANTINE_REASON))
    for eid, user in desired.items():
        found = target.by_external.get(eid) or target.by_id.get(managed.get(eid, ""))
        if found is None:
            same_name = target.by_user_name.get(user.user_name.lower())
            if same_name is not None and same_name.get("externalId") not in (None, "", eid):
                changes.append(
                    Change(
                        Kind.CONFLICT,
                        eid,
                        target_id=same_name["id"],
                        reason="userName belongs to a user with another externalId",
                    )
                )
                continue
            found = same_name  # unowned: adopted by setting its externalId
        matched[eid] = found

    ids_after = {eid: u["id"] for eid, u in matched.items() if u is not None}

    def manager_ref(user: DesiredUser) -> tuple[str | None, bool]:
        """(manager's target id, needs a phase-2 link) for a desired user."""
        mid = user.manager_employee_id
        if not mid or mid == user.employee_id:
            return None, False
        if mid in ids_after:
            return ids_after[mid], False
        if mid in matched:  # the manager is created in this run
            return None, True
        existing = target.by_external.get(mid)
        if existing:
            return existing["id"], False
        return (known_ids or {}).get(mid), False

    # 2. Decide each matched user's change.
    for eid, user in desired.items():
        if eid not in matched:
            continue
        found = matched[eid]
        manager_id, link_later = manager_ref(user)
        own = ownership(eid)
        digest = fingerprint(user, manager_id, authoritative)
        # The roles the sync owns once this change is applied: what HR lists (None: while the
        # user is inactive its roles are left alone, so ownership does not change).
        roles_after = (
            sorted(role_names(user.attributes.get(ROLES_PATH)))
            if ROLES_PATH in paths and ROLES_PATH in user.attributes and user.active
            else None
        )
        if found is None:
            if not user.active:
                changes.append(
                    Change(Kind.SKIPPED, eid, reason=f"not created: status {user.status}")
                )
                continue
            values = _desired_values(user, paths, manager_id)
            changes.append(
                Change(
                    Kind.CREATE,
                    eid,
                    body=create_payload(user, paths, manager_id),
                    desired=values,
                    changed=[p for p in paths if user.attributes.get(p) is not None],
                    # Linked later: the next run re-reads the user once instead of trusting it.
                    fingerprint=None if link_later else digest,
                    owned=own.to_dict(),
                    granted_roles=roles_after,
                    applied=applied_values(values, user.active, authoritative),
                    manager_employee_id=user.manager_employee_id if link_later else None,
                )
            )
            if link_later:
                changes.append(_link_manager(user))
            continue

        desired_values = _desired_values(user, paths, manager_id)
        # Roles of an inactive user are left alone (Genesys keeps them; a rehire gets them
        # sent again with the reactivation, see diff_operations).
        check = {
            p: v for p, v in desired_values.items() if not (p == ROLES_PATH and not user.active)
        }
        operations = diff_operations(check, found, own)
        changed = list(operations)
        was_active = bool(found.get("active", True))
        if user.active and not was_active:
            kind = Kind.REACTIVATE
        elif not user.active and was_active:
            kind = Kind.DEACTIVATE
        elif changed:
            kind = Kind.UPDATE
        else:
            kind = Kind.UNCHANGED
        if kind is Kind.UNCHANGED and _is_past_grace(eid, user, found, options, deactivated_at):
            kind = Kind.DELETE
        changes.append(
            Change(
                kind,
                eid,
                target_id=found["id"],
                etag=_etag(found),
                changed=changed,
                desired={p: desired_values.get(p) for p in changed},
                fingerprint=None if link_later else digest,
                operations=operations or None,
                owned=own.to_dict() if operations else None,
                granted_roles=roles_after,
                applied=applied_values(desired_values, user.active, authoritative),
            )
        )
        if link_later:
            changes.append(_link_manager(user, found["id"]))

    # 3. Managed users missing from a full export are deactivated (and deleted after grace).
    if options.full_export:
        for eid, tid in managed.items():
            if eid in desired or eid in quarantined:  # quarantined: present, not missing
                continue
            found = target.by_id.get(tid) or target.by_external.get(eid)
            if found is None:
                continue
            if found.get("active", True):
                changes.append(
                    Change(
                        Kind.DEACTIVATE,
                        eid,
                        target_id=found["id"],
                        etag=_etag(found),
                        changed=["active"],
                        desired={"active": False},
                        reason=MISSING_REASON,
                        operations=diff_operations({"active": False}, found, ownership(eid)),
                        owned=ownership(eid).to_dict(),
                        applied={"active": False},
                    )
                )
            elif _grace_over(eid, options, deactivated_at):
                changes.append(
                    Change(
                        Kind.DELETE,
                        eid,
                        target_id=found["id"],
                        etag=_etag(found),
                        reason=MISSING_REASON,
                    )
                )

    managed_count = options.managed_total or len(
        {
            u["id"]
            for u in target.by_id.values()
            if u.get("externalId") in desired or u.get("externalId") in quarantined
        }
        | {tid for tid in managed.values() if tid in target.by_id}
    )
    threshold = max(
        options.removal_threshold_count,
        math.floor(options.removal_threshold_fraction * managed_count),
    )
    removals = [c for c in changes if c.kind in REMOVALS]
    if len(removals) > threshold and not options.approve_removals:
        for change in removals:
            change.held = True
    if options.hold_missing_reason and not options.approve_removals:
        for change in removals:
            if change.reason == MISSING_REASON:
                change.held = True
                change.reason = f"{MISSING_REASON}; held: {options.hold_missing_reason}"

    active_after = _active_after(target, changes)
    if options.max_tenant_users is not None and active_after > options.max_tenant_users:
        raise CapacityExceeded(
            f"the sync would leave {active_after} active users in the tenant, above the "
            f"licence limit of {options.max_tenant_users} (gate.max_tenant_users); "
            "raise the limit or reduce the export"
        )
    return Plan(changes, managed_count, threshold, active_after)


def _link_manager(user: DesiredUser, target_id: str | None = None) -> Change:
    """A second-wave change: point the user at a manager created in the same run."""
    return Change(
        Kind.LINK_MANAGER,
        user.employee_id,
        target_id=target_id,
        phase=2,
        manager_employee_id=user.manager_employee_id,
        changed=[MANAGER_PATH],
    )


#: The key of ``Change.applied`` / the state's applied values that records the roles policy.
ROLES_POLICY_KEY = "_roles_authoritative"


def applied_values(
    values: Mapping[str, Any], active: bool, roles_authoritative: bool = False
) -> dict[str, Any]:
    """What a change leaves applied: the desired values, less the roles of an inactive user
    (left as they are), with the roles policy they were applied under."""
    out = {p: v for p, v in values.items() if not (p == ROLES_PATH and not active)}
    out[ROLES_POLICY_KEY] = roles_authoritative
    return out


def same_as_applied(
    user: DesiredUser,
    applied: Mapping[str, Any],
    paths: Iterable[str],
    manager_id: str | None,
    roles_authoritative: bool = False,
) -> bool:
    """Whether the sync last applied exactly what ``user`` wants now (so nothing is sent).

    A manager that HR names but that has no target id yet (created in this run) is a change."""
    if bool(applied.get(ROLES_POLICY_KEY, False)) != roles_authoritative:
        return False
    paths = tuple(paths)
    values = _desired_values(user, paths, manager_id)
    mid = user.manager_employee_id
    if (
        MANAGER_PATH in paths
        and MANAGER_COLUMN not in user.absent
        and mid
        and mid != user.employee_id
        and manager_id is None
    ):
        return False
    return all(
        canonical(p, applied.get(p)) == canonical(p, v)
        for p, v in values.items()
        if not (p == ROLES_PATH and not user.active)
    )


def user_from_applied(
    employee_id: str, target_id: str, etag: str | None, applied: Mapping[str, Any]
) -> dict[str, Any]:
    """The target user as the sync last left it (its applied values and ETag), in SCIM shape:
    what an incremental run diffs against instead of reading the user. A write from it carries
    ``If-Match``, so a user changed since by anyone else is re-read and re-diffed."""
    user: dict[str, Any] = {"id": target_id, "externalId": employee_id}
    if etag:
        user["meta"] = {"version": etag}
    for path, value in applied.items():
        if path.startswith("_") or value is None:
            continue
        value = {"value": value} if path == MANAGER_PATH else value
        if path.startswith("urn:"):
            schema, _, attribute = path.rpartition(":")
            user.setdefault(schema, {})[attribute] = value
        else:
            user[path] = value
    return user


def _desired_values(user: DesiredUser, paths: Iterable[str], manager_id: str | None) -> dict:
    """The desired value of every path. The manager: its target id when resolved, None (remove
    it) when HR names no manager, absent (left as it is) when HR names one that cannot be
    resolved now (quarantined, or created in this run and linked in the second wave)."""
    # A path the user lacks comes from a column the export lacks: left alone, never cleared.
    values = {
        p: user.attributes.get(p) for p in paths if p != MANAGER_PATH and p in user.attributes
    }
    if MANAGER_PATH in paths and MANAGER_COLUMN not in user.absent:
        if manager_id is not None:
            values[MANAGER_PATH] = manager_id
        elif not user.manager_employee_id:
            values[MANAGER_PATH] = None
    return values


def _grace_over(eid: str, options: PlanOptions, deactivated_at: Mapping[str, datetime]) -> bool:
    if options.delete_after_days is None or options.now is None or eid not in deactivated_at:
        return False
    age = options.now - deactivated_at[eid]
    return age.total_seconds() >= options.delete_after_days * 86400


def _is_past_grace(eid, user: DesiredUser, found, options, deactivated_at) -> bool:
    return (
        user.status == "terminated"
        and not found.get("active", True)
        and _grace_over(eid, options, deactivated_at)
    )


def _active_after(target: _Target, changes: list[Change]) -> int:
    active = sum(1 for u in target.by_id.values() if u.get("active", True))
    for change in changes:
        if change.held:
            continue
        if change.kind in (Kind.CREATE, Kind.REACTIVATE):
            active += 1
        elif change.kind is Kind.DEACTIVATE:
            active -= 1
    return active


def batches(changes: list[Change], batch_size: int, max_batches: int = 1000) -> list[list[Change]]:
    """Split write changes into batches, growing the batch size to stay under ``max_batches``."""
    if not changes:
        return []
    size = max(batch_size, math.ceil(len(changes) / max_batches))
    return [changes[i : i + size] for i in range(0, len(changes), size)]


def order_creates(
    writes: list[Change], links: list[Change], batch_size: int
) -> tuple[list[list[Change]], list[list[Change]]]:
    """The two waves' batches, with every new user created after its manager and with
    ``manager.value`` set: (first wave's batches, second wave's batches).

    The new users form a forest (each under its manager, or a root when the manager exists
    already). A *unit* is a subtree of at most ``batch_size`` new users, kept whole in one batch
    and laid out depth first, so each create follows its manager's (``after_manager``: the
    batch job sends it once the manager exists). A new user with more than ``batch_size`` new
    users under it belongs to the *skeleton*: the few top managers, created in the first wave.
    Units under a skeleton manager go in the second wave, their root's ``manager.value`` filled
    in from the first wave's results (:func:`genesys_sync.stages.plan.link_batches`). A link
    remains only where that order cannot be kept: a skeleton bigger than one batch, or a
    management cycle.
    """
    creates = {c.employee_id: c for c in writes if c.kind is Kind.CREATE}
    others = [c for c in writes if c.kind is not Kind.CREATE]
    reports: dict[str, list[str]] = {}
    roots: list[str] = []
    for eid, change in creates.items():
        mid = change.manager_employee_id
        if mid and mid != eid and mid in creates:
            reports.setdefault(mid, []).append(eid)
        else:
            roots.append(eid)
    order: list[str] = []  # depth first from the roots: a manager before its reports
    seen: set[str] = set()
    for root in roots:
        stack = [root]
        while stack:
            eid = stack.pop()
            if eid in seen:
                continue
            seen.add(eid)
            order.append(eid)
            stack.extend(reversed(reports.get(eid, [])))
    size = {eid: 1 for eid in order}
    for eid in reversed(order):  # reports come after their manager: sum bottom-up
        mid = creates[eid].manager_employee_id
        if mid in size and eid not in roots:
            size[mid] += size[eid]
    skeleton = [eid for eid in order if size[eid] > batch_size]
    top = set(skeleton)

    def unit(root: str) -> list[Change]:
        members, stack = [], [root]
        while stack:
            eid = stack.pop()
            members.append(creates[eid])
            stack.extend(reversed(reports.get(eid, [])))
        return members

    first_units, second_units = [], []
    for eid in order:
        if eid in top:
            continue
        mid = creates[eid].manager_employee_id
        if eid in roots:
            first_units.append(unit(eid))
        elif mid in top:
            second_units.append(unit(eid))
    cycles = [creates[eid] for eid in creates if eid not in seen]  # linked in the second wave

    def pack(units: list[list[Change]], lead: list[Change]) -> list[list[Change]]:
        chunks = [list(c) for c in batches(lead, batch_size)] if lead else []
        current: list[Change] = chunks.pop() if chunks else []  # teams fill its room first
        for members in units:
            if current and len(current) + len(members) > batch_size:
                chunks.append(current)
                current = []
            current.extend(members)
        if current:
            chunks.append(current)
        return chunks

    first = pack(first_units, [creates[eid] for eid in skeleton] + cycles + others)
    second = pack(second_units, [])
    settled: set[str] = set()
    for chunk in first + second:
        placed: set[str] = set()
        for change in chunk:
            if change.kind is not Kind.CREATE:
                continue
            mid = change.manager_employee_id
            if mid and mid in placed and change.employee_id in seen:
                change.after_manager = True
                settled.add(change.employee_id)
            placed.add(change.employee_id)
    settled |= {members[0].employee_id for members in second_units}  # set by link_batches
    remaining = [c for c in links if not (c.target_id is None and c.employee_id in settled)]
    return first, second + batches(remaining, batch_size)
