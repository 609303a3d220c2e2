"""One run at a time: a run that meets another run's lock writes nothing and says who holds it."""

from __future__ import annotations

import sqlalchemy as sa

from genesys_sync import run_lock
from genesys_sync.run_lock import RunLocked
from tests.fixtures.expect import SAMPLE, read_rows, rejected_ids
from tests.pipeline.harness import run_stages, sync_home_env
from tests.reliability.checks import duplicates, mismatches, unaudited_writes


def _state_engine(sync_home):
    from genesys_sync.state import StateStore

    with sync_home_env(sync_home):
        return StateStore().engine


def test_a_run_meeting_a_held_lock_writes_nothing_until_it_is_released(
    sandbox_target, sync_home, proof
):
    engine = _state_engine(sync_home)
    run_lock.acquire(engine, "scheduled__2026-12-01", "airflow")
    blocked = run_stages(sync_home, SAMPLE, sandbox_target)
    assert not blocked.ok and isinstance(blocked.error, RunLocked)
    assert "scheduled__2026-12-01" in str(blocked.error)
    assert blocked.report["status"] == "failed" and blocked.report["writes"] == 0
    assert sandbox_target.users() == []
    assert run_lock.current_lease(engine).run_id == "scheduled__2026-12-01"  # not released

    run_lock.release(engine, "scheduled__2026-12-01")
    result = run_stages(sync_home, SAMPLE, sandbox_target)
    users = sandbox_target.users()
    proof.record(
        "a second run meets the lock",
        faults=["concurrent run"],
        runs=2,
        employees=len(read_rows()),
        mismatches=len(mismatches(sandbox_target, read_rows(), rejected_ids(result.report))),
        duplicates=duplicates(users),
        unaudited_writes=unaudited_writes(sync_home, users),
    )
    assert result.ok, result.error
    assert result.report["applied"]["create"] == 50
    assert run_lock.current_lease(engine) is None  # the report gave it back
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(run_lock.run_lock)).scalar() == 0
    engine.dispose()
