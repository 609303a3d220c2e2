"""The sync's scenarios in the stage tier: the DAG's stages in-process (``run_stages``) against the
Genesys sandbox and a plain scim2-server, asserting the target's final state user by user.

What Airflow itself does (deferral, the triggerer, params, approval in the UI, alerts, kills) is
in ``tests/e2e`` and ``tests/deployment``.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.fixtures.expect import (
    ENTERPRISE,
    assert_state,
    assert_user_matches,
    by_external_id,
    read_rows,
    rejected_ids,
    write_rows,
)
from tests.fixtures.targets import Target
from tests.pipeline.harness import StageRun, run_stages


def _run(target: Target, sync_home, tmp_path, rows, name="base.csv", **kw) -> StageRun:
    result = run_stages(sync_home, write_rows(tmp_path / name, rows), target, **kw)
    assert result.ok, result.error
    return result


def _versions(users: list[dict[str, Any]]) -> dict[str, Any]:
    return {u["id"]: (u.get("meta") or {}).get("version") for u in users}


def test_first_load_creates_every_active_employee_then_a_rerun_writes_nothing(
    target, sync_home, tmp_path
):
    rows = read_rows()
    first = _run(target, sync_home, tmp_path, rows)
    rejected = rejected_ids(first.report)
    assert len(rejected) == 2 and first.report["rejected"] == 2
    active = [r for r in rows if r["status"] == "active" and r["employee_id"] not in rejected]
    assert first.report["applied"]["create"] == len(active)
    assert first.report["failed"] == 0
    assert_state(target, rows, rejected)
    users = by_external_id(target.users())
    for r in rows:  # on leave or terminated: not created on a first load
        if r["status"] != "active":
            assert r["employee_id"] not in users
    before = target.users()
    second = _run(target, sync_home, tmp_path, rows, "again.csv")
    assert second.report["writes"] == 0
    assert second.report["planned"]["unchanged"] == len(active)
    assert _versions(target.users()) == _versions(before)


def test_change_run_touches_only_changed_users_and_attributes(target, sync_home, tmp_path):
    rows = read_rows()
    _run(target, sync_home, tmp_path, rows, "d1.csv")
    before = by_external_id(target.users())
    changed = copy.deepcopy(rows)
    movers = [r for r in changed if r["status"] == "active" and r["mobile_phone"]][:2]
    movers[0]["title"] = "Team Lead"
    movers[1]["mobile_phone"] = ""  # removed in HR -> removed in the target
    result = _run(target, sync_home, tmp_path, changed, "d2.csv")
    assert result.report["applied"]["update"] == 2 and result.report["writes"] == 2
    after = by_external_id(target.users())
    touched = {eid for eid in after if _versions([after[eid]]) != _versions([before[eid]])}
    assert touched == {movers[0]["employee_id"], movers[1]["employee_id"]}
    assert after[movers[0]["employee_id"]]["title"] == "Team Lead"
    phones = {p["type"] for p in after[movers[1]["employee_id"]].get("phoneNumbers") or []}
    assert phones == ({"work"} if movers[1]["work_phone"] else set())
    assert_state(target, changed, rejected_ids(result.report))


def test_termination_leave_and_rehire_restore_roles(target, sync_home, tmp_path):
    rows = read_rows()
    _run(target, sync_home, tmp_path, rows)
    leaver, quitter = [r for r in rows if r["status"] == "active" and r["roles"]][5:7]
    changed = copy.deepcopy(rows)
    by_id = {r["employee_id"]: r for r in changed}
    by_id[leaver["employee_id"]]["status"] = "leave"
    by_id[quitter["employee_id"]]["status"] = "terminated"
    result = _run(target, sync_home, tmp_path, changed, "d2.csv")
    assert result.report["applied"]["deactivate"] == 2
    users = by_external_id(target.users())
    assert users[leaver["employee_id"]]["active"] is False
    assert users[quitter["employee_id"]]["active"] is False
    # Back from leave, and a rehire: reactivated with their roles.
    result = _run(target, sync_home, tmp_path, rows, "d3.csv")
    assert result.report["applied"]["reactivate"] == 2
    users = by_external_id(target.users())
    ids = {eid: u["id"] for eid, u in users.items()}
    for person in (leaver, quitter):
        assert_user_matches(users[person["employee_id"]], person, ids, genesys=target.genesys)
    assert _run(target, sync_home, tmp_path, rows, "d4.csv").report["writes"] == 0


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
    result = _run(target, sync_home, tmp_path, rows)
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
    again = _run(target, sync_home, tmp_path, rows, "again.csv")
    assert again.report["writes"] == 0


def test_reports_of_a_manager_that_could_not_be_created_are_linked_once_it_is(
    target, sync_home, tmp_path
):
    """The manager's email is taken by another system's user: the manager is a conflict, its
    reports are created without it and not recorded as in sync. HR corrects the email; the
    next run creates the manager and links every report to it."""
    rows = read_rows()
    manager = next(r for r in rows if r["employee_id"] == "E1001")
    reports = [r["employee_id"] for r in rows if r["manager_employee_id"] == "E1001"]
    target.seed({"userName": manager["email"], "displayName": "Other", "externalId": "OTHER-1"})
    first = _run(target, sync_home, tmp_path, rows)
    assert first.report["conflict"] == 1
    users = by_external_id(target.users())
    assert "E1001" not in users
    assert all(not (users[eid].get(ENTERPRISE) or {}).get("manager") for eid in reports)
    fixed = [dict(r, email="e1001.new@example.com") if r is manager else r for r in rows]
    second = _run(target, sync_home, tmp_path, fixed, "fixed.csv")
    assert second.report["writes"] == 1 + len(reports)  # the manager's create, a link each
    assert_state(target, fixed, rejected_ids(second.report))
    assert _run(target, sync_home, tmp_path, fixed, "again.csv").report["writes"] == 0


def test_truncated_export_holds_deactivations_until_approved(target, sync_home, tmp_path):
    base = read_rows()
    template = next(r for r in base if r["status"] == "active" and not r["manager_employee_id"])
    rows = [
        dict(
            template,
            employee_id=f"T{n:04d}",
            email=f"t{n:04d}@example.com",
            display_name=f"Temp {n}",
            work_phone=f"+1202555{n:04d}",
            mobile_phone="",
        )
        for n in range(250)
    ]
    _run(target, sync_home, tmp_path, rows)
    truncated = rows[:230]  # 8% fewer rows: passes the gate, but 20 > max(10, 5% of 250)
    result = _run(target, sync_home, tmp_path, truncated, "truncated.csv")
    assert result.report["held"] == 20
    assert result.report["applied"]["deactivate"] == 0 and result.report["writes"] == 0
    assert "held: needs approval" in result.plan_markdown
    users = by_external_id(target.users())
    assert all(users[r["employee_id"]]["active"] for r in rows)
    # A human approves in the UI (approve_removals): the held batches are applied.
    approved = _run(target, sync_home, tmp_path, truncated, "held.csv", approve_held=True)
    assert approved.report["applied"]["deactivate"] == 20 and approved.report["held"] == 0
    users = by_external_id(target.users())
    assert [r["employee_id"] for r in rows if not users[r["employee_id"]]["active"]] == [
        r["employee_id"] for r in rows[230:]
    ]


def test_truncated_export_applied_with_the_approve_param(target, sync_home, tmp_path):
    base = read_rows()
    template = next(r for r in base if r["status"] == "active" and not r["manager_employee_id"])
    rows = [
        dict(template, employee_id=f"P{n:04d}", email=f"p{n:04d}@example.com", mobile_phone="")
        for n in range(120)
    ]
    _run(target, sync_home, tmp_path, rows)
    approved = _run(
        target, sync_home, tmp_path, rows[:108], "cut.csv", conf={"approve_deactivations": True}
    )
    assert approved.report["applied"]["deactivate"] == 12 and approved.report["held"] == 0
    users = by_external_id(target.users())
    assert sorted(e for e, u in users.items() if not u["active"]) == [
        r["employee_id"] for r in rows[108:]
    ]


def test_dry_run_writes_nothing_and_leaves_a_plan(target, sync_home, tmp_path):
    rows = read_rows()
    result = _run(target, sync_home, tmp_path, rows, conf={"dry_run": True})
    assert result.report["dry_run"] is True and result.report["writes"] == 0
    assert target.users() == []
    plan = result.plan
    creates = [c for c in plan["changes"] if c["kind"] == "create"]
    assert len(creates) == result.report["planned"]["create"] > 40
    assert all("userName" in c["changed"] for c in creates)
    assert "@" not in (result.run_dir / "plan.json").read_text(), "no emails in the plan"


def test_single_user_sync_touches_only_that_employee(target, sync_home, tmp_path):
    rows = read_rows()
    _run(target, sync_home, tmp_path, rows)
    before = {u["id"]: u for u in target.users()}
    changed = copy.deepcopy(rows)
    managers = {r["manager_employee_id"] for r in changed}
    one, other = [
        r for r in changed if r["status"] == "active" and r["employee_id"] not in managers
    ][3:5]
    one["title"] = "Promoted"
    other["title"] = "Also changed, not requested"
    dropped = [r for r in changed if r is not other]  # missing: would be deactivated
    result = _run(
        target, sync_home, tmp_path, dropped, "one.csv", conf={"employee_ids": [one["employee_id"]]}
    )
    assert result.report["writes"] == 1 and result.report["applied"]["update"] == 1
    after = {u["id"]: u for u in target.users()}
    diff = {i for i in after if after[i] != before[i]}
    users = by_external_id(list(after.values()))
    assert diff == {users[one["employee_id"]]["id"]}
    assert users[one["employee_id"]]["title"] == "Promoted"
    assert users[other["employee_id"]]["active"] is True


def test_out_of_order_backfill_writes_nothing_unless_forced(target, sync_home, tmp_path):
    rows = read_rows()
    _run(target, sync_home, tmp_path, rows, logical_date="2026-11-20")
    older = copy.deepcopy(rows)
    older[0]["title"] = "Title from an old export"
    result = _run(target, sync_home, tmp_path, older, "old.csv", logical_date="2026-11-10")
    assert result.report["dry_run"] is True and result.report["writes"] == 0
    assert "older than the newest applied export" in result.report["dry_run_reason"]
    users = by_external_id(target.users())
    assert users[rows[0]["employee_id"]]["title"] == rows[0]["title"]
    forced = _run(
        target,
        sync_home,
        tmp_path,
        older,
        "old2.csv",
        logical_date="2026-11-11",
        conf={"force": True},
    )
    assert forced.report["writes"] == 1
    users = by_external_id(target.users())
    assert users[rows[0]["employee_id"]]["title"] == "Title from an old export"


def test_blocked_gate_writes_nothing(target, sync_home, tmp_path):
    rows = read_rows()
    rows[3]["email"] = rows[4]["email"].upper()  # duplicate email: dataset-level block
    result = run_stages(sync_home, write_rows(tmp_path / "dup.csv", rows), target)
    assert not result.ok and "gate" in str(result.error).lower()
    assert result.report["status"] == "failed" and result.report["writes"] == 0
    assert "gate" in result.report["failure_reason"]
    assert target.users() == []


def test_incremental_runs_read_only_what_changed_and_full_reconcile_repairs_drift(
    target, sync_home, tmp_path
):
    rows = read_rows()
    _run(target, sync_home, tmp_path, rows)
    _run(target, sync_home, tmp_path, rows, "settle.csv")  # re-reads the users linked last run
    quiet = _run(target, sync_home, tmp_path, rows, "quiet.csv")
    assert quiet.plan["target_read"] == "incremental (0 users looked up)"
    assert quiet.report["writes"] == 0 and quiet.report["api_calls"] <= 4
    # Someone edits a user by hand in the target: an incremental run cannot see it ...
    victim = next(r for r in rows if r["status"] == "active" and r["title"])
    user = by_external_id(target.users())[victim["employee_id"]]
    target.patch_by_hand(user["id"], [{"op": "replace", "path": "title", "value": "Edited"}])
    changed = copy.deepcopy(rows)
    mover = next(
        r for r in changed if r["status"] == "active" and r["employee_id"] != victim["employee_id"]
    )
    mover["department"] = "Workforce Management"
    result = _run(target, sync_home, tmp_path, changed, "one-change.csv")
    assert result.report["writes"] == 1
    users = by_external_id(target.users())
    assert users[mover["employee_id"]][ENTERPRISE]["department"] == "Workforce Management"
    assert users[victim["employee_id"]]["title"] == "Edited"
    # ... a full reconciliation (param, or every reconcile_every_days) repairs the drift.
    full = _run(target, sync_home, tmp_path, changed, "full.csv", conf={"full_reconcile": True})
    assert full.report["writes"] == 1
    assert by_external_id(target.users())[victim["employee_id"]]["title"] == victim["title"]
    assert_state(target, changed, rejected_ids(full.report))
