"""Parsing of both error shapes (SCIM and Genesys) into the typed exception tree."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import httpx
import pytest

from genesys_sync.scim.errors import (
    ScimAuthError,
    ScimBadRequest,
    ScimConflict,
    ScimError,
    ScimNotFound,
    ScimRateLimited,
    ScimServerError,
    ScimVersionMismatch,
    error_from_response,
    parse_retry_after,
)

SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def response(
    status: int,
    body: object = None,
    *,
    text: str | None = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    url: str = "https://api.mypurecloud.ie/api/v2/scim/v2/users?filter=userName%20eq%20%22x%22",
) -> httpx.Response:
    request = httpx.Request(method, url)
    if text is not None:
        return httpx.Response(status, text=text, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


def scim_body(status: str, detail: str, scim_type: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"schemas": [SCIM_ERROR], "status": status, "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return body


def genesys_body(status: int, code: str, message: str, **extra: object) -> dict[str, object]:
    return {
        "message": message,
        "code": code,
        "status": status,
        "contextId": "ctx-123",
        "details": [],
        "errors": [],
        **extra,
    }


def test_scim_shape_uniqueness_is_a_conflict_without_the_detail_in_str() -> None:
    detail = "userName jane.doe@example.com is already in use"
    error = error_from_response(response(409, scim_body("409", detail, "uniqueness")))
    assert type(error) is ScimConflict
    assert error.status == 409
    assert error.scim_type == "uniqueness"
    assert error.detail == detail
    assert error.retryable is False
    assert "jane.doe" not in str(error)
    assert "example.com" not in repr(error)
    assert "409" in str(error) and "uniqueness" in str(error)
    assert error.method == "POST" and error.path == "/api/v2/scim/v2/users"
    assert "filter" not in str(error)


def test_genesys_shape_fields_are_read() -> None:
    body = genesys_body(404, "not.found", "User jane@example.com not found")
    error = error_from_response(response(404, body, method="GET"))
    assert type(error) is ScimNotFound
    assert error.code == "not.found"
    assert error.context_id == "ctx-123"
    assert error.detail == "User jane@example.com not found"
    assert "ctx-123" in str(error) and "not.found" in str(error)
    assert "jane" not in str(error)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (412, scim_body("412", "Failed to update. Resource has changed"), ScimVersionMismatch),
        (
            409,
            scim_body("409", "Version does not match current version"),
            ScimVersionMismatch,
        ),
        (
            409,
            genesys_body(409, "conflict", "Version does not match current version"),
            ScimVersionMismatch,
        ),
        (400, scim_body("400", "stale", "invalidVers"), ScimVersionMismatch),
        (409, scim_body("409", "taken", "uniqueness"), ScimConflict),
        (400, scim_body("400", "bad filter", "invalidFilter"), ScimBadRequest),
        (401, genesys_body(401, "authentication.required", "No token"), ScimAuthError),
        (403, genesys_body(403, "missing.permissions", "directory:user:add"), ScimAuthError),
        (413, genesys_body(413, "request.too.large", "too big"), ScimBadRequest),
        (500, genesys_body(500, "internal.server.error", "oops"), ScimServerError),
        (503, genesys_body(503, "service.unavailable", "later"), ScimServerError),
    ],
)
def test_classification(status: int, body: object, expected: type[ScimError]) -> None:
    error = error_from_response(response(status, body))
    assert type(error) is expected
    assert error.status == status


def test_retryable_flags() -> None:
    assert error_from_response(response(503, genesys_body(503, "x", "y"))).retryable
    assert error_from_response(response(500, None, text="")).retryable
    assert error_from_response(response(408, genesys_body(408, "timeout", "t"))).retryable
    assert not error_from_response(response(501, None, text="")).retryable
    assert not error_from_response(response(400, scim_body("400", "x", "invalidValue"))).retryable


def test_429_genesys_shape_with_retry_after() -> None:
    body = genesys_body(
        429,
        "too.many.requests",
        "Rate limit exceeded the maximum",
        limit={"key": "client.credentials.token.rate.per.minute", "namespace": "x", "value": 300},
    )
    error = error_from_response(response(429, body, headers={"Retry-After": "7"}))
    assert isinstance(error, ScimRateLimited)
    assert error.retry_after == 7
    assert error.retryable
    assert "7" in str(error)


def test_non_json_bodies() -> None:
    html = "<html><body>502 Bad Gateway</body></html>"
    error = error_from_response(response(502, None, text=html))
    assert type(error) is ScimServerError
    assert error.detail == html
    assert error.scim_type is None and error.code is None
    assert "Bad Gateway" not in str(error)

    empty = error_from_response(response(404, None, text=""))
    assert type(empty) is ScimNotFound and empty.detail is None

    listing = error_from_response(response(400, ["not", "an", "object"]))
    assert type(listing) is ScimBadRequest


def test_scim_status_as_string_and_genesys_as_int_use_the_http_status() -> None:
    # The HTTP status is authoritative, whatever the body says.
    error = error_from_response(response(409, {"status": 500, "scimType": "uniqueness"}))
    assert type(error) is ScimConflict and error.status == 409


def test_correlation_header_when_the_body_has_no_context_id() -> None:
    error = error_from_response(
        response(500, None, text="oops", headers={"ININ-Correlation-Id": "corr-9"})
    )
    assert error.context_id == "corr-9"


def test_response_without_request() -> None:
    error = error_from_response(httpx.Response(404, json=scim_body("404", "gone")))
    assert type(error) is ScimNotFound
    assert error.method is None and error.path is None


def test_errors_pickle_with_their_attributes() -> None:
    error = error_from_response(
        response(429, genesys_body(429, "c", "m"), headers={"Retry-After": "3"})
    )
    error.attempts = 4
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ScimRateLimited
    assert (copy.status, copy.retry_after, copy.attempts, str(copy)) == (
        429,
        3,
        4,
        str(error),
    )


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("12") == 12
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-3") == 0
    assert parse_retry_after("soon") is None
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now=now) == 30
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0


def test_errors_built_by_callers_get_a_default_message() -> None:
    error = ScimNotFound(status=404, detail="no target id")
    assert str(error) == "HTTP 404: 404: no such resource."
    assert error.detail == "no target id" and not error.retryable
    assert str(ScimError()) == "Any failure of a SCIM (or Genesys Public API) call."
