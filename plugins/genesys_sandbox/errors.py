"""Genesys Cloud error bodies, and the exception that carries a Genesys 400 through scim2-server."""

import uuid
from collections.abc import Iterable
from typing import Any

from scim2_models import InvalidValueException, SCIMException

MAX_BODY_BYTES = 512_000
"""Genesys Cloud refuses request bodies larger than this, with a 413."""

GENESYS_CODES = {
    400: "bad.request",
    401: "bad.credentials",
    403: "missing.permissions",
    404: "not.found",
    405: "method.not.allowed",
    408: "request.timeout",
    413: "request.entity.too.large",
    415: "unsupported.media.type",
    429: "too.many.requests",
    500: "internal.server.error",
    501: "not.implemented",
    503: "service.unavailable",
}

RATE_LIMIT_KEY = "client.credentials.token.rate.per.minute"
PAGE_LIMIT_KEY = "scim.users.untrimmed.page.size"
"""The sandbox's name for the page-size limit: Genesys's ``scim`` limit keys are not known."""


def genesys_error(
    status: int,
    message: str,
    *,
    code: str | None = None,
    details: Iterable[dict[str, Any]] = (),
    **extra: Any,
) -> dict[str, Any]:
    """Return a Genesys error body: ``{message, code, status, contextId, details, errors}``."""
    return {
        "message": message,
        "code": code or GENESYS_CODES.get(status, "error"),
        "status": status,
        "contextId": str(uuid.uuid4()),
        "details": list(details),
        "errors": [],
        **extra,
    }


def rate_limit_error(limit: int) -> dict[str, Any]:
    """Return the Genesys 429 body of the per-token rate limit."""
    return genesys_error(
        429,
        f"Rate limit exceeded the maximum. [{limit}] requests for [60] seconds",
        limit={"key": RATE_LIMIT_KEY, "namespace": "platform.api", "value": limit},
    )


def page_limit_error(count: int, limit: int) -> dict[str, Any]:
    """Return the Genesys 429 body of a user page over ``limit`` that trims nothing expensive."""
    return genesys_error(
        429,
        f"A page of {count} users over {limit} must trim the expensive attributes (roles, "
        "externalId, routingSkills, routingLanguages) with excludedAttributes or attributes.",
        limit={"key": PAGE_LIMIT_KEY, "namespace": "scim", "value": limit},
    )


class UnknownManager(InvalidValueException):
    """A ``manager.value`` that is no user's id: a 400 SCIM error, ``scimType: invalidValue``."""


class UntrimmedPageTooLarge(SCIMException):
    """A user page over the limit that returns the expensive attributes: a Genesys 429."""

    status = 429

    def __init__(self, count: int, limit: int, retry_after_seconds: int) -> None:
        super().__init__(detail=f"untrimmed page of {count} over {limit}")
        self.count = count
        self.limit = limit
        self.retry_after_seconds = retry_after_seconds


class GenesysBadRequest(InvalidValueException):
    """A request Genesys answers with a 400 Genesys body, such as an unknown role name.

    It is a SCIM ``invalidValue`` error, so that scim2-server handles it as a client
    error (bulk operations included); the application turns it into a Genesys body.
    """

    def __init__(
        self, message: str, *, code: str = "bad.request", details: Iterable[dict[str, Any]] = ()
    ) -> None:
        super().__init__(detail=message)
        self.code = code
        self.details = list(details)
