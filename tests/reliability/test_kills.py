"""SIGKILL of a whole run at several points (issue 12, item 8), then a rerun: mid-apply, mid-link
(the second wave), and mid-report twice (after the state is written; after the audit trail's run
record, before the report file). The killed run is a child process running every stage against
the real sandbox; the report-stage kills use fail points (``genesys_sync.failpoints``) so they
land between two exact steps. After each kill: no half line and a chain that verifies, every user
in the target has its intent; after the rerun: the target exact user by user, no duplicate, no
open intent. ``tests/e2e/test_resume_after_kill.py`` kills ``make sync`` itself (Airflow
included), ``tests/pipeline/test_write_ahead_audit.py`` one batch job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from genesys_sync import audit
from tests.fixtures.expect import ROOT, SAMPLE, read_rows, rejected_ids
from tests.pipeline.harness import run_stages
from tests.pipeline.test_write_ahead_audit import _settle
from tests.reliability.checks import (
    duplicates,
    leaks,
    mismatches,
    personal_data,
    trail_path,
    unaudited_writes,
)

CHILD = """
import dataclasses, json, sys
from tests.fixtures.targets import Target
from tests.pipeline.harness import run_stages, stage_config

class Handle:
    def connection_json(self):
        return sys.argv[1]

config = stage_config()
# Batches of 10: the sample's top managers are created first, the rest in a second wave.
size = int(sys.argv[4])
config = dataclasses.replace(config, sync=dataclasses.replace(config.sync, batch_size=size))
result = run_stages(sys.argv[3], sys.argv[2], Target("sandbox", Handle(), True), config=config)
print(json.dumps({"ok": result.ok}))
"""


def _intents(home: Path, batch_prefix: str) -> int:
    path = trail_path(home)
    if not path.exists():
        return 0
    count = 0
    for line in path.read_bytes().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written
        if record.get("event") == audit.INTENT and str(record.get("batch_id")).startswith(
            batch_prefix
        ):
            count += 1
    return count


KILLS: dict[str, tuple[str | None, Callable[[Path], bool] | None, int]] = {
    # (fail point, or the moment the test kills the child itself; batch size)
    "mid_apply": (None, lambda home: _intents(home, "phase1") >= 8, 100),
    "mid_link": (None, lambda home: _intents(home, "phase2") >= 5, 10),
    "mid_report_after_state": ("report.after_state", None, 10),
    "mid_report_before_report_file": ("report.before_file", None, 100),
}


@pytest.mark.parametrize("point", list(KILLS))
def test_a_run_killed_at_any_point_is_simply_run_again(
    point, sandbox_target, sync_home, tmp_path, proof
):
    failpoint, moment, batch_size = KILLS[point]
    sandbox = sandbox_target.handle
    sandbox.set_faults(latency_ms=60)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins"), str(ROOT / "dags")]),
        "GENESYS_SYNC_HOME": str(sync_home),
    }
    if failpoint:
        env["GENESYS_SYNC_FAILPOINT"] = failpoint
    log = (tmp_path / "child.log").open("wb")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            sandbox_target.connection_json(),
            str(SAMPLE),
            sync_home,
            str(batch_size),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 120
        while moment is not None and not moment(sync_home):
            assert child.poll() is None, (tmp_path / "child.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the run never reached the kill point"
            time.sleep(0.01)
        if moment is not None:
            child.kill()
        child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        log.close()
    assert child.returncode == -9, (tmp_path / "child.log").read_text()[-3000:]
    sandbox.set_faults(latency_ms=0)
    _settle(sandbox)
    raw = trail_path(sync_home).read_bytes()
    half_lines = 0 if raw.endswith(b"\n") else 1
    after_kill = unaudited_writes(sync_home, sandbox_target.users())

    rerun = run_stages(sync_home, SAMPLE, sandbox_target)
    rows = read_rows(SAMPLE)
    users = sandbox_target.users()
    wrong = mismatches(sandbox_target, rows, rejected_ids(rerun.report or {}))
    still_open = audit.scan(trail_path(sync_home)).open
    secrets = [sandbox.client_secret, *sandbox.issued_tokens()]
    found = leaks(sync_home, secrets, personal_data(rows), [(tmp_path / "child.log").read_text()])
    figures = proof.record(
        point,
        faults=[f"SIGKILL {point.replace('_', ' ')}"],
        runs=2,
        employees=len(rows),
        mismatches=len(wrong),
        duplicates=duplicates(users),
        unaudited_writes=half_lines + after_kill + unaudited_writes(sync_home, users),
        secrets_found=len(found),
    )

    assert rerun.ok, rerun.error
    assert figures.unaudited_writes == 0 and half_lines == 0 and after_kill == 0
    assert wrong == [] and figures.duplicates == 0 and found == []
    assert still_open == [], "the rerun closes what the killed run left open"
