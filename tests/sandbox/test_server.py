"""Behaviour 12 and the basics: loopback only, threaded, privacy-safe logs, --help wording."""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.fixtures.sandbox import PLUGINS_DIR, SandboxHandle
from tests.sandbox.payloads import new_user


def listening_addresses(port: int) -> set[str]:
    """Return the local IPv4 addresses listening on a port, from /proc/net/tcp."""
    addresses = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, local_port = local.split(":")
        if int(local_port, 16) == port and state == "0A":
            addresses.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return addresses


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_it_listens_on_127_0_0_1_only(sandbox: SandboxHandle) -> None:
    port = int(sandbox.url.rsplit(":", 1)[1])

    assert listening_addresses(port) == {"127.0.0.1"}


def test_requests_are_served_concurrently(sandbox: SandboxHandle, token: str) -> None:
    sandbox.set_faults(latency_ms=400)
    url = f"{sandbox.scim_base_url}/users"
    headers = {"Authorization": f"Bearer {token}"}

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: httpx.get(url, headers=headers), range(8)))

    assert all(r.status_code == 200 for r in answers)
    assert time.monotonic() - started < 8 * 0.4 / 2
    assert sandbox.stats()["by_method"]["GET"] == 8


def test_logs_hold_no_tokens_secrets_emails_or_phones(
    sandbox: SandboxHandle, scim: httpx.Client, token: str
) -> None:
    user = new_user(7, phoneNumbers=[{"value": "+15557654321", "type": "mobile"}])
    scim.post("/users", json=user)
    scim.get("/users", params={"filter": 'userName eq "agent7@example.com"'})
    scim.get("/users/agent7@example.com")
    scim.post("/users", json=user)
    httpx.post(sandbox.token_url, auth=(sandbox.client_id, "wrong-secret-value"), data={})

    assert sandbox.log_path is not None
    log = sandbox.log_path.read_text()
    for secret in (token, sandbox.client_secret, "wrong-secret-value", "agent7", "5557654321"):
        assert secret not in log
    assert "GET /api/v2/scim/v2/users 200" in log


def test_help_says_it_is_a_development_and_test_tool() -> None:
    env = {**os.environ, "PYTHONPATH": str(PLUGINS_DIR)}
    help_text = subprocess.run(
        [sys.executable, "-m", "genesys_sandbox", "--help"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert "DEVELOPMENT AND TEST TOOL, NOT Genesys Cloud" in help_text
