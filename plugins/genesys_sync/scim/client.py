"""The async SCIM client: rate-limited, retried, OAuth-authenticated calls to a SCIM server."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import ssl
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.deprecate import AuthlibDeprecationWarning
from tenacity import RetryCallState

from genesys_sync.scim.bulk import bulk_limits, chunk_bulk_operations
from genesys_sync.scim.connection import ScimConnectionConfig
from genesys_sync.scim.errors import (
    ScimAmbiguousMatch,
    ScimAuthError,
    ScimConfigError,
    ScimError,
    ScimListingInconsistent,
    ScimNotFound,
    ScimRateLimited,
    ScimTransportError,
    error_from_response,
)
from genesys_sync.scim.messages import (
    SCIM_MEDIA_TYPE,
    ScimRequest,
    eq_filter,
    etag_of,
    next_start_index,
    parse_list_response,
    prepare_bulk,
    prepare_create_user,
    prepare_delete_user,
    prepare_discovery,
    prepare_get_user,
    prepare_list_users,
    prepare_patch_user,
    prepare_public_api_page,
    prepare_replace_user,
)
from genesys_sync.scim.ratelimit import RateLimiter, release_limiter, shared_limiter
from genesys_sync.scim.retry import retrying

with warnings.catch_warnings():
    # authlib 1.9 prefers the httpx2 package and warns once when it falls back to httpx,
    # which is the pinned, supported transport here.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

__all__ = [
    "AsyncScimClient",
    "ScimClientStats",
    "bulk_limits",
    "chunk_bulk_operations",
]

log = logging.getLogger(__name__)

ROLES_PATH = "/api/v2/authorization/roles"
DIVISIONS_PATH = "/api/v2/authorization/divisions"
PUBLIC_API_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 100
GENESYS_PAGE_SIZE = 25


class _RedactHttpxQuery(logging.Filter):
    """Drop query strings from httpx's own "HTTP Request: ..." lines: SCIM filters carry
    emails and employee ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(arg, httpx.URL) for arg in record.args
        ):
            record.args = tuple(
                arg.copy_with(query=None) if isinstance(arg, httpx.URL) else arg
                for arg in record.args
            )
        return True


def _install_httpx_log_redaction() -> None:
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactHttpxQuery) for f in httpx_logger.filters):
        httpx_logger.addFilter(_RedactHttpxQuery())


_install_httpx_log_redaction()


@functools.lru_cache(maxsize=4)
def _ssl_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """The TLS context of every client of this process (httpx's default: ``SSL_CERT_FILE``,
    ``SSL_CERT_DIR`` or certifi's bundle), made once: loading the CA bundle takes tens of
    milliseconds, which every batch job's client paid again."""
    del cert_file, cert_dir  # the cache key: httpx reads them from the environment
    return httpx.create_ssl_context()


def shared_ssl_context() -> ssl.SSLContext:
    """:func:`_ssl_context` for the current ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``."""
    return _ssl_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


#: The access token each OAuth client last fetched in this process, with its renewal leeway:
#: every batch job a triggerer runs opens a client of its own, and takes the token over
#: instead of asking the login host for a new one each time (Genesys Cloud asks integrations to
#: reuse a token until it expires). Held in memory only, never written or logged; a token
#: revoked early costs one 401 and a fetch.
_TOKENS: dict[tuple[str, str, str], tuple[dict[str, Any], float]] = {}


def _token_key(config: ScimConnectionConfig) -> tuple[str, str, str]:
    """The OAuth client a token belongs to: its token URL, client id and secret (a digest)."""
    secret = hashlib.sha256((config.client_secret or "").encode()).hexdigest()
    return (config.token_url or "", config.client_id or "", secret)


@dataclass
class ScimClientStats:
    """What one client sent: HTTP requests (token requests apart), retries and 429 answers,
    and how long each answered request took (``latencies_ms``)."""

    total: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    rate_limited: int = 0
    token_fetches: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    # Answered requests by HTTP status ("200", "429", ...); unanswered ones have none.
    by_status: dict[str, int] = field(default_factory=dict)

    def count(self, method: str) -> None:
        self.total += 1
        self.by_method[method] = self.by_method.get(method, 0) + 1

    def answered(self, status: int) -> None:
        self.by_status[str(status)] = self.by_status.get(str(status), 0) + 1

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for a trigger event or a run report."""
        return {
            "total": self.total,
            "by_method": dict(self.by_method),
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "token_fetches": self.token_fetches,
            "latencies_ms": [round(ms, 1) for ms in self.latencies_ms],
            "by_status": dict(self.by_status),
        }


@dataclass
class _CallState:
    """What one logical call remembers across its attempts."""

    token_renewed: bool = False
    attempt: int = 0


class AsyncScimClient:
    """An async SCIM 2.0 client for Genesys Cloud or any RFC 7644 server.

    Use it as ``async with AsyncScimClient(config) as client:``. Every HTTP request waits for
    the limiter shared by all clients of the same API client in the running event loop (in
    every process, with ``GENESYS_SYNC_RATE_LIMIT_REDIS_URL``: :mod:`.ratelimit`), and is
    retried (tenacity: exponential backoff with full jitter capped by ``max_backoff_seconds``,
    or the server's ``Retry-After`` whatever its length; ``deadline``, a ``time.monotonic()``
    value, caps both) on 429, 5xx, timeouts and connection errors, up to
    ``max_attempts``. With OAuth client credentials the token is fetched on first use (or taken
    over from an earlier client of the same OAuth client in this process, :data:`_TOKENS`),
    renewed before it expires, and renewed once more if the server still answers 401. Failures raise
    the :class:`~genesys_sync.scim.errors.ScimError` subclass of the answer.

    Retrying a POST after a timeout or reset may repeat a create the server already did: the
    retry then fails with a uniqueness ``ScimConflict`` whose ``attempts`` is above 1.

    ``sleep`` and ``transport`` are for tests (a recording sleep, an ``httpx.MockTransport``).
    """

    def __init__(
        self,
        config: ScimConnectionConfig,
        *,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        deadline: float | None = None,
    ) -> None:
        self.config = config
        self.deadline = deadline  # time.monotonic(): no retry wait runs past it
        self.stats = ScimClientStats()
        self._sleep = sleep if sleep is not None else asyncio.sleep
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._limiter: RateLimiter | None = None
        self._token_lock: asyncio.Lock | None = None
        self._token_slot = _token_key(config)  # where this OAuth client's token is kept

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> AsyncScimClient:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Create the HTTP client and join the shared limiter (no request is sent yet)."""
        if self._http is not None:
            return
        config = self.config
        common: dict[str, Any] = {
            "timeout": httpx.Timeout(config.timeout_seconds),
            "headers": {"Accept": f"{SCIM_MEDIA_TYPE}, application/json"},
            "follow_redirects": False,
            "verify": shared_ssl_context(),
        }
        if self._transport is not None:
            common["transport"] = self._transport
        if config.uses_oauth:
            self._http = AsyncOAuth2Client(
                client_id=config.client_id,
                client_secret=config.client_secret,
                token_endpoint_auth_method="client_secret_basic",
                token_endpoint=config.token_url,
                grant_type="client_credentials",
                update_token=self._token_renewed,
                **common,
            )
            held = _TOKENS.get(self._token_slot)
            if held is not None:  # an earlier batch job's token, renewed when about to expire
                self._http.token, self._http.leeway = dict(held[0]), held[1]
        else:
            common["headers"]["Authorization"] = f"Bearer {config.bearer_token}"
            self._http = httpx.AsyncClient(**common)
        self._limiter = shared_limiter(config.limiter_key, config.requests_per_minute)
        self._token_lock = asyncio.Lock()

    async def aclose(self) -> None:
        """Close the HTTP client and leave the shared limiter."""
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
        limiter, self._limiter = self._limiter, None
        await release_limiter(limiter)

    # -- authentication ----------------------------------------------------------------------

    def _oauth(self) -> AsyncOAuth2Client:
        assert isinstance(self._http, AsyncOAuth2Client)
        return self._http

    def _access_token(self) -> str | None:
        if not self.config.uses_oauth:
            return None
        token = self._oauth().token
        return token.get("access_token") if token else None

    def _adopt_token(self, token: Mapping[str, Any]) -> None:
        """Bookkeeping after a token fetch: count it, and renew early in proportion to its life."""
        if not token or not token.get("access_token"):
            raise ScimAuthError("The token endpoint answered without an access_token.")
        self.stats.token_fetches += 1
        expires_in = token.get("expires_in")
        if isinstance(expires_in, int | float) and expires_in > 0:
            self._oauth().leeway = min(60.0, expires_in * 0.1)
        _TOKENS[self._token_slot] = (dict(self._oauth().token), self._oauth().leeway)
        log.info("Fetched an OAuth access token (expires in %s s)", expires_in)

    async def _token_renewed(self, token: Mapping[str, Any], **_: Any) -> None:
        """authlib's ``update_token`` hook, called after it renewed an expiring token."""
        self._adopt_token(token)

    async def _fetch_token(self) -> None:
        token = await self._oauth().fetch_token()
        self._adopt_token(token)

    async def _ensure_token(self) -> None:
        """Fetch the first token, or renew one about to expire (token requests are not
        counted by the limiter: they go to the login host, not the API)."""
        if not self.config.uses_oauth:
            return
        oauth = self._oauth()
        with _token_errors():
            if not oauth.token:
                assert self._token_lock is not None
                async with self._token_lock:
                    if not oauth.token:
                        await self._fetch_token()
            else:
                await oauth.ensure_active_token(oauth.token)

    async def _renew_after_401(self, rejected_token: str | None) -> None:
        """Fetch a new token, unless another call already replaced the rejected one."""
        assert self._token_lock is not None
        async with self._token_lock:
            if self._access_token() != rejected_token:
                return
            with _token_errors():
                await self._fetch_token()

    # -- transport ---------------------------------------------------------------------------

    def _url(self, request: ScimRequest) -> str:
        if request.public_api:
            if not self.config.api_url:
                raise ScimConfigError(
                    "This call needs the Genesys Public API: set api_url (extra.api_url), or "
                    "configure the connection by region."
                )
            return f"{self.config.api_url}{request.path}"
        return f"{self.config.base_url}{request.path}"

    async def _transmit(self, request: ScimRequest, url: str, attempt: int) -> httpx.Response:
        """One HTTP exchange; transport failures become :class:`ScimTransportError`."""
        http = self._http
        if http is None:
            raise RuntimeError("Use the client as 'async with AsyncScimClient(config)'.")
        path = httpx.URL(url).path
        self.stats.count(request.method)
        started = time.monotonic()
        try:
            response = await http.request(
                request.method,
                url,
                params=list(request.params) or None,
                content=request.body,
                headers=dict(request.headers),
            )
        except httpx.TimeoutException as exc:
            raise ScimTransportError(
                f"Timed out: {request.method} {path}",
                retryable=True,
                method=request.method,
                path=path,
            ) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ScimConfigError(
                f"Cannot send {request.method} {path}: check the base_url / api_url scheme"
            ) from exc
        except httpx.TransportError as exc:
            raise ScimTransportError(
                f"{type(exc).__name__} on {request.method} {path}",
                retryable=True,
                method=request.method,
                path=path,
            ) from exc
        except AuthlibBaseError as exc:
            raise _oauth_error(exc) from exc
        except httpx.HTTPStatusError as exc:  # from authlib renewing the token
            raise error_from_response(exc.response) from exc
        self.stats.latencies_ms.append((time.monotonic() - started) * 1000)
        self.stats.answered(response.status_code)
        log.debug(
            "SCIM %s %s -> %s (attempt %d)", request.method, path, response.status_code, attempt
        )
        return response

    async def _send_once(self, request: ScimRequest, state: _CallState) -> httpx.Response:
        """One attempt: limiter, token, send; a 401 renews the token once and sends again."""
        assert self._limiter is not None
        url = self._url(request)
        while True:
            await self._ensure_token()
            await self._limiter.acquire()
            used_token = self._access_token()
            response = await self._transmit(request, url, state.attempt)
            if response.status_code == 401 and self.config.uses_oauth and not state.token_renewed:
                state.token_renewed = True
                log.info(
                    "SCIM %s %s answered 401; renewing the access token once",
                    request.method,
                    response.request.url.path,
                )
                await self._renew_after_401(used_token)
                continue
            if response.status_code >= 400:
                error = error_from_response(response)
                if isinstance(error, ScimRateLimited):
                    self.stats.rate_limited += 1
                raise error
            return response

    def _before_sleep(self, retry_state: RetryCallState) -> None:
        self.stats.retries += 1
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        log.warning(
            "%s (attempt %d of %d); retrying in %.2f s",
            exc,
            retry_state.attempt_number,
            self.config.max_attempts,
            wait,
        )

    async def _call(self, request: ScimRequest) -> tuple[Any, httpx.Response]:
        """Send with the limiter and the retry policy; raise the typed error at the end.
        Returns the answer's JSON body (None when it has none) and the response."""
        if self._http is None:
            raise RuntimeError("Use the client as 'async with AsyncScimClient(config)'.")
        state = _CallState()
        policy = retrying(
            max_attempts=self.config.max_attempts,
            base=self.config.backoff_base_seconds,
            max_backoff=self.config.max_backoff_seconds,
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            deadline=self.deadline,
        )
        try:
            async for attempt in policy:
                with attempt:
                    state.attempt = attempt.retry_state.attempt_number
                    response = await self._send_once(request, state)
                    return _json_body(request, response), response
        except ScimError as exc:
            exc.attempts = state.attempt
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _object(self, request: ScimRequest, user_id: str | None = None) -> dict[str, Any]:
        body, response = await self._call(request)
        if body is None:
            # 204 No Content after a write: keep what the headers tell (the new version).
            etag = etag_of(response.headers, None)
            if user_id is None or etag is None:
                return {}
            return {"id": user_id, "meta": {"version": etag}}
        if not isinstance(body, dict):
            raise ScimError(
                f"HTTP {response.status_code} to {request.method} {response.request.url.path} "
                "is not a JSON object",
                status=response.status_code,
            )
        return body

    # -- discovery ---------------------------------------------------------------------------

    async def service_provider_config(self) -> dict[str, Any]:
        """The server's ServiceProviderConfig."""
        return await self._object(prepare_discovery(self.config.flavor, "service_provider_config"))

    async def schemas(self) -> list[dict[str, Any]]:
        """The schemas the server serves (from a ListResponse or a bare list)."""
        body, _ = await self._call(prepare_discovery(self.config.flavor, "schemas"))
        if isinstance(body, list):
            return [item for item in body if isinstance(item, dict)]
        return parse_list_response(body or {}, 1).resources

    # -- users -------------------------------------------------------------------------------

    async def iter_users(
        self,
        filter: str | None = None,
        attributes: Sequence[str] | None = None,
        excluded_attributes: Sequence[str] | None = None,
        count: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every user of a listing, page by page (1-based ``startIndex``), until
        ``totalResults`` is reached or a page comes back short or empty.

        The listing is checked as it is read, because a caller may take "not listed" for
        "not there": a page whose echoed ``startIndex`` is not the one asked for, an id seen
        twice, a ``totalResults`` that changes between pages or that the ids collected do not
        add up to raise :class:`ScimListingInconsistent` (which check, and the numbers).
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        which = "the user listing" + (" (filtered)" if filter else "")
        seen: set[str] = set()
        received = 0
        pages = 0
        total: int | None = None
        start: int | None = 1
        while start is not None:
            request = prepare_list_users(
                self.config.users_path or "/Users",
                filter=filter,
                attributes=attributes,
                excluded_attributes=excluded_attributes,
                start_index=start,
                count=count,
            )
            body, response = await self._call(request)
            try:
                page = parse_list_response(body, start)
            except ValueError as exc:
                raise ScimError(
                    f"HTTP {response.status_code} to GET {response.request.url.path} "
                    "is not a ListResponse",
                    status=response.status_code,
                ) from exc
            pages += 1
            if page.echoed_start_index is not None and page.echoed_start_index != start:
                raise ScimListingInconsistent(
                    f"{which} is inconsistent (startIndex): page {pages} asked for "
                    f"startIndex={start}, the server answered startIndex="
                    f"{page.echoed_start_index}",
                    check="startIndex",
                )
            if page.total_results is not None:
                if total is not None and page.total_results != total:
                    raise ScimListingInconsistent(
                        f"{which} is inconsistent (totalResults): page 1 said "
                        f"totalResults={total}, page {pages} says {page.total_results}",
                        check="totalResults",
                    )
                total = page.total_results
            for resource in page.resources:
                user_id = resource.get("id")
                if isinstance(user_id, str) and user_id:
                    if user_id in seen:
                        raise ScimListingInconsistent(
                            f"{which} is inconsistent (duplicate ids): page {pages} "
                            f"(startIndex={start}) repeats a user id already listed, after "
                            f"{received} users of totalResults={total}",
                            check="duplicate ids",
                        )
                    seen.add(user_id)
                received += 1
                yield resource
            start = next_start_index(page, start, count)
        if total is not None and received != total:
            raise ScimListingInconsistent(
                f"{which} is inconsistent (totalResults): the server said totalResults={total}, "
                f"its {pages} page(s) held {received} users",
                check="totalResults",
            )

    async def list_all_users(
        self,
        attributes: Sequence[str] | None = None,
        excluded_attributes: Sequence[str] | None = None,
        count: int | None = None,
    ) -> list[dict[str, Any]]:
        """Every user, active and inactive, once each.

        Genesys Cloud lists only active users without a filter, so for that flavor the
        ``active eq false`` listing is read too and merged by id. ``count`` (page size)
        defaults to 25 on Genesys, where bigger pages of untrimmed users can answer 429, and
        to 100 elsewhere.
        """
        filters: list[str | None] = [None]
        if count is None:
            count = GENESYS_PAGE_SIZE if self.config.flavor == "genesys" else DEFAULT_PAGE_SIZE
        if self.config.flavor == "genesys":
            filters.append("active eq false")
        users: dict[str, dict[str, Any]] = {}
        anonymous: list[dict[str, Any]] = []
        for filter in filters:
            async for user in self.iter_users(filter, attributes, excluded_attributes, count):
                user_id = user.get("id")
                if isinstance(user_id, str) and user_id:
                    users.setdefault(user_id, user)
                else:
                    anonymous.append(user)
        return [*users.values(), *anonymous]

    async def get_user(self, user_id: str) -> tuple[dict[str, Any], str | None]:
        """A user and its version (``ETag`` header, else ``meta.version``)."""
        body, response = await self._call(prepare_get_user(self._users_path, user_id))
        user = body if isinstance(body, dict) else {}
        return user, etag_of(response.headers, user)

    async def find_user(self, attribute: str, value: str) -> dict[str, Any] | None:
        """The one user whose ``attribute`` equals ``value``, or None.

        Raises :class:`ScimAmbiguousMatch` when several users match.
        """
        request = prepare_list_users(
            self._users_path, filter=eq_filter(attribute, value), start_index=1, count=2
        )
        body, _ = await self._call(request)
        page = parse_list_response(body, 1)
        matches = max(len(page.resources), page.total_results or 0)
        if matches > 1:
            raise ScimAmbiguousMatch(f"{matches} users match the {attribute} filter")
        return page.resources[0] if page.resources else None

    async def create_user(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Create a user; returns the created resource."""
        return await self._object(prepare_create_user(self._users_path, payload))

    async def replace_user(
        self, user_id: str, payload: Mapping[str, Any], etag: str | None = None
    ) -> dict[str, Any]:
        """Replace a user (PUT), with ``If-Match`` when ``etag`` is given.

        Returns the updated user; after a 204 answer, ``{"id", "meta": {"version"}}`` from the
        ``ETag`` header (or ``{}`` without one).
        """
        request = prepare_replace_user(self._users_path, user_id, payload, etag)
        return await self._object(request, user_id)

    async def patch_user(
        self, user_id: str, operations: Sequence[Mapping[str, Any]], etag: str | None = None
    ) -> dict[str, Any]:
        """Apply PatchOp operations, with ``If-Match`` when ``etag`` is given.

        Returns the updated user; after a 204 answer, ``{"id", "meta": {"version"}}`` from the
        ``ETag`` header (or ``{}`` without one).
        """
        request = prepare_patch_user(self._users_path, user_id, operations, etag)
        return await self._object(request, user_id)

    async def delete_user(self, user_id: str, etag: str | None = None) -> None:
        """Delete a user, with ``If-Match`` when ``etag`` is given.

        A 404 on a retry means an earlier attempt did delete it, and counts as success.
        """
        try:
            await self._call(prepare_delete_user(self._users_path, user_id, etag))
        except ScimNotFound as exc:
            if exc.attempts <= 1:
                raise
            log.info(
                "DELETE %s answered 404 on attempt %d: already deleted", exc.path, exc.attempts
            )

    # -- bulk --------------------------------------------------------------------------------

    async def bulk(
        self, operations: Sequence[Mapping[str, Any]], fail_on_errors: int | None = None
    ) -> dict[str, Any]:
        """Send one RFC 7644 BulkRequest to ``/Bulk``; returns the BulkResponse.

        Only for servers whose ServiceProviderConfig says ``bulk.supported`` (not Genesys
        Cloud); split large sets first with :func:`chunk_bulk_operations`.
        """
        return await self._object(prepare_bulk(operations, fail_on_errors))

    # -- Genesys Public API ------------------------------------------------------------------

    async def list_roles(self) -> list[str]:
        """The names of the organisation's roles (``GET /api/v2/authorization/roles``)."""
        return await self._public_api_names(ROLES_PATH)

    async def list_divisions(self) -> list[str]:
        """The names of the organisation's divisions (``GET /api/v2/authorization/divisions``)."""
        return await self._public_api_names(DIVISIONS_PATH)

    async def _public_api_names(self, path: str) -> list[str]:
        names: list[str] = []
        page_number = 1
        while True:
            request = prepare_public_api_page(path, page_number, PUBLIC_API_PAGE_SIZE)
            body = await self._object(request)
            entities = body.get("entities") or []
            names.extend(
                entity["name"]
                for entity in entities
                if isinstance(entity, dict) and isinstance(entity.get("name"), str)
            )
            page_count = body.get("pageCount")
            if not entities:
                break
            if isinstance(page_count, int):
                if page_number >= page_count:
                    break
            elif len(entities) < PUBLIC_API_PAGE_SIZE:
                break
            page_number += 1
        return names

    @property
    def _users_path(self) -> str:
        return self.config.users_path or "/Users"


@contextmanager
def _token_errors() -> Iterator[None]:
    """Turn what authlib and httpx raise while fetching a token into the client's errors."""
    try:
        yield
    except ScimError:
        raise
    except AuthlibBaseError as exc:
        raise _oauth_error(exc) from exc
    except httpx.HTTPStatusError as exc:
        raise error_from_response(exc.response) from exc
    except httpx.TransportError as exc:
        raise ScimTransportError(
            f"{type(exc).__name__} while fetching an OAuth token", retryable=True
        ) from exc
    except ValueError as exc:
        raise ScimAuthError("The token endpoint's answer is not a token.") from exc


def _json_body(request: ScimRequest, response: httpx.Response) -> Any:
    """A success's JSON body (None when it has none). A body cut short or not JSON is retried:
    every request the client sends is safe to repeat (a create applied already meets a 409
    that the applier resolves by look-up; a write carries ``If-Match``)."""
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise ScimError(
            f"HTTP {response.status_code} to {request.method} {response.request.url.path} "
            "is not JSON",
            status=response.status_code,
            retryable=True,
        ) from exc


def _oauth_error(exc: AuthlibBaseError) -> ScimAuthError:
    error = getattr(exc, "error", None) or type(exc).__name__
    return ScimAuthError(
        f"The OAuth token endpoint refused the client credentials (error={error})",
        code=str(error),
        detail=getattr(exc, "description", None),
    )
