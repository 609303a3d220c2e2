"""A full listing is checked as it is read: a server whose paging misbehaves is caught, not
believed (httpx.MockTransport servers that ignore startIndex, lose pages or change totals)."""

from __future__ import annotations

import httpx
import pytest

from genesys_sync.scim import AsyncScimClient, ScimConnectionConfig, ScimListingInconsistent

BASE = "https://scim.example.test/v2"


def _users(n: int) -> list[dict[str, object]]:
    return [{"id": f"u{i:02d}", "userName": f"u{i:02d}@example.test"} for i in range(n)]


def _client(handler) -> AsyncScimClient:
    config = ScimConnectionConfig(base_url=BASE, bearer_token="t", requests_per_minute=60_000)
    return AsyncScimClient(config, transport=httpx.MockTransport(handler))


def _server(users, *, ignore_start=False, echo_start=True, total=None, drop_after=None):
    def handle(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        start, count = int(params["startIndex"]), int(params["count"])
        served = 1 if ignore_start else start
        page = users[served - 1 : served - 1 + count]
        if drop_after is not None and start > drop_after:
            page = []
        body: dict[str, object] = {
            "totalResults": len(users) if total is None else total(start),
            "Resources": page,
        }
        if echo_start:
            body["startIndex"] = served
        return httpx.Response(200, json=body)

    return handle


async def test_a_well_behaved_server_lists_everyone_once() -> None:
    async with _client(_server(_users(30))) as client:
        listed = [u async for u in client.iter_users(count=10)]
    assert [u["id"] for u in listed] == [u["id"] for u in _users(30)]


async def test_start_index_ignored_without_echo_is_caught_by_duplicate_ids() -> None:
    async with _client(_server(_users(30), ignore_start=True, echo_start=False)) as client:
        with pytest.raises(ScimListingInconsistent) as caught:
            await client.list_all_users(count=10)
    assert caught.value.check == "duplicate ids"
    assert "page 2" in str(caught.value) and "totalResults=30" in str(caught.value)


async def test_start_index_ignored_and_echoed_is_caught_by_start_index() -> None:
    async with _client(_server(_users(30), ignore_start=True)) as client:
        with pytest.raises(ScimListingInconsistent) as caught:
            await client.list_all_users(count=10)
    assert caught.value.check == "startIndex"
    assert "startIndex=11" in str(caught.value) and "startIndex=1" in str(caught.value)


async def test_pages_that_stop_short_of_total_results_are_caught() -> None:
    async with _client(_server(_users(30), drop_after=20)) as client:
        with pytest.raises(ScimListingInconsistent) as caught:
            await client.list_all_users(count=10)
    assert caught.value.check == "totalResults"
    assert "totalResults=30" in str(caught.value) and "held 20 users" in str(caught.value)


async def test_total_results_changing_between_pages_is_caught() -> None:
    handler = _server(_users(30), total=lambda start: 30 if start == 1 else 31)
    async with _client(handler) as client:
        with pytest.raises(ScimListingInconsistent) as caught:
            await client.list_all_users(count=10)
    assert caught.value.check == "totalResults"
    assert "30" in str(caught.value) and "31" in str(caught.value)


async def test_the_error_pickles_with_its_check() -> None:
    import pickle

    error = ScimListingInconsistent("listing is inconsistent", check="startIndex")
    again = pickle.loads(pickle.dumps(error))
    assert again.check == "startIndex" and str(again) == "listing is inconsistent"
