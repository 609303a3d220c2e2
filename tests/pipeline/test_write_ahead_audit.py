"""Write-ahead audit against the real sandbox: every write the target received has its intent in
the audit trail before it was sent, a SIGKILL leaves no half line and a chain that verifies, the
report closes what the killed job left open, and a trail that cannot be written stops the job
before its next write and keeps the state from getting ahead of it."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import stat
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from genesys_sync import audit
from genesys_sync.export import resolve_location
from genesys_sync.runs import results_path
from genesys_sync.stages.apply import apply_batch_file
from genesys_sync.stages.common import RunParams
from genesys_sync.stages.finish import finish_stage
from genesys_sync.stages.plan import plan_stage
from genesys_sync.stages.validate import validate_stage
from genesys_sync.state import StateStore
from tests.fixtures.expect import SAMPLE, by_external_id
from tests.pipeline.harness import run_stages, stage_config, sync_home_env

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"

CHILD = """
import asyncio, json, sys
from genesys_sync.stages.apply import apply_batch_file
from genesys_sync.scim.connection import ScimConnectionConfig
conn = json.loads(sys.argv[1])
scim = ScimConnectionConfig.from_fields(
    conn.get("host"), conn.get("login"), conn.get("password"), conn.get("extra")
)
print(json.dumps(asyncio.run(apply_batch_file(scim, sys.argv[2]))))
"""


def _records(home: Path) -> list[dict]:
    return [json.loads(line) for line in _log(home).read_bytes().splitlines()]


def _log(home: Path) -> Path:
    return home / "audit" / "audit.jsonl"


def _plan(home: Path, target, run_id: str):
    """Validate and plan one run (the stages before the batch jobs); return its first batch."""
    config = stage_config()
    scim = target.scim_config()
    day = datetime.now(UTC).date()
    with sync_home_env(home):
        location = resolve_location(config.export, day, override=str(SAMPLE))
        gate = validate_stage(run_id, location, config, scim, logical_date=day)
        planned = plan_stage(run_id, gate["accepted_path"], RunParams(), config, scim, day)
    (batch,) = planned["phase1"]  # the sample's 50 creates
    return config, batch


def _of_run(records: list[dict], run_id: str, event: str) -> list[dict]:
    return [r for r in records if r["event"] == event and r["run_id"] == run_id]


def test_every_user_in_the_target_has_an_intent_and_a_result(sandbox_target, sync_home):
    result = run_stages(sync_home, SAMPLE, sandbox_target)
    assert result.ok, result.error
    records = _records(sync_home)
    intents = _of_run(records, result.run_id, audit.INTENT)
    results = _of_run(records, result.run_id, audit.RESULT)
    users = by_external_id(sandbox_target.users())
    assert len(users) == 50
    seq = {}
    for r in intents + results:
        seq.setdefault((r["employee_id"], r["operation"]), []).append((r["event"], r["seq"]))
    for eid in users:
        ((first, at), (then, later)) = sorted(seq[(eid, "create")], key=lambda e: e[1])
        assert (first, then) == (audit.INTENT, audit.RESULT) and at < later, eid
    # Each create carries its manager (issue 10): no link wave on the sample export.
    assert {r["operation"] for r in intents} == {"create"}
    assert len(intents) == len(results) == 50
    # Recorded once each by the batch jobs: the report added nothing and closed nothing.
    once = Counter((r["batch_id"], r["employee_id"], r["operation"]) for r in results)
    assert set(once.values()) == {1}
    assert _of_run(records, result.run_id, audit.CLOSED) == []
    assert all(r["outcome"] == "applied" for r in results)
    assert all("@" not in json.dumps(r) for r in records), "no emails in the trail"
    assert audit.verify(_log(sync_home)).ok


def _kill_mid_batch(sandbox_target, sync_home, run_id):
    config, batch = _plan(sync_home, sandbox_target, run_id)
    sandbox = sandbox_target.handle
    sandbox.set_faults(latency_ms=200)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, sandbox_target.connection_json(), batch],
        env={**os.environ, "GENESYS_SYNC_HOME": str(sync_home), "PYTHONPATH": str(PLUGINS)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while sandbox.stats()["writes"] < 5:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the batch job made no writes"
            time.sleep(0.02)
        proc.kill()  # SIGKILL mid-batch
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
        sandbox.set_faults(latency_ms=0)
    assert proc.returncode == -9
    _settle(sandbox)
    return config, batch


def _settle(sandbox, still_for: float = 0.6) -> None:
    """Wait until the requests the killed job left in flight have been served (the sandbox
    finishes a request whose client died): no new write for ``still_for`` seconds."""
    deadline = time.monotonic() + 30
    last, since = sandbox.stats()["writes"], time.monotonic()
    while time.monotonic() - since < still_for:
        assert time.monotonic() < deadline, "the sandbox kept writing"
        time.sleep(0.05)
        now = sandbox.stats()["writes"]
        if now != last:
            last, since = now, time.monotonic()


def _check_after_kill(sandbox_target, sync_home, run_id, batch):
    raw = _log(sync_home).read_bytes()
    assert raw.endswith(b"\n"), "no half line"
    records = [json.loads(line) for line in raw.splitlines()]  # every line whole JSON
    assert audit.verify(_log(sync_home)).ok
    intents = _of_run(records, run_id, audit.INTENT)
    users = by_external_id(sandbox_target.users())
    assert 5 <= len(users) < 50, "killed mid-way"
    assert set(users) <= {r["employee_id"] for r in intents}, "a write without its intent"
    assert sandbox_target.handle.stats()["writes"] <= len(intents)
    assert not results_path(batch).exists()  # the job never finished
    still_open = [r for r in audit.scan(_log(sync_home)).open if r["run_id"] == run_id]
    assert still_open, "writes were under way when the job was killed"
    return users, still_open


def test_a_killed_batch_job_leaves_every_write_in_the_trail_and_the_report_closes_it(
    sandbox_target, sync_home
):
    run_id = "audit-kill-report"
    started = datetime.now(UTC)
    config, batch = _kill_mid_batch(sandbox_target, sync_home, run_id)
    users, still_open = _check_after_kill(sandbox_target, sync_home, run_id, batch)

    with sync_home_env(sync_home):  # the same run's report stage, reading the target back
        out = finish_stage(run_id, config, started, scim=sandbox_target.scim_config())
    assert out["status"] == "failed"
    records = _records(sync_home)
    closed = _of_run(records, run_id, audit.CLOSED)
    assert sorted(c["intent_seq"] for c in closed) == sorted(i["seq"] for i in still_open)
    for c in closed:
        assert c["basis"] == "target"
        assert c["outcome"] == ("applied" if c["employee_id"] in users else "not_applied")
    assert [r for r in audit.scan(_log(sync_home)).open if r["run_id"] == run_id] == []
    report = json.loads((sync_home / "runs" / run_id / "report.json").read_text())
    assert sum(report["intents_closed"].values()) == len(still_open)
    assert audit.verify(_log(sync_home)).ok

    with sync_home_env(sync_home):  # a second report records nothing twice
        finish_stage(run_id, config, started, scim=sandbox_target.scim_config())
    assert len(_of_run(_records(sync_home), run_id, audit.CLOSED)) == len(closed)


def test_the_next_run_closes_the_intents_a_killed_run_left_open(sandbox_target, sync_home):
    run_id = "audit-kill-next"
    _, batch = _kill_mid_batch(sandbox_target, sync_home, run_id)
    _, still_open = _check_after_kill(sandbox_target, sync_home, run_id, batch)
    with sync_home_env(sync_home):  # the killed run's lock: its report never ran
        from genesys_sync import run_lock

        store = StateStore()
        run_lock.release(store.engine, run_id)
        store.close()

    rerun = run_stages(sync_home, SAMPLE, sandbox_target)
    assert rerun.ok, rerun.error
    assert len(by_external_id(sandbox_target.users())) == 50  # converged, no duplicate
    closed = _of_run(_records(sync_home), run_id, audit.CLOSED)
    assert sorted(c["intent_seq"] for c in closed) == sorted(i["seq"] for i in still_open)
    assert all(c["closed_by"] == "report" for c in closed)
    assert audit.scan(_log(sync_home)).open == []
    assert audit.verify(_log(sync_home)).ok


def test_an_unwritable_trail_stops_the_job_before_any_write(
    sandbox_target, sync_home, tmp_path, monkeypatch
):
    run_id = "audit-unwritable"
    started = datetime.now(UTC)
    config, batch = _plan(sync_home, sandbox_target, run_id)
    broken = tmp_path / "not-a-file"
    broken.mkdir()
    monkeypatch.setenv("AUDIT_LOG_PATH", str(broken))
    with sync_home_env(sync_home):
        event = asyncio.run(apply_batch_file(sandbox_target.scim_config(), batch))
    assert event["status"] == "error" and event["audit_failed"]
    assert "audit trail" in event["message"] and "stopped before its next write" in event["message"]
    assert sandbox_target.handle.stats()["writes"] == 0 and sandbox_target.users() == []
    assert not results_path(batch).exists()

    with sync_home_env(sync_home):  # the report fails the run and leaves the state alone
        out = finish_stage(run_id, config, started)
        managed = StateStore().managed_ids()
    report = json.loads(Path(out["report_path"]).read_text())
    assert out["status"] == "failed" and "audit trail" in report["failure_reason"]
    assert managed == {}


def test_a_trail_that_fails_mid_batch_stops_the_job_and_every_write_has_its_intent(
    sandbox_target, sync_home, monkeypatch
):
    run_id = "audit-fails-mid-batch"
    started = datetime.now(UTC)
    config, batch = _plan(sync_home, sandbox_target, run_id)
    real = audit._write_all
    lines = {"n": 0}

    def failing(fd, data, size):
        lines["n"] += 1
        if lines["n"] > 12:  # the disk is full from the 13th line of the batch on
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data, size)

    monkeypatch.setattr(audit, "_write_all", failing)
    with sync_home_env(sync_home):
        event = asyncio.run(apply_batch_file(sandbox_target.scim_config(), batch))
    monkeypatch.setattr(audit, "_write_all", real)
    assert event["status"] == "error" and "No space left" in event["message"]
    records = _records(sync_home)
    intents = {r["employee_id"] for r in _of_run(records, run_id, audit.INTENT)}
    users = by_external_id(sandbox_target.users())
    assert 0 < len(users) < 50, "stopped mid-way"
    assert set(users) <= intents
    assert sandbox_target.handle.stats()["writes"] <= len(intents)
    assert audit.verify(_log(sync_home)).ok

    with sync_home_env(sync_home):  # the trail works again: the report closes the rest
        finish_stage(run_id, config, started, scim=sandbox_target.scim_config())
    assert [r for r in audit.scan(_log(sync_home)).open if r["run_id"] == run_id] == []


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_state_audit_and_run_artifacts_are_owner_only_under_umask_022(
    sandbox_target, sync_home, umask_022
):
    result = run_stages(sync_home, SAMPLE, sandbox_target)
    assert result.ok, result.error
    checked = [sync_home / "state.db", _log(sync_home), _log(sync_home).parent]
    checked += [result.run_dir, *result.run_dir.rglob("*")]
    names = {p.name for p in checked}
    assert {"accepted.parquet", "rejects.csv", "plan.md", "report.json"} <= names
    loose = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in checked}
    loose = {p: m for p, m in loose.items() if int(m, 8) & 0o077}
    assert loose == {}
