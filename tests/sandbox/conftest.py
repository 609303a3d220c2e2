"""Shared fixtures of the sandbox tests: an authenticated SCIM client on the reset sandbox."""

from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.sandbox import SandboxHandle


@pytest.fixture
def token(sandbox: SandboxHandle) -> str:
    """A fresh access token of the reset sandbox."""
    return sandbox.access_token()


@pytest.fixture
def scim(sandbox: SandboxHandle, token: str) -> Iterator[httpx.Client]:
    """An httpx client based at the sandbox's SCIM base URL, with a bearer token."""
    with httpx.Client(
        base_url=sandbox.scim_base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ) as client:
        yield client
