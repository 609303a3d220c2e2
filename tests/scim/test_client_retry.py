"""Retries, backoff, OAuth renewal, paging and logging of the client, over httpx.MockTransport."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest

from genesys_sync.scim import (
    AsyncScimClient,
    ScimAuthError,
    ScimBadRequest,
    ScimConfigError,
    ScimConflict,
    ScimConnectionConfig,
    ScimNotFound,
    ScimRateLimited,
    ScimServerError,
    ScimTransportError,
)

BASE = "https://api.example.test/api/v2/scim/v2"
TOKEN_URL = "https://login.example.test/oauth/token"
API = "https://api.example.test"
SECRET = "the-client-secret-xyz"
FAST = {"requests_per_minute": 60_000, "max_backoff_seconds": 5, "backoff_base_seconds": 0.01}

Handler = Callable[[httpx.Request], httpx.Response]


class Sleeps(list[float]):
    """A sleep that records the waits instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def bearer_config(**options: object) -> ScimConnectionConfig:
    return ScimConnectionConfig(base_url=BASE, bearer_token="static-token", **{**FAST, **options})


def oauth_config(**options: object) -> ScimConnectionConfig:
    fields = {
        "base_url": BASE,
        "token_url": TOKEN_URL,
        "client_id": "cid",
        "client_secret": SECRET,
        "api_url": API,
    }
    return ScimConnectionConfig(**{**fields, **FAST, **options})  # type: ignore[arg-type]


def genesys_error(status: int, code: str, message: str = "no") -> dict[str, object]:
    return {"message": message, "code": code, "status": status, "contextId": "c", "details": []}


def user(user_id: str, active: bool = True) -> dict[str, object]:
    return {"id": user_id, "userName": f"{user_id}@example.com", "active": active}


def client_for(
    handler: Handler, config: ScimConnectionConfig, sleeps: Sleeps | None = None
) -> AsyncScimClient:
    return AsyncScimClient(
        config,
        sleep=sleeps if sleeps is not None else Sleeps(),
        transport=httpx.MockTransport(handler),
    )


class Script:
    """Answers in order (the last one repeats), recording the requests."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_503_is_retried_with_jittered_backoff() -> None:
    answers = Script(
        httpx.Response(503, json=genesys_error(503, "service.unavailable")),
        httpx.Response(503, json=genesys_error(503, "service.unavailable")),
        httpx.Response(200, json=user("u1")),
    )
    sleeps = Sleeps()
    async with client_for(answers, bearer_config(), sleeps) as client:
        found, _ = await client.get_user("u1")
    assert found["id"] == "u1"
    assert len(answers.requests) == 3
    assert len(sleeps) == 2 and all(0 <= s <= 5 for s in sleeps)
    stats = client.stats.as_dict()
    assert len(stats.pop("latencies_ms")) == 3  # one per answered request
    assert stats == {
        "total": 3,
        "by_method": {"GET": 3},
        "by_status": {"503": 2, "200": 1},  # answered requests by HTTP status
        "retries": 2,
        "rate_limited": 0,
        "token_fetches": 0,
    }


async def test_429_honours_retry_after_beyond_max_backoff() -> None:
    limited = httpx.Response(
        429, json=genesys_error(429, "too.many.requests"), headers={"Retry-After": "3"}
    )
    answers = Script(limited, limited, httpx.Response(201, json=user("new")))
    sleeps = Sleeps()
    async with client_for(answers, bearer_config(), sleeps) as client:
        created = await client.create_user({"userName": "x@example.com"})
    assert created["id"] == "new"
    assert sleeps == [3, 3]
    assert client.stats.rate_limited == 2 and client.stats.retries == 2

    far = httpx.Response(429, json={}, headers={"Retry-After": "600"})
    answers = Script(far, httpx.Response(200, json=user("u")))
    sleeps = Sleeps()
    async with client_for(answers, bearer_config(max_backoff_seconds=7), sleeps) as client:
        await client.get_user("u")
    assert sleeps == [600]  # max_backoff_seconds caps the client's own backoff only


async def test_retry_after_is_capped_by_the_job_deadline_only() -> None:
    import time

    far = httpx.Response(429, json={}, headers={"Retry-After": "600"})
    answers = Script(far, httpx.Response(200, json=user("u")))
    sleeps = Sleeps()
    async with client_for(answers, bearer_config(max_backoff_seconds=1), sleeps) as client:
        client.deadline = time.monotonic() + 30
        await client.get_user("u")
    assert len(sleeps) == 1 and 25 < sleeps[0] <= 30

    answers = Script(far, httpx.Response(200, json=user("u")))
    async with client_for(answers, bearer_config(), Sleeps()) as client:
        client.deadline = time.monotonic() - 1  # past: no further attempt
        with pytest.raises(ScimRateLimited):
            await client.get_user("u")
    assert len(answers.requests) == 1


async def test_retry_budget_exhausted_raises_the_typed_error() -> None:
    answers = Script(httpx.Response(503, json=genesys_error(503, "service.unavailable")))
    async with client_for(answers, bearer_config(max_attempts=3)) as client:
        with pytest.raises(ScimServerError) as caught:
            await client.get_user("u1")
    assert caught.value.attempts == 3
    assert caught.value.code == "service.unavailable"
    assert len(answers.requests) == 3
    assert client.stats.retries == 2

    limited = httpx.Response(429, json={}, headers={"Retry-After": "1"})
    async with client_for(Script(limited), bearer_config(max_attempts=2)) as client:
        with pytest.raises(ScimRateLimited) as rate:
            await client.get_user("u1")
    assert rate.value.retry_after == 1 and rate.value.attempts == 2


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(400, json=genesys_error(400, "bad.request")), ScimBadRequest),
        (httpx.Response(404, json=genesys_error(404, "not.found")), ScimNotFound),
        (
            httpx.Response(409, json={"status": "409", "scimType": "uniqueness", "detail": "x"}),
            ScimConflict,
        ),
        (httpx.Response(403, json=genesys_error(403, "missing.permissions")), ScimAuthError),
    ],
)
async def test_client_errors_are_not_retried(
    answer: httpx.Response, expected: type[Exception]
) -> None:
    answers = Script(answer)
    sleeps = Sleeps()
    async with client_for(answers, bearer_config(), sleeps) as client:
        with pytest.raises(expected):
            await client.patch_user("u1", [{"op": "replace", "path": "title", "value": "t"}])
    assert len(answers.requests) == 1 and sleeps == []


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("Connection reset by peer"),
    ],
)
async def test_transport_errors_are_retried(failure: Exception) -> None:
    answers = Script(failure, httpx.Response(200, json=user("u1")))
    async with client_for(answers, bearer_config()) as client:
        found, _ = await client.get_user("u1")
    assert found["id"] == "u1" and client.stats.retries == 1

    async with client_for(Script(failure), bearer_config(max_attempts=2)) as client:
        with pytest.raises(ScimTransportError) as caught:
            await client.get_user("u1")
    assert caught.value.retryable and caught.value.attempts == 2
    assert isinstance(caught.value.__cause__, httpx.TransportError)


async def test_delete_whose_first_attempt_was_applied_counts_as_done() -> None:
    answers = Script(
        httpx.RemoteProtocolError("reset after the server deleted"),
        httpx.Response(404, json=genesys_error(404, "not.found")),
    )
    async with client_for(answers, bearer_config()) as client:
        await client.delete_user("u1")
    async with client_for(Script(httpx.Response(404, json={})), bearer_config()) as client:
        with pytest.raises(ScimNotFound):
            await client.delete_user("u1")


async def test_patch_204_returns_the_new_version() -> None:
    answers = Script(httpx.Response(204, headers={"ETag": 'W/"9"'}))
    async with client_for(answers, bearer_config()) as client:
        updated = await client.patch_user(
            "u1", [{"op": "replace", "path": "title", "value": "t"}], etag='W/"8"'
        )
    assert updated == {"id": "u1", "meta": {"version": 'W/"9"'}}
    sent = answers.requests[0]
    assert sent.headers["If-Match"] == 'W/"8"'
    assert sent.headers["Authorization"] == "Bearer static-token"
    assert sent.headers["Content-Type"] == "application/scim+json"
    assert json.loads(sent.content)["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]


# -- OAuth client credentials -----------------------------------------------------------------


class OAuthServer:
    """A token endpoint and an API that accepts only the latest ``valid`` tokens."""

    def __init__(self, expires_in: int = 3600) -> None:
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.token_answers: list[httpx.Response] = []
        self.api_requests: list[httpx.Request] = []
        self.api_answer: Callable[[httpx.Request], httpx.Response] = lambda r: httpx.Response(
            200, json=user("u1")
        )

    def expire_all(self) -> None:
        self.valid.clear()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            assert request.method == "POST"
            basic = base64.b64encode(f"cid:{SECRET}".encode()).decode()
            assert request.headers["Authorization"] == f"Basic {basic}"
            assert parse_qs(request.content.decode()) == {"grant_type": ["client_credentials"]}
            if self.token_answers:
                return self.token_answers.pop(0)
            token = f"token-{len(self.issued) + 1}"
            self.issued.append(token)
            self.valid.add(token)
            body = {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in}
            return httpx.Response(200, json=body)
        self.api_requests.append(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.valid:
            return httpx.Response(401, json=genesys_error(401, "bad.credentials"))
        return self.api_answer(request)


async def test_oauth_token_fetched_once_and_reused() -> None:
    server = OAuthServer()
    async with client_for(server, oauth_config()) as client:
        for _ in range(3):
            await client.get_user("u1")
    assert server.issued == ["token-1"]
    assert client.stats.token_fetches == 1
    assert client.stats.total == 3  # token requests are not API requests


async def test_oauth_token_renewed_before_expiry() -> None:
    server = OAuthServer(expires_in=100)
    async with client_for(server, oauth_config()) as client:
        await client.get_user("u1")
        # The token is within its renewal margin (10% of its life): renewed before sending.
        client._http.token["expires_at"] = int(time.time()) + 5  # type: ignore[union-attr]
        await client.get_user("u1")
    assert server.issued == ["token-1", "token-2"]
    assert [r.headers["Authorization"] for r in server.api_requests] == [
        "Bearer token-1",
        "Bearer token-2",
    ]
    assert client.stats.token_fetches == 2 and client.stats.retries == 0


async def test_401_mid_run_renews_the_token_once_and_retries() -> None:
    server = OAuthServer()
    async with client_for(server, oauth_config()) as client:
        await client.get_user("u1")
        server.expire_all()
        found, _ = await client.get_user("u1")
    assert found["id"] == "u1"
    assert server.issued == ["token-1", "token-2"]
    assert client.stats.total == 3 and client.stats.retries == 0


async def test_401_after_renewal_is_an_auth_error() -> None:
    server = OAuthServer()
    server.api_answer = lambda r: httpx.Response(401, json=genesys_error(401, "bad.credentials"))
    async with client_for(server, oauth_config()) as client:
        with pytest.raises(ScimAuthError) as caught:
            await client.get_user("u1")
    assert len(server.issued) == 2  # the first token, then one renewal
    assert len(server.api_requests) == 2
    assert SECRET not in str(caught.value) and "token-" not in str(caught.value)


async def test_concurrent_401s_renew_the_token_once() -> None:
    server = OAuthServer()
    async with client_for(server, oauth_config()) as client:
        await client.get_user("u1")
        server.expire_all()
        await asyncio.gather(*(client.get_user("u1") for _ in range(8)))
    assert server.issued == ["token-1", "token-2"]


async def test_token_endpoint_refusal_is_not_retried() -> None:
    server = OAuthServer()
    server.token_answers = [
        httpx.Response(401, json={"error": "invalid_client", "error_description": "bad secret"})
    ]
    sleeps = Sleeps()
    async with client_for(server, oauth_config(), sleeps) as client:
        with pytest.raises(ScimAuthError) as caught:
            await client.get_user("u1")
    assert sleeps == [] and server.api_requests == []
    assert caught.value.code == "invalid_client"
    assert SECRET not in str(caught.value)


async def test_token_endpoint_outage_is_retried() -> None:
    server = OAuthServer()
    server.token_answers = [httpx.Response(503, text="down")]
    async with client_for(server, oauth_config()) as client:
        await client.get_user("u1")
    assert server.issued == ["token-1"] and client.stats.retries == 1


# -- listings ---------------------------------------------------------------------------------


def listing_server(users: list[dict[str, object]]) -> Handler:
    """Genesys-like: an unfiltered list returns active users only."""

    def handle(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        chosen = users
        if params.get("filter") == "active eq false":
            chosen = [u for u in users if u["active"] is False]
        elif "filter" not in params:
            chosen = [u for u in users if u["active"] is not False]
        start, count = int(params["startIndex"]), int(params["count"])
        page = chosen[start - 1 : start - 1 + count]
        body = {"totalResults": len(chosen), "startIndex": start, "Resources": page}
        return httpx.Response(200, json=body)

    return handle


async def test_list_all_users_reads_inactive_users_on_genesys() -> None:
    users = [user(f"u{n}", active=n % 3 != 0) for n in range(10)]
    handler = listing_server(users)
    async with client_for(handler, bearer_config()) as client:
        everyone = await client.list_all_users(count=3)
    assert sorted(u["id"] for u in everyone) == sorted(u["id"] for u in users)

    generic = ScimConnectionConfig(base_url="https://scim.example.test/v2", bearer_token="t")
    async with client_for(handler, generic) as client:
        actives = await client.list_all_users(count=3)
    assert len(actives) == 6  # generic servers list everyone unfiltered: no second query


async def test_public_api_names_are_paged() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path in (
            "/api/v2/authorization/roles",
            "/api/v2/authorization/divisions",
        )
        assert request.url.params["pageSize"] == "100"
        page = int(request.url.params["pageNumber"])
        names = {1: ["admin", "employee"], 2: ["supervisor"]}[page]
        body = {"entities": [{"id": n, "name": n} for n in names], "pageNumber": page}
        return httpx.Response(200, json={**body, "pageCount": 2, "pageSize": 100})

    server = OAuthServer()
    server.api_answer = handle
    async with client_for(server, oauth_config()) as client:
        assert await client.list_roles() == ["admin", "employee", "supervisor"]
        assert await client.list_divisions() == ["admin", "employee", "supervisor"]
    assert client.stats.total == 4

    async with client_for(handle, bearer_config()) as client:
        with pytest.raises(ScimConfigError, match="api_url"):
            await client.list_roles()


async def test_logs_carry_no_secret_token_filter_value_or_email(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = OAuthServer()
    server.api_answer = lambda r: httpx.Response(
        200, json={"totalResults": 1, "Resources": [user("u1")]}
    )
    caplog.set_level(logging.DEBUG)
    async with client_for(server, oauth_config()) as client:
        await client.find_user("userName", "jane.doe@example.com")
        server.expire_all()
        await client.find_user("externalId", "EMP-12345")
    text = caplog.text
    assert "/api/v2/scim/v2/users" in text
    for secret in (SECRET, "token-1", "token-2", "jane.doe", "EMP-12345", "u1@example.com"):
        assert secret not in text


def test_client_requires_async_with() -> None:
    client = AsyncScimClient(bearer_config())

    async def use() -> None:
        await client.get_user("u1")

    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(use())


async def test_clients_of_one_api_client_share_the_limiter() -> None:
    server = OAuthServer()
    async with (
        client_for(server, oauth_config()) as first,
        client_for(server, oauth_config()) as second,
        client_for(server, oauth_config(client_id="other")) as third,
    ):
        assert first._limiter is second._limiter
        assert third._limiter is not first._limiter
