"""A fix for Airflow 3.3.2's connection **Test** button, until the Airflow release that has it.

Airflow 3.3.2's UI tests a stored connection with ``port: Number(connection.port)``, ``0`` for a
connection without a port, and the API then takes ``0`` for "another destination than the
stored one" and refuses the masked password with 400 "The host or port to test differs from the
stored connection". The Genesys Cloud form hides the port, so its Test button always failed.
Upstream fixed it in the API (apache/airflow pull request 73298: port 0 counts as no port); this
ASGI middleware does the same one thing before the request reaches the route: in a
``POST .../api/v2/connections/test`` body, ``"port": 0`` becomes ``null``. Nothing addresses
port 0, so the tested connection is the same. Imports nothing but the standard library.
"""

from __future__ import annotations

import json
from typing import Any

TEST_PATH = "/api/v2/connections/test"
#: Bodies larger than this are passed on untouched (a connection is a few kilobytes).
MAX_BODY = 1024 * 1024


def without_port_zero(body: bytes) -> bytes:
    """The body with ``"port": 0`` replaced by ``null``; any other body unchanged."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict) or data.get("port") != 0 or isinstance(data["port"], bool):
        return body
    return json.dumps({**data, "port": None}).encode()


class ConnectionTestPortFix:
    """ASGI middleware: ``without_port_zero`` on the connection-test requests, nothing else."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope.get("type") != "http"
            or scope.get("method") != "POST"
            or not str(scope.get("path", "")).rstrip("/").endswith(TEST_PATH)
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if size <= MAX_BODY:
            body = without_port_zero(body)
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        request = {"type": "http.request", "body": body, "more_body": False}
        await self.app({**scope, "headers": headers}, _replay([request], receive), send)


def _replay(messages: list[dict[str, Any]], receive: Any) -> Any:
    pending = list(messages)

    async def replay() -> dict[str, Any]:
        return pending.pop(0) if pending else await receive()

    return replay
