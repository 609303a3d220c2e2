"""Behaviour 10: the /_sandbox admin endpoints: reset, stats, users, seeding."""

import json

import httpx

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.payloads import ENTERPRISE, new_user


def test_stats_count_requests_writes_and_tokens(scim: httpx.Client, sandbox: SandboxHandle) -> None:
    created = scim.post("/users", json=new_user()).json()
    scim.get(f"/users/{created['id']}")
    scim.put(f"/users/{created['id']}", json=new_user(title="Lead"))
    scim.post("/users", json=new_user())  # 409, still a write attempt
    scim.delete(f"/users/{created['id']}")

    stats = sandbox.stats()

    assert stats["requests"] == 6  # the token request, then five API calls
    assert stats["by_method"] == {"POST": 3, "GET": 1, "PUT": 1, "DELETE": 1}
    assert stats["by_status"] == {"200": 3, "201": 1, "409": 1, "204": 1}
    assert stats["writes"] == 4
    assert stats["token_requests"] == 1
    assert stats["rate_limited"] == 0


def test_reset_clears_users_counters_and_faults(scim: httpx.Client, sandbox: SandboxHandle) -> None:
    scim.post("/users", json=new_user())
    sandbox.set_faults(latency_ms=10)

    sandbox.reset()

    assert sandbox.users() == []
    assert sandbox.stats()["requests"] == 0
    assert sandbox.faults()["latency_ms"] == 0


def test_users_lists_active_and_inactive_users(scim: httpx.Client, sandbox: SandboxHandle) -> None:
    scim.post("/users", json=new_user(1))
    scim.post("/users", json=new_user(2, active=False))

    users = sandbox.users()

    assert [(u["userName"], u["active"]) for u in users] == [
        ("agent1@example.com", True),
        ("agent2@example.com", False),
    ]
    assert users[0][ENTERPRISE]["division"] == "Home"


def test_seed_user_bypasses_counters_and_limits(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(force_429=3)

    seeded = sandbox.seed_user(
        {"userName": "manual@example.com", "displayName": "Set up by hand", "active": False}
    )

    assert seeded["id"] and seeded["active"] is False
    assert [u["id"] for u in sandbox.users()] == [seeded["id"]]
    assert sandbox.stats()["requests"] == 0
    refused = httpx.post(f"{sandbox.url}/_sandbox/users", json={"userName": "x@example.com"})
    assert refused.status_code == 400


def test_connection_json_points_at_the_sandbox(sandbox: SandboxHandle) -> None:
    connection = json.loads(sandbox.connection_json())

    assert connection == {
        "conn_type": "http",
        "login": "sandbox-client",
        "password": "sandbox-secret",
        "extra": {
            "base_url": sandbox.scim_base_url,
            "token_url": sandbox.token_url,
            "api_url": sandbox.url,
        },
    }
