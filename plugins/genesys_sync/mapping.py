"""Map validated HRIS rows to the SCIM users Genesys Cloud should hold.

A desired user is a flat dict of *attribute paths* (``userName``, ``phoneNumbers``,
``urn:...:enterprise:2.0:User:department``...) to canonical values, so that the planner can
compare it with a target user attribute by attribute and send only what differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

CORE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GENESYS = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

#: Attribute paths the sync manages, in the order they appear in a payload.
MANAGED_PATHS: tuple[str, ...] = (
    "externalId",
    "userName",
    "displayName",
    "title",
    "active",
    "emails",
    "phoneNumbers",
    "roles",
    f"{ENTERPRISE}:division",
    f"{ENTERPRISE}:department",
    f"{ENTERPRISE}:employeeNumber",
    f"{ENTERPRISE}:dateHire",
    f"{ENTERPRISE}:manager",
    f"{GENESYS}:routingSkills",
    f"{GENESYS}:routingLanguages",
)
MANAGER_PATH = f"{ENTERPRISE}:manager"
ROLES_PATH = "roles"
ACTIVE_STATUSES = frozenset({"active"})
STATUSES = frozenset({"active", "leave", "terminated"})


@dataclass(frozen=True)
class DesiredUser:
    """What the HR system says one employee's Genesys user must look like."""

    employee_id: str
    status: str
    manager_employee_id: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    password: str | None = field(default=None, repr=False)

    @property
    def user_name(self) -> str:
        return self.attributes["userName"]

    @property
    def active(self) -> bool:
        return bool(self.attributes["active"])


def split_list(cell: str) -> list[str]:
    """Split a ';'-separated cell into trimmed, non-empty items."""
    return [item.strip() for item in (cell or "").split(";") if item.strip()]


def parse_proficiencies(cell: str) -> list[dict[str, Any]]:
    """``'Billing:4;Spanish:3'`` -> ``[{'name': 'Billing', 'proficiency': 4.0}, ...]`` by name."""
    items: dict[str, float] = {}
    for item in split_list(cell):
        name, _, level = item.rpartition(":")
        if not name:
            name, level = level, "0"
        items[name.strip()] = float(level)
    return [{"name": name, "proficiency": items[name]} for name in sorted(items)]


def _phones(row: Mapping[str, str]) -> list[dict[str, str]]:
    phones = []
    for column, kind in (("work_phone", "work"), ("mobile_phone", "mobile")):
        value = normalise_phone(row.get(column, ""))
        if value:
            phones.append({"type": kind, "value": value})
    return phones


def normalise_phone(value: str | None) -> str:
    """E.164 text of a phone value (``tel:`` prefix and separators dropped)."""
    if not value:
        return ""
    text = value.strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    text, _, extension = text.partition(";ext=")
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        return ""
    number = f"+{digits}"
    return f"tel:{number};ext={extension}" if extension else number


def display_name(row: Mapping[str, str]) -> str:
    name = (row.get("display_name") or "").strip()
    if name:
        return name
    return " ".join(p for p in (row.get("first_name", ""), row.get("last_name", "")) if p).strip()


def desired_user(row: Mapping[str, str]) -> DesiredUser:
    """The desired SCIM state of one validated export row (canonical column names)."""
    employee_id = row["employee_id"].strip()
    status = (row.get("status") or "active").strip().lower()
    email = row["email"].strip()
    manager = (row.get("manager_employee_id") or "").strip() or None
    attributes: dict[str, Any] = {
        "externalId": employee_id,
        "userName": email,
        "displayName": display_name(row),
        "title": (row.get("title") or "").strip() or None,
        "active": status in ACTIVE_STATUSES,
        "emails": [{"type": "work", "value": email, "primary": True}],
        "phoneNumbers": _phones(row) or None,
        "roles": [{"value": r} for r in sorted(set(split_list(row.get("roles", ""))))] or None,
        f"{ENTERPRISE}:division": (row.get("division") or "").strip() or None,
        f"{ENTERPRISE}:department": (row.get("department") or "").strip() or None,
        f"{ENTERPRISE}:employeeNumber": employee_id,
        f"{ENTERPRISE}:dateHire": (row.get("hire_date") or "").strip() or None,
        f"{GENESYS}:routingSkills": parse_proficiencies(row.get("skills", "")) or None,
        f"{GENESYS}:routingLanguages": parse_proficiencies(row.get("languages", "")) or None,
    }
    password = (row.get("password") or "").strip() or None
    return DesiredUser(employee_id, status, manager, attributes, password)


def desired_users(rows: Iterable[Mapping[str, str]]) -> dict[str, DesiredUser]:
    """Desired users by employee id, in export order."""
    users: dict[str, DesiredUser] = {}
    for row in rows:
        user = desired_user(row)
        users[user.employee_id] = user
    return users


# --- Reading a target user back into the same shape -------------------------------------------


def _schema_part(user: Mapping[str, Any], path: str) -> Any:
    if path.startswith("urn:"):
        schema, _, attribute = path.rpartition(":")
        return (user.get(schema) or {}).get(attribute)
    return user.get(path)


def canonical(path: str, value: Any) -> Any:
    """The comparable form of an attribute value, from the target or from the export."""
    if value in (None, "", [], {}):
        return None
    if path == "emails":
        work = [e for e in value if (e.get("type") or "work") == "work" and e.get("value")]
        return [{"type": "work", "value": work[0]["value"].lower()}] if work else None
    if path == "phoneNumbers":
        phones = sorted(
            (p.get("type") or "", normalise_phone(p.get("value"))) for p in value if p.get("value")
        )
        return [{"type": t, "value": v} for t, v in phones] or None
    if path == ROLES_PATH:
        return sorted({r.get("value") for r in value if r.get("value")}) or None
    if path == MANAGER_PATH:
        return value.get("value") if isinstance(value, Mapping) else value
    if path.endswith(("routingSkills", "routingLanguages")):
        return sorted((i["name"], float(i.get("proficiency") or 0)) for i in value) or None
    if path == "userName":
        return str(value).lower()
    return value


def current_attributes(user: Mapping[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """Canonical values of the given attribute paths of a target user."""
    return {path: canonical(path, _schema_part(user, path)) for path in paths}


def payload_value(path: str, value: Any) -> Any:
    """The value to send for an attribute path (the desired form, not the canonical one)."""
    if path == MANAGER_PATH and value is not None:
        return {"value": value}
    return value


def create_payload(
    user: DesiredUser, paths: Iterable[str], manager_id: str | None
) -> dict[str, Any]:
    """The POST body creating a user, restricted to the attribute paths the target supports."""
    body: dict[str, Any] = {"schemas": [CORE_SCHEMA]}
    for path in paths:
        value = manager_id if path == MANAGER_PATH else user.attributes.get(path)
        if value is None:
            continue
        value = payload_value(path, value)
        if path.startswith("urn:"):
            schema, _, attribute = path.rpartition(":")
            body.setdefault(schema, {})[attribute] = value
            if schema not in body["schemas"]:
                body["schemas"].append(schema)
        else:
            body[path] = value
    if user.password:
        body["password"] = user.password
    return body


def patch_operations(changes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """PatchOp operations setting each changed path, or removing it when the value is empty."""
    ops: list[dict[str, Any]] = []
    for path, value in changes.items():
        if value is None:
            ops.append({"op": "remove", "path": path})
        else:
            ops.append({"op": "replace", "path": path, "value": payload_value(path, value)})
    return ops


def supported_paths(schemas: list[dict[str, Any]] | None) -> tuple[str, ...]:
    """The managed attribute paths a target declares in its ``/Schemas`` (all when unknown)."""
    if not schemas:
        return MANAGED_PATHS
    declared: set[str] = set()
    for schema in schemas:
        sid = schema.get("id", "")
        for attribute in schema.get("attributes") or []:
            name = attribute.get("name")
            declared.add(name if sid == CORE_SCHEMA else f"{sid}:{name}")
    return tuple(p for p in MANAGED_PATHS if p in declared or p == "externalId")
