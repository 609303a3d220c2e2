"""End-to-end scenarios: the real DAG (``airflow dags test``, triggers included) against the
Genesys sandbox and against a plain scim2-server, asserting the target's final state user by user.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.harness import (
    assert_user_matches,
    by_external_id,
    read_rows,
    rejected_ids,
    run_sync,
    write_rows,
)

pytestmark = pytest.mark.e2e


@dataclass
class Target:
    name: str
    handle: Any
    genesys: bool

    def connection_json(self) -> str:
        return self.handle.connection_json()

    def users(self) -> list[dict[str, Any]]:
        return self.handle.users()

    def seed(self, user: dict[str, Any]) -> dict[str, Any]:
        if self.genesys:
            return self.handle.seed_user(user)
        return self.handle.create_user(user)


@pytest.fixture(params=["sandbox", "plain_scim"])
def target(request) -> Target:
    if request.param == "sandbox":
        return Target("sandbox", request.getfixturevalue("sandbox"), genesys=True)
    return Target("plain_scim", request.getfixturevalue("plain_scim"), genesys=False)


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
    assert run_sync(sync_home, write_rows(tmp_path / "d1.csv", rows),
                    target.connection_json()).ok
    before = by_external_id(target.users())
    changed = copy.deepcopy(rows)
    movers = [r for r in changed if r["status"] == "active" and r["mobile_phone"]][:2]
    movers[0]["title"] = "Team Lead"
    movers[1]["mobile_phone"] = ""  # removed in HR -> removed in the target
    result = run_sync(sync_home, write_rows(tmp_path / "d2.csv", changed),
                      target.connection_json())
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
