"""Behaviour 6: the per-token rate limit, answered 429 with Retry-After and a Genesys body."""

import httpx

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.payloads import is_genesys_error


def test_each_token_gets_its_own_requests_per_minute(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(requests_per_minute=3)
    first, second = sandbox.access_token(), sandbox.access_token()
    url = f"{sandbox.scim_base_url}/users"

    answers = [httpx.get(url, headers={"Authorization": f"Bearer {first}"}) for _ in range(4)]
    other = httpx.get(url, headers={"Authorization": f"Bearer {second}"})

    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    body = limited.json()
    assert is_genesys_error(body, 429)
    assert body["code"] == "too.many.requests"
    assert body["limit"] == {
        "key": "client.credentials.token.rate.per.minute",
        "namespace": "platform.api",
        "value": 3,
    }
    assert other.status_code == 200
    assert sandbox.stats()["rate_limited"] == 1


def test_the_default_limit_is_300(sandbox: SandboxHandle) -> None:
    assert sandbox.faults()["requests_per_minute"] == 300
