"""Apply one batch of planned changes to a SCIM target, safely repeatable.

Airflow may run a trigger twice, and a killed run is simply rerun, so every operation here is
idempotent: a create whose user already exists (409) is resolved by looking the user up, a
PATCH whose ETag is stale (the first attempt already wrote, or someone else did; 412, 409 or
400 ``invalidVers``) is re-diffed against a fresh read of the user, a DELETE of a missing user
counts as done. PATCHes add and remove only the values the sync owns (value-filtered
operations such as ``roles[value eq "X"]``; see ``mapping.diff_operations``), so a role or a
phone number another owner put on the user survives. Results carry ids, counts and attribute
names, never attribute values.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from genesys_sync.in_flight import InFlight
from genesys_sync.mapping import (
    ENTERPRISE,
    MANAGER_PATH,
    PATCH_OP,
    Ownership,
    diff_operations,
    flatten_operations,
)
from genesys_sync.mapping import patch_operations as _patch_ops
from genesys_sync.plan import Change, Kind
from genesys_sync.scim.bulk import BULK_ID_PREFIX, chunk_bulk_operations
from genesys_sync.scim.errors import (
    ScimAuthError,
    ScimConflict,
    ScimError,
    ScimNotFound,
    ScimRateLimited,
    ScimServerError,
    ScimTransportError,
    ScimVersionMismatch,
)

log = logging.getLogger(__name__)

#: Errors that mean the target is unreachable after the client's retry budget: the batch fails.
UNREACHABLE = (ScimTransportError, ScimServerError, ScimRateLimited, ScimAuthError)


class Outcome:
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    FAILED = "failed"
    REPLAYED = "replayed"  # audit trail only: a bulk answer refused it, sent again alone


@dataclass
class OpResult:
    employee_id: str
    kind: str
    outcome: str
    target_id: str | None = None
    etag: str | None = None
    changed: list[str] = field(default_factory=list)
    status: int | None = None
    error: str | None = None
    unreachable: bool = False
    note: str | None = None
    fingerprint: str | None = None
    #: A create that was to carry its manager (``after_manager``) but went without it (the
    #: manager's create failed): not recorded as in sync, so the next run links the manager.
    without_manager: bool = False
    #: A refused operation's SCIM ``scimType`` / Genesys ``code`` and the server's own
    #: explanation (``detail``, or Genesys ``message``): kept in the owner-only results file
    #: and the report's ``refused`` list only, never logged (it may quote personal data).
    scim_type: str | None = None
    code: str | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [], False)}


class ScimTarget(Protocol):
    """What apply needs of a SCIM client (``genesys_sync.scim.client.AsyncScimClient``)."""

    async def create_user(self, payload: dict[str, Any]) -> dict[str, Any]: ...
    async def patch_user(
        self, user_id: str, operations: list[dict[str, Any]], etag: str | None = None
    ) -> dict[str, Any]: ...
    async def delete_user(self, user_id: str, etag: str | None = None) -> None: ...
    async def get_user(self, user_id: str) -> tuple[dict[str, Any], str | None]: ...
    async def find_user(self, attribute: str, value: str) -> dict[str, Any] | None: ...


def _version(user: Mapping[str, Any] | None) -> str | None:
    return ((user or {}).get("meta") or {}).get("version")


def _error_name(exc: ScimError) -> str:
    name = type(exc).__name__
    return f"{name}:{exc.scim_type}" if getattr(exc, "scim_type", None) else name


def remaining_changes(
    desired: Mapping[str, Any],
    current_user: Mapping[str, Any],
    ownership: Ownership | None = None,
) -> dict[str, Any]:
    """The desired values that the current user does not hold yet (as far as the sync owns
    them)."""
    pending = diff_operations(desired, current_user, ownership or Ownership())
    return {p: desired[p] for p in pending}


def _operations_of(change: Change) -> list[dict[str, Any]]:
    """What a change sends without a fresh read: the operations planned against the user as
    read (with the change's ETag), or plain set/remove operations (manager links)."""
    if change.operations:
        return flatten_operations(change.operations)
    return _patch_ops(change.desired or {})


def with_manager(change: Change, manager_id: str | None) -> Change:
    """A create that waited for its manager's create (``after_manager``), with the manager's
    target id set (``None``: the manager's create failed; created without a manager, and the
    next run links it)."""
    if manager_id is None:
        return replace(change, after_manager=False)
    body = dict(change.body or {})
    body[ENTERPRISE] = {**(body.get(ENTERPRISE) or {}), "manager": {"value": manager_id}}
    body["schemas"] = list(dict.fromkeys([*(body.get("schemas") or []), ENTERPRISE]))
    return replace(
        change,
        body=body,
        desired={**(change.desired or {}), MANAGER_PATH: manager_id},
        applied={**(change.applied or {}), MANAGER_PATH: manager_id},
        changed=list(dict.fromkeys([*change.changed, MANAGER_PATH])),
        after_manager=False,
    )


#: ``on_event(kind, change, result=None)``: called (and awaited, when it returns an awaitable)
#: with ``"intent"`` before a change's first write is sent and with ``"result"`` and its
#: ``OpResult`` after it (the write-ahead audit trail). When it raises, the batch stops: no
#: further write is sent, and ``apply`` raises that exception once the writes already under
#: way have ended.
OnEvent = Callable[..., Any]


class BatchApplier:
    """Applies a batch's changes with enough writes in flight to keep the client's rate
    (:mod:`genesys_sync.in_flight`); the client paces the requests."""

    def __init__(
        self, client: ScimTarget, concurrency: int | None = None, on_event: OnEvent | None = None
    ):
        self.client = client
        # Sized from the client's rate and round trips (``in_flight``); ``concurrency`` fixes it.
        self.in_flight = InFlight(client, concurrency)
        self._ids: dict[str, str | None] = {}  # externalId -> target id, for manager links
        # externalId -> target id of the creates this applier made (or found done), kept
        # across ``apply`` calls: a create sent again later still gets its manager's id.
        self._created: dict[str, str] = {}
        self.on_event = on_event
        self.stopped: Exception | None = None  # what ``on_event`` raised: nothing more is sent

    async def _record(self, kind: str, change: Change, result: OpResult | None = None) -> bool:
        """Tell ``on_event``; False (and the batch stopped) when it failed, now or before."""
        if self.stopped is not None:
            return False
        if self.on_event is None:
            return True
        try:
            outcome = self.on_event(kind, change, result)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            self.stopped = exc
            return False
        return True

    async def _target_id(self, employee_id: str) -> str | None:
        if employee_id not in self._ids:
            user = await self.client.find_user("externalId", employee_id)
            self._ids[employee_id] = user["id"] if user else None
        return self._ids[employee_id]

    async def apply(self, changes: Iterable[Change]) -> list[OpResult]:
        changes = list(changes)
        loop = asyncio.get_running_loop()
        # A create's target id, for the creates that wait for it (``after_manager``).
        created = {c.employee_id: loop.create_future() for c in changes if c.kind is Kind.CREATE}

        async def one(change: Change) -> OpResult:
            try:
                return await send(change)
            finally:
                done = created.get(change.employee_id)
                if change.kind is Kind.CREATE and done is not None and not done.done():
                    done.set_result(None)

        async def manager_id(change: Change) -> str | None:
            """The target id of the manager a create waits for: from its create in this
            call (awaited, before taking a slot) or an earlier call; None when it failed."""
            mid = change.manager_employee_id or ""
            waits = created.get(mid)
            return await waits if waits is not None else self._created.get(mid)

        async def send(change: Change) -> OpResult:
            waited = change.after_manager
            if waited:
                change = with_manager(change, await manager_id(change))
            async with self.in_flight:
                if not await self._record("intent", change):
                    return OpResult(change.employee_id, str(change.kind), Outcome.FAILED)
                try:
                    result = await self._apply_one(change)
                except ScimError as exc:
                    log.warning(
                        "employee %s: %s failed: %s",
                        change.employee_id,
                        change.kind,
                        _error_name(exc),
                    )
                    result = _failed(change, exc)
                ok = result.outcome in (Outcome.APPLIED, Outcome.UNCHANGED)
                result.without_manager = waited and ok and MANAGER_PATH not in change.changed
                await self._record("result", change, result)
                if change.kind is Kind.CREATE and ok and result.target_id:
                    self._created[change.employee_id] = result.target_id
                done = created.get(change.employee_id)
                if change.kind is Kind.CREATE and done is not None and not done.done():
                    done.set_result(result.target_id if ok else None)
                return result

        results = list(await asyncio.gather(*(one(c) for c in changes)))
        if self.stopped is not None:
            raise self.stopped
        return results

    async def _apply_one(self, change: Change) -> OpResult:
        if change.kind is Kind.CREATE:
            return await self._create(change)
        if change.kind is Kind.DELETE:
            return await self._delete(change)
        if change.kind is Kind.LINK_MANAGER:
            return await self._link_manager(change)
        return await self._patch(
            change, change.target_id, change.etag, change.desired or {}, planned=True
        )

    async def _create(self, change: Change) -> OpResult:
        body = dict(change.body or {})
        try:
            created = await self.client.create_user(body)
        except ScimConflict:
            existing = await self.client.find_user("userName", body["userName"])
            if existing is None:
                raise
            owner = existing.get("externalId")
            if owner not in (None, "", change.employee_id):
                return OpResult(
                    change.employee_id,
                    str(change.kind),
                    Outcome.CONFLICT,
                    target_id=existing["id"],
                    status=409,
                    note="userName belongs to a user with another externalId",
                )
            # Ours (an earlier attempt created it) or unowned (adopt it): converge by PATCH.
            result = await self._patch(
                change, existing["id"], _version(existing), change.desired or {}, current=existing
            )
            # This run wrote nothing when the user already held everything: "unchanged", not
            # a create (counted once, in ``applied.create`` only when this run created it).
            if result.outcome == Outcome.UNCHANGED:
                result.note = "existing user already correct (409 resolved by look-up)"
            else:
                result.note = "existing user resumed" if owner else "existing user adopted"
            return result
        return OpResult(
            change.employee_id,
            str(change.kind),
            Outcome.APPLIED,
            target_id=created.get("id"),
            etag=_version(created),
            changed=change.changed,
            status=201,
        )

    async def _patch(
        self,
        change: Change,
        target_id: str | None,
        etag: str | None,
        desired: Mapping[str, Any],
        current: Mapping[str, Any] | None = None,
        planned: bool = False,
    ) -> OpResult:
        """PATCH the user towards ``desired``: with the operations diffed against ``current``
        when given, else with the change's planned operations (``planned``), else plain
        set/remove operations; a stale version re-reads the user and re-diffs."""
        if target_id is None:
            raise ScimNotFound(status=404, detail="no target id")
        ownership = Ownership.from_dict(change.owned)
        pending: dict[str, list[dict[str, Any]]]
        if current is not None:
            pending = diff_operations(desired, current, ownership)
        elif planned and change.operations:
            pending = dict(change.operations)
        else:
            pending = {p: _patch_ops({p: v}) for p, v in desired.items()}
        for attempt in range(3):
            if not pending:
                return OpResult(
                    change.employee_id,
                    str(change.kind),
                    Outcome.UNCHANGED,
                    target_id=target_id,
                    etag=etag,
                )
            try:
                updated = await self.client.patch_user(target_id, flatten_operations(pending), etag)
            except ScimVersionMismatch:
                if attempt == 2:
                    raise
                fresh, etag = await self.client.get_user(target_id)
                pending = diff_operations(desired, fresh, ownership)
                continue
            except ScimNotFound:
                # Planned from the state, and the id is gone (recreated by hand, say): one
                # look-up by externalId, then a re-diff against what it holds.
                if attempt == 2 or not planned:
                    raise
                found = await self.client.find_user("externalId", change.employee_id)
                if found is None or found.get("id") == target_id:
                    raise
                target_id, etag = found["id"], _version(found)
                pending = diff_operations(desired, found, ownership)
                continue
            return OpResult(
                change.employee_id,
                str(change.kind),
                Outcome.APPLIED,
                target_id=target_id,
                etag=_version(updated) or etag,
                changed=sorted(pending),
                status=200,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _delete(self, change: Change) -> OpResult:
        try:
            await self.client.delete_user(change.target_id or "", change.etag)
        except ScimNotFound:
            return OpResult(
                change.employee_id,
                str(change.kind),
                Outcome.APPLIED,
                target_id=change.target_id,
                note="already deleted",
            )
        except ScimVersionMismatch:
            fresh, etag = await self.client.get_user(change.target_id or "")
            if fresh.get("active", True):
                return OpResult(
                    change.employee_id,
                    str(change.kind),
                    Outcome.CONFLICT,
                    target_id=change.target_id,
                    note="reactivated since planned",
                )
            await self.client.delete_user(change.target_id or "", etag)
        return OpResult(
            change.employee_id,
            str(change.kind),
            Outcome.APPLIED,
            target_id=change.target_id,
            status=204,
        )

    async def _link_manager(self, change: Change) -> OpResult:
        manager_id = (change.desired or {}).get(MANAGER_PATH) or await self._target_id(
            change.manager_employee_id or ""
        )
        if manager_id is None:
            return OpResult(
                change.employee_id,
                str(change.kind),
                Outcome.FAILED,
                error="ManagerNotFound",
                changed=[MANAGER_PATH],
            )
        target_id = change.target_id or await self._target_id(change.employee_id)
        if target_id is None:  # its creation failed: nothing to link
            return OpResult(
                change.employee_id,
                str(change.kind),
                Outcome.FAILED,
                error="UserNotFound",
                changed=[MANAGER_PATH],
            )
        return await self._patch(change, target_id, None, {MANAGER_PATH: manager_id})


class BulkBatchApplier(BatchApplier):
    """Sends a batch as RFC 7644 ``/Bulk`` requests, for servers that advertise Bulk.

    Creates, updates, deactivations and deletions travel in BulkRequests within the server's
    ``maxOperations`` and ``maxPayloadSize``; an operation the bulk answer reports as a
    conflict, a stale version or any other error is replayed alone through the single-call
    path, which resolves it the same idempotent way. Manager links stay single calls.
    """

    BULK_KINDS = (Kind.CREATE, Kind.UPDATE, Kind.DEACTIVATE, Kind.REACTIVATE, Kind.DELETE)

    def __init__(
        self,
        client: Any,
        max_operations: int,
        max_payload: int,
        users_endpoint: str = "/Users",
        concurrency: int | None = None,
        on_event: OnEvent | None = None,
    ):
        super().__init__(client, concurrency, on_event)
        self.max_operations = max_operations
        self.max_payload = max_payload
        self.users_endpoint = users_endpoint

    def _operation(self, change: Change) -> dict[str, Any]:
        if change.kind is Kind.CREATE:
            return {
                "method": "POST",
                "path": self.users_endpoint,
                "bulkId": change.employee_id,
                "data": change.body,
            }
        op: dict[str, Any] = {
            "method": "DELETE" if change.kind is Kind.DELETE else "PATCH",
            "path": f"{self.users_endpoint}/{change.target_id}",
        }
        if change.etag:
            op["version"] = change.etag
        if change.kind is not Kind.DELETE:
            op["data"] = {"schemas": [PATCH_OP], "Operations": _operations_of(change)}
        return op

    async def apply(self, changes: Iterable[Change]) -> list[OpResult]:
        """The batch in as few Bulk requests as the server's limits allow: a create that waits
        for its manager's (``after_manager``) references it as ``"bulkId:<employee id>"``, which
        the server resolves within the request (RFC 7644 3.7.2), so managers and their reports
        travel together. Where a request boundary falls between them, the report's create goes
        with the manager's id from the earlier request (or without a manager when that create
        failed: the next run links it, as on the single-call path)."""
        originals = list(changes)
        creates = {c.employee_id for c in originals if c.kind is Kind.CREATE}
        sent = [
            with_manager(c, f"{BULK_ID_PREFIX}{c.manager_employee_id}")
            if c.after_manager and c.manager_employee_id in creates
            else c
            for c in originals
        ]
        return await self._apply_bulk(sent, originals)

    async def _apply_bulk(self, changes: list[Change], originals: list[Change]) -> list[OpResult]:
        bulkable = [
            i
            for i, c in enumerate(changes)
            if c.kind in self.BULK_KINDS and (c.kind is Kind.CREATE or c.target_id)
        ]
        single = [i for i in range(len(changes)) if i not in set(bulkable)]
        results: dict[int, OpResult] = {}
        created: dict[str, str | None] = {}  # employee id -> target id, of answered creates
        replay: list[int] = []
        ops = [self._operation(changes[i]) for i in bulkable]
        start = 0
        for chunk in chunk_bulk_operations(ops, self.max_operations, self.max_payload):
            part = bulkable[start : start + len(chunk)]
            start += len(chunk)
            here = {changes[i].employee_id for i in part if changes[i].kind is Kind.CREATE}
            for n, i in enumerate(part):  # a reference to a create of an earlier request
                manager = originals[i].manager_employee_id
                if changes[i] is not originals[i] and manager not in here:
                    changes[i] = with_manager(originals[i], created.get(manager or ""))
                    chunk[n] = self._operation(changes[i])
            for i in part:  # every operation of the request has its intent first
                if not await self._record("intent", changes[i]):
                    raise self.stopped or RuntimeError("stopped")
            try:
                answer = await self.client.bulk(chunk)
            except ScimError as exc:
                if isinstance(exc, UNREACHABLE):  # this request and the rest: not applied
                    for i in bulkable[start - len(chunk) :]:
                        results[i] = _failed(changes[i], exc)
                        if i in part:  # sent: its intent gets its result
                            await self._record("result", changes[i], results[i])
                    for i in single:  # not sent either: the job's rounds send them again
                        results[i] = _failed(changes[i], exc)
                    single = []
                    break
                replay.extend(part)  # the whole request was refused: go one by one
                for i in part:
                    await self._replayed(changes[i], exc.status)
                continue
            answers = answer.get("Operations") or []
            for n, i in enumerate(part):
                change = changes[i]
                got = answers[n] if n < len(answers) else {}
                status = int(str(got.get("status", "0"))[:3] or 0)
                if 200 <= status < 300:
                    target_id = change.target_id or str(got.get("location", "")).rsplit("/")[-1]
                    results[i] = OpResult(
                        change.employee_id,
                        str(change.kind),
                        Outcome.APPLIED,
                        target_id=target_id or None,
                        etag=got.get("version"),
                        changed=change.changed,
                        status=status,
                        note="bulk",
                    )
                    if change.kind is Kind.CREATE:
                        created[change.employee_id] = target_id or None
                    await self._record("result", change, results[i])
                else:
                    replay.append(i)
                    await self._replayed(change, status)
        if self.stopped is not None:
            raise self.stopped
        # One by one: what a request refused, and what Bulk cannot carry. A replayed create
        # whose manager was created above takes its id; one whose manager is replayed too
        # waits for it (the single-call path).
        again = [
            with_manager(originals[i], created[m])
            if originals[i].after_manager and (m := originals[i].manager_employee_id) in created
            else originals[i]
            for i in replay + single
        ]
        for i, result in zip(replay + single, await super().apply(again), strict=True):
            results[i] = result
        return [results[i] for i in range(len(changes))]

    async def _replayed(self, change: Change, status: int | None) -> None:
        """Close the bulk attempt's intent: the operation is sent again alone (new intent)."""
        replayed = OpResult(
            change.employee_id, str(change.kind), Outcome.REPLAYED, status=status, note="bulk"
        )
        await self._record("result", change, replayed)


def _failed(change: Change, exc: ScimError) -> OpResult:
    """The result of an operation that failed with ``exc`` (sent alone, or in a Bulk request
    that could not reach the target): the error's name and the server's explanation."""
    return OpResult(
        change.employee_id,
        str(change.kind),
        Outcome.FAILED,
        target_id=change.target_id,
        changed=change.changed,
        status=getattr(exc, "status", None),
        error=_error_name(exc),
        unreachable=isinstance(exc, UNREACHABLE),
        scim_type=getattr(exc, "scim_type", None),
        code=getattr(exc, "code", None),
        detail=getattr(exc, "detail", None),
    )


def summarise(results: Iterable[OpResult | Mapping[str, Any]]) -> dict[str, Any]:
    """Counts by outcome and by kind:outcome, for trigger events, XCom and reports."""
    outcomes: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    unreachable = 0
    for r in results:
        data = r.to_dict() if isinstance(r, OpResult) else r
        outcomes[data["outcome"]] += 1
        by_kind[f"{data['kind']}:{data['outcome']}"] += 1
        unreachable += bool(data.get("unreachable"))
    return {"outcomes": dict(outcomes), "by_kind": dict(by_kind), "unreachable": unreachable}


__all__ = [
    "BatchApplier",
    "BulkBatchApplier",
    "OpResult",
    "Outcome",
    "remaining_changes",
    "summarise",
]
