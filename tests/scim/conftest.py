"""Fixtures of the SCIM client tests: a real scim2-server subprocess, stopped by its pid."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from genesys_sync.scim import ScimConnectionConfig

SCIM2_SERVER = Path(sys.executable).parent / "scim2-server"


@dataclass(frozen=True)
class Scim2Server:
    """A running scim2-server: where it listens and the bearer token it accepts."""

    base_url: str
    bearer_token: str
    pid: int

    def config(self, **options: object) -> ScimConnectionConfig:
        """A client config for this server (no rate limit to respect: a generous one)."""
        options = {"requests_per_minute": 60_000, **options}
        return ScimConnectionConfig(
            base_url=self.base_url, bearer_token=self.bearer_token, **options
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, token: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"scim2-server exited with {process.returncode}")
        try:
            answer = httpx.get(
                f"{url}/ServiceProviderConfig",
                headers={"Authorization": f"Bearer {token}"},
                timeout=1,
            )
            if answer.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("scim2-server did not start within 20 s")


@pytest.fixture(scope="session")
def scim2_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scim2Server]:
    """The plain scim2-server (RFC 7644: /Users, /Bulk, ETags, 412 on a stale If-Match)."""
    if not SCIM2_SERVER.exists():
        pytest.skip(f"{SCIM2_SERVER} is not installed")
    port = _free_port()
    token = secrets.token_urlsafe(24)
    log_path = tmp_path_factory.mktemp("scim2-server") / "server.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [str(SCIM2_SERVER), "--port", str(port), "--bearer-token", token],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}/v2"
    try:
        _wait_until_up(base_url, token, process)
        yield Scim2Server(base_url=base_url, bearer_token=token, pid=process.pid)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
