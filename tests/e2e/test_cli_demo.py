"""The README's first command: ``make demo`` (``python -m genesys_sync.cli demo``), twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.harness import ROOT
from tests.fixtures.sandbox import free_port

pytestmark = pytest.mark.e2e


def _demo(sync_home, port):
    env = {
        **os.environ,
        "GENESYS_SYNC_HOME": str(sync_home),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "dags")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "genesys_sync.cli", "demo", "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_demo_runs_twice_and_the_second_run_writes_nothing(sync_home):
    port = free_port()
    first = _demo(sync_home, port)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "SUCCESS" in first.stdout and "created             50" in first.stdout
    second = _demo(sync_home, port)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    reports = sorted((sync_home / "runs").glob("*/report.json"), key=lambda p: p.stat().st_mtime)
    assert len(reports) == 2
    last = json.loads(reports[-1].read_text())
    assert last["writes"] == 0 and last["planned"]["unchanged"] == 50
    for key in ("create", "update", "deactivate", "reactivate", "delete"):
        assert key in last["planned"] and key in last["applied"]
    # The sandbox was stopped: nothing listens on its port any more.
    import socket

    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
