"""The OAuth client-credentials token endpoint, ``POST /oauth/token``."""

import base64
import binascii
import hmac
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from genesys_sandbox.errors import genesys_error
from genesys_sandbox.faults import Faults
from genesys_sandbox.stats import Stats
from genesys_sandbox.tokens import TokenStore
from genesys_sandbox.wsgi_io import json_response, read_body

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def basic_credentials(environ: "WSGIEnvironment") -> tuple[str, str] | None:
    """Return the ``(client_id, client_secret)`` of an HTTP Basic header, if any."""
    scheme, _, encoded = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, separator, client_secret = decoded.partition(":")
    return (client_id, client_secret) if separator else None


class TokenEndpoint:
    """Issue bearer tokens to the one configured client, as Genesys's login service does."""

    def __init__(
        self, client_id: str, client_secret: str, tokens: TokenStore, faults: Faults, stats: Stats
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.tokens = tokens
        self.faults = faults
        self.stats = stats

    def is_client(self, credentials: tuple[str, str] | None) -> bool:
        """Tell whether credentials are the configured client's, in constant time."""
        if credentials is None:
            return False
        same_id = hmac.compare_digest(credentials[0].encode(), self.client_id.encode())
        same_secret = hmac.compare_digest(credentials[1].encode(), self.client_secret.encode())
        return same_id and same_secret

    def __call__(
        self, environ: "WSGIEnvironment", start_response: "StartResponse"
    ) -> Iterable[bytes]:
        self.stats.count_token_request()
        if environ["REQUEST_METHOD"] != "POST":
            body = genesys_error(405, "Use POST to request a token.")
            return json_response(start_response, 405, body, {"Allow": "POST"})
        form = dict(parse_qsl(read_body(environ).decode("utf-8", "replace")))
        if not self.is_client(basic_credentials(environ)):
            body = genesys_error(
                401,
                "Invalid client credentials.",
                error="invalid_client",
                error_description="client not found or bad client secret",
            )
            challenge = {"WWW-Authenticate": 'Basic realm="oauth"'}
            return json_response(start_response, 401, body, challenge)
        if form.get("grant_type") != "client_credentials":
            body = genesys_error(
                400,
                "Only grant_type=client_credentials is supported.",
                error="unsupported_grant_type",
                error_description="grant_type must be client_credentials",
            )
            return json_response(start_response, 400, body)
        lifetime = self.faults.settings.token_lifetime_seconds
        token = self.tokens.issue(lifetime)
        body = {"access_token": token, "token_type": "bearer", "expires_in": lifetime}
        return json_response(start_response, 200, body)
