"""The real DAG (``airflow dags test``: mapped tasks deferred to triggers run inline, XComs, params)
against the Genesys sandbox and a plain scim2-server, asserting the target's final state user by
user. The sync's scenarios themselves run in the stage tier (``tests/pipeline``), in seconds.
"""

from __future__ import annotations

import pytest

from tests.e2e.harness import (
    assert_state,
    by_external_id,
    read_rows,
    rejected_ids,
    run_sync,
    write_rows,
)

pytestmark = pytest.mark.e2e


def _versions(users):
    return {u["id"]: (u.get("meta") or {}).get("version") for u in users}


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
    assert_state(target, rows, rejected)
    users = by_external_id(target.users())
    for r in rows:  # on leave or terminated: not created on a first load
        if r["status"] != "active":
            assert r["employee_id"] not in users

    before = target.users()
    second = run_sync(sync_home, export, target.connection_json())
    assert second.ok, second.output[-3000:]
    assert second.report["writes"] == 0
    assert second.report["planned"]["unchanged"] == len(active)
    assert _versions(target.users()) == _versions(before)


def test_run_params_reach_the_stages(sandbox_target, sync_home, tmp_path):
    """``CONF`` / the trigger form's params arrive in the tasks: a dry run writes nothing."""
    rows = read_rows()
    export = write_rows(tmp_path / "export.csv", rows)
    result = run_sync(sync_home, export, sandbox_target.connection_json(), conf={"dry_run": True})
    assert result.ok, result.output[-3000:]
    assert result.report["dry_run"] is True and result.report["dry_run_reason"] == "param dry_run"
    assert result.report["writes"] == 0 and result.report["planned"]["create"] > 40
    assert sandbox_target.users() == []
