"""Behaviour 1: OAuth client credentials, token expiry and unknown tokens."""

import time

import httpx

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.payloads import is_genesys_error

GRANT = {"grant_type": "client_credentials"}


def test_client_credentials_issue_a_bearer_token(sandbox: SandboxHandle) -> None:
    response = httpx.post(
        sandbox.token_url, auth=(sandbox.client_id, sandbox.client_secret), data=GRANT
    )

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86400
    assert body["access_token"]
    assert sandbox.stats()["token_requests"] == 1


def test_bad_or_missing_credentials_get_401_with_a_genesys_body(sandbox: SandboxHandle) -> None:
    bad = httpx.post(sandbox.token_url, auth=(sandbox.client_id, "wrong"), data=GRANT)
    missing = httpx.post(sandbox.token_url, data=GRANT)

    for response in (bad, missing):
        assert response.status_code == 401
        assert is_genesys_error(response.json(), 401)


def test_other_grant_types_are_refused(sandbox: SandboxHandle) -> None:
    response = httpx.post(
        sandbox.token_url,
        auth=(sandbox.client_id, sandbox.client_secret),
        data={"grant_type": "password"},
    )

    assert response.status_code == 400
    assert is_genesys_error(response.json(), 400)


def test_expired_and_unknown_tokens_get_401(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(token_lifetime_seconds=1)
    short_lived = sandbox.access_token()
    users_url = f"{sandbox.scim_base_url}/users"
    assert httpx.get(users_url, headers={"Authorization": f"Bearer {short_lived}"}).is_success

    deadline = time.monotonic() + 10
    while (
        expired := httpx.get(users_url, headers={"Authorization": f"Bearer {short_lived}"})
    ).is_success:  # the token lives one second: wait for the sandbox to stop taking it
        assert time.monotonic() < deadline, "the one-second token never expired"
        time.sleep(0.05)
    unknown = httpx.get(users_url, headers={"Authorization": "Bearer not-a-token"})
    roles = httpx.get(
        f"{sandbox.api_url}/api/v2/authorization/roles",
        headers={"Authorization": f"Bearer {short_lived}"},
    )

    for response in (expired, unknown, roles):
        assert response.status_code == 401
        assert is_genesys_error(response.json(), 401)


def test_token_lifetime_flag_sets_expires_in(tmp_path) -> None:
    from tests.fixtures.sandbox import start_sandbox

    with start_sandbox(tmp_path, token_lifetime=600, client_id="c1", client_secret="s1") as box:
        response = httpx.post(box.token_url, auth=("c1", "s1"), data=GRANT)

    assert response.json()["expires_in"] == 600
