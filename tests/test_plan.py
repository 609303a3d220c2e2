"""Planning: matching, ownership, attribute-level diffs, deactivation safety, managers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from genesys_sync.mapping import (
    ENTERPRISE,
    GENESYS,
    MANAGED_PATHS,
    MANAGER_PATH,
    create_payload,
    desired_user,
    desired_users,
    patch_operations,
)
from genesys_sync.plan import CapacityExceeded, Kind, PlanOptions, batches, plan_sync

OPTS = PlanOptions(paths=MANAGED_PATHS)


def row(eid: str, **over: str) -> dict[str, str]:
    base = {
        "employee_id": eid,
        "email": f"{eid.lower()}@example.com",
        "display_name": f"Person {eid}",
        "first_name": "Person",
        "last_name": eid,
        "title": "Agent",
        "department": "Support",
        "division": "Home",
        "manager_employee_id": "",
        "status": "active",
        "hire_date": "2024-01-02",
        "work_phone": "+12025550101",
        "mobile_phone": "",
        "roles": "employee;User",
        "skills": "Billing:4",
        "languages": "English:5",
    }
    base.update(over)
    return base


def target_of(eid: str, tid: str, **over) -> dict:
    """The target user that an earlier sync of ``row(eid)`` produced."""
    user = desired_user(row(eid, **over.pop("row", {})))
    body = create_payload(user, MANAGED_PATHS, over.pop("manager_id", None))
    body.update({"id": tid, "meta": {"version": f'W/"{tid}-1"'}})
    body.update(over)
    return body


def kinds(plan) -> dict[str, str]:
    return {c.employee_id: str(c.kind) for c in plan.changes if c.kind is not Kind.LINK_MANAGER}


def test_new_employee_is_created_with_full_payload():
    plan = plan_sync(desired_users([row("E1")]), [], OPTS)
    (change,) = plan.changes
    assert change.kind is Kind.CREATE
    assert change.body["userName"] == "e1@example.com"
    assert change.body["externalId"] == "E1"
    assert change.body[ENTERPRISE]["division"] == "Home"
    assert change.body[GENESYS]["routingSkills"] == [{"name": "Billing", "proficiency": 4.0}]


def test_identical_user_is_unchanged_and_rerun_writes_nothing():
    plan = plan_sync(desired_users([row("E1")]), [target_of("E1", "t1")], OPTS)
    assert kinds(plan) == {"E1": "unchanged"}
    assert plan.writes == []


def test_update_carries_only_changed_attributes():
    desired = desired_users([row("E1", title="Senior Agent", skills="Billing:5")])
    plan = plan_sync(desired, [target_of("E1", "t1")], OPTS)
    (change,) = plan.changes
    assert change.kind is Kind.UPDATE
    assert change.changed == ["title", f"{GENESYS}:routingSkills"]
    assert change.etag == 'W/"t1-1"'


def test_value_removed_in_hr_is_removed_in_target():
    plan = plan_sync(desired_users([row("E1", title="")]), [target_of("E1", "t1")], OPTS)
    (change,) = plan.changes
    assert change.changed == ["title"]
    assert patch_operations(change.desired) == [{"op": "remove", "path": "title"}]


def test_case_and_format_differences_are_not_changes():
    target = target_of(
        "E1",
        "t1",
        userName="E1@Example.COM",
        phoneNumbers=[{"type": "work", "value": "tel:+12025550101"}],
    )
    plan = plan_sync(desired_users([row("E1")]), [target], OPTS)
    assert kinds(plan) == {"E1": "unchanged"}


def test_terminated_user_is_deactivated_and_roles_ignored_while_inactive():
    plan = plan_sync(desired_users([row("E1", status="terminated")]), [target_of("E1", "t1")], OPTS)
    assert kinds(plan) == {"E1": "deactivate"}
    assert plan.changes[0].desired == {"active": False}
    # An inactive user's roles are left alone (Genesys keeps them; a user deleted and
    # re-enabled has none): the next run must not write them while the user is inactive.
    inactive = target_of("E1", "t1", active=False, roles=[])
    plan = plan_sync(desired_users([row("E1", status="terminated")]), [inactive], OPTS)
    assert kinds(plan) == {"E1": "unchanged"}


def test_rehire_reactivates_and_resends_roles():
    inactive = target_of("E1", "t1", active=False, roles=[])
    plan = plan_sync(desired_users([row("E1")]), [inactive], OPTS)
    (change,) = plan.changes
    assert change.kind is Kind.REACTIVATE
    assert set(change.changed) == {"active", "roles"}
    assert change.desired["roles"] == [{"value": "User"}, {"value": "employee"}]


def test_reactivation_resends_roles_even_if_target_still_lists_them():
    inactive = target_of("E1", "t1", active=False)
    (change,) = plan_sync(desired_users([row("E1")]), [inactive], OPTS).changes
    assert "roles" in change.changed


def test_unowned_user_with_same_username_is_adopted():
    unowned = target_of("E1", "t1")
    del unowned["externalId"]
    (change,) = plan_sync(desired_users([row("E1")]), [unowned], OPTS).changes
    assert change.kind is Kind.UPDATE
    assert change.changed == ["externalId"]


def test_username_owned_by_other_external_id_is_a_conflict_left_alone():
    other = target_of("E1", "t1", externalId="X-999")
    (change,) = plan_sync(desired_users([row("E1")]), [other], OPTS).changes
    assert change.kind is Kind.CONFLICT
    assert change.body is None and change.desired is None


def test_unmanaged_users_are_never_touched():
    admin = {"id": "a1", "userName": "admin@example.com", "active": True, "displayName": "Admin"}
    plan = plan_sync(desired_users([row("E1")]), [admin], OPTS, managed={})
    assert [c.employee_id for c in plan.changes] == ["E1"]
    assert all(c.target_id != "a1" for c in plan.changes)


def test_managed_user_missing_from_full_export_is_deactivated():
    plan = plan_sync(
        desired_users([row("E1")]),
        [target_of("E1", "t1"), target_of("E2", "t2")],
        OPTS,
        managed={"E1": "t1", "E2": "t2"},
    )
    assert kinds(plan) == {"E1": "unchanged", "E2": "deactivate"}


def test_single_user_sync_never_deactivates_anyone_else():
    opts = PlanOptions(paths=MANAGED_PATHS, full_export=False)
    plan = plan_sync(
        desired_users([row("E1")]),
        [target_of("E1", "t1"), target_of("E2", "t2")],
        opts,
        managed={"E1": "t1", "E2": "t2"},
    )
    assert kinds(plan) == {"E1": "unchanged"}


def test_manager_chain_created_in_one_run_links_in_phase_two():
    desired = desired_users([row("M1"), row("E1", manager_employee_id="M1")])
    plan = plan_sync(desired, [], OPTS)
    assert kinds(plan) == {"M1": "create", "E1": "create"}
    links = [c for c in plan.changes if c.kind is Kind.LINK_MANAGER]
    assert [(c.employee_id, c.manager_employee_id, c.phase) for c in links] == [("E1", "M1", 2)]
    e1 = next(c for c in plan.changes if c.employee_id == "E1" and c.kind is Kind.CREATE)
    assert ENTERPRISE not in e1.body or "manager" not in e1.body[ENTERPRISE]


def _new_tree(batch_size: int, managers: dict[str, str | None]):
    from genesys_sync.plan import order_creates

    desired = desired_users([row(e, manager_employee_id=m or "") for e, m in managers.items()])
    plan = plan_sync(desired, [], OPTS)
    return order_creates(
        [c for c in plan.writes if c.phase == 1],
        [c for c in plan.writes if c.phase == 2],
        batch_size,
    )


def test_new_users_are_created_after_their_managers_with_no_link():
    # M1 <- E1 <- E2, and M1 <- E3: one batch, laid out depth first
    first, second = _new_tree(10, {"M1": None, "E1": "M1", "E2": "E1", "E3": "M1"})
    assert second == []
    ((m1, e1, e2, e3),) = first
    assert [c.employee_id for c in (m1, e1, e2, e3)] == ["M1", "E1", "E2", "E3"]
    assert [c.after_manager for c in (m1, e1, e2, e3)] == [False, True, True, True]


def test_a_top_manager_with_more_reports_than_a_batch_goes_first_its_teams_second():
    # T has 3 teams of 2 (lead + report), 7 users: more than a batch of 4
    tree = {"T": None}
    for n in range(3):
        tree[f"L{n}"] = "T"
        tree[f"R{n}"] = f"L{n}"
    first, second = _new_tree(4, tree)
    assert [[c.employee_id for c in b] for b in first] == [["T"]]
    teams = [[c.employee_id for c in b] for b in second]
    assert teams == [["L0", "R0", "L1", "R1"], ["L2", "R2"]]  # whole teams, packed
    assert all(c.kind is Kind.CREATE for b in second for c in b), "no link left"
    # a team's lead gets T's id from the first wave (link_batches); its report waits for it
    waits = [[c.after_manager for c in b] for b in second]
    assert waits == [[False, True, False, True], [False, True]]


def test_a_management_cycle_keeps_its_links():
    first, second = _new_tree(10, {"A": "B", "B": "A"})
    assert sorted(c.employee_id for b in first for c in b) == ["A", "B"]
    assert not any(c.after_manager for b in first for c in b)
    assert sorted(c.employee_id for b in second for c in b if c.kind is Kind.LINK_MANAGER) == [
        "A",
        "B",
    ]


def test_existing_manager_is_referenced_by_target_id():
    desired = desired_users([row("M1"), row("E1", manager_employee_id="M1")])
    plan = plan_sync(desired, [target_of("M1", "tm")], OPTS)
    e1 = next(c for c in plan.changes if c.employee_id == "E1")
    assert e1.body[ENTERPRISE]["manager"] == {"value": "tm"}
    current = target_of("E1", "t1", manager_id="old")
    plan = plan_sync(desired, [target_of("M1", "tm"), current], OPTS)
    e1 = next(c for c in plan.changes if c.employee_id == "E1")
    assert e1.changed == [MANAGER_PATH] and e1.desired == {MANAGER_PATH: "tm"}


def test_mass_deactivation_is_held_above_threshold():
    managed = {f"E{i}": f"t{i}" for i in range(30)}
    targets = [target_of(eid, tid) for eid, tid in managed.items()]
    desired = desired_users([row(f"E{i}") for i in range(15)])  # half the company vanished
    plan = plan_sync(desired, targets, OPTS, managed=managed)
    held = plan.held
    assert len(held) == 15 and all(c.kind is Kind.DEACTIVATE for c in held)
    assert plan.writes == []
    approved = PlanOptions(paths=MANAGED_PATHS, approve_removals=True)
    assert len(plan_sync(desired, targets, approved, managed=managed).writes) == 15


def test_few_deactivations_are_not_held():
    managed = {f"E{i}": f"t{i}" for i in range(30)}
    targets = [target_of(eid, tid) for eid, tid in managed.items()]
    desired = desired_users([row(f"E{i}") for i in range(25)])
    plan = plan_sync(desired, targets, OPTS, managed=managed)
    assert plan.held == [] and len(plan.writes) == 5


def test_capacity_limit_blocks_the_plan():
    opts = PlanOptions(paths=MANAGED_PATHS, max_tenant_users=2)
    with pytest.raises(CapacityExceeded, match="licence limit of 2"):
        plan_sync(desired_users([row("E1"), row("E2"), row("E3")]), [], opts)


def test_deletion_only_after_grace_period():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    inactive = target_of("E1", "t1", active=False, roles=[])
    desired = desired_users([row("E1", status="terminated")])
    opts = PlanOptions(paths=MANAGED_PATHS, delete_after_days=30, now=now)
    recent = {"E1": now - timedelta(days=3)}
    assert kinds(plan_sync(desired, [inactive], opts, {"E1": "t1"}, recent)) == {"E1": "unchanged"}
    old = {"E1": now - timedelta(days=31)}
    assert kinds(plan_sync(desired, [inactive], opts, {"E1": "t1"}, old)) == {"E1": "delete"}
    never = PlanOptions(paths=MANAGED_PATHS, now=now)
    assert kinds(plan_sync(desired, [inactive], never, {"E1": "t1"}, old)) == {"E1": "unchanged"}


def test_on_leave_new_hire_is_not_created():
    plan = plan_sync(desired_users([row("E1", status="leave")]), [], OPTS)
    assert kinds(plan) == {"E1": "skipped"}


def test_batches_stay_under_max_map_length():
    plan = plan_sync(desired_users([row(f"E{i}") for i in range(250)]), [], OPTS)
    assert [len(b) for b in batches(plan.writes, 100)] == [100, 100, 50]
    assert len(batches(plan.writes, 1, max_batches=10)) == 10


# --- present but unreadable: quarantined rows ------------------------------------------------


def test_quarantined_existing_user_is_left_alone_never_deactivated():
    plan = plan_sync(
        desired_users([row("E1")]),
        [target_of("E1", "t1"), target_of("E2", "t2", title="Old")],
        OPTS,
        managed={"E1": "t1", "E2": "t2"},
        quarantined={"E2"},
    )
    assert kinds(plan) == {"E1": "unchanged", "E2": "quarantined"}
    (quarantined,) = [c for c in plan.changes if c.kind is Kind.QUARANTINED]
    assert quarantined.target_id == "t2" and "quarantined, not synced" in quarantined.reason
    assert quarantined.body is None and quarantined.desired is None and not quarantined.operations
    assert plan.writes == [] and plan.counts()["quarantined"] == 1


def test_a_quarantined_id_is_not_synced_even_if_another_row_was_accepted():
    desired = desired_users([row("E1", title="From the accepted row"), row("E3")])
    plan = plan_sync(
        desired, [target_of("E1", "t1")], OPTS, managed={"E1": "t1"}, quarantined={"E1", "E3"}
    )
    assert kinds(plan) == {"E1": "quarantined", "E3": "quarantined"}
    assert plan.writes == []


def test_rows_without_a_readable_id_hold_the_missing_removals():
    opts = PlanOptions(paths=MANAGED_PATHS, hold_missing_reason="1 row has no readable id")
    plan = plan_sync(
        desired_users([row("E1", status="terminated")]),
        [target_of("E1", "t1"), target_of("E2", "t2")],
        opts,
        managed={"E1": "t1", "E2": "t2"},
    )
    changes = {c.employee_id: c for c in plan.changes}
    assert changes["E2"].held and "1 row has no readable id" in changes["E2"].reason
    assert not changes["E1"].held  # terminated in HR: a readable decision, not a guess
    approved = PlanOptions(paths=MANAGED_PATHS, hold_missing_reason="x", approve_removals=True)
    plan = plan_sync(
        desired_users([row("E1")]),
        [target_of("E1", "t1"), target_of("E2", "t2")],
        approved,
        managed={"E1": "t1", "E2": "t2"},
    )
    assert [c.employee_id for c in plan.writes] == ["E2"]


# --- ownership inside a user ------------------------------------------------------------------

TEAMS = {"type": "microsoftteams", "value": "+12025550999"}


def test_a_hand_granted_role_and_a_teams_number_do_not_make_a_user_changed():
    current = target_of("E1", "t1")
    current["roles"] = current["roles"] + [{"value": "Admin"}]
    current["phoneNumbers"] = current["phoneNumbers"] + [TEAMS]
    plan = plan_sync(desired_users([row("E1")]), [current], OPTS, granted={"E1": {"User"}})
    assert kinds(plan) == {"E1": "unchanged"}
    assert plan.changes[0].granted_roles == ["User", "employee"]


def test_an_update_adds_and_removes_only_the_values_the_sync_owns():
    current = target_of("E1", "t1", row={"roles": "employee;User"})
    current["roles"] += [{"value": "Admin"}]
    current["phoneNumbers"] += [TEAMS]
    desired = desired_users([row("E1", roles="employee;Supervisor", mobile_phone="+12025550102")])
    plan = plan_sync(desired, [current], OPTS, granted={"E1": {"employee", "User"}})
    (change,) = plan.changes
    assert change.kind is Kind.UPDATE and change.changed == ["phoneNumbers", "roles"]
    assert change.operations["roles"] == [
        {"op": "remove", "path": 'roles[value eq "User"]'},
        {"op": "add", "path": "roles", "value": [{"value": "Supervisor"}]},
    ]
    assert change.operations["phoneNumbers"] == [
        {
            "op": "add",
            "path": "phoneNumbers",
            "value": [{"type": "mobile", "value": "+12025550102"}],
        }
    ]
    assert change.granted_roles == ["Supervisor", "employee"]
    assert change.owned["granted_roles"] == ["User", "employee"]


def test_authoritative_roles_remove_what_hr_does_not_list():
    current = target_of("E1", "t1")
    current["roles"] += [{"value": "Admin"}]
    opts = PlanOptions(paths=MANAGED_PATHS, roles_authoritative=True)
    (change,) = plan_sync(desired_users([row("E1", roles="User")]), [current], opts).changes
    assert change.operations["roles"] == [
        {"op": "remove", "path": 'roles[value eq "Admin"]'},
        {"op": "remove", "path": 'roles[value eq "employee"]'},
    ]


def test_roles_mode_is_part_of_the_fingerprint():
    from genesys_sync.plan import fingerprint

    user = desired_user(row("E1"))
    assert fingerprint(user, None) != fingerprint(user, None, roles_authoritative=True)


def test_fingerprints_stay_what_earlier_versions_stored():
    """The state keeps every user's fingerprint: a digest computed differently would make
    every user look changed (and be re-diffed) after an upgrade. Pinned from the version
    before the planning speed-ups (issue 10)."""
    from genesys_sync.plan import fingerprint

    user = desired_user(
        row(
            "E1",
            work_phone="tel:+1 (202) 555-0101",
            mobile_phone="12025550102",
            skills="Billing:4; Refunds",
            roles="User;employee;User",
        )
    )
    assert fingerprint(user, "t0") == (
        "5a66f8ab3d7dbc5475fbb070c89a05411756818eae1ff2e2dd533b3dbfb53527"
    )
    assert fingerprint(user, None, roles_authoritative=True) == (
        "d04c83ed034e98bcd98268b3b74f7056ff3053957a5d35aebc8873760e19533a"
    )


# --- clearing what the sync owns: an empty cell in HR is a remove -----------------------------


def _clear(column: str, **target_over):
    current = target_of("E1", "t1", **target_over)
    (change,) = plan_sync(desired_users([row("E1", **{column: ""})]), [current], OPTS).changes
    assert change.kind is Kind.UPDATE
    return change


def test_a_cleared_manager_is_removed():
    desired = desired_users([row("M1"), row("E1", manager_employee_id="")])
    current = target_of("E1", "t1", manager_id="tm")
    plan = plan_sync(desired, [target_of("M1", "tm"), current], OPTS)
    e1 = next(c for c in plan.changes if c.employee_id == "E1")
    assert e1.changed == [MANAGER_PATH]
    assert e1.operations == {MANAGER_PATH: [{"op": "remove", "path": MANAGER_PATH}]}


def test_a_manager_that_cannot_be_resolved_now_is_left_as_it_is():
    # The manager's own row was quarantined, and the target does not list them.
    desired = desired_users([row("E1", manager_employee_id="M9")])
    current = target_of("E1", "t1", manager_id="tm9")
    plan = plan_sync(desired, [current], OPTS, quarantined={"M9"})
    assert kinds(plan) == {"E1": "unchanged", "M9": "quarantined"}


def test_a_cleared_title_is_removed():
    change = _clear("title")
    assert change.operations == {"title": [{"op": "remove", "path": "title"}]}


def test_a_cleared_department_is_removed():
    path = f"{ENTERPRISE}:department"
    assert _clear("department").operations == {path: [{"op": "remove", "path": path}]}


def test_a_cleared_phone_is_removed_by_type():
    change = _clear("work_phone", phoneNumbers=[{"type": "work", "value": "+12025550101"}, TEAMS])
    assert change.operations == {
        "phoneNumbers": [{"op": "remove", "path": 'phoneNumbers[type eq "work"]'}]
    }


def test_cleared_skills_are_removed():
    path = f"{GENESYS}:routingSkills"
    assert _clear("skills").operations == {path: [{"op": "remove", "path": path}]}


def test_cleared_languages_are_removed():
    path = f"{GENESYS}:routingLanguages"
    assert _clear("languages").operations == {path: [{"op": "remove", "path": path}]}
