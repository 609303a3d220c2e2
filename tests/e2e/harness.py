"""Helpers for end-to-end runs: run the real DAG through ``airflow dags test`` (what ``make sync``
does) against a target. What the target must hold afterwards is in ``tests.fixtures.expect``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genesys_sync import runs
from tests.fixtures.expect import (  # noqa: F401 (re-exported for the e2e and deployment tests)
    ENTERPRISE,
    GENESYS,
    ROOT,
    SAMPLE,
    assert_state,
    assert_user_matches,
    by_external_id,
    read_rows,
    rejected_ids,
    write_rows,
)


def fast_config(sync_home: Path) -> Path:
    """The shipped config with Data Docs off (``tests/validation`` checks them): a copy in the
    run's home, which ``$GENESYS_SYNC_CONFIG`` points at."""
    text = (ROOT / "include" / "config" / "sync.yaml").read_text(encoding="utf-8")
    assert "data_docs: true" in text
    path = sync_home / "sync.yaml"
    path.write_text(text.replace("data_docs: true", "data_docs: false"), encoding="utf-8")
    return path


@dataclass
class RunResult:
    returncode: int
    report: dict[str, Any] | None
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_sync(
    sync_home: Path,
    export: Path | str,
    connection_json: str,
    conf: dict[str, Any] | None = None,
    logical_date: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> RunResult:
    """``python -m genesys_sync.cli sync`` in a subprocess: the real DAG, ``airflow dags test``."""
    env = {
        **os.environ,
        "GENESYS_SYNC_HOME": str(sync_home),
        "AIRFLOW_CONN_GENESYS_CLOUD": connection_json,
        **(extra_env or {}),
    }
    env.setdefault("GENESYS_SYNC_CONFIG", str(fast_config(sync_home)))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "dags")])
    cmd = [
        sys.executable,
        "-m",
        "genesys_sync.cli",
        "sync",
        "--export",
        str(export),
        "--conf",
        json.dumps(conf or {}),
    ]
    if logical_date:
        cmd += ["--logical-date", logical_date]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    store_url = env.get("GENESYS_SYNC_RUNS_URL")  # the run store, local or in a bucket
    reports = runs.reports(root=runs.store_path(store_url) if store_url else sync_home / "runs")
    report = json.loads(reports[-1].read_bytes()) if reports else None
    return RunResult(proc.returncode, report, proc.stdout + proc.stderr)
