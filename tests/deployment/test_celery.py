"""The CeleryExecutor deployment, run as processes (issue 9): PostgreSQL for Airflow's metadata,
the sync's state and the audit trail, the machine's Redis as the Celery broker and as the shared
rate limiter, an S3 endpoint (moto's server) for the HRIS export and the run store, and the real
api-server, scheduler, dag-processor, two triggerers and Celery workers, each component with its
own ``GENESYS_SYNC_HOME`` and ``AIRFLOW_HOME``: nothing passes through a local disk, the task
and trigger logs included (Airflow's remote logging, to the same bucket).

A scheduled run of 300 employees converges user by user although the Celery worker running
``validate`` is killed (SIGKILL) mid-task, both triggerers run batch jobs, every artifact is in
the bucket and none in any home, and the target's limit, counted over every token of the OAuth
client together, is never exceeded.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import uuid

import pytest
import sqlalchemy as sa

from genesys_sync.settings import safe_run_id
from tests.deployment.components import AIRFLOW, Deployment, start, stop
from tests.fixtures.expect import ROOT, SAMPLE, by_external_id, read_rows, write_rows
from tests.fixtures.sandbox import free_port
from tests.fixtures.targets import Target
from tests.reliability.checks import duplicates, mismatches, unaudited_writes_in

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
REDIS = "redis://127.0.0.1:6379/0"
RATE = 600  # the client's pace and the sandbox's limit, per minute, for the OAuth client


def _rows() -> list[dict[str, str]]:
    """The sample (managers and all) and 240 more employees: 298 accepted, 2 quarantined."""
    sample = read_rows(SAMPLE)
    base = next(r for r in sample if r["status"] == "active" and r["manager_employee_id"])
    more = [
        dict(
            base,
            employee_id=f"C{n:04d}",
            email=f"c{n:04d}@example.com",
            display_name=f"Celery Hire {n}",
            work_phone=f"+1202556{n:04d}",
            mobile_phone="",
        )
        for n in range(240)
    ]
    return sample + more


def _task_state(env, run_id: str, task_id: str) -> tuple[str | None, int]:
    engine = sa.create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT state, try_number FROM task_instance "
                    "WHERE run_id = :r AND task_id = :t AND map_index = -1"
                ),
                {"r": run_id, "t": task_id},
            ).first()
    finally:
        engine.dispose()
    return (row.state, row.try_number) if row else (None, 0)


def test_a_celery_deployment_converges_with_a_worker_killed_and_two_triggerers(
    tmp_path,
    databases,
    sandbox_server,
    s3_runs,
):
    s3, bucket, store_env = s3_runs
    sandbox_server.reset()
    sandbox_server.set_faults(requests_per_minute=RATE, rate_limit_per="client")
    queue = f"gss-{uuid.uuid4().hex[:8]}"
    port = free_port()
    conn = json.loads(sandbox_server.connection_json())
    conn["extra"]["requests_per_minute"] = RATE
    export = f"s3://aws_default@{bucket}/drop/hris_export.csv"  # where HR drops it
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": databases["airflow"],
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": REDIS,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + databases["airflow"],
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,  # this test's own Redis keys
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # A killed worker's task is found without heartbeat after 20 s (default 5 minutes).
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
        # One batch job per triggerer at a time: the jobs spread over both, running at once.
        "AIRFLOW__TRIGGERER__CAPACITY": "1",
        # Task and trigger logs where the api-server reads them, whichever host ran the task.
        "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
        "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{bucket}/airflow-logs",
        "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": "aws_default",
        "AIRFLOW__LOGGING__DELETE_LOCAL_LOGS": "True",
        **store_env,  # the run store in the bucket, and the aws_default connection
        "GENESYS_SYNC_STATE_URL": databases["state"],
        "GENESYS_SYNC_AUDIT_STORE": "database",
        "GENESYS_SYNC_RATE_LIMIT_REDIS_URL": REDIS,
        "GENESYS_SYNC_RATE_LIMIT_KEY_PREFIX": f"genesys_sync:test:{queue}:",
        "AIRFLOW_CONN_GENESYS_CLOUD": json.dumps(conn),
        "HRIS_EXPORT_PATH": export,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "dags")]),
    }
    homes = tmp_path / "homes"

    def component(name: str, *args: str) -> subprocess.Popen:
        """A component with homes of its own, as on a host of its own."""
        own = {"GENESYS_SYNC_HOME": str(homes / name), "AIRFLOW_HOME": str(homes / name / "af")}
        return start({**env, **own}, logs, name, *args)

    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    logs = tmp_path / "logs"
    logs.mkdir()
    rows = _rows()
    csv_file = write_rows(tmp_path / "hris_export.csv", rows)
    s3.client().upload_file(str(csv_file), bucket, "drop/hris_export.csv")
    worker = ["celery", "worker", "-q", queue, "--skip-serve-logs", "--without-mingle"]
    procs = [
        component("api-server", "api-server"),
        component("scheduler", "scheduler", "--skip-serve-logs"),
        component("dag-processor", "dag-processor"),
        component("triggerer-1", "triggerer", "--skip-serve-logs"),
        component("triggerer-2", "triggerer", "--skip-serve-logs"),
        component("worker-1", *worker, "-H", f"w1-{queue}@%h"),
    ]
    try:
        deployment = Deployment(env, logs, f"http://127.0.0.1:{port}", export)
        deployment.wait_for_dag()
        deployment.airflow("dags", "unpause", "genesys_user_sync")
        run_id = deployment.wait(
            lambda: next((r["run_id"] for r in deployment.runs()), None), 180, "a scheduled run"
        )
        # The only worker picks up validate; kill it mid-task, then bring up two others.
        deployment.wait(
            lambda: _task_state(env, run_id, "validate")[0] == "running", 300, "validate to run"
        )
        os.killpg(procs[-1].pid, signal.SIGKILL)
        procs[-1].wait()
        for n in (2, 3):
            procs.append(component(f"worker-{n}", *worker, "-H", f"w{n}-{queue}@%h"))
        run = deployment.wait_for_run(run_id)
        state, tries = _task_state(env, run_id, "validate")

        users = sandbox_server.users()
        target = Target("sandbox", sandbox_server, True)
        skip = {r["employee_id"] for r in rows if r["employee_id"] in ("E1037", "E1048")}
        wrong = mismatches(target, rows, skip)
        stats = sandbox_server.stats()
        report = deployment.report(run_id)  # read from the bucket
        run_keys = s3.keys(bucket, f"genesys-sync/runs/{safe_run_id(run_id)}/")
    finally:
        stop(procs)  # a component uploads its last logs as it stops
    task_logs = s3.keys(bucket, f"airflow-logs/dag_id=genesys_user_sync/run_id={run_id}/")
    triggerers = {key.rsplit(".trigger.", 1)[1] for key in task_logs if ".trigger." in key}
    assert run["state"] == "success", (logs / "scheduler.log").read_text()[-4000:]
    assert state == "success" and tries == 2, "validate ran again after its worker died"
    assert wrong == [] and duplicates(users) == 0
    active = {r["employee_id"] for r in rows if r["status"] == "active"} - skip
    assert set(by_external_id(users)) == active
    assert len(triggerers) == 2, f"batch jobs ran in {triggerers}"
    # The retried validate's log is in the bucket (its first attempt's died with its worker).
    assert any("/task_id=validate/attempt=2.log" in key for key in task_logs), task_logs
    local = [p for p in homes.rglob("dag_id=genesys_user_sync/**/*.log") if "trigger" in p.name]
    assert local == [], "a trigger log is kept on a triggerer's disk only"
    assert stats["rate_limited"] == 0, "two triggerers, one budget: no 429"
    assert unaudited_writes_in(env["GENESYS_SYNC_STATE_URL"], users) == 0
    assert report["status"] == "success" and report["applied"]["create"] == len(active)
    kept = [key.split(f"/{safe_run_id(run_id)}/", 1)[1] for key in run_keys]
    assert "report.json" in kept and "plan.json" in kept, kept
    assert [k for k in kept if k.startswith("results/phase1-")], kept
    in_homes = [p for p in homes.rglob("*") if "runs" in p.relative_to(homes).parts]
    assert in_homes == [], "no run artifact in any component's home"
