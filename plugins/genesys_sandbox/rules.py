"""Genesys Cloud rules for users, as pure functions over SCIM user JSON."""

import copy
import re
from typing import Any

from genesys_sandbox.catalogue import Catalogue
from genesys_sandbox.errors import GenesysBadRequest

CORE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GENESYS_SCHEMA = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User"

SYSTEM_AUTHORITY = "x-pc:scimv2:v1"
"""The authority of the external id Genesys gives every SCIM user; clients cannot change it."""

PHONE_TYPES = ("work", "work2", "work3", "work4", "home", "mobile", "other")
MAX_ROUTING_ITEMS = 50
DATE_HIRE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")


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
    _check_date_hire(enterprise.get("dateHire"))
    genesys = user.get(GENESYS_SCHEMA) or {}
    for name in ("routingSkills", "routingLanguages"):
        _check_routing(name, genesys.get(name) or [])


def apply_lifecycle(user: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """Return the user as Genesys stores it after a write.

    - ``active`` left out keeps its previous value (true for a new user);
    - an inactive user has no roles (deactivation strips them, reactivation does not restore them);
    - the ``x-pc:scimv2:v1`` external id cannot be set by clients: theirs are dropped, and the
      previous one is kept (a new user gets one when the storage gives it an id).
    """
    result = copy.deepcopy(user)
    if result.get("active") is None:
        result["active"] = previous.get("active", True) if previous else True
    if result["active"] is False:
        result.pop("roles", None)
    result = _without_system_external_id(result)
    kept = system_external_id(previous) if previous else None
    return with_system_external_id(result, kept["value"]) if kept else result


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


def _check_date_hire(date_hire: str | None) -> None:
    if date_hire is not None and not DATE_HIRE.match(date_hire):
        raise GenesysBadRequest("dateHire must be YYYY-MM-DD", details=[_detail("dateHire")])


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
