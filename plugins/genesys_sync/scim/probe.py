"""Check a SCIM connection the way the sync will use it: a token, then a harmless read.

Behind the Airflow connection form's **Test** button (``GenesysScimHook.test_connection``): one
attempt per call, no retries, and an answer that names what is wrong (the credentials, the
permission the OAuth client's roles lack, the address) without any secret or server text.
"""

from __future__ import annotations

import dataclasses

from genesys_sync.scim.client import AsyncScimClient
from genesys_sync.scim.connection import ScimConnectionConfig
from genesys_sync.scim.errors import (
    ScimAuthError,
    ScimError,
    ScimTransportError,
)

#: A userName no tenant has: the read finds nobody and touches nothing.
PROBE_USER_NAME = "connection-test@genesys-scim-sync.invalid"


async def probe(config: ScimConnectionConfig) -> tuple[bool, str]:
    """``(ok, message)``: discovery, a token (OAuth) and one filtered read of ``/users``."""
    config = dataclasses.replace(
        config, max_attempts=1, timeout_seconds=min(config.timeout_seconds, 15)
    )
    step = "discovery (ServiceProviderConfig)"
    try:
        async with AsyncScimClient(config) as client:
            await client.service_provider_config()
            step = "reading users"
            await client.find_user("userName", PROBE_USER_NAME)
    except ScimAuthError as exc:
        if exc.status == 403:
            return False, (
                f"{step} was refused (HTTP 403): the OAuth client's roles lack a permission "
                "the sync needs (reading users: directory:user:view or an admin role; writing: "
                "directory:user:add/edit). Add it in Genesys Cloud under Admin > OAuth > Roles."
            )
        return False, (
            f"{step}: the credentials were refused ({exc.message}). Check the OAuth client id "
            "(login) and secret (password), or the bearer token."
        )
    except ScimTransportError as exc:
        return False, f"{step}: cannot reach {config.base_url} ({exc.message})."
    except ScimError as exc:
        return False, f"{step} failed: {exc.message}."
    auth = "OAuth client credentials" if config.uses_oauth else "a bearer token"
    return True, (
        f"Connected to {config.base_url} with {auth} ({config.flavor} SCIM); users are readable. "
        f"Requests are paced at {config.requests_per_minute}/min."
    )
