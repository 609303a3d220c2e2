"""Tell the HR system (and alert receivers) how a run ended, with a small, signed JSON webhook.

The payload carries the run id, status and counts only. With a secret (``whsec_<base64>``)
each delivery is signed per the Standard Webhooks specification: ``webhook-id`` (the same on
every retry of one message, so the receiver can de-duplicate), ``webhook-timestamp`` (Unix
seconds of the attempt) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">`` keyed with the secret's decoded bytes. Delivery is retried with
backoff (tenacity); a receiver that stays down is reported (``deliver`` returns it, the hook
logs it and writes it to the audit trail), never allowed to undo or fail a sync.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

SECRET_PREFIX = "whsec_"


class InvalidWebhookSecret(ValueError):
    """The configured webhook secret is not ``whsec_<base64>``."""


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


def secret_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 after ``whsec_``."""
    value = secret.strip()
    value = value[len(SECRET_PREFIX) :] if value.startswith(SECRET_PREFIX) else value
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise InvalidWebhookSecret(
            "the webhook secret must be whsec_ followed by base64 (the key's bytes)"
        )
    return key


def new_secret() -> str:
    """A fresh secret to hand to the receiver (24 random bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def new_message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(dict(payload), separators=(",", ":"), sort_keys=True, default=str).encode()


def post_webhook(
    url: str,
    payload: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    attempts: int = 4,
    timeout: float = 10.0,
    secret: str | None = None,
    message_id: str | None = None,
    wait_initial: float = 0.5,
    wait_max: float = 10.0,
    _tries: list[int] | None = None,
) -> int:
    """POST ``payload`` as JSON, retrying 429/5xx/transport errors; return the status code.

    Signed when ``secret`` is given: one ``webhook-id`` for every attempt, each attempt
    signed with its own timestamp. Raises the last error when every attempt failed."""
    body = encode_body(payload)
    message_id = message_id or new_message_id()
    if secret:
        secret_key(secret)  # a bad secret fails before anything is sent
    tries = _tries if _tries is not None else []

    def send() -> int:
        tries.append(1)
        sent = {"content-type": "application/json", **dict(headers or {})}
        if secret:
            sent.update(signature_headers(secret, message_id, int(time.time()), body))
        response = httpx.post(url, content=body, headers=sent, timeout=timeout)
        response.raise_for_status()
        return response.status_code

    retrying = Retrying(
        retry=retry_if_exception(_retryable),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(initial=wait_initial, max=wait_max),
        reraise=True,
    )
    return retrying(send)


@dataclass(frozen=True)
class Delivery:
    """How a webhook delivery ended: its id, the last status and error name (no URL)."""

    message_id: str
    delivered: bool
    status: int | None = None
    attempts: int = 0
    error: str | None = None


def deliver(
    url: str,
    payload: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    *,
    secret: str | None = None,
    attempts: int = 4,
    timeout: float = 10.0,
    message_id: str | None = None,
    wait_initial: float = 0.5,
    wait_max: float = 10.0,
) -> Delivery:
    """``post_webhook`` that never raises for the receiver's sake: a receiver that is down,
    refuses or times out after every retry gives ``Delivery(delivered=False)``."""
    message_id = message_id or new_message_id()
    tries: list[int] = []
    try:
        status = post_webhook(
            url,
            payload,
            headers,
            attempts=attempts,
            timeout=timeout,
            secret=secret,
            message_id=message_id,
            wait_initial=wait_initial,
            wait_max=wait_max,
            _tries=tries,
        )
    except InvalidWebhookSecret:
        return Delivery(message_id, False, attempts=0, error="InvalidWebhookSecret")
    except httpx.HTTPError as exc:
        status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
        return Delivery(message_id, False, status, len(tries), type(exc).__name__)
    return Delivery(message_id, True, status, len(tries))
