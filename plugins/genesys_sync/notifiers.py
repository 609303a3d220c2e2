"""``SyncAlertNotifier``: what happens when a sync task fails (audit event + alert webhook)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseNotifier

from genesys_sync import audit
from genesys_sync.hooks.webhook import WebhookHook

ALERT_CONN_ID = "sync_alerts"


class SyncAlertNotifier(BaseNotifier):
    """Records a task failure in the audit log and posts an alert webhook.

    The alert goes to the ``sync_alerts`` connection or ``ALERT_WEBHOOK_URL``; add Airflow's
    ``SmtpNotifier`` or a Slack notifier beside it in the DAG for e-mail or chat alerts. The
    alert names the DAG, run, task and error type; the error text stays in the task log.
    """

    def __init__(self, conn_id: str = ALERT_CONN_ID) -> None:
        super().__init__()
        self.conn_id = conn_id

    def notify(self, context: Any) -> None:
        ti = context.get("ti") or context.get("task_instance")
        dag_run = context.get("dag_run")
        exc = context.get("exception")
        event = {
            "event": "SYNC_TASK_FAILED",
            "dag_id": getattr(ti, "dag_id", None),
            "run_id": getattr(dag_run, "run_id", None),
            "task_id": getattr(ti, "task_id", None),
            "map_index": getattr(ti, "map_index", None),
            "try_number": getattr(ti, "try_number", None),
            "error_type": type(exc).__name__ if exc else None,
            "message": str(exc)[:1000] if exc else None,
        }
        audit.audit(
            "TASK_FAILED", event["run_id"], task_id=event["task_id"], error_type=event["error_type"]
        )
        try:
            WebhookHook(self.conn_id, env_var="ALERT_WEBHOOK_URL").send(event)
        except Exception as send_error:  # an alert must never mask the original failure
            self.log.warning("Alert webhook failed: %s", type(send_error).__name__)
