"""Run outcomes reach the HR system and the alert receiver through Airflow's standard notifiers
(one alert per failed run, the approval request), and the run's metrics reach a StatsD listener;
a missing export fails the run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
import yaml

from tests.e2e.harness import (
    ROOT,
    SAMPLE,
    fast_config,
    read_rows,
    rejected_ids,
    run_sync,
    write_rows,
)
from tests.fixtures.targets import FAST

pytestmark = pytest.mark.e2e


def _alerts_conn(receiver) -> dict[str, str]:
    """The ``sync_alerts`` http connection (what HttpNotifier posts to), from the environment."""
    conn = {"conn_type": "http", "host": receiver.url + "/alerts"}
    return {"AIRFLOW_CONN_SYNC_ALERTS": json.dumps(conn)}


def _alerts(receiver) -> list[dict]:
    return [h["json"] for h in receiver.received if h["path"] == "/alerts"]


def _audited(sync_home, event: str) -> list[dict]:
    lines = (sync_home / "audit" / "audit.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == event]


def _statsd_lines(sock: socket.socket) -> list[str]:
    sock.setblocking(False)
    lines = []
    while True:
        try:
            data, _ = sock.recvfrom(65535)
        except BlockingIOError:
            return lines
        lines.extend(data.decode(errors="replace").splitlines())


def _conn(sandbox) -> str:
    sandbox.set_faults(requests_per_minute=FAST)
    conn = json.loads(sandbox.connection_json())
    conn["extra"]["requests_per_minute"] = FAST
    return json.dumps(conn)


def test_hris_webhook_gets_the_run_summary(sandbox, sync_home, webhook_receiver):
    statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    statsd.bind(("127.0.0.1", 0))
    statsd.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    try:
        result = run_sync(
            sync_home,
            SAMPLE,
            _conn(sandbox),
            extra_env={
                "HRIS_WEBHOOK_URL": webhook_receiver.url + "/hris",
                **_alerts_conn(webhook_receiver),
                # Airflow's own [metrics] settings: the sync's figures go where Airflow's do.
                "AIRFLOW__METRICS__STATSD_ON": "True",
                "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
                "AIRFLOW__METRICS__STATSD_PORT": str(statsd.getsockname()[1]),
                "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
            },
        )
        lines = _statsd_lines(statsd)
    finally:
        statsd.close()
    assert result.ok, result.output[-3000:]
    assert _alerts(webhook_receiver) == []  # a run that succeeded alerts nobody
    ours = dict(line.split(":", 1) for line in lines if line.startswith("airflow.genesys_sync."))
    report = result.report
    assert ours["airflow.genesys_sync.requests"] == f"{report['api_calls']}|c"
    assert ours["airflow.genesys_sync.requests.method.POST"] == "50|c"
    assert ours["airflow.genesys_sync.requests.status.201"] == "50|c"
    assert ours["airflow.genesys_sync.operations.create.applied"] == "50|c"
    assert ours["airflow.genesys_sync.rows.rejected"] == "2|c"
    assert ours["airflow.genesys_sync.runs.success"] == "1|c"
    assert ours["airflow.genesys_sync.request_latency_ms.p95"].endswith("|g")
    assert ours["airflow.genesys_sync.run_duration"].endswith("|ms")
    (hook,) = [h for h in webhook_receiver.received if h["path"] == "/hris"]
    body = hook["json"]
    assert hook["path"] == "/hris"
    assert body["event"] == "SYNC_COMPLETED" and body["status"] == "success"
    assert body["applied"]["create"] == 50 and body["rejected"] == 2
    assert "@" not in hook["raw"], "no emails in the webhook"
    audit = (sync_home / "audit" / "audit.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in audit]
    ops = [e for e in events if e["event"] == "USER_OPERATION"]
    assert len(ops) == 50 and all("@" not in line for line in audit)  # managers set on create
    assert {e["event"] for e in events} >= {"GATE_PASSED", "PLANNED", "SYNC_SUCCESS"}


def test_missing_export_fails_with_an_alert_naming_the_file(
    sandbox, sync_home, tmp_path, webhook_receiver
):
    config = yaml.safe_load((ROOT / "include" / "config" / "sync.yaml").read_text())
    config["export"].update(wait_timeout_minutes=0.1, poke_interval_seconds=1)
    config_path = tmp_path / "sync.yaml"
    config_path.write_text(yaml.safe_dump(config))
    missing = tmp_path / "drop" / "hris_export_20261127.csv"
    env = {
        "GENESYS_SYNC_CONFIG": str(config_path),
        # make sync fails at once on a missing local export; the sensor's wait is asked for
        "GENESYS_SYNC_WAIT_FOR_EXPORT": "1",
        # the shorthand for the sync_alerts connection
        "ALERT_WEBHOOK_URL": webhook_receiver.url + "/alerts",
        "HRIS_WEBHOOK_URL": webhook_receiver.url + "/hris",
    }
    result = run_sync(sync_home, missing, _conn(sandbox), extra_env=env)
    assert not result.ok
    (alert,) = _alerts(webhook_receiver)  # one alert for the run (not one per failed task)
    assert alert["event"] == "SYNC_RUN_FAILED" and alert["stage"] == "wait_for_export"
    assert str(missing) in alert["reason"] and alert["error_type"] == "ExportMissing"
    assert alert["log_url"].endswith("/tasks/wait_for_export")
    hris = [h["json"] for h in webhook_receiver.received if h["path"] == "/hris"]
    assert hris and hris[0]["status"] == "failed" and hris[0]["writes"] == 0
    assert sandbox.users() == []


def test_a_blocked_gate_is_one_alert_through_the_http_notifier(
    sandbox, sync_home, tmp_path, webhook_receiver
):
    """``validate`` blocks (no email column) and ``outcome`` fails the run: two failed tasks,
    each audited, and one alert naming the gate, its reason and a link to its log."""
    rows = [{k: v for k, v in row.items() if k != "email"} for row in read_rows()]
    export = write_rows(tmp_path / "no_email.csv", rows)

    result = run_sync(sync_home, export, _conn(sandbox), extra_env=_alerts_conn(webhook_receiver))

    assert not result.ok and result.report["status"] == "failed"
    (alert,) = _alerts(webhook_receiver)
    assert alert["event"] == "SYNC_RUN_FAILED" and alert["stage"] == "validate"
    assert "Gate blocked the HRIS export" in alert["reason"]
    assert alert["run_id"] == result.report["run_id"]
    assert "/runs/" in alert["log_url"] and alert["log_url"].endswith("/tasks/validate")
    assert "failed at stage validate" in alert["text"] and alert["writes"] == 0
    raw = [h["raw"] for h in webhook_receiver.received if h["path"] == "/alerts"][0]
    assert "@" not in raw, "no e-mail in the alert"
    failed = {e["task_id"] for e in _audited(sync_home, "TASK_FAILED")}
    assert failed == {"validate", "outcome"}  # the audit keeps one event per failed task
    assert sandbox.users() == []


def test_held_removals_notify_that_approval_is_waiting(sandbox, sync_home, webhook_receiver):
    """Eleven terminations (above max(10, 5%)) wait for a human: the approval task's notifier
    tells the alert receiver, with the counts and the link to answer; nobody is deactivated."""
    conn = _conn(sandbox)
    first = run_sync(sync_home, SAMPLE, conn)
    assert first.ok, first.output[-3000:]
    rows, quarantined = read_rows(), rejected_ids(first.report)
    leavers = [r for r in rows if r["status"] == "active" and r["employee_id"] not in quarantined]
    leavers = leavers[-11:]
    for row in leavers:
        row["status"] = "terminated"
    export = write_rows(sync_home / "exports" / "terminations.csv", rows)
    env = {
        **os.environ,
        "GENESYS_SYNC_HOME": str(sync_home),
        "GENESYS_SYNC_CONFIG": str(fast_config(sync_home)),
        "AIRFLOW_CONN_GENESYS_CLOUD": conn,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "dags")]),
        **_alerts_conn(webhook_receiver),
    }
    cmd = [sys.executable, "-m", "genesys_sync.cli", "sync", "--export", str(export)]
    cmd += ["--conf", json.dumps({"wait_for_approval": True})]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:  # airflow dags test then waits for the answer; the notification is what is tested
        deadline = time.monotonic() + 400
        while not _alerts(webhook_receiver) and proc.poll() is None:
            assert time.monotonic() < deadline, "no approval notification"
            time.sleep(1)
    finally:  # the CLI and its `airflow dags test` (which outlives a SIGTERM), by pid
        tree = [proc.pid]
        with contextlib.suppress(psutil.NoSuchProcess):
            tree += [child.pid for child in psutil.Process(proc.pid).children(recursive=True)]
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
    (alert,) = _alerts(webhook_receiver)
    assert alert["event"] == "SYNC_APPROVAL_REQUESTED", alert
    assert alert["held"] == 11 and alert["held_by_kind"] == {"deactivate": 11}
    assert alert["link"].endswith("/tasks/approve_removals/required_actions")
    assert "expires to Reject at" in alert["text"]
    raw = [h["raw"] for h in webhook_receiver.received if h["path"] == "/alerts"][0]
    assert "@" not in raw
    assert all(u["active"] for u in sandbox.users()), "nothing deactivated before approval"
