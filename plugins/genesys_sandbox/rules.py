"""Genesys Cloud rules for users, as pure functions over SCIM user JSON."""

import copy
import datetime
from collections.abc import Callable
from typing import Any

from genesys_sandbox.catalogue import DEFAULT_ROLE, Catalogue
from genesys_sandbox.errors import GenesysBadRequest, UnknownManager

CORE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GENESYS_SCHEMA = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User"

SYSTEM_AUTHORITY = "x-pc:scimv2:v1"
"""The authority of the external id Genesys gives every SCIM user; clients cannot change it."""

PHONE_TYPES = (
    "work",
    "work2",
    "work3",
    "work4",
    "home",
    "mobile",
    "other",
    "microsoftteams",
    "zoomphone",
    "eightbyeight",
    "ringcentral",
)
"""The phone types of the SDK's enum (269.0.0); the last four are written by integrations."""

MAX_ROUTING_ITEMS = 50


def check_user(user: dict[str, Any], catalogue: Catalogue) -> None:
    """Refuse a user Genesys would refuse, with a 400 naming what is wrong.

    Messages name attributes, types and catalogue names, never personal values.

    :raises GenesysBadRequest: On the first broken rule.
    """
    if not user.get("displayName"):
        raise GenesysBadRequest("displayName is required", details=[_detail("displayName")])
    _check_phone_types(user.get("phoneNumbers") or [])
    _check_roles(user.get("roles") or [], catalogue)
    enterprise = user.get(ENTERPRISE_SCHEMA) or {}
    _check_division(enterprise.get("division"), catalogue)
    if enterprise.get("dateHire") is not None:
        hire_date(enterprise["dateHire"])
    genesys = user.get(GENESYS_SCHEMA) or {}
    for name in ("routingSkills", "routingLanguages"):
        _check_routing(name, genesys.get(name) or [])


def check_manager(
    user: dict[str, Any], previous: dict[str, Any] | None, user_exists: Callable[[str], bool]
) -> None:
    """Refuse a ``manager.value`` that is not the id of an existing user.

    Only a manager the write sets or changes is checked, so that a user whose manager was
    deleted since can still be updated.

    :raises UnknownManager: When the manager does not exist.
    """
    manager = _manager_id(user)
    if manager is None or manager == (_manager_id(previous) if previous else None):
        return
    if not user_exists(manager):
        raise UnknownManager(detail=f"The manager {manager} does not exist.")


def apply_lifecycle(user: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """Return the user as Genesys stores it after a write.

    - ``active`` left out keeps its previous value (true for a new user);
    - a new user gets the default ``employee`` role besides the roles it was sent;
      deactivation keeps the roles (only a deletion loses them);
    - ``dateHire`` is stored as ``YYYY-MM-DD``, whatever ISO 8601 form it was sent in;
    - the ``x-pc:scimv2:v1`` external id cannot be set by clients: theirs are dropped, and the
      previous one is kept (a new user gets one when the storage gives it an id).
    """
    result = copy.deepcopy(user)
    if result.get("active") is None:
        result["active"] = previous.get("active", True) if previous else True
    if previous is None:
        result["roles"] = with_default_role(result.get("roles") or [])
    enterprise = result.get(ENTERPRISE_SCHEMA) or {}
    if enterprise.get("dateHire") is not None:
        enterprise["dateHire"] = hire_date(enterprise["dateHire"]).isoformat()
    result = _without_system_external_id(result)
    kept = system_external_id(previous) if previous else None
    return with_system_external_id(result, kept["value"]) if kept else result


def with_default_role(roles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the roles with the default ``employee`` role added when it is missing."""
    if any(role.get("value") == DEFAULT_ROLE for role in roles):
        return roles
    return [*roles, {"value": DEFAULT_ROLE}]


def hire_date(value: Any) -> datetime.date:
    """Read a ``dateHire``: an ISO 8601 date, or a datetime (with ``Z`` or an offset).

    A datetime gives the date as written, in its own offset.

    :raises GenesysBadRequest: When the value is not ISO 8601.
    """
    text = value.strip() if isinstance(value, str) else ""
    try:
        if "T" in text or " " in text:
            return datetime.datetime.fromisoformat(text).date()
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise GenesysBadRequest(
            "dateHire must be an ISO 8601 date or datetime, such as 2024-03-01",
            details=[_detail("dateHire")],
        ) from None


def _manager_id(user: dict[str, Any]) -> str | None:
    manager = (user.get(ENTERPRISE_SCHEMA) or {}).get("manager") or {}
    value = manager.get("value")
    return str(value) if value else None


def system_external_id(user: dict[str, Any]) -> dict[str, Any] | None:
    """Return the ``x-pc:scimv2:v1`` external id item of a user, if any."""
    items = (user.get(GENESYS_SCHEMA) or {}).get("externalIds") or []
    return next((item for item in items if item.get("authority") == SYSTEM_AUTHORITY), None)


def with_system_external_id(user: dict[str, Any], value: str) -> dict[str, Any]:
    """Return the user with its ``x-pc:scimv2:v1`` external id set to ``value``."""
    result = _without_system_external_id(user)
    extension = result.setdefault(GENESYS_SCHEMA, {})
    extension["externalIds"] = [
        *(extension.get("externalIds") or []),
        {"authority": SYSTEM_AUTHORITY, "value": value},
    ]
    schemas = result.setdefault("schemas", [CORE_SCHEMA])
    if GENESYS_SCHEMA not in schemas:
        schemas.append(GENESYS_SCHEMA)
    return result


def _without_system_external_id(user: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(user)
    extension = result.get(GENESYS_SCHEMA)
    if extension and extension.get("externalIds"):
        extension["externalIds"] = [
            item for item in extension["externalIds"] if item.get("authority") != SYSTEM_AUTHORITY
        ] or None
        if extension["externalIds"] is None:
            del extension["externalIds"]
    return result


def _detail(
    field: str, error_code: str = "invalid.value", name: str | None = None
) -> dict[str, Any]:
    detail: dict[str, Any] = {"errorCode": error_code, "fieldName": field}
    if name is not None:
        detail["entityName"] = name
    return detail


def _check_phone_types(phones: list[dict[str, Any]]) -> None:
    for phone in phones:
        if phone.get("type") not in PHONE_TYPES:
            raise GenesysBadRequest(
                f"Every phoneNumbers item needs a type among {', '.join(PHONE_TYPES)}",
                details=[_detail("phoneNumbers.type")],
            )


def _check_roles(roles: list[dict[str, Any]], catalogue: Catalogue) -> None:
    unknown = [r.get("value") for r in roles if r.get("value") not in catalogue.roles]
    if unknown:
        raise GenesysBadRequest(
            f"Unknown role name(s): {', '.join(map(str, unknown))}",
            details=[_detail("roles", "role.not.found", str(name)) for name in unknown],
        )


def _check_division(division: str | None, catalogue: Catalogue) -> None:
    if division is not None and division not in catalogue.divisions:
        raise GenesysBadRequest(
            f"Unknown division name: {division}",
            details=[_detail("division", "division.not.found", division)],
        )


def _check_routing(name: str, items: list[dict[str, Any]]) -> None:
    if len(items) > MAX_ROUTING_ITEMS:
        raise GenesysBadRequest(
            f"{name} holds at most {MAX_ROUTING_ITEMS} items", details=[_detail(name)]
        )
    for item in items:
        proficiency = item.get("proficiency")
        if proficiency is not None and not 0 <= proficiency <= 5:
            raise GenesysBadRequest(
                f"{name} proficiency must be between 0 and 5", details=[_detail(name)]
            )
