"""Small WSGI helpers: JSON responses, query strings, bodies and bearer tokens."""

import json
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

JSON_MEDIA_TYPE = "application/json"


def json_response(
    start_response: "StartResponse",
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
) -> Iterable[bytes]:
    """Send a JSON response."""
    payload = json.dumps(body).encode()
    all_headers = {"Content-Type": JSON_MEDIA_TYPE, "Cache-Control": "no-store", **(headers or {})}
    all_headers["Content-Length"] = str(len(payload))
    start_response(f"{status} {HTTPStatus(status).phrase}", list(all_headers.items()))
    return [payload]


def query_params(environ: "WSGIEnvironment") -> dict[str, str]:
    """Return the query parameters of a request (the last value of a repeated one)."""
    return dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))


def content_length(environ: "WSGIEnvironment") -> int:
    """Return the declared body size of a request, 0 when absent or invalid."""
    try:
        return max(int(environ.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


def read_body(environ: "WSGIEnvironment") -> bytes:
    """Read the whole body of a request."""
    size = content_length(environ)
    return environ["wsgi.input"].read(size) if size else b""


def drain_body(environ: "WSGIEnvironment", limit: int = 16 * 1024 * 1024) -> None:
    """Read and drop a request body, so that the client can read the answer to it."""
    remaining = min(content_length(environ), limit)
    while remaining > 0:
        chunk = environ["wsgi.input"].read(min(remaining, 65536))
        if not chunk:
            return
        remaining -= len(chunk)


def bearer_token(environ: "WSGIEnvironment") -> str | None:
    """Return the bearer token of a request, if any."""
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
