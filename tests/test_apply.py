"""Applying batches against real servers: every operation is safe to repeat."""

from __future__ import annotations

import json

import pytest

from genesys_sync.apply import BatchApplier, BulkBatchApplier, Outcome
from genesys_sync.mapping import MANAGED_PATHS, desired_user, supported_paths
from genesys_sync.plan import Change, Kind, PlanOptions, plan_sync
from genesys_sync.scim.client import AsyncScimClient
from genesys_sync.scim.connection import ScimConnectionConfig
from tests.test_plan import row


def _config(handle) -> ScimConnectionConfig:
    conn = json.loads(handle.connection_json())
    return ScimConnectionConfig.from_fields(
        None,
        conn.get("login"),
        conn.get("password"),
        {**conn["extra"], "requests_per_minute": 6000},
    )


def _plan(target_users, *rows, paths=MANAGED_PATHS, managed=None):
    desired = {r["employee_id"]: desired_user(r) for r in rows}
    return plan_sync(desired, target_users, PlanOptions(paths=paths), managed=managed)


@pytest.fixture
async def client(sandbox):
    sandbox.set_faults(requests_per_minute=6000)
    async with AsyncScimClient(_config(sandbox)) as c:
        yield c


async def test_repeated_create_resumes_instead_of_duplicating(client, sandbox):
    plan = _plan([], row("E1"))
    first = await BatchApplier(client).apply(plan.writes)
    second = await BatchApplier(client).apply(plan.writes)
    assert [r.outcome for r in first] == [Outcome.APPLIED]
    assert second[0].outcome == Outcome.APPLIED and second[0].note == "existing user resumed"
    assert second[0].target_id == first[0].target_id
    assert [u["externalId"] for u in sandbox.users()] == ["E1"]


async def test_create_adopts_an_unowned_user_and_refuses_an_owned_one(client, sandbox):
    unowned = sandbox.seed_user({"userName": "e1@example.com", "displayName": "Old"})
    owned = sandbox.seed_user(
        {"userName": "e2@example.com", "displayName": "Theirs", "externalId": "HR-OTHER"}
    )
    plan = _plan([], row("E1"), row("E2"))  # planned from a stale view: both look new
    results = {r.employee_id: r for r in await BatchApplier(client).apply(plan.writes)}
    assert results["E1"].outcome == Outcome.APPLIED
    assert results["E1"].note == "existing user adopted"
    assert results["E2"].outcome == Outcome.CONFLICT
    users = {u["id"]: u for u in sandbox.users()}
    assert users[unowned["id"]]["externalId"] == "E1"
    assert users[unowned["id"]]["displayName"] == "Person E1"
    assert users[owned["id"]]["externalId"] == "HR-OTHER"
    assert users[owned["id"]]["displayName"] == "Theirs"


async def test_stale_etag_is_rediffed_not_overwritten(client, sandbox):
    await BatchApplier(client).apply(_plan([], row("E1")).writes)
    current = await client.list_all_users()
    update = _plan(current, row("E1", title="Lead", department="Sales"))
    (change,) = update.writes
    # Someone else already set the title: the ETag in the plan is now stale.
    await client.patch_user(change.target_id, [{"op": "replace", "path": "title", "value": "Lead"}])
    (result,) = await BatchApplier(client).apply([change])
    assert result.outcome == Outcome.APPLIED
    assert result.changed == [
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
    ]
    (again,) = await BatchApplier(client).apply([change])  # a repeated trigger
    assert again.outcome == Outcome.UNCHANGED


async def test_delete_of_a_missing_user_counts_as_done(client):
    change = Change(Kind.DELETE, "E9", target_id="7d3c1c1e-0000-4000-8000-000000000000")
    (result,) = await BatchApplier(client).apply([change])
    assert result.outcome == Outcome.APPLIED and result.note == "already deleted"


async def test_bulk_applier_sends_bulk_and_replays_conflicts_alone(plain_scim):
    async with AsyncScimClient(_config(plain_scim)) as client:
        paths = supported_paths(await client.schemas())
        with plain_scim.client() as http:
            http.post(
                "/Users",
                json={
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": "e3@example.com",
                    "externalId": "X",
                },
            )
        plan = _plan([], row("E1"), row("E2"), row("E3"), paths=paths)
        applier = BulkBatchApplier(client, max_operations=2, max_payload=1_000_000)
        results = {r.employee_id: r for r in await applier.apply(plan.writes)}
        assert results["E1"].note == "bulk" and results["E2"].note == "bulk"
        assert results["E3"].outcome == Outcome.CONFLICT
        assert client.stats.by_method.get("POST", 0) >= 2  # two BulkRequests of two and one
    names = sorted(u["userName"] for u in plain_scim.users())
    assert names == ["e1@example.com", "e2@example.com", "e3@example.com"]


def test_a_repeated_batch_keeps_the_write_of_the_first_attempt():
    from genesys_sync.pipeline import merge_attempts

    first = [
        {"employee_id": "E1", "kind": "deactivate", "outcome": "applied", "target_id": "t"},
        {"employee_id": "E2", "kind": "update", "outcome": "failed"},
    ]
    again = [
        {"employee_id": "E1", "kind": "deactivate", "outcome": "unchanged"},
        {"employee_id": "E2", "kind": "update", "outcome": "applied"},
    ]
    merged = merge_attempts(first, again)
    assert [(r["employee_id"], r["outcome"]) for r in merged] == [
        ("E1", "applied"),
        ("E2", "applied"),
    ]
    assert merged[0]["note"] == "applied by an earlier attempt"
