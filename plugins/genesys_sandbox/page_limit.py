"""Genesys's 429 for a page of more than 25 users that returns the expensive attributes.

The SDK says a user list with ``count`` over 25 "may exceed internal resource limits and
return a 429" unless ``roles``, ``externalId``, ``routingSkills`` and ``routingLanguages`` are
trimmed with ``excludedAttributes`` or ``attributes``. The sandbox always answers so. Whether an
attribute is trimmed is decided by scim2-models itself: a user holding all four is dumped with
the request's parameters, and any of them that survives means the page is untrimmed.
"""

from typing import Any, NamedTuple

from scim2_models import Context, Resource, SearchRequest

from genesys_sandbox.errors import UntrimmedPageTooLarge
from genesys_sandbox.rules import CORE_SCHEMA, GENESYS_SCHEMA


class PageLimit(NamedTuple):
    """The largest untrimmed page (0: no limit), and the ``Retry-After`` of its 429."""

    max_untrimmed_page_size: int = 0
    retry_after_seconds: int = 1


EXPENSIVE_USER: dict[str, Any] = {
    "schemas": [CORE_SCHEMA, GENESYS_SCHEMA],
    "id": "expensive",
    "userName": "expensive@example.invalid",
    "roles": [{"value": "employee"}],
    "externalId": "expensive",
    GENESYS_SCHEMA: {
        "routingSkills": [{"name": "skill", "proficiency": 1}],
        "routingLanguages": [{"name": "language", "proficiency": 1}],
    },
}
EXPENSIVE_CORE = ("roles", "externalId")
EXPENSIVE_GENESYS = ("routingSkills", "routingLanguages")


def returns_expensive(model: type[Resource[Any]], search_request: SearchRequest[Any]) -> bool:
    """Tell whether a search returns any expensive attribute of its users."""
    dumped = model.model_validate(EXPENSIVE_USER).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=search_request
    )
    genesys = dumped.get(GENESYS_SCHEMA) or {}
    return any(name in dumped for name in EXPENSIVE_CORE) or any(
        name in genesys for name in EXPENSIVE_GENESYS
    )


def check_page_size(
    model: type[Resource[Any]], search_request: SearchRequest[Any], limit: PageLimit
) -> None:
    """Refuse a page over the limit that returns expensive attributes.

    :raises UntrimmedPageTooLarge: A 429, answered with a Genesys body and ``Retry-After``.
    """
    count = search_request.count or 0
    size = limit.max_untrimmed_page_size
    if size and count > size and returns_expensive(model, search_request):
        raise UntrimmedPageTooLarge(count, size, limit.retry_after_seconds)
