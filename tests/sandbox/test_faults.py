"""Behaviour 9: fault knobs at start and at runtime, applied to API calls only."""

import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.sandbox import SandboxHandle, start_sandbox
from tests.sandbox.payloads import is_genesys_error


def users(sandbox: SandboxHandle, token: str) -> httpx.Response:
    return httpx.get(f"{sandbox.scim_base_url}/users", headers={"Authorization": f"Bearer {token}"})


def test_faults_are_shown_and_changed_at_runtime(sandbox: SandboxHandle) -> None:
    start = sandbox.faults()
    assert start == {
        "latency_ms": 0,
        "error_rate": 0.0,
        "reset_rate": 0.0,
        "force_429": 0,
        "retry_after_seconds": 1,
        "token_lifetime_seconds": 86400,
        "requests_per_minute": 300,
        "max_untrimmed_page_size": 25,
        "expire_tokens": False,
        "seed": None,
        "malformed": 0,
        "malformed_kind": "invalid_json",
        "rate_limit_per": "token",
    }

    changed = sandbox.set_faults(latency_ms=5, error_rate=0.25)

    assert changed["latency_ms"] == 5 and changed["error_rate"] == 0.25
    assert sandbox.faults() == changed
    refused = httpx.post(f"{sandbox.url}/_sandbox/faults", json={"no_such_knob": 1})
    assert refused.status_code == 400


def test_latency_delays_api_calls(sandbox: SandboxHandle, token: str) -> None:
    sandbox.set_faults(latency_ms=300)

    started = time.monotonic()
    users(sandbox, token)

    assert time.monotonic() - started >= 0.3


def test_error_rate_answers_503_with_a_genesys_body(sandbox: SandboxHandle, token: str) -> None:
    sandbox.set_faults(error_rate=1.0)

    response = users(sandbox, token)

    assert response.status_code == 503
    assert is_genesys_error(response.json(), 503)


def test_reset_rate_resets_the_connection(sandbox: SandboxHandle, token: str) -> None:
    sandbox.set_faults(reset_rate=1.0)

    with pytest.raises(httpx.TransportError):
        users(sandbox, token)

    assert sandbox.stats()["connection_resets"] == 1


def test_a_reset_is_a_tcp_rst(sandbox: SandboxHandle, token: str) -> None:
    sandbox.set_faults(reset_rate=1.0)
    port = int(sandbox.url.rsplit(":", 1)[1])
    request = f"GET /api/v2/scim/v2/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}"

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request.encode() + b"\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            while sock.recv(4096):
                pass


def test_force_429_answers_the_next_requests_429(sandbox: SandboxHandle, token: str) -> None:
    sandbox.set_faults(force_429=2, retry_after_seconds=7)

    answers = [users(sandbox, token) for _ in range(3)]

    assert [r.status_code for r in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "7"
    assert answers[0].json()["code"] == "too.many.requests"
    assert sandbox.faults()["force_429"] == 0


def test_forced_429s_retry_after_one_second_by_default(sandbox: SandboxHandle, token: str) -> None:
    sandbox.set_faults(force_429=1)

    assert users(sandbox, token).headers["Retry-After"] == "1"


def test_expire_tokens_invalidates_every_issued_token(sandbox: SandboxHandle, token: str) -> None:
    assert users(sandbox, token).status_code == 200

    sandbox.set_faults(expire_tokens=True)

    assert users(sandbox, token).status_code == 401
    assert users(sandbox, sandbox.access_token()).status_code == 200


@pytest.mark.parametrize(
    ("kind", "status", "media"),
    [("invalid_json", 200, "application/scim+json"), ("html_error", 502, "text/html")],
)
def test_malformed_answers_replace_the_next_calls(
    sandbox: SandboxHandle, token: str, kind: str, status: int, media: str
) -> None:
    sandbox.set_faults(malformed=2, malformed_kind=kind)

    answers = [users(sandbox, token) for _ in range(3)]

    assert [(a.status_code, a.headers["content-type"]) for a in answers[:2]] == [
        (status, media)
    ] * 2
    with pytest.raises(ValueError):
        answers[0].json()
    assert answers[2].status_code == 200 and answers[2].json()["totalResults"] == 0
    assert sandbox.faults()["malformed"] == 0


def test_a_huge_malformed_body_is_sixteen_mebibytes(sandbox: SandboxHandle, token: str) -> None:
    sandbox.set_faults(malformed=1, malformed_kind="huge_body")

    answer = users(sandbox, token)

    assert answer.status_code == 502 and len(answer.content) > 16 * 1024 * 1024


def test_an_unknown_malformed_kind_is_refused(sandbox: SandboxHandle) -> None:
    refused = httpx.post(f"{sandbox.url}/_sandbox/faults", json={"malformed_kind": "gibberish"})

    assert refused.status_code == 400 and "malformed_kind" in refused.text


def test_a_per_client_limit_counts_every_token_of_the_client(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(requests_per_minute=2, rate_limit_per="client")
    one, two = sandbox.access_token(), sandbox.access_token()

    assert [users(sandbox, t).status_code for t in (one, two, two)] == [200, 200, 429]
    sandbox.set_faults(rate_limit_per="token")
    assert users(sandbox, sandbox.access_token()).status_code == 200


def test_runtime_limits_apply(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(token_lifetime_seconds=120, requests_per_minute=1)
    token = sandbox.access_token()

    assert [users(sandbox, token).status_code for _ in range(2)] == [200, 429]


def test_a_seed_makes_random_faults_repeatable(sandbox: SandboxHandle, token: str) -> None:
    def run() -> list[int]:
        sandbox.set_faults(seed=1234, error_rate=0.5)
        return [users(sandbox, token).status_code for _ in range(12)]

    first, second = run(), run()

    assert first == second
    assert {200, 503} == set(first)


def test_faults_never_apply_to_admin_endpoints(sandbox: SandboxHandle) -> None:
    sandbox.set_faults(error_rate=1.0, force_429=5, latency_ms=1000)

    started = time.monotonic()
    sandbox.stats()
    sandbox.users()
    sandbox.seed_user({"userName": "seeded@example.com", "displayName": "Seeded"})

    assert time.monotonic() - started < 1
    assert sandbox.faults()["force_429"] == 5


def test_faults_can_be_set_at_start(tmp_path: Path) -> None:
    with start_sandbox(tmp_path, error_rate=1.0, force_429=1, retry_after_seconds=3) as box:
        token = box.access_token()
        answers = [users(box, token) for _ in range(2)]
        box.reset()
        after_reset = box.faults()

    assert [r.status_code for r in answers] == [429, 503]
    assert answers[0].headers["Retry-After"] == "3"
    assert after_reset["force_429"] == 1 and after_reset["error_rate"] == 1.0
