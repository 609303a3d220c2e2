"""Full reads of the target at the fewest requests it allows: owned attributes, big pages.

A full reconciliation lists every user, active and inactive. On Genesys Cloud a page of more
than 25 users answers 429 unless the expensive attributes (``roles``, ``externalId``, routing
skills and languages) are trimmed, and the sync owns all four. So a full read goes in two steps:

1. a listing of the owned *cheap* attributes (``attributes=``) at the largest page the target
   advertises (``pagination.maxPageSize`` / ``filter.maxResults``): ``id``, ``userName``,
   ``active`` and ``meta`` come with it;
2. the expensive attributes of a listed user whose ``meta.version`` is the one the state
   recorded when the sync last wrote or read it are the values the sync last applied (an
   ETag names one representation of the resource); every other user (unknown to the state,
   or changed since by someone else) is read whole, by id, or (when that is dearer) by a
   listing of every owned attribute at the untrimmed page size.

The listings are checked as the client reads them (``ScimListingInconsistent``), so a user
missing from them is missing from a complete, trusted read. Other targets (no such limit) are
listed once, with the owned attributes, at their largest page.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from genesys_sync.mapping import GENESYS, ROLES_PATH

#: The attributes that make a Genesys user page over 25 answer 429 (the SDK's list).
EXPENSIVE: tuple[str, ...] = (
    "externalId",
    ROLES_PATH,
    f"{GENESYS}:routingSkills",
    f"{GENESYS}:routingLanguages",
)
#: Always asked for: what the planner matches and versions users by.
KEYS: tuple[str, ...] = ("id", "userName", "active", "meta")
UNTRIMMED_PAGE_SIZE = 25  # Genesys: the largest page that may return expensive attributes
FALLBACK_PAGE_SIZE = 100  # a target that advertises no page size
CONCURRENT_READS = 4

#: What a managed user is known as in the state: target id -> (employee id, last ETag,
#: the values the sync last applied).
Known = Mapping[str, tuple[str, str | None, Mapping[str, Any]]]


@dataclass
class FullRead:
    """The users a full read returned, and how it read them (for the plan's record)."""

    users: list[dict[str, Any]]
    page_size: int
    trimmed: bool
    from_state: int = 0  # users whose expensive attributes came from the state
    read_by_id: int = 0
    untrimmed_listing: bool = False
    attributes: list[str] = field(default_factory=list)


def listing_attributes(paths: Iterable[str]) -> list[str]:
    """The ``attributes=`` of a listing of the owned ``paths``, the keys first."""
    return [*KEYS, *(p for p in dict.fromkeys(paths) if p not in KEYS)]


def largest_page_size(spc: Mapping[str, Any] | None) -> int:
    """The largest page the target advertises (``pagination.maxPageSize``, else
    ``filter.maxResults``), else :data:`FALLBACK_PAGE_SIZE`."""
    spc = spc or {}
    for section, key in (("pagination", "maxPageSize"), ("filter", "maxResults")):
        value = (spc.get(section) or {}).get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return FALLBACK_PAGE_SIZE


def _with_state(listed: dict[str, Any], employee_id: str, applied: Mapping[str, Any]) -> dict:
    """A listed (trimmed) user with its expensive attributes as the sync last applied them."""
    user = dict(listed)
    user["externalId"] = employee_id
    if applied.get(ROLES_PATH) is not None:
        user[ROLES_PATH] = applied[ROLES_PATH]
    genesys = dict(user.get(GENESYS) or {})
    for path in EXPENSIVE[2:]:
        if applied.get(path) is not None:
            genesys[path.rpartition(":")[2]] = applied[path]
    if genesys:
        user[GENESYS] = genesys
    return user


def _validated(listed: Mapping[str, Any], known: Known, paths: Sequence[str]) -> bool:
    """Whether the state's ETag still names this user (its expensive values are known)."""
    entry = known.get(str(listed.get("id") or ""))
    if entry is None:
        return False
    _, etag, applied = entry
    version = (listed.get("meta") or {}).get("version")
    if not etag or version != etag:
        return False
    # An active user's roles are recorded whenever they were applied; without them, read it.
    return not (listed.get("active", True) and ROLES_PATH in paths and ROLES_PATH not in applied)


def _pages(count: int, size: int) -> int:
    return max(1, math.ceil(count / size))


async def read_all_users(
    client: Any,
    paths: Sequence[str],
    spc: Mapping[str, Any] | None,
    known: Known | None = None,
) -> FullRead:
    """Every user of the target, each with the owned ``paths``, in as few requests as the
    target allows (module docstring). ``client`` is an ``AsyncScimClient``."""
    from genesys_sync.scim.errors import ScimNotFound

    owned = listing_attributes(paths)
    largest = largest_page_size(spc)
    known = known or {}
    genesys = client.config.flavor == "genesys"
    if not genesys or largest <= UNTRIMMED_PAGE_SIZE:
        size = largest if not genesys else min(largest, UNTRIMMED_PAGE_SIZE)
        users = await client.list_all_users(attributes=owned, count=size)
        return FullRead(users, size, trimmed=False, attributes=owned)
    if not any(etag for _, etag, _ in known.values()):
        # Nothing to validate against (a first run, a lost state): one untrimmed listing.
        users = await client.list_all_users(attributes=owned, count=UNTRIMMED_PAGE_SIZE)
        return FullRead(users, UNTRIMMED_PAGE_SIZE, trimmed=False, attributes=owned)
    cheap = [a for a in owned if a not in EXPENSIVE]
    listed = await client.list_all_users(attributes=cheap, count=largest)
    users: list[dict[str, Any]] = []
    unvalidated: list[dict[str, Any]] = []
    for user in listed:
        if _validated(user, known, paths):
            eid, _, applied = known[user["id"]]
            users.append(_with_state(user, eid, applied))
        else:
            unvalidated.append(user)
    result = FullRead(users, largest, trimmed=True, from_state=len(users), attributes=cheap)
    if not unvalidated:
        return result
    active = sum(1 for u in listed if u.get("active", True))
    relist_cost = _pages(active, UNTRIMMED_PAGE_SIZE) + _pages(
        len(listed) - active, UNTRIMMED_PAGE_SIZE
    )
    if len(unvalidated) >= relist_cost:
        result.users = await client.list_all_users(attributes=owned, count=UNTRIMMED_PAGE_SIZE)
        result.untrimmed_listing = True
        result.from_state = 0
        return result
    semaphore = asyncio.Semaphore(CONCURRENT_READS)

    async def whole(listed_user: dict[str, Any]) -> dict[str, Any] | None:
        async with semaphore:
            try:
                return (await client.get_user(listed_user["id"]))[0]
            except ScimNotFound:  # deleted since it was listed
                return None

    read = await asyncio.gather(*map(whole, unvalidated))
    result.users += [u for u in read if u]
    result.read_by_id = len(unvalidated)
    return result
