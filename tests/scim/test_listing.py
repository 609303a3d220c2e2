"""Full reads at the fewest requests (``genesys_sync.scim.listing``), against a fake client."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from genesys_sync.mapping import GENESYS, MANAGED_PATHS
from genesys_sync.scim.listing import (
    EXPENSIVE,
    UNTRIMMED_PAGE_SIZE,
    largest_page_size,
    listing_attributes,
    read_all_users,
)

SPC = {"pagination": {"maxPageSize": 100}, "filter": {"maxResults": 200}}


class FakeClient:
    """Records the listings and GETs; holds ``users`` (id -> full user)."""

    def __init__(self, users, flavor="genesys"):
        self.config = SimpleNamespace(flavor=flavor)
        self.users = users
        self.listings: list[tuple[tuple[str, ...], int]] = []
        self.gets: list[str] = []

    async def list_all_users(self, attributes=None, excluded_attributes=None, count=None):
        self.listings.append((tuple(attributes or ()), count))
        keep = set(attributes or ()) | {"id", "meta", "userName", "active"}
        return [{k: v for k, v in u.items() if k in keep} for u in self.users.values()]

    async def get_user(self, user_id):
        self.gets.append(user_id)
        user = self.users[user_id]
        return user, user["meta"]["version"]


def _user(n: int, version: str = '"1"') -> dict:
    return {
        "id": f"id-{n}",
        "userName": f"u{n}@example.com",
        "active": True,
        "meta": {"version": version},
        "title": "Agent",
        "externalId": f"E{n}",
        "roles": [{"value": "employee"}, {"value": "Admin"}],
        GENESYS: {"routingSkills": [{"name": "Billing", "proficiency": 4}]},
    }


def _known(users: dict) -> dict:
    return {
        u["id"]: (
            u["externalId"],
            u["meta"]["version"],
            {"roles": [{"value": "employee"}], f"{GENESYS}:routingSkills": [{"name": "Billing"}]},
        )
        for u in users.values()
    }


def _read(client, known=None):
    return asyncio.run(read_all_users(client, MANAGED_PATHS, SPC, known))


def test_page_size_and_attributes():
    assert largest_page_size(SPC) == 100
    assert largest_page_size({"filter": {"maxResults": 50}}) == 50
    assert largest_page_size(None) == 100
    names = listing_attributes(MANAGED_PATHS)
    assert names[:4] == ["id", "userName", "active", "meta"]
    assert len(names) == len(set(names))


def test_other_targets_list_the_owned_attributes_once_at_their_largest_page():
    users = {f"id-{n}": _user(n) for n in range(3)}
    client = FakeClient(users, flavor="scim2")
    read = _read(client, _known(users))
    assert client.listings == [(tuple(listing_attributes(MANAGED_PATHS)), 100)]
    assert not read.trimmed and len(read.users) == 3


def test_genesys_without_known_etags_lists_untrimmed_pages_of_25():
    users = {f"id-{n}": _user(n) for n in range(3)}
    client = FakeClient(users)
    read = _read(client, {})
    assert [count for _, count in client.listings] == [UNTRIMMED_PAGE_SIZE]
    assert read.users[0]["roles"] == users["id-0"]["roles"]


def test_genesys_lists_cheap_attributes_and_takes_the_expensive_ones_from_the_state():
    users = {f"id-{n}": _user(n) for n in range(3)}
    client = FakeClient(users)
    read = _read(client, _known(users))
    ((attributes, count),) = client.listings
    assert count == 100 and not set(EXPENSIVE) & set(attributes)
    assert read.trimmed and read.from_state == 3 and not client.gets
    user = read.users[0]
    assert user["externalId"] == "E0" and user["roles"] == [{"value": "employee"}]
    assert user[GENESYS]["routingSkills"] == [{"name": "Billing"}]


def test_a_user_changed_since_is_read_by_id_with_its_real_values():
    users = {f"id-{n}": _user(n) for n in range(30)}
    known = _known(users)
    users["id-7"]["meta"]["version"] = '"2"'  # edited by an admin since
    client = FakeClient(users)
    read = _read(client, known)
    assert client.gets == ["id-7"] and read.read_by_id == 1
    assert {"value": "Admin"} in next(u for u in read.users if u["id"] == "id-7")["roles"]
    assert len(read.users) == 30


def test_many_unknown_users_cost_one_untrimmed_listing_not_one_get_each():
    users = {f"id-{n}": _user(n) for n in range(30)}
    known = dict(list(_known(users).items())[:5])  # 25 users unknown to the state
    client = FakeClient(users)
    read = _read(client, known)
    assert [count for _, count in client.listings] == [100, UNTRIMMED_PAGE_SIZE]
    assert read.untrimmed_listing and not client.gets and len(read.users) == 30
