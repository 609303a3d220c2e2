"""A run killed mid-apply is simply run again: it converges with no duplicate user."""

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

pytestmark = pytest.mark.e2e


def test_rerun_after_kill_converges_without_duplicates(sandbox, sync_home):
    sandbox.set_faults(requests_per_minute=FAST, latency_ms=250)
    conn = json.loads(sandbox.connection_json())
    conn["extra"]["requests_per_minute"] = FAST
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
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    partial = sandbox.users()
    rows = read_rows()
    expected = sum(1 for r in rows if r["status"] == "active") - 2  # two are quarantined
    assert 0 < len(partial) < expected, "the kill did not land mid-apply"

    sandbox.set_faults(latency_ms=0)
    result = run_sync(sync_home, SAMPLE, json.dumps(conn))
    assert result.ok, result.output[-4000:]
    users = sandbox.users()
    per_name = collections.Counter(u["userName"].lower() for u in users)
    per_external = collections.Counter(u.get("externalId") for u in users)
    assert max(per_name.values()) == 1 and max(per_external.values()) == 1
    assert len(users) == expected
    assert set(by_external_id(users)) <= {r["employee_id"] for r in rows}
    assert_state(Target("sandbox", sandbox, True), rows, rejected_ids(result.report))
