"""Plan a sync: compare desired users with the target's users and decide every change.

Pure logic: no I/O, no Airflow. The result says, per employee, whether the user is created,
updated (with the attribute paths that differ), deactivated, reactivated, deleted, left
unchanged, or is a conflict that the sync must leave alone.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from genesys_sync.mapping import (
    MANAGER_PATH,
    ROLES_PATH,
    DesiredUser,
    canonical,
    create_payload,
    current_attributes,
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

    @property
    def writes(self) -> bool:
        return self not in (Kind.UNCHANGED, Kind.CONFLICT, Kind.SKIPPED)


REMOVALS = (Kind.DEACTIVATE, Kind.DELETE)


@dataclass
class Change:
    """One planned change for one employee. ``body``/``desired`` hold values: keep them on disk."""

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


def _diff(
    desired: Mapping[str, Any], current: Mapping[str, Any], paths: Iterable[str]
) -> list[str]:
    return [p for p in paths if canonical(p, desired.get(p)) != current.get(p)]


def fingerprint(user: DesiredUser, manager_id: str | None) -> str:
    """A digest of everything the sync would write for a user (its resolved manager included).

    Stored after a successful write; an incremental run skips users whose digest is unchanged.
    """
    data = {p: canonical(p, v) for p, v in user.attributes.items()}
    data |= {"status": user.status, "manager": manager_id}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def plan_sync(
    desired: Mapping[str, DesiredUser],
    target_users: Iterable[Mapping[str, Any]],
    options: PlanOptions,
    managed: Mapping[str, str] | None = None,
    deactivated_at: Mapping[str, datetime] | None = None,
    known_ids: Mapping[str, str] | None = None,
) -> Plan:
    """Plan the changes that make the target hold what ``desired`` says.

    ``managed`` maps employee ids the sync has managed before to their target ids (the
    state store); ``deactivated_at`` says since when a managed user is inactive (for the
    deletion grace period). ``known_ids`` resolves managers that are not in ``target_users``
    (an incremental run reads only the users that changed). Users the sync does not manage are
    never changed.
    """
    managed = dict(managed or {})
    deactivated_at = deactivated_at or {}
    target = _Target.index(target_users)
    paths = options.paths
    compare_paths = [p for p in paths if p != MANAGER_PATH]

    # 1. Match every desired user to a target user: externalId, then state, then userName.
    matched: dict[str, dict[str, Any] | None] = {}
    changes: list[Change] = []
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
        if found is None:
            if not user.active:
                changes.append(
                    Change(Kind.SKIPPED, eid, reason=f"not created: status {user.status}")
                )
                continue
            changes.append(
                Change(
                    Kind.CREATE,
                    eid,
                    body=create_payload(user, paths, manager_id),
                    desired=_desired_values(user, paths, manager_id),
                    changed=[p for p in paths if user.attributes.get(p) is not None],
                    # Linked later: the next run re-reads the user once instead of trusting it.
                    fingerprint=None if link_later else fingerprint(user, manager_id),
                )
            )
            if link_later:
                changes.append(_link_manager(user))
            continue

        current = current_attributes(found, paths)
        desired_values = _desired_values(user, paths, manager_id)
        check = [p for p in compare_paths if not (p == ROLES_PATH and not user.active)]
        changed = _diff(desired_values, current, check)
        if manager_id is not None and manager_id != current.get(MANAGER_PATH):
            changed.append(MANAGER_PATH)
        was_active = bool(found.get("active", True))
        if user.active and not was_active:
            kind = Kind.REACTIVATE
            if (
                ROLES_PATH in paths
                and ROLES_PATH not in changed
                and user.attributes.get(ROLES_PATH)
            ):
                changed.append(ROLES_PATH)  # Genesys strips roles on deactivation
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
                fingerprint=None if link_later else fingerprint(user, manager_id),
            )
        )
        if link_later:
            changes.append(_link_manager(user, found["id"]))

    # 3. Managed users missing from a full export are deactivated (and deleted after grace).
    if options.full_export:
        for eid, tid in managed.items():
            if eid in desired:
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
                        reason="missing from the export",
                    )
                )
            elif _grace_over(eid, options, deactivated_at):
                changes.append(
                    Change(
                        Kind.DELETE,
                        eid,
                        target_id=found["id"],
                        etag=_etag(found),
                        reason="missing from the export",
                    )
                )

    managed_count = options.managed_total or len(
        {u["id"] for u in target.by_id.values() if u.get("externalId") in desired}
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


def _desired_values(user: DesiredUser, paths: Iterable[str], manager_id: str | None) -> dict:
    values = {p: user.attributes.get(p) for p in paths if p != MANAGER_PATH}
    if manager_id is not None:
        values[MANAGER_PATH] = manager_id
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
