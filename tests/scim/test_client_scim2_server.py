"""The client against a real RFC 7644 server: the plain scim2-server, in a subprocess."""

from __future__ import annotations

import uuid

import pytest

from genesys_sync.scim import (
    AsyncScimClient,
    ScimAmbiguousMatch,
    ScimAuthError,
    ScimBadRequest,
    ScimConflict,
    ScimConnectionConfig,
    ScimNotFound,
    ScimVersionMismatch,
    bulk_limits,
    chunk_bulk_operations,
)
from tests.scim.conftest import Scim2Server

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


def new_user(**fields: object) -> dict[str, object]:
    tag = uuid.uuid4().hex[:10]
    return {
        "schemas": [USER_SCHEMA],
        "userName": f"user.{tag}@example.com",
        "displayName": f"User {tag}",
        "externalId": f"E-{tag}",
        **fields,
    }


async def test_discovery(scim2_server: Scim2Server) -> None:
    async with AsyncScimClient(scim2_server.config()) as client:
        spc = await client.service_provider_config()
        schemas = await client.schemas()
    supported, max_operations, max_payload = bulk_limits(spc)
    assert supported and max_operations > 0 and max_payload > 0
    assert USER_SCHEMA in {schema["id"] for schema in schemas}
    assert client.stats.by_method == {"GET": 2}


async def test_user_lifecycle(scim2_server: Scim2Server) -> None:
    payload = new_user(title="Agent")
    async with AsyncScimClient(scim2_server.config()) as client:
        created = await client.create_user(payload)
        user_id = created["id"]
        assert created["userName"] == payload["userName"]

        user, etag = await client.get_user(user_id)
        assert user["id"] == user_id
        assert etag and etag == user["meta"]["version"]

        by_external_id = await client.find_user("externalId", str(payload["externalId"]))
        by_user_name = await client.find_user("userName", str(payload["userName"]))
        assert by_external_id and by_external_id["id"] == user_id
        assert by_user_name and by_user_name["id"] == user_id
        assert await client.find_user("userName", 'nobody"\\@example.com') is None

        ops = [{"op": "replace", "path": "displayName", "value": "Renamed"}]
        updated = await client.patch_user(user_id, ops, etag=etag)
        patched, new_etag = await client.get_user(user_id)
        assert patched["displayName"] == "Renamed"
        assert new_etag != etag
        # scim2-server answers a PATCH with 204: the client keeps the ETag header.
        assert updated == {"id": user_id, "meta": {"version": new_etag}}

        with pytest.raises(ScimVersionMismatch) as stale:
            await client.patch_user(user_id, ops, etag=etag)
        assert stale.value.status == 412 and not stale.value.retryable

        replaced = await client.replace_user(
            user_id, {**payload, "displayName": "Replaced"}, etag=new_etag
        )
        assert replaced.get("displayName", "Replaced") == "Replaced"
        with pytest.raises(ScimVersionMismatch):
            await client.replace_user(user_id, payload, etag=new_etag)

        with pytest.raises(ScimConflict) as duplicate:
            await client.create_user(new_user(userName=payload["userName"]))
        assert duplicate.value.scim_type == "uniqueness"
        assert str(payload["userName"]) not in str(duplicate.value)

        with pytest.raises(ScimVersionMismatch):
            await client.delete_user(user_id, etag=etag)
        _, current = await client.get_user(user_id)
        await client.delete_user(user_id, etag=current)
        with pytest.raises(ScimNotFound):
            await client.get_user(user_id)
        with pytest.raises(ScimNotFound):
            await client.delete_user(user_id)
    assert client.stats.retries == 0
    assert client.stats.total == sum(client.stats.by_method.values())


async def test_find_user_ambiguous(scim2_server: Scim2Server) -> None:
    title = f"title-{uuid.uuid4().hex}"
    async with AsyncScimClient(scim2_server.config()) as client:
        for _ in range(2):
            await client.create_user(new_user(title=title))
        with pytest.raises(ScimAmbiguousMatch):
            await client.find_user("title", title)


async def test_iter_users_pages_and_list_all_users(scim2_server: Scim2Server) -> None:
    department = f"dept-{uuid.uuid4().hex}"
    async with AsyncScimClient(scim2_server.config()) as client:
        ids = set()
        for index in range(7):
            user = await client.create_user(new_user(title=department, active=index % 2 == 0))
            ids.add(user["id"])
        before = client.stats.by_method.get("GET", 0)
        seen = [
            user["id"]
            async for user in client.iter_users(
                filter=f'title eq "{department}"', attributes=["id", "userName"], count=3
            )
        ]
        assert client.stats.by_method["GET"] - before == 3  # 3 + 3 + 1
        assert sorted(seen) == sorted(ids)

        everyone = await client.list_all_users(count=4)
        everyone_ids = [user["id"] for user in everyone]
        assert ids <= set(everyone_ids)
        assert len(everyone_ids) == len(set(everyone_ids))
        inactive = {user["id"] for user in everyone if user.get("active") is False}
        assert len(inactive & ids) == 3


async def test_bulk_with_chunking(scim2_server: Scim2Server) -> None:
    async with AsyncScimClient(scim2_server.config()) as client:
        _, max_operations, max_payload = bulk_limits(await client.service_provider_config())
        users = [new_user() for _ in range(5)]
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": f"b{n}", "data": user}
            for n, user in enumerate(users)
        ]
        operations.append(
            {"method": "POST", "path": "/Users", "bulkId": "dup", "data": dict(users[0])}
        )
        chunks = chunk_bulk_operations(operations, min(max_operations, 2), max_payload)
        assert [len(chunk) for chunk in chunks] == [2, 2, 2]
        statuses = []
        for chunk in chunks:
            response = await client.bulk(chunk, fail_on_errors=10)
            statuses += [(op["bulkId"], op["status"]) for op in response["Operations"]]
        assert statuses[:5] == [(f"b{n}", "201") for n in range(5)]
        assert statuses[5] == ("dup", "409")
        for user in users:
            assert await client.find_user("userName", str(user["userName"]))


async def test_bad_filter_and_bad_token(scim2_server: Scim2Server) -> None:
    async with AsyncScimClient(scim2_server.config()) as client:
        with pytest.raises(ScimBadRequest) as bad:
            async for _ in client.iter_users(filter="userName eq"):
                pass
        assert bad.value.scim_type == "invalidFilter"
    wrong = ScimConnectionConfig(base_url=scim2_server.base_url, bearer_token="wrong")
    async with AsyncScimClient(wrong) as client:
        with pytest.raises(ScimAuthError) as denied:
            await client.get_user("x")
    assert denied.value.status == 401 and denied.value.attempts == 1
    assert "wrong" not in str(denied.value)
