"""The HRIS webhook: signed per Standard Webhooks (checked here with hmac alone), one
``webhook-id`` across retries, and a dead receiver that never fails the sync."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest

from genesys_sync import webhook
from genesys_sync.webhook import deliver, post_webhook, sign, webhook_payload

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
FAST = {"wait_initial": 0.01, "wait_max": 0.05}
REPORT = {"run_id": "manual__2026-11-27", "status": "success", "writes": 3, "failed": 0}


def expected_signature(key: bytes, headers: dict, body: bytes) -> str:
    """What a receiver computes: base64 HMAC-SHA256 of ``id.timestamp.body``."""
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@pytest.fixture
def receiver(webhook_receiver):
    """The local receiver, also keeping each request's headers; ``fail_first`` requests
    answer 503."""
    base = webhook_receiver.server.RequestHandlerClass
    webhook_receiver.headers = []
    webhook_receiver.fail_first = 0

    class WithHeaders(base):
        def do_POST(self) -> None:  # noqa: N802
            webhook_receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
            failing = len(webhook_receiver.headers) <= webhook_receiver.fail_first
            webhook_receiver.status = 503 if failing else 200
            super().do_POST()

    webhook_receiver.server.RequestHandlerClass = WithHeaders
    return webhook_receiver


def test_the_signature_matches_the_standard_webhooks_test_vector():
    # The specification's published example: any Standard Webhooks library verifies ours.
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_delivery_verifies_with_the_documented_secret(receiver):
    status = post_webhook(receiver.url + "/hris", webhook_payload(REPORT), secret=SECRET)
    assert status == 200
    (got,) = receiver.received
    (headers,) = receiver.headers
    body = got["raw"].encode()
    assert headers["webhook-signature"] == expected_signature(KEY, headers, body)
    assert headers["webhook-id"].startswith("msg_")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert got["json"]["run_id"] == REPORT["run_id"] and got["json"]["event"] == "SYNC_COMPLETED"
    # Another key, or a changed body, does not verify.
    assert headers["webhook-signature"] != expected_signature(b"x" * 32, headers, body)
    assert headers["webhook-signature"] != expected_signature(KEY, headers, body + b" ")


def test_retries_keep_the_same_webhook_id(receiver):
    receiver.fail_first = 2
    result = deliver(receiver.url, webhook_payload(REPORT), secret=SECRET, **FAST)
    assert result.delivered and result.attempts == 3 and result.status == 200
    ids = {h["webhook-id"] for h in receiver.headers}
    assert ids == {result.message_id} and len(receiver.headers) == 3
    (body,) = {r["raw"].encode() for r in receiver.received}  # one message, sent three times
    for headers in receiver.headers:  # every attempt is signed (with its own timestamp)
        assert headers["webhook-signature"] == expected_signature(KEY, headers, body)


def test_a_dead_receiver_is_reported_not_raised(receiver):
    receiver.fail_first = 100  # down for good
    result = deliver(receiver.url, webhook_payload(REPORT), secret=SECRET, attempts=3, **FAST)
    assert not result.delivered and result.attempts == 3 and result.status == 503
    assert result.error == "HTTPStatusError"
    assert len({h["webhook-id"] for h in receiver.headers}) == 1


def test_a_receiver_that_is_gone_is_reported_not_raised(webhook_receiver):
    url = webhook_receiver.url
    webhook_receiver.__exit__(None, None, None)  # nobody listens there any more
    result = deliver(url, webhook_payload(REPORT), secret=SECRET, attempts=2, **FAST)
    assert not result.delivered and result.attempts == 2 and result.error == "ConnectError"


def test_a_bad_secret_sends_nothing(receiver):
    result = deliver(receiver.url, webhook_payload(REPORT), secret="whsec_not base64!", **FAST)
    assert not result.delivered and result.error == "InvalidWebhookSecret"
    assert receiver.received == []


def test_without_a_secret_the_delivery_is_unsigned(receiver):
    assert deliver(receiver.url, webhook_payload(REPORT), **FAST).delivered
    assert "webhook-signature" not in receiver.headers[0]


def test_the_hook_signs_with_the_env_secret_and_survives_a_dead_receiver(
    receiver, monkeypatch, tmp_path
):
    from genesys_sync.hooks.webhook import WebhookHook

    monkeypatch.setenv("HRIS_WEBHOOK_URL", receiver.url + "/hris")
    monkeypatch.setenv("HRIS_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("AUDIT_LOG_PATH", str(tmp_path / "audit.jsonl"))
    monkeypatch.setattr(webhook, "wait_exponential_jitter", lambda **_: lambda state: 0.01)
    assert WebhookHook("hris_webhook").send(webhook_payload(REPORT)) == 200
    headers = receiver.headers[0]
    assert headers["webhook-signature"] == expected_signature(
        KEY, headers, receiver.received[0]["raw"].encode()
    )

    receiver.fail_first = 100
    assert WebhookHook("hris_webhook").send(webhook_payload(REPORT)) is None  # no exception
    (event,) = [
        json.loads(line)
        for line in (tmp_path / "audit.jsonl").read_text().splitlines()
        if "WEBHOOK_NOT_DELIVERED" in line
    ]
    assert event["run_id"] == REPORT["run_id"] and event["attempts"] == 4
    assert event["webhook_id"] == receiver.headers[-1]["webhook-id"]
    assert SECRET not in (tmp_path / "audit.jsonl").read_text()


def _readme_verifier():
    """The receiver's ``verify`` exactly as the README shows it."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("import base64, hashlib, hmac, time")
    code = readme[start : readme.index("```", start)]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
    return namespace["verify"]


def test_the_readme_receiver_verifies_a_delivery_and_refuses_a_forgery(receiver):
    verify = _readme_verifier()
    assert deliver(receiver.url, webhook_payload(REPORT), secret=SECRET, **FAST).delivered
    headers, body = receiver.headers[0], receiver.received[0]["raw"].encode()
    assert verify(SECRET, headers, body)
    assert not verify(SECRET, headers, body.replace(b"success", b"failed"))
    assert not verify("whsec_" + base64.b64encode(b"k" * 32).decode(), headers, body)
    stale = {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 3600)}
    assert not verify(SECRET, stale, body)
