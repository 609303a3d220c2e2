"""Tell the HR system (and alert receivers) how a run ended, with a small JSON webhook.

The payload carries the run id, status and counts only. Delivery is retried with backoff
(tenacity); a webhook that stays down is reported, never allowed to undo or fail a sync.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)

PAYLOAD_KEYS = (
    "run_id",
    "status",
    "dry_run",
    "logical_date",
    "planned",
    "applied",
    "held",
    "rejected",
    "conflict",
    "failed",
    "unchanged",
    "writes",
    "api_calls",
    "duration_seconds",
)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code == 429 or exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


def webhook_payload(report: Mapping[str, Any], event: str = "SYNC_COMPLETED") -> dict[str, Any]:
    """The webhook body of a run report: counts and ids, no personal data."""
    return {"event": event, **{k: report.get(k) for k in PAYLOAD_KEYS if k in report}}


def post_webhook(
    url: str,
    payload: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    attempts: int = 4,
    timeout: float = 10.0,
) -> int:
    """POST ``payload`` as JSON, retrying 429/5xx/transport errors; return the status code."""

    @retry(
        retry=retry_if_exception(_retryable),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(initial=0.5, max=10),
        reraise=True,
    )
    def send() -> int:
        response = httpx.post(url, json=dict(payload), headers=dict(headers or {}), timeout=timeout)
        response.raise_for_status()
        return response.status_code

    return send()
