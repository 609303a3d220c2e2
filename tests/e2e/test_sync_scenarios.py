"""End-to-end scenarios: the real DAG (``airflow dags test``, triggers included) against the
Genesys sandbox and against a plain scim2-server, asserting the target's final state user by user.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.harness import (
    ENTERPRISE,
    assert_user_matches,
    by_external_id,
    read_rows,
    rejected_ids,
    run_sync,
    write_rows,
)

pytestmark = pytest.mark.e2e


# The scenarios raise the request budget (sandbox and client alike) so the suite stays quick;
# tests/deployment runs the default 300 requests/minute.
FAST = 6000


@dataclass
class Target:
    name: str
    handle: Any
    genesys: bool

    def connection_json(self) -> str:
        conn = json.loads(self.handle.connection_json())
        conn["extra"]["requests_per_minute"] = FAST
        return json.dumps(conn)

    def users(self) -> list[dict[str, Any]]:
        return self.handle.users()

    def seed(self, user: dict[str, Any]) -> dict[str, Any]:
        """A user created behind the sync's back (an admin, another system)."""
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], **user}
        if self.genesys:
            return self.handle.seed_user(body)
        with self.handle.client() as client:
            response = client.post("/Users", json=body)
            response.raise_for_status()
            return response.json()


@pytest.fixture(params=["sandbox", "plain_scim"])
def target(request) -> Target:
    if request.param == "sandbox":
        handle = request.getfixturevalue("sandbox")
        handle.set_faults(requests_per_minute=FAST)
        return Target("sandbox", handle, genesys=True)
    return Target("plain_scim", request.getfixturevalue("plain_scim"), genesys=False)


def _load(target: Target, sync_home, tmp_path, rows, name="base.csv", **kw):
    result = run_sync(sync_home, write_rows(tmp_path / name, rows), target.connection_json(), **kw)
    assert result.ok, result.output[-4000:]
    return result


def _versions(users: list[dict[str, Any]]) -> dict[str, Any]:
    return {u["id"]: (u.get("meta") or {}).get("version") for u in users}


def _assert_state(target: Target, rows: list[dict[str, str]], skip: set[str]) -> None:
    """Every accepted row is in the target exactly as HR says; nothing else of ours is."""
    users = by_external_id(target.users())
    ids = {eid: u["id"] for eid, u in users.items()}
    expected_present = {
        r["employee_id"] for r in rows if r["employee_id"] not in skip and r["status"] == "active"
    }
    assert expected_present <= set(users), expected_present - set(users)
    for r in rows:
        if r["employee_id"] in users and r["employee_id"] not in skip:
            assert_user_matches(users[r["employee_id"]], r, ids, genesys=target.genesys)
    for eid in skip:
        assert eid not in users, f"quarantined {eid} reached the target"


def test_first_load_then_rerun_writes_nothing(target, sync_home, tmp_path):
    rows = read_rows()
    export = write_rows(tmp_path / "export.csv", rows)
    first = run_sync(sync_home, export, target.connection_json())
    assert first.ok, first.output[-3000:]
    report = first.report
    rejected = rejected_ids(report)
    assert len(rejected) == 2 and report["rejected"] == 2
    active = [r for r in rows if r["status"] == "active" and r["employee_id"] not in rejected]
    assert report["applied"]["create"] == len(active)
    assert report["failed"] == 0
    _assert_state(target, rows, rejected)
    # Users on leave or terminated are not created on a first load.
    users = by_external_id(target.users())
    for r in rows:
        if r["status"] != "active":
            assert r["employee_id"] not in users

    before = target.users()
    second = run_sync(sync_home, export, target.connection_json())
    assert second.ok, second.output[-3000:]
    assert second.report["writes"] == 0
    assert second.report["planned"]["unchanged"] == len(active)
    assert _versions(target.users()) == _versions(before)


def test_change_run_touches_only_changed_users_and_attributes(target, sync_home, tmp_path):
    rows = read_rows()
    assert run_sync(sync_home, write_rows(tmp_path / "d1.csv", rows), target.connection_json()).ok
    before = by_external_id(target.users())
    changed = copy.deepcopy(rows)
    movers = [r for r in changed if r["status"] == "active" and r["mobile_phone"]][:2]
    movers[0]["title"] = "Team Lead"
    movers[1]["mobile_phone"] = ""  # removed in HR -> removed in the target
    result = run_sync(sync_home, write_rows(tmp_path / "d2.csv", changed), target.connection_json())
    assert result.ok, result.output[-3000:]
    assert result.report["applied"]["update"] == 2 and result.report["writes"] == 2
    after = by_external_id(target.users())
    touched = {eid for eid in after if _versions([after[eid]]) != _versions([before[eid]])}
    assert touched == {movers[0]["employee_id"], movers[1]["employee_id"]}
    assert after[movers[0]["employee_id"]]["title"] == "Team Lead"
    assert {p["type"] for p in after[movers[1]["employee_id"]].get("phoneNumbers") or []} == {
        "work"
    } or not movers[1]["work_phone"]
    _assert_state(target, changed, rejected_ids(result.report))


def test_termination_leave_and_rehire_restore_roles(target, sync_home, tmp_path):
    rows = read_rows()
    _load(target, sync_home, tmp_path, rows)
    leaver, quitter = [r for r in rows if r["status"] == "active" and r["roles"]][5:7]
    changed = copy.deepcopy(rows)
    by_id = {r["employee_id"]: r for r in changed}
    by_id[leaver["employee_id"]]["status"] = "leave"
    by_id[quitter["employee_id"]]["status"] = "terminated"
    result = _load(target, sync_home, tmp_path, changed, "d2.csv")
    assert result.report["applied"]["deactivate"] == 2
    users = by_external_id(target.users())
    assert users[leaver["employee_id"]]["active"] is False
    assert users[quitter["employee_id"]]["active"] is False
    if target.genesys:  # Genesys strips roles on deactivation
        assert not users[leaver["employee_id"]].get("roles")
    # Back from leave, and a rehire: reactivated with their roles.
    result = _load(target, sync_home, tmp_path, rows, "d3.csv")
    assert result.report["applied"]["reactivate"] == 2
    users = by_external_id(target.users())
    ids = {eid: u["id"] for eid, u in users.items()}
    for person in (leaver, quitter):
        assert_user_matches(users[person["employee_id"]], person, ids, genesys=target.genesys)
    assert _load(target, sync_home, tmp_path, rows, "d4.csv").report["writes"] == 0


def test_unmanaged_and_conflicting_users_untouched_and_username_adopted(
    target, sync_home, tmp_path
):
    rows = read_rows()
    active = [r for r in rows if r["status"] == "active"]
    adoptee, clash = active[10], active[11]
    admin = target.seed(
        {
            "userName": "it.admin@example.com",
            "displayName": "IT Admin",
            "active": True,
            "title": "Administrator",
        }
    )
    other = target.seed(
        {
            "userName": clash["email"],
            "displayName": "Someone Else",
            "externalId": "OTHER-SYSTEM-7",
            "active": True,
        }
    )
    unowned = target.seed({"userName": adoptee["email"], "displayName": "Old Name", "active": True})
    result = _load(target, sync_home, tmp_path, rows)
    assert result.report["conflict"] == 1
    users = {u["id"]: u for u in target.users()}
    assert users[admin["id"]]["displayName"] == "IT Admin"
    assert users[admin["id"]].get("externalId") is None
    assert users[admin["id"]]["active"] is True
    assert users[other["id"]]["externalId"] == "OTHER-SYSTEM-7"
    assert users[other["id"]]["displayName"] == "Someone Else"
    adopted = users[unowned["id"]]
    assert adopted["externalId"] == adoptee["employee_id"]
    assert adopted["displayName"] == adoptee["display_name"]
    owned = [u for u in users.values() if u.get("externalId") == adoptee["employee_id"]]
    assert len(owned) == 1
    assert clash["employee_id"] not in by_external_id(list(users.values()))
    # A later full export that drops everyone would still never touch the unmanaged users.
    again = _load(target, sync_home, tmp_path, rows, "again.csv")
    assert again.report["writes"] == 0


def test_truncated_export_holds_deactivations(target, sync_home, tmp_path):
    base = read_rows()
    template = next(r for r in base if r["status"] == "active" and not r["manager_employee_id"])
    rows = []
    for n in range(250):
        row = dict(
            template,
            employee_id=f"T{n:04d}",
            email=f"t{n:04d}@example.com",
            display_name=f"Temp {n}",
            work_phone=f"+1202555{n:04d}",
            mobile_phone="",
        )
        rows.append(row)
    _load(target, sync_home, tmp_path, rows)
    truncated = rows[:230]  # 8% fewer rows: passes the gate, but 20 > max(10, 5% of 250)
    result = _load(target, sync_home, tmp_path, truncated, "truncated.csv")
    assert result.report["held"] == 20
    assert result.report["applied"]["deactivate"] == 0 and result.report["writes"] == 0
    plan_md = (sync_home / "runs").glob("*/plan.md")
    assert any("held: needs approval" in p.read_text() for p in plan_md)
    users = by_external_id(target.users())
    assert all(users[r["employee_id"]]["active"] for r in rows)
    approved = _load(
        target, sync_home, tmp_path, truncated, "approved.csv", conf={"approve_deactivations": True}
    )
    assert approved.report["applied"]["deactivate"] == 20
    users = by_external_id(target.users())
    assert [r["employee_id"] for r in rows if not users[r["employee_id"]]["active"]] == [
        r["employee_id"] for r in rows[230:]
    ]


def test_dry_run_writes_nothing_and_leaves_a_plan(target, sync_home, tmp_path):
    rows = read_rows()
    result = _load(target, sync_home, tmp_path, rows, conf={"dry_run": True})
    assert result.report["dry_run"] is True and result.report["writes"] == 0
    assert target.users() == []
    plan = json.loads(next((sync_home / "runs").glob("*/plan.json")).read_text())
    creates = [c for c in plan["changes"] if c["kind"] == "create"]
    assert len(creates) == result.report["planned"]["create"] > 40
    assert all("userName" in c["changed"] for c in creates)
    assert "@" not in json.dumps(plan), "the plan artifact must not carry emails"


def test_single_user_sync_touches_only_that_employee(target, sync_home, tmp_path):
    rows = read_rows()
    _load(target, sync_home, tmp_path, rows)
    before = {u["id"]: u for u in target.users()}
    changed = copy.deepcopy(rows)
    managers = {r["manager_employee_id"] for r in changed}
    one, other = [
        r for r in changed if r["status"] == "active" and r["employee_id"] not in managers
    ][3:5]
    one["title"] = "Promoted"
    other["title"] = "Also changed, not requested"
    dropped = [r for r in changed if r is not other]  # missing: would be deactivated
    result = _load(
        target, sync_home, tmp_path, dropped, "one.csv", conf={"employee_ids": [one["employee_id"]]}
    )
    assert result.report["writes"] == 1 and result.report["applied"]["update"] == 1
    after = {u["id"]: u for u in target.users()}
    diff = {i for i in after if after[i] != before[i]}
    users = by_external_id(list(after.values()))
    assert diff == {users[one["employee_id"]]["id"]}
    assert users[one["employee_id"]]["title"] == "Promoted"
    assert users[other["employee_id"]]["active"] is True


def test_out_of_order_backfill_writes_nothing(target, sync_home, tmp_path):
    rows = read_rows()
    _load(target, sync_home, tmp_path, rows, logical_date="2026-11-20")
    older = copy.deepcopy(rows)
    older[0]["title"] = "Title from an old export"
    result = _load(target, sync_home, tmp_path, older, "old.csv", logical_date="2026-11-10")
    assert result.report["dry_run"] is True and result.report["writes"] == 0
    assert "older than the newest applied export" in result.report["dry_run_reason"]
    users = by_external_id(target.users())
    assert users[rows[0]["employee_id"]]["title"] == rows[0]["title"]
    forced = _load(
        target,
        sync_home,
        tmp_path,
        older,
        "old2.csv",
        logical_date="2026-11-11",
        conf={"force": True},
    )
    assert forced.report["writes"] == 1


def test_blocked_gate_writes_nothing(target, sync_home, tmp_path):
    rows = read_rows()
    rows[3]["email"] = rows[4]["email"].upper()  # duplicate email: dataset-level block
    result = run_sync(sync_home, write_rows(tmp_path / "dup.csv", rows), target.connection_json())
    assert not result.ok
    assert result.report["status"] == "failed" and result.report["writes"] == 0
    assert "gate" in result.report["failure_reason"]
    assert target.users() == []


def test_incremental_runs_read_only_what_changed_and_full_reconcile_repairs_drift(
    target, sync_home, tmp_path
):
    rows = read_rows()
    _load(target, sync_home, tmp_path, rows)
    _load(target, sync_home, tmp_path, rows, "settle.csv")  # re-reads the users linked last run
    quiet = _load(target, sync_home, tmp_path, rows, "quiet.csv")
    plan = json.loads(
        sorted((sync_home / "runs").glob("*/plan.json"), key=lambda p: p.stat().st_mtime)[
            -1
        ].read_text()
    )
    assert plan["target_read"] == "incremental (0 users looked up)"
    assert quiet.report["writes"] == 0 and quiet.report["api_calls"] <= 4
    # Someone edits a user by hand in the target: an incremental run cannot see it ...
    victim = next(r for r in rows if r["status"] == "active" and r["title"])
    user = by_external_id(target.users())[victim["employee_id"]]
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Edited by hand"}],
    }
    if target.genesys:
        import httpx

        token = target.handle.access_token()
        httpx.patch(
            f"{target.handle.scim_base_url}/users/{user['id']}",
            json=patch,
            headers={"Authorization": f"Bearer {token}"},
        ).raise_for_status()
    else:
        with target.handle.client() as client:
            client.patch(f"/Users/{user['id']}", json=patch).raise_for_status()
    changed = copy.deepcopy(rows)
    mover = next(
        r
        for r in changed
        if r["status"] == "active" and r is not victim and r["employee_id"] != victim["employee_id"]
    )
    mover["department"] = "Workforce Management"
    result = _load(target, sync_home, tmp_path, changed, "one-change.csv")
    assert result.report["writes"] == 1
    users = by_external_id(target.users())
    assert users[mover["employee_id"]][ENTERPRISE]["department"] == "Workforce Management"
    assert users[victim["employee_id"]]["title"] == "Edited by hand"
    # ... a full reconciliation (param, or every reconcile_every_days) repairs the drift.
    full = _load(target, sync_home, tmp_path, changed, "full.csv", conf={"full_reconcile": True})
    assert full.report["writes"] == 1
    assert by_external_id(target.users())[victim["employee_id"]]["title"] == victim["title"]
