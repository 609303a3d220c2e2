"""Exact request counts of a run (issue 10): what each kind of night costs, against both targets.

The counts are the SCIM client's own (``report.api_calls``: every HTTP request to the API, the
token endpoint apart) and, on the sandbox, its ``/_sandbox/stats`` counters, which must agree.
Timings and rates are measured by ``benchmarks/bench_requests.py``, never asserted here.

What the sample export's initial load costs beyond one request per new user, on an empty
target (the first run is a full reconciliation):

- discovery: ``ServiceProviderConfig`` and ``Schemas`` (2), cached in the state afterwards;
- the full listing: one page of active users, plus, on Genesys, one of inactive users;
- on the sandbox (Genesys), the gate's role and division catalogue (one page each), cached;
- on the plain scim2-server, which advertises Bulk, the creates travel in one Bulk request:
  a report's create references its manager's as ``"bulkId:<employee id>"``.
"""

from __future__ import annotations

import copy

from tests.fixtures.expect import by_external_id, read_rows, write_rows
from tests.fixtures.targets import Target
from tests.pipeline.harness import StageRun, run_stages

ACTIVE_CREATED = 50  # the sample export's active, accepted rows


def _run(target: Target, sync_home, tmp_path, rows, name, **kw) -> StageRun:
    result = run_stages(sync_home, write_rows(tmp_path / name, rows), target, **kw)
    assert result.ok, result.error
    return result


def _sandbox_requests(target: Target, before: dict | None = None) -> int:
    """API requests the sandbox answered (token requests apart) since ``before``."""
    stats = target.handle.stats()
    count = stats["requests"] - stats["token_requests"]
    if before is not None:
        count -= before["requests"] - before["token_requests"]
    return count


def _depth_levels(rows) -> int:
    """Levels of the sample's management tree among the users created (active rows)."""
    active = {r["employee_id"]: r for r in rows if r["status"] == "active"}

    def depth(eid: str) -> int:
        mid = active[eid]["manager_employee_id"]
        return 1 + depth(mid) if mid in active and mid != eid else 0

    return 1 + max(depth(e) for e in active)


def test_initial_load_costs_one_request_per_new_user_plus_discovery(target, sync_home, tmp_path):
    rows = read_rows()
    first = _run(target, sync_home, tmp_path, rows, "initial.csv")
    assert first.report["applied"]["create"] == ACTIVE_CREATED
    assert first.report["applied"].get("link_manager", 0) == 0, "managers are set on create"
    users = by_external_id(target.users())
    assert len(users) == ACTIVE_CREATED
    for row in rows:  # every report points at its manager, from its very first request
        eid, mid = row["employee_id"], row["manager_employee_id"]
        if eid in users and mid in users:
            manager = users[eid]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
            assert manager["manager"]["value"] == users[mid]["id"], eid
    if target.genesys:
        # discovery 2 + listing (active, inactive) 2 + catalogue (roles, divisions) 2
        overhead = 2 + 2 + 2
        assert first.report["api_calls"] == ACTIVE_CREATED + overhead
        assert _sandbox_requests(target) == ACTIVE_CREATED + overhead
    else:
        # discovery 2 + listing 1 + one Bulk request: managers and reports together, each
        # report's create referencing its manager's by bulkId (the tree has 3+ levels)
        assert _depth_levels(rows) >= 3
        assert first.report["api_calls"] == 2 + 1 + 1


def test_the_night_after_the_initial_load_costs_no_request(target, sync_home, tmp_path):
    rows = read_rows()
    _run(target, sync_home, tmp_path, rows, "initial.csv")
    before = target.handle.stats() if target.genesys else None
    quiet = _run(target, sync_home, tmp_path, rows, "quiet.csv")
    assert quiet.plan["target_read"] == "incremental (0 users looked up)"
    assert quiet.report["writes"] == 0
    assert quiet.report["api_calls"] == 0
    if target.genesys:
        assert _sandbox_requests(target, before) == 0
    again = _run(target, sync_home, tmp_path, rows, "quiet-again.csv")
    assert again.report["api_calls"] == 0


def _ten_changes(rows):
    """4 updates (title), 3 terminations (status), 3 new hires (one reporting to another)."""
    changed = copy.deepcopy(rows)
    active = [r for r in changed if r["status"] == "active" and r["employee_id"] != "E1001"]
    for row in active[-4:]:
        row["title"] = f"{row['title'] or 'Agent'} II"
    leavers = [
        r
        for r in active[-10:-4]
        if not any(o["manager_employee_id"] == r["employee_id"] for o in changed)
    ][:3]
    assert len(leavers) == 3
    for row in leavers:
        row["status"] = "terminated"
    template = next(r for r in changed if r["employee_id"] == "E1003")
    hires = []
    for n, manager in ((1, "E1003"), (2, "E1003"), (3, "E1951")):
        hire = dict(template)
        hire.update(
            employee_id=f"E195{n}",
            email=f"new.hire{n}@example.com",
            display_name=f"New Hire {n}",
            first_name="New",
            last_name=f"Hire {n}",
            title="Agent",
            manager_employee_id=manager,
            work_phone="",
            mobile_phone="",
        )
        hires.append(hire)
    return changed + hires, {r["employee_id"] for r in active[-4:]}, leavers, hires


def test_ten_changes_cost_ten_requests(target, sync_home, tmp_path):
    rows = read_rows()
    _run(target, sync_home, tmp_path, rows, "initial.csv")
    changed, updated, leavers, hires = _ten_changes(rows)
    before = target.handle.stats() if target.genesys else None
    result = _run(target, sync_home, tmp_path, changed, "ten.csv")
    applied = result.report["applied"]
    assert applied.get("update") == 4 and applied.get("deactivate") == 3
    assert applied.get("create") == 3 and result.report["writes"] == 10
    # Written from the state: nothing read first, nothing looked up.
    assert result.plan["target_read"] == "incremental (0 users looked up, 7 planned from the state)"
    if target.genesys:
        # One request per change: 4 PATCH, 3 PATCH active=false, 3 POST (E1953 after E1951's,
        # with manager.value set); no discovery, no GET, no look-up.
        assert result.report["api_calls"] == 10
        assert _sandbox_requests(target, before) == 10
    else:
        # Bulk: the 7 PATCHes and the 3 creates in one request, E1953's referencing its
        # manager E1951's create by bulkId.
        assert result.report["api_calls"] == 1
    users = by_external_id(target.users())
    assert all(users[r["employee_id"]]["active"] is False for r in leavers)
    assert all(users[e]["title"].endswith(" II") for e in updated)
    manager = users["E1953"]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
    assert manager["manager"]["value"] == users["E1951"]["id"]
    # ... and the night after costs nothing again.
    quiet = _run(target, sync_home, tmp_path, changed, "quiet.csv")
    assert quiet.report["api_calls"] == 0


def test_a_user_edited_by_hand_costs_one_reread_and_keeps_the_edit(target, sync_home, tmp_path):
    """The state's ETag is stale after an edit in the target: the write is refused (412,
    409 or 400 invalidVers), the user re-read and re-diffed, and the other owner's value kept."""
    rows = read_rows()
    _run(target, sync_home, tmp_path, rows, "initial.csv")
    changed = copy.deepcopy(rows)
    row = next(r for r in changed if r["status"] == "active" and r["employee_id"] != "E1001")
    user = by_external_id(target.users())[row["employee_id"]]
    target.patch_by_hand(user["id"], [{"op": "replace", "path": "title", "value": "By hand"}])
    row["department"] = "Workforce Management"
    result = _run(target, sync_home, tmp_path, changed, "one.csv")
    after = by_external_id(target.users())[row["employee_id"]]
    assert after["title"] == "By hand"
    ent = after["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
    assert ent["department"] == "Workforce Management"
    assert result.report["writes"] == 1
    if target.genesys:  # PATCH (stale) + GET + PATCH
        assert result.report["api_calls"] == 3


def test_discovery_is_read_again_when_the_cache_is_gone_then_cached(target, sync_home, tmp_path):
    """The cached ServiceProviderConfig and Schemas: dropped (as after a write refused for a
    schema reason), the next incremental run reads them once (2 requests) and caches them."""
    from genesys_sync.stages.plan import DISCOVERY
    from genesys_sync.state import StateStore
    from tests.pipeline.harness import sync_home_env

    rows = read_rows()
    _run(target, sync_home, tmp_path, rows, "initial.csv")
    with sync_home_env(sync_home):
        store = StateStore()
        assert store.get_document(DISCOVERY)["schemas"]
        store.set_document(DISCOVERY, None)
        store.close()
    assert _run(target, sync_home, tmp_path, rows, "rediscover.csv").report["api_calls"] == 2
    assert _run(target, sync_home, tmp_path, rows, "cached.csv").report["api_calls"] == 0


FULL = {"full_reconcile": True}


def test_a_full_reconciliation_lists_the_owned_attributes_in_big_pages(target, sync_home, tmp_path):
    """After a load, a full read asks for the owned cheap attributes only, at the target's
    largest page (100): the sample's 50 active users in one page (two at the untrimmed 25),
    their roles, externalId, skills and languages taken from the state (ETag unchanged)."""
    rows = read_rows()
    _run(target, sync_home, tmp_path, rows, "initial.csv")
    before = target.handle.stats() if target.genesys else None
    full = _run(target, sync_home, tmp_path, rows, "full.csv", conf=FULL)
    assert full.plan["target_read"] == "full"
    assert full.report["writes"] == 0
    if target.genesys:
        # discovery 2 + one page of active users + one of inactive users; no 429
        assert full.report["api_calls"] == 2 + 2
        assert _sandbox_requests(target, before) == 4
        assert target.handle.stats()["rate_limited"] == before["rate_limited"]
    else:
        # discovery 2 + one listing page of the owned attributes
        assert full.report["api_calls"] == 2 + 1
    assert _run(target, sync_home, tmp_path, rows, "quiet.csv").report["api_calls"] == 0


def test_a_full_reconciliation_reads_whole_the_users_changed_by_someone_else(
    target, sync_home, tmp_path
):
    """A user edited in the target since the sync last saw it (a new ETag) is read by id, so
    the plan diffs its real values: the owned title is repaired, the admin's role kept."""
    rows = read_rows()
    _run(target, sync_home, tmp_path, rows, "initial.csv")
    row = next(r for r in rows if r["status"] == "active" and r["employee_id"] != "E1001")
    user = by_external_id(target.users())[row["employee_id"]]
    target.patch_by_hand(
        user["id"],
        [
            {"op": "replace", "path": "title", "value": "By hand"},
            {"op": "add", "path": "roles", "value": [{"value": "Supervisor"}]},
        ],
    )
    full = _run(target, sync_home, tmp_path, rows, "full.csv", conf=FULL)
    assert full.report["writes"] == 1
    after = by_external_id(target.users())[row["employee_id"]]
    assert after["title"] == (row["title"] or None)
    assert "Supervisor" in {r["value"] for r in after.get("roles") or []}
    if target.genesys:
        # discovery 2 + 2 listing pages + 1 GET of the edited user + 1 PATCH
        assert full.report["api_calls"] == 2 + 2 + 1 + 1
    else:
        # discovery 2 + 1 listing page (every attribute, no ETag check) + 1 Bulk request
        assert full.report["api_calls"] == 2 + 1 + 1
