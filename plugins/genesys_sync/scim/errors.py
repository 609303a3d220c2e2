"""The SCIM client's exception tree, and the parsing of both error shapes a server may answer."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

__all__ = [
    "ScimAmbiguousMatch",
    "ScimAuthError",
    "ScimBadRequest",
    "ScimConfigError",
    "ScimConflict",
    "ScimError",
    "ScimListingInconsistent",
    "ScimNotFound",
    "ScimRateLimited",
    "ScimServerError",
    "ScimTransportError",
    "ScimVersionMismatch",
    "error_from_response",
    "parse_retry_after",
]

_MAX_DETAIL_CHARS = 2000
_VERSION_WORDS = re.compile(r"\bversion", re.IGNORECASE)


def _rebuild(cls: type[ScimError], message: str, state: dict[str, Any]) -> ScimError:
    """Unpickle a :class:`ScimError` (its keyword-only constructor defeats the default)."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ScimError(Exception):
    """Any failure of a SCIM (or Genesys Public API) call.

    ``str(error)`` names the request, the status, the SCIM type, the Genesys code and the
    correlation id, never the server's text: ``detail`` may quote personal data (an email in a
    uniqueness message), so it is only an attribute. ``retryable`` says whether sending the same
    request again may succeed; ``attempts`` how many times the client sent it.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        scim_type: str | None = None,
        code: str | None = None,
        context_id: str | None = None,
        detail: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        if message is None:
            summary = (type(self).__doc__ or "SCIM call failed").strip().splitlines()[0]
            message = f"HTTP {status}: {summary}" if status is not None else summary
        super().__init__(message)
        self.message = message
        self.status = status
        self.scim_type = scim_type
        self.code = code
        self.context_id = context_id
        self.detail = detail
        self.retryable = retryable
        self.retry_after = retry_after
        self.method = method
        self.path = path
        self.attempts = 1

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


class ScimConfigError(ScimError, ValueError):
    """The connection settings are missing or wrong; the message says what to fix."""


class ScimAuthError(ScimError):
    """401 or 403, or the token endpoint refused the client credentials."""


class ScimNotFound(ScimError):
    """404: no such resource."""


class ScimConflict(ScimError):
    """409 uniqueness: a value (``userName``, ``externalId``) is already taken."""


class ScimVersionMismatch(ScimError):
    """The ``If-Match`` version is stale: 412, a 409 about versions, or 400 ``invalidVers``."""


class ScimBadRequest(ScimError):
    """Any other 4xx: the request itself is wrong (filter, syntax, value, size, permission)."""


class ScimRateLimited(ScimError):
    """429: too many requests; ``retry_after`` holds the server's ``Retry-After`` in seconds."""


class ScimServerError(ScimError):
    """5xx: the server failed; usually worth retrying."""


class ScimTransportError(ScimError):
    """No answer: a timeout, a refused or reset connection, a protocol error."""


class ScimAmbiguousMatch(ScimError):
    """A lookup that must find at most one resource found several."""


class ScimListingInconsistent(ScimError):
    """A paged listing contradicts itself: its pages cannot be the whole, trusted set.

    ``check`` names the failed check (``startIndex``, ``duplicate ids``, ``totalResults``);
    the message gives the numbers. Nothing about the listing may be trusted, so a plan built on
    it must stop: a user missing from a partial listing is not a user missing from the target.
    """

    def __init__(self, message: str, *, check: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.check = check


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _request_of(response: httpx.Response) -> tuple[str | None, str | None]:
    try:
        request = response.request
    except RuntimeError:
        return None, None
    return request.method, request.url.path


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text[:_MAX_DETAIL_CHARS]


def _parse_body(response: httpx.Response) -> dict[str, Any]:
    """The error fields of either shape, normalised: scim_type, code, context_id, detail."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        text = response.text.strip() if response.content else ""
        return {"detail": text[:_MAX_DETAIL_CHARS] or None}
    # SCIM: {schemas, status: "409", scimType, detail}
    # Genesys: {message, code, status: 409, contextId, details, errors, limit}
    detail = body.get("detail")
    if detail is None:
        detail = body.get("message")
    extra = [body[key] for key in ("details", "errors") if body.get(key)]
    detail_text = _text(detail)
    if extra:
        extra_text = _text(extra)
        detail_text = f"{detail_text} {extra_text}" if detail_text else extra_text
    scim_type = body.get("scimType")
    code = body.get("code")
    context_id = body.get("contextId")
    return {
        "scim_type": scim_type if isinstance(scim_type, str) else None,
        "code": code if isinstance(code, str) else None,
        "context_id": context_id if isinstance(context_id, str) else None,
        "detail": detail_text[:_MAX_DETAIL_CHARS] if detail_text else None,
    }


def _classify(status: int, scim_type: str | None, code: str | None, detail: str | None):
    """The exception class and whether the same request may succeed if sent again."""
    if status in (401, 403):
        return ScimAuthError, False
    if status == 404:
        return ScimNotFound, False
    if status == 412 or scim_type == "invalidVers":
        return ScimVersionMismatch, False
    if status == 409:
        about_version = bool(_VERSION_WORDS.search(detail or "")) or "version" in (code or "")
        if scim_type != "uniqueness" and about_version:
            return ScimVersionMismatch, False
        return ScimConflict, False
    if status == 429:
        return ScimRateLimited, True
    if status == 408:
        return ScimBadRequest, True
    if 400 <= status < 500:
        return ScimBadRequest, False
    if status >= 500:
        return ScimServerError, status not in (501, 505)
    return ScimError, False


def error_from_response(response: httpx.Response) -> ScimError:
    """The typed error for an unsuccessful response, from either error shape or a bare body."""
    status = response.status_code
    fields = _parse_body(response)
    scim_type = fields.get("scim_type")
    code = fields.get("code")
    context_id = fields.get("context_id") or response.headers.get("inin-correlation-id")
    detail = fields.get("detail")
    cls, retryable = _classify(status, scim_type, code, detail)
    method, path = _request_of(response)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))

    where = f" to {method} {path}" if method else ""
    parts = [f"scimType={scim_type}" if scim_type else "", f"code={code}" if code else ""]
    parts.append(f"contextId={context_id}" if context_id else "")
    extras = ", ".join(part for part in parts if part)
    message = f"HTTP {status}{where}" + (f" ({extras})" if extras else "")
    if retry_after is not None and cls is ScimRateLimited:
        message += f"; retry after {retry_after:g}s"
    return cls(
        message,
        status=status,
        scim_type=scim_type,
        code=code,
        context_id=context_id,
        detail=detail,
        retryable=retryable,
        retry_after=retry_after,
        method=method,
        path=path,
    )
