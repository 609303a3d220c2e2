"""The sandbox WSGI application: routing, body limit, faults, rate limit and counters."""

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from genesys_sandbox.admin_api import AdminApi
from genesys_sandbox.authorization_api import AuthorizationApi
from genesys_sandbox.catalogue import Catalogue
from genesys_sandbox.errors import MAX_BODY_BYTES, genesys_error, rate_limit_error
from genesys_sandbox.faults import Fault, Faults
from genesys_sandbox.oauth import TokenEndpoint
from genesys_sandbox.options import SandboxOptions
from genesys_sandbox.page_limit import PageLimit
from genesys_sandbox.provider import load_provider
from genesys_sandbox.rate_limit import SlidingWindowLimiter
from genesys_sandbox.scim_app import GenesysScimApplication
from genesys_sandbox.service import GenesysScimService
from genesys_sandbox.stats import Stats
from genesys_sandbox.storage import SandboxStorage
from genesys_sandbox.tokens import TokenStore
from genesys_sandbox.wsgi_io import bearer_token, content_length, drain_body, json_response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("genesys_sandbox")

RESET_CONNECTION = "genesys_sandbox.reset_connection"
"""The environ key of the callable that makes the server reset the request's TCP connection."""

API_PREFIX = "/api/v2/"
SCIM_MOUNT = "/api/v2/scim"
TOKEN_PATH = "/oauth/token"
ADMIN_PREFIX = "/_sandbox/"


class SandboxApplication:
    """Route requests to the token endpoint, the SCIM users, the catalogue and the admin API.

    Every ``/api/v2/`` request goes through, in order: the 512,000-byte body limit (413),
    latency, forced 429s, malformed answers, connection resets, random 503s, then the per-token
    rate limit (429). A user list over ``max_untrimmed_page_size`` that returns the expensive
    attributes answers 429 too, once authenticated. The admin endpoints skip all of it and are
    not counted.
    """

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.tokens = TokenStore()
        self.limiter = SlidingWindowLimiter()
        self.faults = Faults(options.faults)
        self.stats = Stats()
        provider = load_provider(bulk=options.bulk)
        self.storage = SandboxStorage(options.data_file)
        service = GenesysScimService(
            provider,
            Catalogue.load(options.catalogue),
            user_exists=self.storage.has_user,
            page_limit=self.page_limit,
        )
        self.storage.load(service.get_model(service.get_resource_type("User")))
        self.scim = GenesysScimApplication(self.storage, provider, service, self.tokens, self.stats)
        self.authorization = AuthorizationApi(service.catalogue)
        self.token_endpoint = TokenEndpoint(
            options.client_id, options.client_secret, self.tokens, self.faults, self.stats
        )
        self.admin = AdminApi(self)

    def page_limit(self) -> PageLimit:
        """The current limit of untrimmed user pages, from the knobs."""
        settings = self.faults.settings
        return PageLimit(settings.max_untrimmed_page_size, settings.retry_after_seconds)

    def reset(self) -> None:
        """Delete every user, zero the counters and the rate windows, restore the start knobs."""
        self.storage.clear()
        self.stats.clear()
        self.limiter.clear()
        self.faults.reset()

    def __call__(
        self, environ: "WSGIEnvironment", start_response: "StartResponse"
    ) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if path.startswith(ADMIN_PREFIX):
            return self.admin(environ, start_response)
        method: str = environ["REQUEST_METHOD"]

        def counted(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            self.stats.record(method, int(status.split()[0]))
            return start_response(status, headers, exc_info)

        if content_length(environ) > MAX_BODY_BYTES:
            drain_body(environ)
            message = f"The request body exceeds the maximum of {MAX_BODY_BYTES} bytes."
            return json_response(counted, 413, genesys_error(413, message))
        if path == TOKEN_PATH:
            return self.token_endpoint(environ, counted)
        if path.startswith(API_PREFIX):
            return self.serve_api(environ, counted, path)
        return json_response(counted, 404, genesys_error(404, "Not found."))

    def serve_api(
        self, environ: "WSGIEnvironment", start_response: "StartResponse", path: str
    ) -> Iterable[bytes]:
        """Apply the faults and the rate limit to an API request, then serve it."""
        settings = self.faults.settings
        if settings.latency_ms:
            time.sleep(settings.latency_ms / 1000)
        fault = self.faults.draw()
        if fault is Fault.FORCED_429:
            retry_after = {"Retry-After": str(settings.retry_after_seconds)}
            body = rate_limit_error(settings.requests_per_minute)
            return json_response(start_response, 429, body, retry_after)
        if fault is Fault.MALFORMED:
            return malformed_response(start_response, settings.malformed_kind)
        if fault is Fault.RESET and RESET_CONNECTION in environ:
            log.info("%s %s -> connection reset (fault)", environ["REQUEST_METHOD"], path)
            self.stats.record(environ["REQUEST_METHOD"], None)
            environ[RESET_CONNECTION]()
            raise ConnectionResetError("sandbox fault: connection reset")
        if fault is not None:
            body = genesys_error(503, "The service is temporarily unavailable (sandbox fault).")
            return json_response(start_response, 503, body)

        token = bearer_token(environ)
        authenticated = self.tokens.is_valid(token)
        if authenticated:
            key = "client" if settings.rate_limit_per == "client" else str(token)
            retry_after_seconds = self.limiter.acquire(key, settings.requests_per_minute)
            if retry_after_seconds is not None:
                retry_after = {"Retry-After": str(retry_after_seconds)}
                body = rate_limit_error(settings.requests_per_minute)
                return json_response(start_response, 429, body, retry_after)

        if path == SCIM_MOUNT or path.startswith(f"{SCIM_MOUNT}/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + SCIM_MOUNT
            environ["PATH_INFO"] = path.removeprefix(SCIM_MOUNT)
            return self.scim(environ, start_response)
        if not authenticated:
            body = genesys_error(401, "Invalid login credentials.")
            return json_response(start_response, 401, body, {"WWW-Authenticate": "Bearer"})
        if AuthorizationApi.serves(path):
            return self.authorization(environ, start_response)
        return json_response(start_response, 404, genesys_error(404, "Not found."))


HUGE_BODY_BYTES = 16 * 1024 * 1024
_HTML_502 = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>nginx</center></body></html>"
)


def malformed_response(start_response: "StartResponse", kind: str) -> Iterable[bytes]:
    """An answer no SCIM server should give (the request itself is not served)."""
    if kind == "invalid_json":
        status, media, body = "200 OK", "application/scim+json", b'{"schemas": ["urn:ietf:par'
    elif kind == "html_error":
        status, media, body = "502 Bad Gateway", "text/html", _HTML_502
    else:  # huge_body
        status, media = "502 Bad Gateway", "text/html"
        body = _HTML_502 + b"<!-- " + b"x" * HUGE_BODY_BYTES + b" -->"
    start_response(status, [("Content-Type", media), ("Content-Length", str(len(body)))])
    return [body]
