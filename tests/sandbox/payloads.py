"""SCIM payload builders shared by the sandbox tests."""

from typing import Any

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GENESYS = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
GENESYS_ERROR_KEYS = {"message", "code", "status", "contextId", "details", "errors"}


def new_user(number: int = 1, **extra: Any) -> dict[str, Any]:
    """Return a valid user to POST: core, enterprise and Genesys extensions."""
    user: dict[str, Any] = {
        "schemas": [CORE, ENTERPRISE, GENESYS],
        "userName": f"agent{number}@example.com",
        "displayName": f"Agent {number}",
        "externalId": f"E{number:04d}",
        "active": True,
        "emails": [{"value": f"agent{number}@example.com", "type": "work", "primary": True}],
        "phoneNumbers": [{"value": f"+1555000{number:04d}", "type": "work"}],
        "roles": [{"value": "employee"}],
        ENTERPRISE: {"division": "Home", "employeeNumber": f"{number:04d}"},
    }
    user.update(extra)
    return user


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    """Return a PatchOp body."""
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def is_genesys_error(body: dict[str, Any], status: int) -> bool:
    """Tell whether a body is a Genesys error body of this status."""
    return body.keys() >= GENESYS_ERROR_KEYS and body["status"] == status


def is_scim_error(body: dict[str, Any], status: int) -> bool:
    """Tell whether a body is a SCIM error of this status (a string, per RFC 7644)."""
    return body.get("schemas") == [SCIM_ERROR] and body.get("status") == str(status)
