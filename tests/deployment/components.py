"""What the deployment tests share: the components' commands and a running deployment's
handle (the Airflow CLI, waits that show the components' logs when they time out)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from genesys_sync import runs
from genesys_sync.settings import safe_run_id

PG = "postgresql+psycopg2://postgres@127.0.0.1:5432"
AIRFLOW = str(Path(sys.executable).parent / "airflow")


@dataclass
class Deployment:
    env: dict[str, str]
    logs: Path
    api: str
    export: Path
    scheduled: dict | None = None  # what the first, scheduled run left (see the fixture)
    alerts: Any = None  # the alert receiver the deployment posts to, where it has one

    def airflow(self, *args: str) -> str:
        return _airflow(self.env, *args)

    def wait(self, predicate, timeout: float, what: str):
        return _wait(predicate, timeout, what, self.logs)

    def runs(self) -> list[dict]:
        out = self.airflow("dags", "list-runs", "genesys_user_sync", "-o", "json")
        lines = [line for line in out.splitlines() if line.startswith("[")]
        return json.loads(lines[-1]) if lines else []

    def wait_for_dag(self) -> None:
        def registered() -> bool:
            out = subprocess.run(
                [AIRFLOW, "dags", "list", "-o", "json"],
                env=self.env,
                capture_output=True,
                text=True,
            )
            return out.returncode == 0 and "genesys_user_sync" in out.stdout

        self.wait(registered, 180, "the dag-processor to register the DAG")

    def trigger(self, run_id: str) -> None:
        self.airflow("dags", "trigger", "genesys_user_sync", "--run-id", run_id)

    def report(self, run_id: str) -> dict:
        """The run's report, from the deployment's run store (a bucket or a local home)."""
        url = self.env.get("GENESYS_SYNC_RUNS_URL")
        root = runs.store_path(url) if url else Path(self.env["GENESYS_SYNC_HOME"]) / "runs"
        return json.loads((root / safe_run_id(run_id) / runs.REPORT).read_bytes())

    def reset_state(self) -> None:
        """Empty the sync's state tables (a test starts as on a new installation)."""
        engine = sa.create_engine(self.env["GENESYS_SYNC_STATE_URL"])
        tables = sa.MetaData()
        tables.reflect(engine)
        with engine.begin() as conn:
            for table in tables.sorted_tables:
                conn.execute(table.delete())
        engine.dispose()

    def wait_for_run(self, run_id: str | None = None) -> dict:
        def finished():
            runs = [r for r in self.runs() if run_id in (None, r["run_id"])]
            return runs[0] if runs and runs[0]["state"] in ("success", "failed") else None

        return self.wait(finished, 600, f"run {run_id or 'the first run'} to finish")


def start(env: Mapping[str, str], logs: Path, name: str, *args: str) -> subprocess.Popen:
    """One Airflow component (``airflow <args>``) in its own process group, logging to
    ``<logs>/<name>.log``."""
    out = (logs / f"{name}.log").open("wb")
    return subprocess.Popen(
        [AIRFLOW, *args],
        env=dict(env),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(procs: Iterable[subprocess.Popen]) -> None:
    """SIGTERM every component's process group, then SIGKILL what has not stopped in 30 s."""
    procs = list(procs)
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _airflow(env, *args) -> str:
    return subprocess.run(
        [AIRFLOW, *args], env=env, check=True, capture_output=True, text=True
    ).stdout


def _wait(predicate, timeout: float, what: str, logs: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2)
    tails = {p.name: p.read_text(errors="replace")[-2000:] for p in logs.glob("*.log")}
    raise AssertionError(f"timed out waiting for {what}: {json.dumps(tails, indent=1)}")
