"""An optional column the export lacks means "HR does not manage this attribute this run": the
gate accepts the export, and the sync neither clears nor changes what the target holds for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from genesys_sync.mapping import ENTERPRISE, GENESYS, MANAGED_PATHS, MANAGER_PATH, desired_user
from genesys_sync.plan import Kind, PlanOptions, plan_sync
from tests.fixtures.expect import assert_state, by_external_id, write_rows
from tests.pipeline.harness import run_stages
from tests.validation.sample_exports import clean_rows

ROW = {
    "employee_id": "E1",
    "email": "ana@example.com",
    "display_name": "Ana Pérez",
    "status": "active",
    "work_phone": "+12025550101",
}
OPTIONAL = (
    "title",
    "department",
    "division",
    "manager_employee_id",
    "hire_date",
    "mobile_phone",
    "roles",
    "skills",
    "languages",
)


def target_user() -> dict:
    """What the target holds for E1, set by an earlier run with every column."""
    return {
        "id": "t1",
        "externalId": "E1",
        "userName": "ana@example.com",
        "displayName": "Ana Pérez",
        "title": "Agent",
        "active": True,
        "emails": [{"type": "work", "value": "ana@example.com", "primary": True}],
        "phoneNumbers": [
            {"type": "work", "value": "+12025550101"},
            {"type": "mobile", "value": "+12025550199"},
        ],
        "roles": [{"value": "employee"}, {"value": "User"}],
        ENTERPRISE: {
            "employeeNumber": "E1",
            "department": "Support",
            "division": "Home",
            "dateHire": "2020-01-02",
            "manager": {"value": "t0"},
        },
        GENESYS: {
            "routingSkills": [{"name": "Billing", "proficiency": 4.0}],
            "routingLanguages": [{"name": "English", "proficiency": 5.0}],
        },
        "meta": {"version": 'W/"1"'},
    }


def plan_one(row: dict, phone_types=("work", "mobile")):
    options = PlanOptions(paths=MANAGED_PATHS, phone_types=phone_types)
    user = desired_user(row)
    return plan_sync({"E1": user}, [target_user()], options, managed={"E1": "t1"}).changes


def test_absent_columns_are_left_out_of_the_desired_user() -> None:
    user = desired_user(ROW)

    assert user.absent >= set(OPTIONAL) and "work_phone" not in user.absent
    for path in ("title", "roles", f"{ENTERPRISE}:department", f"{ENTERPRISE}:dateHire"):
        assert path not in user.attributes
    assert f"{GENESYS}:routingSkills" not in user.attributes
    assert user.attributes["phoneNumbers"] == [{"type": "work", "value": "+12025550101"}]
    empty = desired_user({**ROW, **dict.fromkeys(OPTIONAL, "")})
    assert empty.absent == frozenset() and empty.attributes["title"] is None  # empty = clear


def test_a_present_but_empty_column_still_clears_the_value() -> None:
    (change,) = plan_one({**ROW, **dict.fromkeys(OPTIONAL, "")})

    assert change.kind is Kind.UPDATE
    assert {"title", f"{ENTERPRISE}:department", MANAGER_PATH} <= set(change.changed)


def test_absent_columns_clear_nothing_and_change_nothing() -> None:
    (change,) = plan_one(ROW, phone_types=("work",))  # the plan stage: mobile_phone absent

    assert change.kind is Kind.UNCHANGED, change.changed
    assert change.operations is None


def test_a_present_phone_column_is_synced_without_touching_the_absent_one() -> None:
    (change,) = plan_one({**ROW, "work_phone": "+12025550102"}, phone_types=("work",))

    assert change.kind is Kind.UPDATE and change.changed == ["phoneNumbers"]
    ops = change.operations["phoneNumbers"]
    assert {"op": "remove", "path": 'phoneNumbers[type eq "work"]'} in ops
    assert all("mobile" not in str(op) for op in ops)


@pytest.fixture
def sync_home(tmp_path: Path) -> Path:
    home = tmp_path / "sync-home"
    home.mkdir()
    return home


def test_dropping_optional_columns_keeps_the_target_as_it_is(target, sync_home, tmp_path):
    """Stage tier, both targets: a full load, then an export with only the required columns
    (and the work phone): nothing is written, every user keeps what the full export gave it."""
    rows = clean_rows()  # no row quarantined: the same users in both runs
    first = run_stages(sync_home, write_rows(tmp_path / "full.csv", rows), target)
    assert first.ok, first.error
    before = by_external_id(target.users())
    kept = ("employee_id", "email", "display_name", "status", "work_phone")
    slim = [{c: r[c] for c in kept} for r in rows]

    second = run_stages(sync_home, write_rows(tmp_path / "slim.csv", slim), target)

    assert second.ok, second.error
    assert first.report["rejected"] == second.report["rejected"] == 0
    assert second.report["writes"] == 0, second.plan["changes"]
    after = by_external_id(target.users())
    assert {e: u.get("meta") for e, u in after.items()} == {
        e: u.get("meta") for e, u in before.items()
    }
    assert_state(target, rows, set())
