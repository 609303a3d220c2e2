"""``WebhookHook``: where to send a run's webhook: an Airflow connection, else an env variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from airflow.exceptions import AirflowNotFoundException
from airflow.sdk import BaseHook

from genesys_sync.webhook import post_webhook

DEFAULT_CONN_ID = "hris_webhook"


class WebhookHook(BaseHook):
    """Posts run outcomes to the HR system (``hris_webhook``) or to alerting (``sync_alerts``).

    The connection (type http: ``host`` holds the full URL, or ``schema://host:port`` plus
    ``extra.endpoint``; ``extra.headers`` for auth headers) wins over the environment variable
    (the tutorial's ``HRIS_WEBHOOK_URL``, or ``ALERT_WEBHOOK_URL`` for alerts). With neither,
    nothing is sent.
    """

    conn_name_attr = "conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "http"
    hook_name = "Run webhook"

    def __init__(self, conn_id: str = DEFAULT_CONN_ID, env_var: str = "HRIS_WEBHOOK_URL"):
        super().__init__()
        self.conn_id = conn_id
        self.env_var = env_var

    def target(self) -> tuple[str | None, dict[str, str]]:
        try:
            conn = self.get_connection(self.conn_id)
        except AirflowNotFoundException:
            return os.environ.get(self.env_var) or None, {}
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
        status = post_webhook(url, payload, headers)
        self.log.info("Webhook %s delivered (HTTP %s)", self.conn_id, status)
        return status
