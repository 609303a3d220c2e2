"""``genesys_sync.run_lock``: one run at a time per state store and per home, on SQLite and on
PostgreSQL, with real processes for the holders that die."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from genesys_sync import run_lock
from genesys_sync.run_lock import HomeLocked, RunLocked
from genesys_sync.state import metadata

PG = "postgresql+psycopg2://postgres@127.0.0.1:5432"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
        metadata.create_all(engine)  # what StateStore() does
        yield engine
        engine.dispose()
        return
    name = f"gss_lock_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = sa.create_engine(f"{PG}/{name}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_run_meets_the_holder_by_name(engine):
    assert run_lock.acquire(engine, "run-1", "airflow") is None
    with pytest.raises(RunLocked) as locked:
        run_lock.acquire(engine, "run-2", "airflow")
    assert locked.value.lease.run_id == "run-1"
    assert "run run-1, started" in str(locked.value)
    # The holder itself may take it again (a retried validate task).
    assert run_lock.acquire(engine, "run-1", "airflow") is None
    assert run_lock.release(engine, "run-2") is False  # not the holder: nothing released
    assert run_lock.current_lease(engine).run_id == "run-1"
    assert run_lock.release(engine, "run-1") is True
    assert run_lock.current_lease(engine) is None
    assert run_lock.acquire(engine, "run-2", "airflow") is None


def test_a_dead_cli_holder_is_taken_over(engine):
    host = run_lock.process_holder().split(":")[1]
    run_lock.acquire(engine, "killed", f"cli:{host}:{_dead_pid()}")
    stale = run_lock.acquire(engine, "rerun", "cli:elsewhere:1")
    assert stale is not None and stale.run_id == "killed"
    assert run_lock.current_lease(engine).run_id == "rerun"
    # A live holder on this host keeps it.
    run_lock.release(engine, "rerun")
    run_lock.acquire(engine, "live", run_lock.process_holder("cli"))
    with pytest.raises(RunLocked):
        run_lock.acquire(engine, "next", "cli:elsewhere:1")


def test_an_airflow_holder_is_taken_over_once_its_run_has_ended(engine):
    run_lock.acquire(engine, "scheduled__1", "airflow")
    states = {"scheduled__1": "running"}

    def run_gone(run_id: str) -> bool:
        return states[run_id] not in ("queued", "running")

    with pytest.raises(RunLocked):
        run_lock.acquire(engine, "manual__2", "airflow", run_gone=run_gone)
    states["scheduled__1"] = "failed"
    stale = run_lock.acquire(engine, "manual__2", "airflow", run_gone=run_gone)
    assert stale is not None and stale.run_id == "scheduled__1"


def test_a_lease_older_than_max_age_expires(engine):
    start = datetime(2026, 12, 1, tzinfo=UTC)
    run_lock.acquire(engine, "old", "airflow", now=start)
    with pytest.raises(RunLocked):
        run_lock.acquire(engine, "new", "airflow", now=start + timedelta(hours=23))
    stale = run_lock.acquire(engine, "new", "airflow", now=start + timedelta(hours=25))
    assert stale.run_id == "old"


HOLD = """
import sys, time
from pathlib import Path
from genesys_sync.run_lock import home_lock
with home_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


def test_the_home_lock_names_its_holder_and_dies_with_it(tmp_path):
    path = tmp_path / "home" / "sync.lock"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(HomeLocked) as locked, run_lock.home_lock(path):
            pass
        assert locked.value.holder["pid"] == holder.pid
        assert f"pid {holder.pid}" in str(locked.value)
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    deadline = time.monotonic() + 10
    while True:  # the kernel drops a dead process's lock at once; allow for a slow reap
        try:
            with run_lock.home_lock(path) as name:
                assert name.startswith("cli:") and name.endswith(f":{os.getpid()}")
                assert json.loads(path.read_text())["pid"] == os.getpid()
            break
        except HomeLocked:
            assert time.monotonic() < deadline, "the dead holder's lock was never released"
