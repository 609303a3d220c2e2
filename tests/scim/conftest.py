"""Fixtures of the SCIM client tests: the shared real scim2-server, seen as a client config."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from genesys_sync.scim import ScimConnectionConfig


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


@pytest.fixture
def scim2_server(plain_scim) -> Scim2Server:
    """The plain scim2-server of tests/fixtures/sandbox.py (RFC 7644: /Users, /Bulk, ETags,
    412 on a stale If-Match), emptied before each test."""
    return Scim2Server(
        base_url=plain_scim.scim_base_url, bearer_token=plain_scim.bearer_token, pid=plain_scim.pid
    )
