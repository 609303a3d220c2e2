"""The fix of Airflow 3.3.2's connection Test button (``port: 0`` for a connection without one)."""

from __future__ import annotations

import asyncio
import json

import pytest

from genesys_sync.ui.compat import ConnectionTestPortFix, without_port_zero

TEST_BODY = {"connection_id": "g", "conn_type": "genesys_cloud", "password": "***", "port": 0}


@pytest.mark.parametrize(
    ("body", "port"),
    [({**TEST_BODY}, None), ({**TEST_BODY, "port": 443}, 443), ({**TEST_BODY, "port": None}, None)],
)
def test_only_port_zero_becomes_null(body, port):
    assert json.loads(without_port_zero(json.dumps(body).encode()))["port"] == port


@pytest.mark.parametrize("body", [b"not json", b"[0]", b'{"port": false}', b""])
def test_other_bodies_pass_unchanged(body):
    assert without_port_zero(body) == body


def _call(path: str, method: str, chunks: list[bytes]) -> dict:
    seen: dict = {}

    async def app(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.update(body=body, headers=dict(scope["headers"]), path=scope["path"])

    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive():
        return messages.pop(0)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(b"content-length", b"999"), (b"content-type", b"application/json")],
    }
    asyncio.run(ConnectionTestPortFix(app)(scope, receive, lambda m: None))
    return seen


def test_the_middleware_rewrites_the_test_request_body_in_chunks():
    raw = json.dumps(TEST_BODY).encode()
    seen = _call("/api/v2/connections/test", "POST", [raw[:10], raw[10:]])
    assert json.loads(seen["body"])["port"] is None
    assert seen["headers"][b"content-length"] == str(len(seen["body"])).encode()


@pytest.mark.parametrize(
    ("path", "method"),
    [("/api/v2/connections", "POST"), ("/api/v2/connections/test", "GET"), ("/ui/x", "POST")],
)
def test_the_middleware_leaves_every_other_request_alone(path, method):
    raw = json.dumps(TEST_BODY).encode()
    seen = _call(path, method, [raw])
    assert seen["body"] == raw and seen["headers"][b"content-length"] == b"999"
