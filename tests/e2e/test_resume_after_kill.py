"""A run killed mid-apply is simply run again: it converges with no duplicate user. While it
runs, a second sync on the same home is refused; the kill releases the lock."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.harness import ROOT, SAMPLE, by_external_id, read_rows, rejected_ids, run_sync
from tests.fixtures.expect import assert_state
from tests.fixtures.targets import FAST, Target
from tests.reliability.checks import (
    duplicates,
    leaks,
    mismatches,
    personal_data,
    unaudited_writes,
)

pytestmark = pytest.mark.e2e


def test_rerun_after_kill_converges_without_duplicates(sandbox, sync_home, proof):
    sandbox.set_faults(requests_per_minute=FAST, latency_ms=250)
    conn = json.loads(sandbox.connection_json())
    # The sync's own pace: 4 writes a second, so the kill lands mid-apply whatever the number
    # of writes in flight (they follow the rate and the round trip).
    conn["extra"]["requests_per_minute"] = 240
    env = {
        **os.environ,
        "GENESYS_SYNC_HOME": str(sync_home),
        "AIRFLOW_CONN_GENESYS_CLOUD": json.dumps(conn),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "dags")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "genesys_sync.cli", "sync", "--export", str(SAMPLE)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while sandbox.stats()["writes"] < 10:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run never started writing"
            time.sleep(0.2)
        # A second sync on the same home meanwhile is refused at once, naming the holder.
        second = subprocess.run(
            [sys.executable, "-m", "genesys_sync.cli", "sync", "--export", str(SAMPLE)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 3, second.stderr
        assert "holds the lock" in second.stderr and "The lock's run: run manual__" in second.stderr
        assert sandbox.stats()["writes"] >= 10 and proc.poll() is None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # The sandbox finishes requests that were in flight: wait until its writes settle.
    writes, settled = -1, time.monotonic() + 30
    while (now := sandbox.stats()["writes"]) != writes:
        assert time.monotonic() < settled, "the sandbox kept writing after the kill"
        writes = now
        time.sleep(0.5)
    partial = sandbox.users()
    rows = read_rows()
    expected = sum(1 for r in rows if r["status"] == "active") - 2  # two are quarantined
    assert 0 < len(partial) < expected, "the kill did not land mid-apply"
    # Write-ahead audit: every user the killed run created has its intent; no half line.
    trail = sync_home / "audit" / "audit.jsonl"
    raw = trail.read_bytes()
    assert raw.endswith(b"\n")
    records = [json.loads(line) for line in raw.splitlines()]
    intents = {r["employee_id"] for r in records if r["event"] == "OPERATION_INTENT"}
    assert {u["externalId"] for u in partial} <= intents

    sandbox.set_faults(latency_ms=0)
    result = run_sync(sync_home, SAMPLE, json.dumps(conn))
    assert result.ok, result.output[-4000:]
    users = sandbox.users()
    target = Target("sandbox", sandbox, True)
    secrets = [sandbox.client_secret, *sandbox.issued_tokens()]
    proof.record(
        "make sync killed mid-apply, a concurrent sync refused",
        faults=["SIGKILL make sync mid-apply", "concurrent run"],
        runs=3,
        employees=len(rows),
        mismatches=len(mismatches(target, rows, rejected_ids(result.report))),
        duplicates=duplicates(users),
        unaudited_writes=unaudited_writes(sync_home, users),
        secrets_found=len(leaks(sync_home, secrets, personal_data(rows), [result.output])),
    )
    per_name = collections.Counter(u["userName"].lower() for u in users)
    per_external = collections.Counter(u.get("externalId") for u in users)
    assert max(per_name.values()) == 1 and max(per_external.values()) == 1
    assert len(users) == expected
    assert set(by_external_id(users)) <= {r["employee_id"] for r in rows}
    assert_state(Target("sandbox", sandbox, True), rows, rejected_ids(result.report))
    # Every intent of both runs is closed (a result, or the rerun's closure); the chain holds.
    records = [json.loads(line) for line in trail.read_text().splitlines()]
    closed = {r.get("intent_seq") for r in records if r["event"] == "INTENT_CLOSED"}
    results = {
        (r["run_id"], r.get("batch_id"), r.get("attempt"), r["employee_id"], r["operation"])
        for r in records
        if r["event"] == "USER_OPERATION"
    }
    for r in records:
        if r["event"] == "OPERATION_INTENT":
            key = (r["run_id"], r["batch_id"], r["attempt"], r["employee_id"], r["operation"])
            assert key in results or r["seq"] in closed, r
    verify = subprocess.run(
        [sys.executable, "-m", "genesys_sync.audit", "verify", str(trail)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
