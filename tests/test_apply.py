"""Applying batches against real servers: every operation is safe to repeat."""

from __future__ import annotations

import dataclasses
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
    # The 409 resolved to a user that already holds everything: this run wrote nothing.
    assert second[0].outcome == Outcome.UNCHANGED
    assert second[0].note == "existing user already correct (409 resolved by look-up)"
    assert second[0].target_id == first[0].target_id
    assert [u["externalId"] for u in sandbox.users()] == ["E1"]
    from genesys_sync.report import count_applied

    counts = count_applied([r.to_dict() for r in second])
    assert counts["applied"]["create"] == 0 and counts["outcomes"]["unchanged"] == 1


async def test_a_refused_write_keeps_the_servers_explanation_out_of_the_log(
    client, sandbox, caplog
):
    plan = _plan([], row("E1"))
    (change,) = plan.writes
    body = {k: v for k, v in (change.body or {}).items() if k != "userName"}  # required
    from dataclasses import replace

    (result,) = await BatchApplier(client).apply([replace(change, body=body)])
    assert result.outcome == Outcome.FAILED and result.status == 400
    assert result.detail  # the server's own text, for the owner-only results file
    assert result.to_dict()["detail"] == result.detail
    assert result.detail not in caplog.text


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
    from genesys_sync.stages.apply import merge_attempts

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


def _extra_phone(target) -> dict[str, str]:
    """A number another owner put on the user: Teams on Genesys, ``other`` on a plain server."""
    kind = "microsoftteams" if target.genesys else "other"
    return {"type": kind, "value": "+12025550999"}


async def test_a_stale_version_is_rediffed_without_touching_other_owners_values(target):
    async with AsyncScimClient(target.scim_config()) as client:
        paths = supported_paths(await client.schemas())
        (created,) = await BatchApplier(client).apply(_plan([], row("E1"), paths=paths).writes)
        current = await client.list_all_users()
        hr = row("E1", roles="employee;User;Supervisor", mobile_phone="+12025550102")
        (change,) = _plan(current, hr, paths=paths).writes
        # Meanwhile an admin grants a role and an integration adds a number: the ETag is stale.
        target.patch_by_hand(
            created.target_id,
            [
                {"op": "add", "path": "roles", "value": [{"value": "Admin"}]},
                {"op": "add", "path": "phoneNumbers", "value": [_extra_phone(target)]},
            ],
        )
        (result,) = await BatchApplier(client).apply([change])
        assert result.outcome == Outcome.APPLIED
        assert sorted(result.changed) == ["phoneNumbers", "roles"]
        user, _ = await client.get_user(created.target_id)
    assert {r["value"] for r in user["roles"]} >= {"Admin", "employee", "User", "Supervisor"}
    phones = {(p["type"], p["value"]) for p in user["phoneNumbers"]}
    assert phones == {
        ("work", "+12025550101"),
        ("mobile", "+12025550102"),
        (_extra_phone(target)["type"], "+12025550999"),
    }


async def test_400_invalid_vers_is_a_stale_version_that_is_rediffed():
    """The Genesys SDK documents 400 invalidVers for a stale If-Match (the sandbox answers so)."""
    import httpx

    from genesys_sync.scim.connection import ScimConnectionConfig as Config

    user = {"id": "t1", "userName": "e1@example.com", "active": True, "title": "Old"}
    user["meta"] = {"version": 'W/"2"'}
    patches: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            patches.append(request.headers.get("If-Match"))
            if request.headers.get("If-Match") != 'W/"2"':
                body = {"schemas": [], "status": "400", "scimType": "invalidVers", "detail": "no"}
                return httpx.Response(400, json=body)
            return httpx.Response(200, json={**user, "title": "New", "meta": {"version": 'W/"3"'}})
        return httpx.Response(200, json=user, headers={"ETag": 'W/"2"'})

    config = Config(base_url="https://scim.example.test/v2", bearer_token="t")
    change = Change(
        Kind.UPDATE,
        "E1",
        target_id="t1",
        etag='W/"1"',
        changed=["title"],
        desired={"title": "New"},
        operations={"title": [{"op": "replace", "path": "title", "value": "New"}]},
    )
    async with AsyncScimClient(config, transport=httpx.MockTransport(handle)) as client:
        (result,) = await BatchApplier(client).apply([change])
    assert result.outcome == Outcome.APPLIED and patches == ['W/"1"', 'W/"2"']


def _ordered(*rows, batch_size=10, paths=MANAGED_PATHS):
    from genesys_sync.plan import order_creates

    plan = _plan([], *rows, paths=paths)
    first, second = order_creates(
        [c for c in plan.writes if c.phase == 1],
        [c for c in plan.writes if c.phase == 2],
        batch_size,
    )
    assert second == []
    return first[0]


async def test_a_create_waits_for_its_managers_and_is_sent_with_manager_set(client, sandbox):
    batch = _ordered(
        row("M1"), row("E1", manager_employee_id="M1"), row("E2", manager_employee_id="E1")
    )
    results = {r.employee_id: r for r in await BatchApplier(client).apply(batch)}
    assert all(r.outcome == Outcome.APPLIED for r in results.values())
    users = {u["externalId"]: u for u in sandbox.users()}
    ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    assert users["E1"][ent]["manager"]["value"] == users["M1"]["id"]
    assert users["E2"][ent]["manager"]["value"] == users["E1"]["id"]
    assert sandbox.stats()["by_method"].get("PATCH", 0) == 0, "one POST each, no link"


async def test_a_report_of_a_failed_manager_is_created_without_one(client, sandbox):
    sandbox.seed_user({"userName": "m1@example.com", "displayName": "X", "externalId": "HR-X"})
    batch = _ordered(row("M1"), row("E1", manager_employee_id="M1"))
    results = {r.employee_id: r for r in await BatchApplier(client).apply(batch)}
    assert results["M1"].outcome == Outcome.CONFLICT
    assert results["E1"].outcome == Outcome.APPLIED
    assert "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager" not in (
        results["E1"].changed
    )
    assert results["E1"].without_manager  # not in sync: the next run links the manager


async def test_a_create_sent_again_later_still_carries_its_managers_id(client, sandbox):
    """A report whose first attempt was unreachable is sent again in a later ``apply`` call
    (the job's next round), after its manager's create: it still goes out with the manager."""
    manager, report = _ordered(row("M1"), row("E1", manager_employee_id="M1"))
    applier = BatchApplier(client)
    (first,) = await applier.apply([manager])
    (later,) = await applier.apply([report])
    assert (first.outcome, later.outcome) == (Outcome.APPLIED, Outcome.APPLIED)
    assert not later.without_manager
    users = {u["externalId"]: u for u in sandbox.users()}
    ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    assert users["E1"][ent]["manager"]["value"] == users["M1"]["id"]
    stats = sandbox.stats()
    assert (stats["writes"], stats["by_method"].get("PATCH", 0)) == (2, 0), "a POST each, no link"


@pytest.mark.parametrize(("max_operations", "requests"), [(10, 1), (2, 2)])
async def test_bulk_creates_reference_their_managers_by_bulk_id(
    plain_scim, max_operations, requests
):
    """Managers and reports in one Bulk request (``"bulkId:M1"``, resolved by the server);
    across a request boundary, the manager's id from the earlier request."""
    async with AsyncScimClient(_config(plain_scim)) as client:
        paths = supported_paths(await client.schemas())
        batch = _ordered(
            row("M1"),
            row("E1", manager_employee_id="M1"),
            row("E2", manager_employee_id="E1"),
            row("E3", manager_employee_id="M1"),
            paths=paths,
        )
        applier = BulkBatchApplier(client, max_operations=max_operations, max_payload=1_000_000)
        results = {r.employee_id: r for r in await applier.apply(batch)}
        assert {r.outcome for r in results.values()} == {Outcome.APPLIED}
        assert {r.note for r in results.values()} == {"bulk"}
        assert client.stats.by_method == {"GET": 1, "POST": requests}  # schemas, then Bulk
    users = {u["externalId"]: u for u in plain_scim.users()}
    ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    managers = {eid: (u.get(ent) or {}).get("manager", {}).get("value") for eid, u in users.items()}
    ids = {eid: u["id"] for eid, u in users.items()}
    assert managers == {"M1": None, "E1": ids["M1"], "E2": ids["E1"], "E3": ids["M1"]}


async def test_an_unreachable_bulk_request_reports_its_operations_instead_of_failing_the_job(
    plain_scim,
):
    """A Bulk request that cannot reach the target: its operations (and the rest of the batch,
    not sent) come back as unreachable results, each intent closed by its result, for the
    job's rounds to send again, rather than an exception that fails the whole batch."""
    from tests.fixtures.sandbox import free_port

    events: list[tuple[str, str]] = []

    async def record(kind, change, result=None):
        events.append((kind, change.employee_id))
        return True

    config = _config(plain_scim)
    down = f"http://127.0.0.1:{free_port()}/scim/v2"
    config = dataclasses.replace(config, base_url=down, max_attempts=2, max_backoff_seconds=0.1)
    batch = _ordered(row("M1"), row("E1", manager_employee_id="M1"), row("E2"))
    async with AsyncScimClient(config) as client:
        applier = BulkBatchApplier(client, 1, 1_000_000, on_event=record)  # one per request
        results = await applier.apply(batch)
    assert [(r.employee_id, r.outcome, r.unreachable) for r in results] == [
        (c.employee_id, Outcome.FAILED, True) for c in batch
    ]
    # Only the first request was sent: its intent and its result; the others were not sent.
    assert events == [("intent", batch[0].employee_id), ("result", batch[0].employee_id)]
