"""The client against the Genesys sandbox: OAuth, 429s, 503s, resets, rate limit, listings."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from genesys_sync.scim import (
    AsyncScimClient,
    ScimAuthError,
    ScimConnectionConfig,
    ScimRateLimited,
    ScimServerError,
    ScimTransportError,
    ScimVersionMismatch,
)
from tests.fixtures.sandbox import SandboxHandle

CATALOGUE = Path(__file__).resolve().parents[2] / "include" / "sandbox" / "catalogue.json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


class Sleeps(list[float]):
    """A sleep that records the waits instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def config_for(sandbox: SandboxHandle, **extra: Any) -> ScimConnectionConfig:
    """The client config of the sandbox, as an Airflow connection would give it."""
    fields = {
        "base_url": sandbox.scim_base_url,
        "token_url": sandbox.token_url,
        "api_url": sandbox.api_url,
        "max_backoff_seconds": 2,
        # Above the sandbox's 300/minute, which no test here reaches with one token: faster.
        "requests_per_minute": 1200,
        **extra,
    }
    config = ScimConnectionConfig.from_fields(
        None, sandbox.client_id, sandbox.client_secret, fields
    )
    return dataclasses.replace(config, backoff_base_seconds=0.01)


def new_user(**fields: object) -> dict[str, object]:
    tag = uuid.uuid4().hex[:10]
    return {
        "schemas": [USER_SCHEMA],
        "userName": f"user.{tag}@example.com",
        "displayName": f"User {tag}",
        "externalId": f"E-{tag}",
        **fields,
    }


async def test_config_is_genesys_flavored(sandbox: SandboxHandle) -> None:
    config = config_for(sandbox)
    assert config.flavor == "genesys" and config.users_path == "/users"
    async with AsyncScimClient(config) as client:
        spc = await client.service_provider_config()
        schemas = await client.schemas()
    assert spc.get("bulk", {}).get("supported") is False
    assert USER_SCHEMA in {schema.get("id") for schema in schemas}


async def test_oauth_token_fetched_then_used_for_a_lifecycle(sandbox: SandboxHandle) -> None:
    async with AsyncScimClient(config_for(sandbox)) as client:
        created = await client.create_user(new_user())
        user, etag = await client.get_user(created["id"])
        assert etag and etag == user["meta"]["version"]
        ops = [{"op": "replace", "path": "title", "value": "Agent"}]
        updated = await client.patch_user(created["id"], ops, etag=etag)
        assert updated["title"] == "Agent"
        with pytest.raises(ScimVersionMismatch) as stale:
            await client.patch_user(created["id"], ops, etag=etag)
        # Genesys (the SDK) answers 400 invalidVers; some Genesys pages say 409: both are stale.
        assert stale.value.status in (400, 409) and stale.value.scim_type == "invalidVers"
        found = await client.find_user("externalId", str(created["externalId"]))
        assert found and found["id"] == created["id"]
        await client.delete_user(created["id"])
    stats = sandbox.stats()
    assert stats["token_requests"] == 1 == client.stats.token_fetches
    assert "401" not in stats["by_status"]


async def test_token_renewed_before_it_expires(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(token_lifetime_seconds=2)
    async with AsyncScimClient(config_for(sandbox)) as client:
        await client.create_user(new_user())
        await asyncio.sleep(2.1)
        await client.list_all_users()
    stats = sandbox.stats()
    assert stats["token_requests"] == 2 == client.stats.token_fetches
    assert "401" not in stats["by_status"]


async def test_401_mid_run_renews_the_token_once(sandbox: SandboxHandle) -> None:
    async with AsyncScimClient(config_for(sandbox)) as client:
        created = await client.create_user(new_user())
        sandbox.set_faults(expire_tokens=True)
        user, _ = await client.get_user(created["id"])
        assert user["id"] == created["id"]
    stats = sandbox.stats()
    assert stats["by_status"].get("401") == 1
    assert stats["token_requests"] == 2
    assert client.stats.retries == 0


async def test_the_clients_of_one_process_share_the_oauth_clients_token(
    sandbox: SandboxHandle,
) -> None:
    """Every batch job opens a client of its own: one token serves them all until it is about
    to expire or is revoked (then one 401 and one fetch); another OAuth client's is its own."""
    for _ in range(3):
        async with AsyncScimClient(config_for(sandbox)) as client:
            await client.list_all_users()
    assert sandbox.stats()["token_requests"] == 1

    sandbox.set_faults(expire_tokens=True)  # revoked by the login host
    for _ in range(2):
        async with AsyncScimClient(config_for(sandbox)) as client:
            await client.list_all_users()
    stats = sandbox.stats()
    assert stats["token_requests"] == 2 and stats["by_status"].get("401") == 1

    sandbox.set_faults(expire_tokens=True, token_lifetime_seconds=2)
    async with AsyncScimClient(config_for(sandbox)) as client:
        await client.list_all_users()  # a 401, then a token that lives 2 s
    await asyncio.sleep(2.1)
    async with AsyncScimClient(config_for(sandbox)) as client:
        await client.list_all_users()  # renewed before use, not after a 401
    stats = sandbox.stats()
    assert stats["token_requests"] == 4 and stats["by_status"].get("401") == 2

    other = dataclasses.replace(config_for(sandbox), client_secret="not-the-secret")
    async with AsyncScimClient(other) as client:
        with pytest.raises(ScimAuthError):
            await client.list_all_users()
    assert sandbox.stats()["token_requests"] == 5, "another client's token is not lent"


async def test_wrong_client_secret_is_an_auth_error(sandbox: SandboxHandle) -> None:
    config = dataclasses.replace(config_for(sandbox), client_secret="not-the-secret")
    sleeps = Sleeps()
    async with AsyncScimClient(config, sleep=sleeps) as client:
        with pytest.raises(ScimAuthError) as caught:
            await client.list_all_users()
    assert caught.value.code == "invalid_client"
    assert "not-the-secret" not in str(caught.value)
    assert sleeps == [] and sandbox.stats()["token_requests"] == 1


async def test_forced_429s_are_retried_after_retry_after(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(force_429=2, retry_after_seconds=1)
    sleeps = Sleeps()
    async with AsyncScimClient(config_for(sandbox), sleep=sleeps) as client:
        created = await client.create_user(new_user())
    assert created["id"]
    assert sleeps == [1, 1]
    assert client.stats.rate_limited == 2 and client.stats.retries == 2
    assert sandbox.stats()["rate_limited"] == 2
    assert len(sandbox.users()) == 1


async def test_retry_after_is_honoured_beyond_max_backoff(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(force_429=1, retry_after_seconds=30)
    sleeps = Sleeps()
    async with AsyncScimClient(config_for(sandbox, max_backoff_seconds=1.5), sleep=sleeps) as c:
        await c.list_all_users()
    assert sleeps == [30]  # max_backoff_seconds caps the client's own backoff only


async def test_retry_after_is_capped_by_the_job_deadline(sandbox: SandboxHandle) -> None:
    import time

    sandbox.set_faults(force_429=1, retry_after_seconds=30)
    sleeps = Sleeps()
    deadline = time.monotonic() + 5
    config = config_for(sandbox, max_backoff_seconds=1.5)
    async with AsyncScimClient(config, sleep=sleeps, deadline=deadline) as c:
        await c.list_all_users()
    assert len(sleeps) == 1 and 4 < sleeps[0] <= 5


async def test_503s_are_retried(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(error_rate=0.4, seed=7)
    async with AsyncScimClient(config_for(sandbox, max_attempts=12)) as client:
        created = [await client.create_user(new_user()) for _ in range(8)]
    stats = sandbox.stats()
    assert stats["by_status"].get("503", 0) > 0
    assert client.stats.retries == stats["by_status"]["503"]
    assert {u["id"] for u in sandbox.users()} == {u["id"] for u in created}


async def test_connection_resets_are_retried(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(reset_rate=0.4, seed=11)
    async with AsyncScimClient(config_for(sandbox, max_attempts=12)) as client:
        for _ in range(6):
            await client.create_user(new_user())
        users = await client.list_all_users(count=2)
    stats = sandbox.stats()
    assert stats["connection_resets"] > 0
    assert client.stats.retries >= stats["connection_resets"]
    # A reset happens before the sandbox serves the request: no duplicates, none lost.
    assert len(users) == 6 == len(sandbox.users())


async def test_a_success_whose_body_is_cut_short_is_retried(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(malformed=2, malformed_kind="invalid_json")
    async with AsyncScimClient(config_for(sandbox, max_attempts=3)) as client:
        created = await client.create_user(new_user())
    assert client.stats.retries == 2
    assert [u["id"] for u in sandbox.users()] == [created["id"]]


async def test_retry_budget_exhausted_raises_typed_errors(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(error_rate=1.0)
    async with AsyncScimClient(config_for(sandbox, max_attempts=3)) as client:
        with pytest.raises(ScimServerError) as server_error:
            await client.list_all_users()
    assert server_error.value.status == 503 and server_error.value.attempts == 3
    assert server_error.value.code == "service.unavailable"

    sandbox.set_faults(error_rate=0.0, reset_rate=1.0)
    async with AsyncScimClient(config_for(sandbox, max_attempts=2)) as client:
        with pytest.raises(ScimTransportError) as reset:
            await client.list_roles()
    assert reset.value.attempts == 2 and reset.value.retryable

    sandbox.set_faults(reset_rate=0.0, force_429=5, retry_after_seconds=1)
    async with AsyncScimClient(config_for(sandbox, max_attempts=2), sleep=Sleeps()) as client:
        with pytest.raises(ScimRateLimited) as limited:
            await client.create_user(new_user())
    assert limited.value.retry_after == 1 and limited.value.attempts == 2
    assert sandbox.users() == []


async def test_shared_limiter_keeps_a_burst_under_the_rate(sandbox: SandboxHandle) -> None:
    # The server counts requests per token over a sliding minute; the two clients below have
    # separate tokens but one limiter (same OAuth client), as two triggers in one triggerer.
    rate = 600
    sandbox.set_faults(requests_per_minute=rate)
    config = config_for(sandbox, requests_per_minute=rate, max_attempts=1)
    async with AsyncScimClient(config) as first, AsyncScimClient(config) as second:
        assert first._limiter is second._limiter
        await asyncio.gather(
            *(client.list_roles() for client in (first, second) for _ in range(12))
        )
    stats = sandbox.stats()
    assert stats["rate_limited"] == 0 and "429" not in stats["by_status"]
    assert first.stats.total + second.stats.total == 24


async def test_the_sandbox_rate_limit_is_real(sandbox: SandboxHandle) -> None:
    # The control for the test above: a client configured above the server's limit is refused.
    sandbox.set_faults(requests_per_minute=5)
    config = config_for(sandbox, requests_per_minute=60_000, max_attempts=1)
    async with AsyncScimClient(config) as client:
        results = await asyncio.gather(
            *(client.list_divisions() for _ in range(8)), return_exceptions=True
        )
    refused = [r for r in results if isinstance(r, ScimRateLimited)]
    assert len(refused) == 3
    assert all(r.retry_after and r.retry_after >= 1 for r in refused)
    assert sandbox.stats()["rate_limited"] == 3


async def test_list_all_users_returns_inactive_users_too(sandbox: SandboxHandle) -> None:
    async with AsyncScimClient(config_for(sandbox)) as client:
        created = [await client.create_user(new_user()) for _ in range(5)]
        for user in created[:2]:
            ops = [{"op": "replace", "path": "active", "value": False}]
            await client.patch_user(user["id"], ops)
        unfiltered = [user async for user in client.iter_users(count=2)]
        everyone = await client.list_all_users(count=2)
    assert len(unfiltered) == 3  # Genesys lists active users only without a filter
    assert sorted(u["id"] for u in everyone) == sorted(u["id"] for u in created)
    assert sum(1 for u in everyone if u.get("active") is False) == 2


async def test_list_roles_and_divisions(sandbox: SandboxHandle) -> None:
    catalogue = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    async with AsyncScimClient(config_for(sandbox)) as client:
        roles = await client.list_roles()
        divisions = await client.list_divisions()
    assert roles == catalogue["roles"]
    assert divisions == catalogue["divisions"]
    assert client.stats.by_method == {"GET": 2}
