"""The docker-compose deployment, run as processes: PostgreSQL for Airflow's metadata and the sync's
state, and the real api-server, scheduler (LocalExecutor), dag-processor and triggerer.

One deployment serves the module (starting one costs about a minute); each test starts from an
empty sandbox and an empty state database. The batch jobs are deferred to the real triggerer. The
tests assert the sandbox's final state user by user and the state rows in PostgreSQL.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from genesys_sync.cli import COMPONENTS
from tests.deployment.components import AIRFLOW, Deployment, start, stop
from tests.e2e.harness import (
    ROOT,
    SAMPLE,
    assert_user_matches,
    by_external_id,
    read_rows,
    write_rows,
)
from tests.fixtures.sandbox import free_port
from tests.fixtures.webhook import WebhookReceiver

# One deployment per module (`--dist loadfile` keeps a module on one xdist worker).
pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture(scope="module")
def running_deployment(tmp_path_factory, databases, sandbox_server):
    tmp_path = tmp_path_factory.mktemp("deployment")
    port = free_port()
    alerts = WebhookReceiver().__enter__()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": databases["airflow"],
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        # Lets the test answer the approval request through the REST API as an admin.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
        "GENESYS_SYNC_HOME": str(tmp_path / "sync-home"),
        "GENESYS_SYNC_STATE_URL": databases["state"],
        # The audit trail where every component reaches it: the state database's table.
        "GENESYS_SYNC_AUDIT_STORE": "database",
        "AIRFLOW_CONN_GENESYS_CLOUD": sandbox_server.connection_json(),
        # Where "HR drops the export": scheduled runs read it (tests write it).
        "HRIS_EXPORT_PATH": str(tmp_path / "drop" / "hris_export.csv"),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "dags")]),
        # Every run here takes longer than its deadline (about a second after it was queued):
        # the scheduler finds it missed and the triggerer sends the alert, once per run.
        "GENESYS_SYNC_DEADLINE_HOURS": "0.0003",
        "ALERT_WEBHOOK_URL": alerts.url + "/alerts",
    }
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    logs = tmp_path / "logs"
    logs.mkdir()
    # the same commands as `make airflow`
    procs = [start(env, logs, c[0], *c) for c in COMPONENTS]
    try:
        deployment = Deployment(
            env, logs, f"http://127.0.0.1:{port}", Path(env["HRIS_EXPORT_PATH"]), alerts=alerts
        )
        deployment.scheduled = _first_scheduled_run(deployment, sandbox_server)
        yield deployment
    finally:
        stop(procs)
        alerts.__exit__(None, None, None)


@pytest.fixture
def deployment(running_deployment, sandbox):
    """The module's deployment, with an empty sandbox (``sandbox`` resets it) and state."""
    running_deployment.reset_state()
    return running_deployment


def _first_scheduled_run(deployment: Deployment, sandbox_server) -> dict:
    """The sample lands in the drop; unpausing makes the scheduler start the latest nightly
    interval (catchup is off). What the run left is kept before any test resets it."""
    sandbox_server.reset()
    deployment.export.parent.mkdir(parents=True)
    shutil.copy(SAMPLE, deployment.export)
    deployment.wait_for_dag()
    deployment.airflow("dags", "unpause", "genesys_user_sync")
    run = deployment.wait_for_run()
    engine = sa.create_engine(deployment.env["GENESYS_SYNC_STATE_URL"])
    with engine.connect() as conn:
        managed = conn.execute(sa.text("SELECT count(*) FROM managed_users")).scalar()
        exports = conn.execute(sa.text("SELECT count(*) FROM applied_exports WHERE applied"))
        applied_exports = exports.scalar()
        trail = conn.execute(sa.text("SELECT line FROM audit_trail ORDER BY seq")).scalars()
        audit_records = [json.loads(line) for line in trail]
    engine.dispose()
    verified = subprocess.run(
        [sys.executable, "-m", "genesys_sync.audit", "verify"],
        env=deployment.env,
        capture_output=True,
        text=True,
    )
    return {
        "audit": audit_records,
        "audit_verified": (verified.returncode, verified.stdout + verified.stderr),
        "run": run,
        "users": sandbox_server.users(),
        "managed_rows": managed,
        "applied_exports": applied_exports,
    }


def test_scheduled_run_through_real_components(running_deployment):
    deployment = running_deployment
    env, logs, scheduled = deployment.env, deployment.logs, deployment.scheduled
    run = scheduled["run"]
    assert run["state"] == "success", (logs / "scheduler.log").read_text()[-4000:]
    assert run["run_id"].startswith("scheduled__")

    rows = read_rows()
    users = by_external_id(scheduled["users"])
    ids = {eid: u["id"] for eid, u in users.items()}
    report = deployment.report(run["run_id"])
    created = report["applied"]["create"]
    assert created == len(users) > 40
    for row in rows:
        if row["employee_id"] in users:
            assert_user_matches(users[row["employee_id"]], row, ids)
    # The batch jobs ran in the real triggerer, and the state landed in PostgreSQL.
    task_logs = Path(env["AIRFLOW_HOME"]) / "logs" / "dag_id=genesys_user_sync"
    # (Managers are created before their reports with manager.value set: on the sample, the
    # second wave, link_managers, has nothing to do.)
    pattern = f"run_id={run['run_id']}/task_id=apply_batch/*/*.log.trigger.*.log"
    trigger_logs = list(task_logs.glob(pattern))
    assert trigger_logs, "apply_batch never ran in the triggerer"
    text = "".join(p.read_text() for p in trigger_logs)
    assert "apply_batch" in text and " starting" in text, text[-2000:]
    # The triggerer's own "Trigger fired event" line can be lost when its log file closes as
    # the trigger ends (Airflow writes it asynchronously), so the event is read where the task
    # resumed on it: the worker's log of each mapped batch says what the batch did.
    attempts = task_logs.glob(f"run_id={run['run_id']}/task_id=apply_batch/*/attempt=*.log")
    resumed = "".join(p.read_text() for p in attempts if ".trigger." not in p.name)
    assert "done: {'applied': " in resumed and "'failed'" not in resumed, resumed[-2000:]
    assert "@" not in text + resumed, "trigger logs and events must not carry emails"
    assert scheduled["managed_rows"] == created
    assert scheduled["applied_exports"] == 1
    # The audit trail is the state database's table: every create has its intent and result
    # there (written by the triggerer), the chain verifies, and no component kept a file.
    of_run = [r for r in scheduled["audit"] if r.get("run_id") == run["run_id"]]
    for event in ("OPERATION_INTENT", "USER_OPERATION"):
        assert sum(r["event"] == event for r in of_run) == created, event
    assert scheduled["audit_verified"][0] == 0, scheduled["audit_verified"][1]
    assert not (Path(env["GENESYS_SYNC_HOME"]) / "audit").exists()


def test_a_run_past_its_deadline_alerts_once_and_still_finishes(running_deployment):
    """The DAG's DeadlineAlert under the real scheduler and triggerer: the scheduled run was
    not done a second after it was queued, so one SYNC_DEADLINE_MISSED alert names it, and the
    run itself is not disturbed."""
    deployment = running_deployment
    run = deployment.scheduled["run"]

    def missed() -> list[dict]:
        hits = [h["json"] for h in deployment.alerts.received if h["path"] == "/alerts"]
        return [
            a for a in hits if a["event"] == "SYNC_DEADLINE_MISSED" and a["run_id"] == run["run_id"]
        ]

    (alert,) = deployment.wait(missed, 120, "the deadline alert of the scheduled run")
    assert run["state"] == "success"
    assert "has not finished" in alert["text"] and "after it was queued" in alert["text"]
    assert "@" not in json.dumps(alert)


def test_held_deactivations_wait_for_approval_in_the_ui(deployment, sandbox):
    """A run from the scheduler asks a human (Airflow's HITL) before mass deactivations."""
    base = next(r for r in read_rows() if r["status"] == "active" and not r["manager_employee_id"])
    rows = [
        dict(
            base,
            employee_id=f"H{n:04d}",
            email=f"h{n:04d}@example.com",
            display_name=f"Hire {n}",
            work_phone=f"+1202555{n:04d}",
            mobile_phone="",
        )
        for n in range(120)
    ]
    write_rows(deployment.export, rows)
    deployment.wait_for_dag()
    deployment.airflow("dags", "unpause", "genesys_user_sync")
    deployment.trigger("first_load")
    first = deployment.wait_for_run("first_load")
    assert first["state"] == "success"
    assert len(sandbox.users()) == 120

    write_rows(deployment.export, rows[:109])  # 11 gone: under the gate's 10%, over max(10, 5%)
    deployment.trigger("truncated")
    manual = deployment.wait(
        lambda: next((r for r in deployment.runs() if r["run_id"] == "truncated"), None),
        60,
        "the manual run to be created",
    )
    token = httpx.get(f"{deployment.api}/auth/token").json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    url = (
        f"{deployment.api}/api/v2/dags/genesys_user_sync/dagRuns/{manual['run_id']}"
        "/taskInstances/approve_removals/-1/hitlDetails"
    )

    def waiting_for_a_human():
        response = httpx.get(url, headers=headers)
        return response.json() if response.status_code == 200 else None

    detail = deployment.wait(waiting_for_a_human, 300, "the approval request")
    assert detail["options"] == ["Approve", "Reject"] and detail["defaults"] == ["Reject"]
    assert "**11**" in detail["body"] and "@" not in detail["body"]
    users = by_external_id(sandbox.users())
    assert all(users[r["employee_id"]]["active"] for r in rows), "nothing before approval"

    # Approve like a person watching the UI: answer whenever a request is open. (Airflow
    # 3.3.2 may kill a task right after it parks and retry it, which opens a new request.)
    def approve_until_done():
        detail = waiting_for_a_human()
        if detail and not detail["response_received"]:
            answer = httpx.patch(url, headers=headers, json={"chosen_options": ["Approve"]})
            assert answer.status_code in (200, 409), answer.text
        runs = [r for r in deployment.runs() if r["run_id"] == manual["run_id"]]
        return runs[0] if runs and runs[0]["state"] in ("success", "failed") else None

    run = deployment.wait(approve_until_done, 600, "the approved run to finish")
    assert run["state"] == "success"
    users = by_external_id(sandbox.users())
    inactive = sorted(eid for eid, u in users.items() if not u["active"])
    assert inactive == [r["employee_id"] for r in rows[109:]]
    report = deployment.report("truncated")
    assert report["applied"]["deactivate"] == 11 and report["held"] == 0
