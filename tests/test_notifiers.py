"""Alerts through Airflow's standard notifiers (``genesys_sync.notifiers``): what each alert
says, where the configuration sends it, delivered to a real HTTP receiver and a real SMTP
server; the deadline alert's DAG wiring and its triggerer callback."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
from datetime import timedelta

import pytest

from genesys_sync import notifiers, runs
from genesys_sync.report import write_json
from tests.fixtures.smtp import SmtpReceiver, body_text

RUN_ID = "scheduled__2026-11-27T02:00:00+00:00"
LONG_PATH = "/data/hris/exports/2026/11/27/hris_export_20261127_full_with_a_very_long_name.csv"


@pytest.fixture
def alerts_to(webhook_receiver, monkeypatch, tmp_path):
    """The ``sync_alerts`` http connection pointing at the receiver, from the environment."""
    conn = {"conn_type": "http", "host": webhook_receiver.url + "/alerts"}
    monkeypatch.setenv("AIRFLOW_CONN_SYNC_ALERTS", json.dumps(conn))
    monkeypatch.delenv("ALERT_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("GENESYS_SYNC_ALERT_EMAIL_TO", raising=False)
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path / "home"))
    return webhook_receiver


@pytest.fixture
def smtp_receiver():
    with SmtpReceiver() as receiver:
        yield receiver


def alerts(receiver) -> list[dict]:
    return [hit["json"] for hit in receiver.received if hit["path"] == "/alerts"]


def test_cut_stops_at_a_word_boundary_never_inside_a_path():
    reason = "the validation gate blocked the export " + LONG_PATH + " (nothing was written)"
    limit = len("the validation gate blocked the export ") + 20  # the limit falls in the path

    short = notifiers.cut(reason, limit)

    assert len(short) <= limit
    assert short == "the validation gate blocked the export ..."
    assert notifiers.cut("short enough", 100) == "short enough"


def test_scrub_takes_out_emails_phones_and_credentials():
    text = "user jane.doe@example.com +44 20 7946 0958 Bearer abc.def password=hunter2 E1042"
    clean = notifiers.scrub(text)
    assert "@" not in clean and "7946" not in clean and "abc.def" not in clean
    assert "hunter2" not in clean and "E1042" in clean
    kept = "OAuth token request failed (HTTP 401) for client_id E1"
    assert notifiers.scrub(kept) == kept  # words are not secrets
    assert notifiers.scrub("access_token: eyJhbGci.x, next") == "access_token: <redacted>, next"


def test_a_failed_run_is_one_alert_naming_the_first_failed_stage_and_its_log(alerts_to):
    write_json(
        runs.Run(RUN_ID).prepare() / "verdict.json",
        {
            "stage": "validate",
            "failed_tasks": ["validate", "outcome"],
            "reason": "the validation gate blocked the export (nothing was written)",
        },
    )
    write_json(runs.Run(RUN_ID).prepare() / "report.json", {"status": "failed", "writes": 0})

    class SerializedDag:  # what a DAG callback gets under dags test: no template env
        dag_id = "genesys_user_sync"

    context = {"dag": SerializedDag(), "run_id": RUN_ID, "reason": "task_failure"}

    notifiers.RunFailureAlert()(context)  # as Airflow calls it

    (alert,) = alerts(alerts_to)
    assert alert["event"] == "SYNC_RUN_FAILED" and alert["stage"] == "validate"
    assert alert["run_id"] == RUN_ID and alert["writes"] == 0
    assert alert["reason"] == "the validation gate blocked the export (nothing was written)"
    assert alert["log_url"].endswith(
        "/dags/genesys_user_sync/runs/scheduled__2026-11-27T02%3A00%3A00%2B00%3A00/tasks/validate"
    )
    assert "failed at stage validate" in alert["text"]


def test_without_a_verdict_the_alert_names_the_last_failed_task_and_the_report_reason(alerts_to):
    write_json(
        runs.Run(RUN_ID).prepare() / "report.json",
        {"status": "failed", "failure_reason": "3 of 4 operations failed (limit 20%)"},
    )

    class Ti:
        task_id = "apply_batch"

    notifiers.RunFailureAlert().notify({"run_id": RUN_ID, "ti": Ti()})

    (alert,) = alerts(alerts_to)
    assert alert["stage"] == "apply_batch"
    assert alert["reason"] == "3 of 4 operations failed (limit 20%)"


def test_a_long_reason_is_cut_at_a_boundary_and_carries_no_personal_data(alerts_to):
    reason = ("row 7: jane.doe@example.com, +1 415 555 0100 refused; " * 30) + LONG_PATH
    write_json(runs.Run(RUN_ID).prepare() / "verdict.json", {"stage": "plan", "reason": reason})

    notifiers.RunFailureAlert().notify({"run_id": RUN_ID})

    (alert,) = alerts(alerts_to)
    assert len(alert["reason"]) <= 600 and alert["reason"].endswith(" ...")
    assert "/data/hris" not in alert["reason"]  # the path is left out whole, not cut
    raw = json.dumps(alert)
    assert "@" not in raw and "555" not in raw


def test_alert_webhook_url_stands_in_for_a_missing_connection(webhook_receiver, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SYNC_ALERTS", raising=False)
    monkeypatch.setenv("ALERT_WEBHOOK_URL", webhook_receiver.url + "/alerts")
    alert = notifiers.failure_alert("genesys_user_sync", RUN_ID, {"stage": "plan"}, None)

    assert notifiers.send(alert) == ["http"]
    assert [a["stage"] for a in alerts(webhook_receiver)] == ["plan"]
    # the stand-in lived only while the alert was sent: a later alert (or a child process, which
    # inherits the environment) never finds the old URL as if it were a real connection
    assert "AIRFLOW_CONN_SYNC_ALERTS" not in os.environ
    monkeypatch.setenv("ALERT_WEBHOOK_URL", webhook_receiver.url + "/moved")
    assert notifiers.send(alert) == ["http"]
    assert webhook_receiver.received[-1]["path"] == "/moved"


def test_no_channel_sends_nothing_and_a_dead_receiver_does_not_raise(alerts_to, monkeypatch):
    alert = notifiers.failure_alert("genesys_user_sync", RUN_ID, {"stage": "plan"}, None)
    alerts_to.status = 500
    assert notifiers.send(alert) == []  # delivery failed: logged, not raised
    assert len(alerts(alerts_to)) == 1

    monkeypatch.delenv("AIRFLOW_CONN_SYNC_ALERTS")
    assert notifiers.send(alert) == []
    assert len(alerts(alerts_to)) == 1


def test_email_alerts_go_through_the_smtp_notifier(alerts_to, smtp_receiver, monkeypatch):
    smtp = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": smtp_receiver.port,
        "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "airflow@example.org"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(smtp))
    monkeypatch.setenv("GENESYS_SYNC_ALERT_EMAIL_TO", "oncall@example.org, second@example.org")
    alert = notifiers.failure_alert(
        "genesys_user_sync", RUN_ID, {"stage": "validate", "reason": "gate <blocked>"}, None
    )

    assert notifiers.send(alert) == ["http", "email"]

    (mail,) = smtp_receiver.messages
    assert mail["to"] == ["oncall@example.org", "second@example.org"]
    assert mail["message"]["Subject"] == "genesys_user_sync: run failed at validate"
    text = body_text(mail["message"])
    assert "gate &lt;blocked&gt;" in text and "/tasks/validate" in text


def test_the_approval_request_tells_how_many_removals_wait_and_where(alerts_to):
    plan = {
        "removal_threshold": 10,
        "changes": [
            {"employee_id": f"E{i}", "kind": "deactivate", "held": True, "email": "x@y.z"}
            for i in range(12)
        ]
        + [{"employee_id": "E99", "kind": "update", "held": False}],
    }
    write_json(runs.Run(RUN_ID).prepare() / "plan.json", plan)

    class Ti:
        dag_id, run_id, task_id, map_index = "genesys_user_sync", RUN_ID, "approve_removals", -1

    class Task:
        hitl_summary_extra = {"timeout_datetime": "2026-11-27T14:00:00+00:00"}

    notifiers.ApprovalRequestNotifier()({"ti": Ti(), "run_id": RUN_ID, "task": Task()})

    (alert,) = alerts(alerts_to)
    assert alert["event"] == "SYNC_APPROVAL_REQUESTED" and alert["held"] == 12
    assert alert["held_by_kind"] == {"deactivate": 12}
    assert alert["link"].endswith("/tasks/approve_removals/required_actions")
    assert "expires to Reject at 2026-11-27T14:00:00+00:00" in alert["text"]
    assert "@" not in json.dumps(alert)


def test_approvers_come_from_the_environment():
    assert notifiers.approvers({}) is None
    assert notifiers.approvers({"GENESYS_SYNC_APPROVERS": "alice, bob:Bob B"}) == [
        {"id": "alice", "name": "alice"},
        {"id": "bob", "name": "Bob B"},
    ]


def test_the_deadline_alert_is_configured_by_the_environment():
    from airflow.sdk import AsyncCallback, DeadlineReference

    default = notifiers.deadline_alert({})
    assert default.interval == timedelta(hours=8)
    assert default.reference == DeadlineReference.DAGRUN_QUEUED_AT  # not the logical date
    assert isinstance(default.callback, AsyncCallback)
    assert default.callback.path == "genesys_sync.notifiers.deadline_missed"
    assert inspect.iscoroutinefunction(notifiers.deadline_missed)
    assert notifiers.deadline_alert({"GENESYS_SYNC_DEADLINE_HOURS": "2.5"}).interval == timedelta(
        hours=2.5
    )
    assert notifiers.deadline_alert({"GENESYS_SYNC_DEADLINE_HOURS": "0"}) is None
    # airflow dags test (make sync) cannot finish a run of a DAG with a deadline in 3.3.2
    assert notifiers._in_dags_test(["/venv/bin/airflow", "dags", "test", "genesys_user_sync"])
    assert not notifiers._in_dags_test(["/venv/bin/airflow", "dag-processor"])


def test_the_dag_alerts_once_per_run_and_audits_every_task():
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.test_dag_integrity import DAGS

    dag = DagBag(dag_folder=str(DAGS)).dags["genesys_user_sync"]
    assert isinstance(dag.on_failure_callback, notifiers.RunFailureAlert)
    for task in dag.tasks:
        kinds = {type(c) for c in task.on_failure_callback}
        assert kinds == {notifiers.AuditTaskFailure}, task.task_id  # no per-task alert
    (deadline,) = dag.deadline
    assert deadline.callback.path == "genesys_sync.notifiers.deadline_missed"
    approve = dag.get_task("approve_removals")
    assert [type(n) for n in approve.notifiers] == [notifiers.ApprovalRequestNotifier]


def test_the_deadline_callback_alerts_from_the_triggerer_context(alerts_to):
    """What the triggerer's ``CallbackTrigger`` does with the path and the scheduler's context."""
    from airflow.triggers.callback import PAYLOAD_BODY_KEY, CallbackTrigger

    trigger = CallbackTrigger(
        "genesys_sync.notifiers.deadline_missed",
        {
            "hours": 8.0,
            "context": {
                "dag_run": {"dag_id": "genesys_user_sync", "dag_run_id": RUN_ID},
                "deadline": {"id": "d1", "deadline_time": "2026-11-27T10:00:00+00:00"},
            },
        },
    )

    async def run():
        return [event.payload async for event in trigger.run()]

    events = asyncio.run(run())

    assert events[-1]["state"] == "success", events
    # kept by the triggerer in callback.output, a text column (a dict fails on PostgreSQL)
    assert events[-1][PAYLOAD_BODY_KEY] == "SYNC_DEADLINE_MISSED sent via http"
    (alert,) = alerts(alerts_to)
    assert alert["event"] == "SYNC_DEADLINE_MISSED" and alert["run_id"] == RUN_ID
    assert "has not finished 8 h after it was queued" in alert["text"]
    assert alert["link"].endswith("/runs/scheduled__2026-11-27T02%3A00%3A00%2B00%3A00")


def test_the_alert_gives_the_failed_stage_s_own_reason_and_one_audit_event_per_task(alerts_to):
    from genesys_sync import audit

    class Ti:
        def __init__(self, task_id):
            self.task_id, self.map_index, self.try_number = task_id, -1, 1

    class Run:
        run_id = RUN_ID

    blocked = RuntimeError("Gate blocked the HRIS export: required_columns (email missing)")
    for task_id, exc in (("validate", blocked), ("outcome", RuntimeError("Sync run failed"))):
        notifiers.AuditTaskFailure().notify({"ti": Ti(task_id), "dag_run": Run(), "exception": exc})
    assert alerts(alerts_to) == []  # a task's failure alerts nobody by itself
    write_json(
        runs.Run(RUN_ID).prepare() / "verdict.json",
        {"stage": "validate", "failed_tasks": ["validate"], "reason": "the gate blocked"},
    )

    notifiers.RunFailureAlert().notify({"run_id": RUN_ID})

    (alert,) = alerts(alerts_to)
    assert alert["stage"] == "validate" and alert["error_type"] == "RuntimeError"
    assert alert["reason"] == (
        "RuntimeError: Gate blocked the HRIS export: required_columns (email missing)"
    )
    events = [
        record
        for _, record in audit.read_records()
        if record.get("event") == "TASK_FAILED" and record.get("run_id") == RUN_ID
    ]
    assert [e["task_id"] for e in events] == ["validate", "outcome"]
