"""A hostile export through the real DAG: nothing of the file reaches any output or artifact."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.harness import run_sync

pytestmark = pytest.mark.e2e


def test_make_sync_of_a_file_that_is_no_export_echoes_none_of_it(sandbox, tmp_path):
    """The real DAG (``airflow dags test``, as ``make sync EXPORT=/etc/shadow``): the gate
    blocks, the run fails without a retry of ``validate``, and no byte of the file is in the
    output, the task logs, gate.json, rejects, the report, the audit log or Data Docs."""
    secret = "s3cr3t-T0KEN-9f8e7d"
    shadow = tmp_path / "shadow"
    shadow.write_text(f"root:{secret}:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n")
    home = tmp_path / "sync-home"
    home.mkdir()

    result = run_sync(home, shadow, sandbox.connection_json())

    assert result.returncode == 1, result.output[-3000:]
    assert result.report and result.report["status"] == "failed"
    assert "validation gate blocked" in result.report["failure_reason"]
    assert secret not in result.output
    for root in (home, Path(os.environ["AIRFLOW_HOME"]) / "logs"):
        leaked = [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
        assert leaked == []
    (log,) = (home / "logs").glob("dags-test-*.log")  # every task's log (airflow dags test)
    text = log.read_text(encoding="utf-8", errors="replace")
    assert text.count("[DAG TEST] starting task_id=validate ") == 1  # no retry
    assert "AirflowFailException" in text and "Gate blocked the HRIS export" in text
