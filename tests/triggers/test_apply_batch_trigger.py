"""``ApplyBatchTrigger``: serialisation, and its events against the real sandbox."""

from __future__ import annotations

import json

import pytest

from genesys_sync import runs
from genesys_sync.mapping import MANAGED_PATHS, desired_user
from genesys_sync.plan import PlanOptions, plan_sync
from genesys_sync.report import write_json
from genesys_sync.triggers.apply_batch import ApplyBatchTrigger
from tests.test_plan import row


async def _event(trigger):
    async for event in trigger.run():
        return event.payload
    raise AssertionError("no event")


def _batch(tmp_path, changes) -> str:
    path = tmp_path / "run" / "batches" / "phase1-0001.json"
    write_json(path, {"batch_id": "phase1-0001", "changes": [c.to_dict() for c in changes]})
    return str(path)


def test_serialization_round_trip():
    trigger = ApplyBatchTrigger("/runs/r/batches/phase1-0001.json", "genesys_cloud", 0)
    path, kwargs = trigger.serialize()
    assert path == "genesys_sync.triggers.apply_batch.ApplyBatchTrigger"
    assert ApplyBatchTrigger(**kwargs).serialize() == (path, kwargs)
    timed = ApplyBatchTrigger("/b.json", "genesys_cloud", 0, job_timeout_seconds=3600.0)
    assert timed.serialize()[1]["job_timeout_seconds"] == 3600.0
    assert ApplyBatchTrigger(**timed.serialize()[1]).serialize() == timed.serialize()
    fixed = ApplyBatchTrigger("/b.json", "genesys_cloud", 0, 3600.0, deadline_at=1.8e9)
    assert ApplyBatchTrigger(**fixed.serialize()[1]).serialize()[1]["deadline_at"] == 1.8e9


async def test_success_event_carries_counts_not_records(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_GENESYS_CLOUD", sandbox.connection_json())
    user = desired_user(row("E1", email="ada.lovelace@example.com"))
    plan = plan_sync({"E1": user}, [], PlanOptions(paths=MANAGED_PATHS))
    batch_path = _batch(tmp_path, plan.writes)
    event = await _event(ApplyBatchTrigger(batch_path, start_delay=0))
    assert event["status"] == "success"
    assert event["outcomes"] == {"applied": 1}
    assert "@" not in json.dumps(event), "no personal data in trigger events"
    results = runs.read_results(event["results_path"]).results
    assert [(r["employee_id"], r["outcome"]) for r in results] == [("E1", "applied")]
    assert [u["externalId"] for u in sandbox.users()] == ["E1"]
    # Airflow may run a trigger twice: the repeat converges without a duplicate.
    again = await _event(ApplyBatchTrigger(batch_path, start_delay=0))
    assert again["status"] == "success"
    assert [u["externalId"] for u in sandbox.users()] == ["E1"]


async def test_unreachable_target_gives_an_error_event(sandbox, tmp_path, monkeypatch):
    conn = json.loads(sandbox.connection_json())
    conn["extra"].update({"max_attempts": 2, "max_backoff_seconds": 0.1})
    monkeypatch.setenv("AIRFLOW_CONN_GENESYS_CLOUD", json.dumps(conn))
    sandbox.set_faults(error_rate=1.0)
    user = desired_user(row("E1"))
    plan = plan_sync({"E1": user}, [], PlanOptions(paths=MANAGED_PATHS))
    event = await _event(ApplyBatchTrigger(_batch(tmp_path, plan.writes), start_delay=0))
    assert event["status"] == "error"
    assert event["unreachable"] == 1
    assert event["message"].startswith(
        "the target was unreachable (last error ScimServerError HTTP 503, tried for"
    )
    assert sandbox.users() == []


async def test_a_long_retry_after_is_honoured_beyond_max_backoff(sandbox, tmp_path, monkeypatch):
    import time

    conn = json.loads(sandbox.connection_json())
    conn["extra"].update({"max_backoff_seconds": 1})
    monkeypatch.setenv("AIRFLOW_CONN_GENESYS_CLOUD", json.dumps(conn))
    sandbox.set_faults(force_429=1, retry_after_seconds=2)
    plan = plan_sync({"E1": desired_user(row("E1"))}, [], PlanOptions(paths=MANAGED_PATHS))
    trigger = ApplyBatchTrigger(
        _batch(tmp_path, plan.writes), start_delay=0, job_timeout_seconds=600
    )
    started = time.monotonic()
    event = await _event(trigger)
    assert event["status"] == "success", event
    assert time.monotonic() - started >= 2.0  # waited the server's 2 s, not the 1 s cap
    assert sandbox.stats()["rate_limited"] >= 1


async def test_a_restarted_trigger_keeps_the_deadline_it_was_deferred_with(
    sandbox, tmp_path, monkeypatch
):
    """A triggerer restart re-creates the trigger from its kwargs: the job's deadline is the one
    fixed at deferral (here already past), not a fresh job_timeout from the restart."""
    import time

    monkeypatch.setenv("AIRFLOW_CONN_GENESYS_CLOUD", sandbox.connection_json())
    sandbox.set_faults(force_429=1, retry_after_seconds=30)
    plan = plan_sync({"E1": desired_user(row("E1"))}, [], PlanOptions(paths=MANAGED_PATHS))
    restarted = ApplyBatchTrigger(
        _batch(tmp_path, plan.writes),
        start_delay=0,
        job_timeout_seconds=600,
        deadline_at=time.time() - 1,  # deferred more than job_timeout ago
    )
    event = await _event(restarted)
    assert event["status"] == "error", event  # no 30 s wait: the deadline has passed
    assert sandbox.users() == [] and sandbox.stats()["rate_limited"] == 1


@pytest.mark.parametrize("conn", ["{}", '{"conn_type": "http", "extra": {"base_url": "x"}}'])
async def test_bad_connection_gives_an_error_event(tmp_path, monkeypatch, conn):
    monkeypatch.setenv("AIRFLOW_CONN_GENESYS_CLOUD", conn)
    event = await _event(ApplyBatchTrigger(_batch(tmp_path, []), start_delay=0))
    assert event["status"] == "error"
    assert "ScimConfigError" in event["message"]


async def test_an_unwritable_audit_trail_gives_an_error_event_naming_it(
    sandbox, tmp_path, monkeypatch
):
    monkeypatch.setenv("AIRFLOW_CONN_GENESYS_CLOUD", sandbox.connection_json())
    monkeypatch.setenv("AUDIT_LOG_PATH", str(tmp_path))  # a directory: nothing can be appended
    plan = plan_sync({"E1": desired_user(row("E1"))}, [], PlanOptions(paths=MANAGED_PATHS))
    event = await _event(ApplyBatchTrigger(_batch(tmp_path, plan.writes), start_delay=0))
    assert event["status"] == "error"
    assert "audit trail" in event["message"] and "stopped before its next write" in event["message"]
    assert sandbox.users() == [] and sandbox.stats()["writes"] == 0


async def test_a_trigger_exception_is_logged_with_its_type_and_no_personal_data(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("AIRFLOW_CONN_GENESYS_CLOUD", "{}")
    batch_path = _batch(tmp_path, [])

    async def broken(*args, **kwargs):
        raise ValueError("bad row for ada.lovelace@example.com")

    monkeypatch.setattr("genesys_sync.triggers.apply_batch.apply_batch_file", broken)
    monkeypatch.setattr(
        "genesys_sync.hooks.genesys.GenesysScimHook.aget_scim_config", _no_config, raising=True
    )
    event = await _event(ApplyBatchTrigger(batch_path, start_delay=0))
    assert event["status"] == "error"
    assert event["message"].startswith("batch job could not run: ValueError at ")
    logged = capsys.readouterr().out  # the trigger's logger (Airflow's structlog)
    assert "error" in logged and "could not run: ValueError at " in logged
    assert "@" not in json.dumps(event) and "@" not in logged


async def _no_config(self):
    return None
