"""``WebhookHook``: where to send a run's webhook: an Airflow connection, else an env variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from airflow.exceptions import AirflowNotFoundException
from airflow.sdk import BaseHook

from genesys_sync.webhook import deliver

DEFAULT_CONN_ID = "hris_webhook"


class WebhookHook(BaseHook):
    """Posts run outcomes to the HR system (``hris_webhook``) or to alerting (``sync_alerts``).

    The connection (type http: ``host`` holds the full URL, or ``schema://host:port`` plus
    ``extra.endpoint``; ``extra.headers`` for auth headers) wins over the environment variable
    (the tutorial's ``HRIS_WEBHOOK_URL``, or ``ALERT_WEBHOOK_URL`` for alerts). With neither,
    nothing is sent.

    Deliveries are signed (Standard Webhooks) when a secret ``whsec_<base64>`` is set: the
    connection's password, else ``HRIS_WEBHOOK_SECRET`` (``ALERT_WEBHOOK_SECRET`` for
    alerts). A receiver that stays down after the retries is logged and recorded in the
    audit trail (``WEBHOOK_NOT_DELIVERED``); it never fails the task.
    """

    conn_name_attr = "conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "http"
    hook_name = "Run webhook"

    def __init__(
        self,
        conn_id: str = DEFAULT_CONN_ID,
        env_var: str = "HRIS_WEBHOOK_URL",
        secret_env_var: str | None = None,
    ):
        super().__init__()
        self.conn_id = conn_id
        self.env_var = env_var
        self.secret_env_var = secret_env_var or env_var.removesuffix("_URL") + "_SECRET"
        self.secret: str | None = None

    def target(self) -> tuple[str | None, dict[str, str]]:
        self.secret = os.environ.get(self.secret_env_var) or None
        try:
            conn = self.get_connection(self.conn_id)
        except AirflowNotFoundException:
            return os.environ.get(self.env_var) or None, {}
        self.secret = conn.password or self.secret
        extra = conn.extra_dejson
        host = conn.host or ""
        if "://" not in host:
            scheme = conn.schema or "https"
            host = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
        url = host.rstrip("/") + (
            "/" + extra["endpoint"].lstrip("/") if extra.get("endpoint") else ""
        )
        return url, dict(extra.get("headers") or {})

    def send(self, payload: Mapping[str, Any]) -> int | None:
        url, headers = self.target()
        if not url:
            self.log.info(
                "No webhook configured (connection %s or %s): nothing sent",
                self.conn_id,
                self.env_var,
            )
            return None
        delivery = deliver(url, payload, headers, secret=self.secret)
        if delivery.delivered:
            self.log.info(
                "Webhook %s delivered (HTTP %s, webhook-id %s%s)",
                self.conn_id,
                delivery.status,
                delivery.message_id,
                "" if self.secret else ", unsigned: no secret set",
            )
            return delivery.status
        # Reported, never raised: the receiver being down must not fail or undo the sync.
        self.log.warning(
            "Webhook %s NOT delivered after %d attempt(s): %s%s (webhook-id %s); the sync "
            "itself is unaffected",
            self.conn_id,
            delivery.attempts,
            delivery.error,
            f" HTTP {delivery.status}" if delivery.status else "",
            delivery.message_id,
        )
        try:
            from genesys_sync.audit import audit

            audit(
                "WEBHOOK_NOT_DELIVERED",
                payload.get("run_id"),
                conn_id=self.conn_id,
                webhook_id=delivery.message_id,
                attempts=delivery.attempts,
                error=delivery.error,
                status=delivery.status,
            )
        except Exception as exc:  # the trail's own failure is the report task's to raise
            self.log.warning("Could not record the failed delivery: %s", type(exc).__name__)
        return None
