"""The two usual ways to sync HR to SCIM, for the benchmark to measure beside this project.

- :func:`tutorial`: the seed tutorial's (``../shared/reference/seed-tutorial.txt``, without its
  Bulk endpoint, which Genesys does not have): POST every employee every night; a 409 means
  "already there", skipped. It never updates, deactivates or links managers.
- :func:`look_up_then_write`: what Entra ID and most connectors do: for each employee, look the
  user up (``GET /Users?filter=externalId eq ...``), then create it (POST, with its manager,
  managers first) or PATCH what differs (nothing when in sync).

Both use this project's own SCIM client (same limiter, retries and 4 requests in flight), so
only the approach differs.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from typing import Any

from genesys_sync.mapping import (
    MANAGED_PATHS,
    DesiredUser,
    Ownership,
    create_payload,
    diff_operations,
    flatten_operations,
)
from genesys_sync.plan import _desired_values
from genesys_sync.scim.client import AsyncScimClient
from genesys_sync.scim.errors import ScimConflict

IN_FLIGHT = 4


async def tutorial(scim: Any, users: Mapping[str, DesiredUser]) -> Counter:
    """POST everyone; 409: skip. Returns the outcomes."""
    async with AsyncScimClient(scim) as client:
        semaphore = asyncio.Semaphore(IN_FLIGHT)

        async def post(user: DesiredUser) -> str:
            async with semaphore:
                try:
                    await client.create_user(create_payload(user, MANAGED_PATHS, None))
                    return "created"
                except ScimConflict:
                    return "skipped (409)"

        return Counter(await asyncio.gather(*map(post, users.values())))


def _levels(users: Mapping[str, DesiredUser]) -> list[list[DesiredUser]]:
    """The users by depth in the management tree (a manager's level before its reports')."""
    depth: dict[str, int] = {}

    def level(eid: str, seen: frozenset[str] = frozenset()) -> int:
        if eid not in depth:
            mid = users[eid].manager_employee_id
            up = mid in users and mid != eid and mid not in seen
            depth[eid] = level(mid, seen | {eid}) + 1 if up else 0
        return depth[eid]

    out: dict[int, list[DesiredUser]] = {}
    for eid in users:
        out.setdefault(level(eid), []).append(users[eid])
    return [out[n] for n in sorted(out)]


async def look_up_then_write(scim: Any, users: Mapping[str, DesiredUser]) -> Counter:
    """GET each employee's user, then POST (new) or PATCH (changed). Returns the outcomes."""
    ids: dict[str, str] = {}
    ownership = Ownership()
    async with AsyncScimClient(scim) as client:
        semaphore = asyncio.Semaphore(IN_FLIGHT)

        async def one(user: DesiredUser) -> str:
            async with semaphore:
                found = await client.find_user("externalId", user.employee_id)
                manager_id = ids.get(user.manager_employee_id or "")
                if found is None:
                    if not user.active:
                        return "skipped (inactive)"
                    created = await client.create_user(
                        create_payload(user, MANAGED_PATHS, manager_id)
                    )
                    ids[user.employee_id] = created["id"]
                    return "created"
                ids[user.employee_id] = found["id"]
                values = _desired_values(user, MANAGED_PATHS, manager_id)
                values.pop("password", None)
                ops = flatten_operations(diff_operations(values, found, ownership))
                if not ops:
                    return "unchanged"
                await client.patch_user(found["id"], ops)
                return "updated"

        outcomes: Counter = Counter()
        for level in _levels(users):
            outcomes.update(await asyncio.gather(*map(one, level)))
        return outcomes
