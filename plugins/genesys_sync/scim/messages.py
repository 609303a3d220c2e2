"""Pure SCIM request building and response reading, kept apart from the transport."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

__all__ = [
    "BULK_REQUEST",
    "LIST_RESPONSE",
    "PATCH_OP",
    "SCIM_MEDIA_TYPE",
    "ListPage",
    "ScimRequest",
    "encode_json",
    "eq_filter",
    "etag_of",
    "parse_list_response",
    "prepare_bulk",
    "prepare_create_user",
    "prepare_delete_user",
    "prepare_discovery",
    "prepare_get_user",
    "prepare_list_users",
    "prepare_patch_user",
    "prepare_public_api_page",
    "prepare_replace_user",
    "quote_filter_value",
]

SCIM_MEDIA_TYPE = "application/scim+json"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

_ATTRIBUTE_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9_:.$-]*$")
_DISCOVERY = {
    "genesys": {"service_provider_config": "/serviceproviderconfig", "schemas": "/schemas"},
    "generic": {"service_provider_config": "/ServiceProviderConfig", "schemas": "/Schemas"},
}


@dataclass(frozen=True)
class ScimRequest:
    """One HTTP request, before any transport: a path relative to the SCIM base URL (or to the
    Public API base URL when ``public_api``), query parameters, a body already encoded."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    public_api: bool = False


def encode_json(data: Any) -> bytes:
    """The compact UTF-8 JSON a request body carries (so its size can be measured exactly)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def quote_filter_value(value: str) -> str:
    """A SCIM filter string literal: a JSON string (RFC 7644 3.4.2.2 takes its ``compValue``
    from RFC 7159), so ``"``, ``\\`` and control characters are escaped, the rest kept as is."""
    return json.dumps(value, ensure_ascii=False)


def eq_filter(attribute: str, value: str | bool | int | None) -> str:
    """The filter ``attribute eq value``; strings are quoted, booleans and numbers are not."""
    if not _ATTRIBUTE_PATH.match(attribute or ""):
        raise ValueError(f"Not a SCIM attribute path: {attribute!r}")
    if value is None:
        literal = "null"
    elif isinstance(value, bool):
        literal = "true" if value else "false"
    elif isinstance(value, int | float):
        literal = json.dumps(value)
    else:
        literal = quote_filter_value(str(value))
    return f"{attribute} eq {literal}"


def _user_path(users_path: str, user_id: str) -> str:
    if not user_id:
        raise ValueError("A user id is required")
    return f"{users_path}/{quote(str(user_id), safe='')}"


def _if_match(etag: str | None) -> tuple[tuple[str, str], ...]:
    return (("If-Match", etag),) if etag else ()


def _json_headers(etag: str | None = None) -> tuple[tuple[str, str], ...]:
    return (("Content-Type", SCIM_MEDIA_TYPE), *_if_match(etag))


def prepare_list_users(
    users_path: str,
    *,
    filter: str | None = None,
    attributes: Sequence[str] | None = None,
    excluded_attributes: Sequence[str] | None = None,
    start_index: int = 1,
    count: int = 100,
) -> ScimRequest:
    """``GET /Users`` for one page (``startIndex`` is 1-based)."""
    params: list[tuple[str, str]] = [("startIndex", str(start_index)), ("count", str(count))]
    if filter:
        params.append(("filter", filter))
    if attributes:
        params.append(("attributes", ",".join(attributes)))
    if excluded_attributes:
        params.append(("excludedAttributes", ",".join(excluded_attributes)))
    return ScimRequest("GET", users_path, params=tuple(params))


def prepare_get_user(users_path: str, user_id: str) -> ScimRequest:
    """``GET /Users/{id}``."""
    return ScimRequest("GET", _user_path(users_path, user_id))


def prepare_create_user(users_path: str, payload: Mapping[str, Any]) -> ScimRequest:
    """``POST /Users`` with the resource."""
    return ScimRequest("POST", users_path, body=encode_json(payload), headers=_json_headers())


def prepare_replace_user(
    users_path: str, user_id: str, payload: Mapping[str, Any], etag: str | None = None
) -> ScimRequest:
    """``PUT /Users/{id}``, conditional on ``etag`` when given."""
    return ScimRequest(
        "PUT",
        _user_path(users_path, user_id),
        body=encode_json(payload),
        headers=_json_headers(etag),
    )


def prepare_patch_user(
    users_path: str, user_id: str, operations: Sequence[Mapping[str, Any]], etag: str | None = None
) -> ScimRequest:
    """``PATCH /Users/{id}`` with a PatchOp message, conditional on ``etag`` when given."""
    if not operations:
        raise ValueError("A PATCH needs at least one operation")
    message = {"schemas": [PATCH_OP], "Operations": list(operations)}
    return ScimRequest(
        "PATCH",
        _user_path(users_path, user_id),
        body=encode_json(message),
        headers=_json_headers(etag),
    )


def prepare_delete_user(users_path: str, user_id: str, etag: str | None = None) -> ScimRequest:
    """``DELETE /Users/{id}``, conditional on ``etag`` when given."""
    return ScimRequest("DELETE", _user_path(users_path, user_id), headers=_if_match(etag))


def bulk_message(
    operations: Sequence[Mapping[str, Any]], fail_on_errors: int | None = None
) -> dict[str, Any]:
    """The RFC 7644 BulkRequest message."""
    message: dict[str, Any] = {"schemas": [BULK_REQUEST], "Operations": list(operations)}
    if fail_on_errors is not None:
        message["failOnErrors"] = fail_on_errors
    return message


def prepare_bulk(
    operations: Sequence[Mapping[str, Any]], fail_on_errors: int | None = None
) -> ScimRequest:
    """``POST /Bulk`` with a BulkRequest."""
    body = encode_json(bulk_message(operations, fail_on_errors))
    return ScimRequest("POST", "/Bulk", body=body, headers=_json_headers())


def prepare_discovery(flavor: str, what: str) -> ScimRequest:
    """``GET`` of a discovery endpoint (``service_provider_config`` or ``schemas``)."""
    return ScimRequest("GET", _DISCOVERY[flavor][what])


def prepare_public_api_page(path: str, page_number: int, page_size: int = 100) -> ScimRequest:
    """``GET`` one page of a Genesys Public API listing (``/api/v2/...``)."""
    params = (("pageSize", str(page_size)), ("pageNumber", str(page_number)))
    return ScimRequest("GET", path, params=params, public_api=True)


def etag_of(headers: Mapping[str, str], resource: Mapping[str, Any] | None) -> str | None:
    """A resource's version: the ``ETag`` header, else ``meta.version``."""
    etag = headers.get("ETag") or headers.get("etag")
    if etag:
        return etag
    meta = (resource or {}).get("meta") or {}
    version = meta.get("version") if isinstance(meta, Mapping) else None
    return version if isinstance(version, str) and version else None


@dataclass(frozen=True)
class ListPage:
    """One page of a ListResponse."""

    resources: list[dict[str, Any]]
    total_results: int | None
    start_index: int
    items_per_page: int
    echoed_start_index: int | None = None  # the startIndex the server says it answered


def parse_list_response(body: Any, start_index: int) -> ListPage:
    """Read a ListResponse (``Resources``, ``totalResults``, ``startIndex``, ``itemsPerPage``)."""
    if not isinstance(body, Mapping):
        raise ValueError("A SCIM list answer must be a JSON object")
    resources = body.get("Resources")
    if resources is None:
        resources = body.get("resources") or []
    if not isinstance(resources, list):
        raise ValueError("A SCIM list answer's Resources must be a list")
    total = body.get("totalResults")
    echoed = body.get("startIndex")
    echoed = int(echoed) if isinstance(echoed, int | str) and str(echoed).isdigit() else None
    return ListPage(
        resources=[r for r in resources if isinstance(r, dict)],
        total_results=int(total) if isinstance(total, int | str) and str(total).isdigit() else None,
        start_index=echoed or start_index,
        items_per_page=int(body.get("itemsPerPage") or len(resources)),
        echoed_start_index=echoed,
    )


def next_start_index(page: ListPage, requested_start: int, count: int) -> int | None:
    """Where the next page starts, or None when this page was the last."""
    received = len(page.resources)
    if received == 0:
        return None
    next_start = requested_start + received
    if page.total_results is not None:
        return next_start if next_start <= page.total_results else None
    return next_start if received >= count else None
