"""The real DAG (``airflow dags test``: mapped tasks deferred to triggers run inline, XComs, params)
against the Genesys sandbox and a plain scim2-server, asserting the target's final state user by
user, and the asset events the runs left in Airflow's metadata database. The sync's scenarios
themselves run in the stage tier (``tests/pipeline``), in seconds.
"""

from __future__ import annotations

from typing import Any

import pytest

from genesys_sync.assets import GENESYS_USERS, users_asset_uri
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


def _asset_events(run_id: str) -> list[dict[str, Any]]:
    """The asset events a run of the DAG recorded, read from Airflow's metadata database (the
    session's ``AIRFLOW_HOME``, which ``airflow dags test`` wrote to)."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == run_id))
        return [
            {
                "uri": event.asset.uri,
                "aliases": [alias.name for alias in event.source_aliases],
                "source": (event.source_dag_id, event.source_task_id),
                "extra": event.extra,
            }
            for event in events
        ]


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
    # The applying run updated the organisation's users asset, through the alias.
    (event,) = _asset_events(report["run_id"])
    assert event["uri"] == users_asset_uri(target.scim_config().base_url)
    assert event["aliases"] == [GENESYS_USERS.name]
    assert event["source"] == ("genesys_user_sync", "report")
    assert event["extra"]["run_id"] == report["run_id"]
    assert event["extra"]["writes"] == report["writes"] > 0
    assert event["extra"]["status"] == report["status"]

    before = target.users()
    second = run_sync(sync_home, export, target.connection_json())
    assert second.ok, second.output[-3000:]
    assert second.report["writes"] == 0
    assert second.report["planned"]["unchanged"] == len(active)
    assert _versions(target.users()) == _versions(before)
    assert _asset_events(second.report["run_id"]) == []  # nothing written, no event


def test_run_params_reach_the_stages(sandbox_target, sync_home, tmp_path):
    """``CONF`` / the trigger form's params arrive in the tasks: a dry run writes nothing."""
    rows = read_rows()
    export = write_rows(tmp_path / "export.csv", rows)
    result = run_sync(sync_home, export, sandbox_target.connection_json(), conf={"dry_run": True})
    assert result.ok, result.output[-3000:]
    assert result.report["dry_run"] is True and result.report["dry_run_reason"] == "param dry_run"
    assert result.report["writes"] == 0 and result.report["planned"]["create"] > 40
    assert sandbox_target.users() == []
    assert _asset_events(result.report["run_id"]) == []  # a dry run updates no asset
