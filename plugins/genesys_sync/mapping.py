"""Map validated HRIS rows to the SCIM users Genesys Cloud should hold.

A desired user is a flat dict of *attribute paths* (``userName``, ``phoneNumbers``,
``urn:...:enterprise:2.0:User:department``...) to canonical values, so that the planner can
compare it with a target user attribute by attribute and send only what differs.

Ownership (what :func:`diff_operations` may change): the sync owns the single-valued attributes
it maps and, of the multi-valued ones, only its own values: the work email, the phone types it
maps (:class:`Ownership`), and the roles it granted itself. A value another owner put on a user
(an admin's role, a Teams number) is never removed and never makes the user look changed.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
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
EMAILS_PATH = "emails"
PHONES_PATH = "phoneNumbers"
#: The email type the sync owns (Genesys's ``other`` email mirrors userName and is read-only).
EMAIL_TYPE = "work"
#: Export column -> SCIM phone type: the phone types the sync owns by default.
DEFAULT_PHONE_TYPES: dict[str, str] = {"work_phone": "work", "mobile_phone": "mobile"}
#: The role Genesys gives every new user: removed only when HR owns all roles.
DEFAULT_ROLE = "employee"
#: Optional export columns -> the attribute each fills. A column the export lacks leaves its
#: attribute alone (so do phone columns, per phone type, and the manager column).
OPTIONAL_COLUMN_PATHS: dict[str, str] = {
    "title": "title",
    "department": f"{ENTERPRISE}:department",
    "division": f"{ENTERPRISE}:division",
    "hire_date": f"{ENTERPRISE}:dateHire",
    "roles": ROLES_PATH,
    "skills": f"{GENESYS}:routingSkills",
    "languages": f"{GENESYS}:routingLanguages",
}
MANAGER_COLUMN = "manager_employee_id"
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
    #: Export columns the row lacks: HR does not manage their attributes in this run, so they
    #: are left out of ``attributes`` (and the manager is left alone): never read as "clear".
    absent: frozenset[str] = frozenset()

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


def _phones(row: Mapping[str, str], phone_types: Mapping[str, str]) -> list[dict[str, str]]:
    phones = []
    for column, kind in phone_types.items():
        value = normalise_phone(row.get(column, ""))
        if value:
            phones.append({"type": kind, "value": value})
    return phones


def normalise_phone(value: str | None) -> str:
    """E.164 text of a phone value (``tel:`` prefix and separators dropped)."""
    if not value:
        return ""
    text = value.strip()
    # Already E.164 (or bare digits), as nearly every export and target value is: as below.
    if text[:1] == "+" and text[1:].isdigit():
        return text
    if text.isdigit():
        return f"+{text}"
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


def desired_user(
    row: Mapping[str, str], phone_types: Mapping[str, str] = DEFAULT_PHONE_TYPES
) -> DesiredUser:
    """The desired SCIM state of one validated export row (canonical column names).

    ``phone_types`` maps the export's phone columns to the SCIM phone types they fill
    (``sync.phone_types``); a column left out is not synced."""
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
        "phoneNumbers": _phones(row, phone_types) or None,
        "roles": [{"value": r} for r in sorted(set(split_list(row.get("roles", ""))))] or None,
        f"{ENTERPRISE}:division": (row.get("division") or "").strip() or None,
        f"{ENTERPRISE}:department": (row.get("department") or "").strip() or None,
        f"{ENTERPRISE}:employeeNumber": employee_id,
        f"{ENTERPRISE}:dateHire": (row.get("hire_date") or "").strip() or None,
        f"{GENESYS}:routingSkills": parse_proficiencies(row.get("skills", "")) or None,
        f"{GENESYS}:routingLanguages": parse_proficiencies(row.get("languages", "")) or None,
    }
    password = (row.get("password") or "").strip() or None
    absent = frozenset(
        c for c in (*OPTIONAL_COLUMN_PATHS, *phone_types, MANAGER_COLUMN) if c not in row
    )
    for column in absent & OPTIONAL_COLUMN_PATHS.keys():
        attributes.pop(OPTIONAL_COLUMN_PATHS[column])
    if phone_types and absent >= phone_types.keys():
        attributes.pop(PHONES_PATH)
    return DesiredUser(employee_id, status, manager, attributes, password, absent)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector meanwhile (reference counting still frees).

    For building many small acyclic objects at once: each collection walks every container
    alive, so building 100,000 desired users paid several passes over a heap growing to
    millions of dicts and lists, more than the users took to build."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def desired_users(
    rows: Iterable[Mapping[str, str]], phone_types: Mapping[str, str] = DEFAULT_PHONE_TYPES
) -> dict[str, DesiredUser]:
    """Desired users by employee id, in export order (built with :func:`gc_paused`: they
    hold no reference cycles)."""
    users: dict[str, DesiredUser] = {}
    with gc_paused():
        for row in rows:
            user = desired_user(row, phone_types)
            users[user.employee_id] = user
    return users


# --- Reading a target user back into the same shape -------------------------------------------


def _schema_part(user: Mapping[str, Any], path: str) -> Any:
    if path.startswith("urn:"):
        schema, _, attribute = path.rpartition(":")
        return (user.get(schema) or {}).get(attribute)
    return user.get(path)


def _canonical_emails(value: Any) -> Any:
    work = [e for e in value if (e.get("type") or "work") == "work" and e.get("value")]
    return [{"type": "work", "value": work[0]["value"].lower()}] if work else None


def _canonical_phones(value: Any) -> Any:
    phones = sorted(
        (p.get("type") or "", normalise_phone(p.get("value"))) for p in value if p.get("value")
    )
    return [{"type": t, "value": v} for t, v in phones] or None


def _canonical_roles(value: Any) -> Any:
    return sorted({r.get("value") for r in value if r.get("value")}) or None


def _canonical_manager(value: Any) -> Any:
    return value.get("value") if isinstance(value, Mapping) else value


def _canonical_proficiencies(value: Any) -> Any:
    return sorted((i["name"], float(i.get("proficiency") or 0)) for i in value) or None


#: The paths whose values :func:`canonical` normalises (the others compare as they are).
_CANONICAL: dict[str, Callable[[Any], Any]] = {
    EMAILS_PATH: _canonical_emails,
    PHONES_PATH: _canonical_phones,
    ROLES_PATH: _canonical_roles,
    MANAGER_PATH: _canonical_manager,
    "userName": lambda value: str(value).lower(),
}


def canonical(path: str, value: Any) -> Any:
    """The comparable form of an attribute value, from the target or from the export."""
    if value in (None, "", [], {}):
        return None
    convert = _CANONICAL.get(path)
    if convert is not None:
        return convert(value)
    if path.endswith(("routingSkills", "routingLanguages")):
        return _canonical_proficiencies(value)
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


# --- Ownership: what the sync may change on one user ------------------------------------------


@dataclass(frozen=True)
class Ownership:
    """The values of a user's multi-valued attributes that the sync owns.

    ``phone_types``: the phone types it maps (it sets and removes numbers of these types only);
    ``granted_roles``: the roles it granted this user (the last applied set, from the state);
    ``roles_authoritative``: HR owns every role (``sync.roles: authoritative``), so a role the
    export does not list is removed, ``employee`` included. The work email is always owned.
    """

    phone_types: tuple[str, ...] = tuple(DEFAULT_PHONE_TYPES.values())
    granted_roles: tuple[str, ...] = ()
    roles_authoritative: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "phone_types": list(self.phone_types),
            "granted_roles": list(self.granted_roles),
            "roles_authoritative": self.roles_authoritative,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Ownership:
        data = data or {}
        return cls(
            phone_types=tuple(data.get("phone_types") or DEFAULT_PHONE_TYPES.values()),
            granted_roles=tuple(data.get("granted_roles") or ()),
            roles_authoritative=bool(data.get("roles_authoritative", False)),
        )


def _filter_literal(value: str) -> str:
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _typed(items: Any, kind: str) -> list[dict[str, Any]]:
    return [i for i in items or [] if isinstance(i, Mapping) and i.get("type") == kind]


def _typed_items_ops(
    path: str, desired: Any, current: Any, kinds: Iterable[str], key
) -> list[dict[str, Any]]:
    """Ops making the items of the owned ``kinds`` equal the desired ones, others untouched:
    ``remove path[type eq "k"]`` for each owned type that differs, then one ``add``."""
    removes: list[dict[str, Any]] = []
    adds: list[dict[str, Any]] = []
    for kind in dict.fromkeys(kinds):
        want = _typed(desired, kind)
        have = _typed(current, kind)
        if [i.get("value") for i in want] == [i.get("value") for i in have]:
            continue  # the same values as sent: no need to normalise them
        if sorted(map(key, want)) == sorted(map(key, have)):
            continue
        if have:
            removes.append({"op": "remove", "path": f"{path}[type eq {_filter_literal(kind)}]"})
        adds.extend(dict(item) for item in want)
    return removes + ([{"op": "add", "path": path, "value": adds}] if adds else [])


def role_names(value: Any) -> set[str]:
    return {r.get("value") for r in value or [] if isinstance(r, Mapping) and r.get("value")}


def _roles_ops(
    desired: Any, current: Any, ownership: Ownership, resend: bool
) -> list[dict[str, Any]]:
    """Add the roles HR lists; remove only the roles the sync owns (see :class:`Ownership`)."""
    want, have = role_names(desired), role_names(current)
    if ownership.roles_authoritative:
        remove = have - want
    else:
        remove = (set(ownership.granted_roles) - want) & have - {DEFAULT_ROLE}
    add = want if resend else want - have
    ops: list[dict[str, Any]] = [
        {"op": "remove", "path": f"roles[value eq {_filter_literal(name)}]"}
        for name in sorted(remove)
    ]
    if add:
        ops.append({"op": "add", "path": ROLES_PATH, "value": [{"value": r} for r in sorted(add)]})
    return ops


def attribute_operations(
    path: str,
    desired: Any,
    user: Mapping[str, Any],
    ownership: Ownership,
    *,
    resend_roles: bool = False,
) -> list[dict[str, Any]]:
    """The PatchOp operations that give ``user`` the desired value of one attribute path, as far
    as the sync owns it (``[]`` when it already holds it). ``desired`` None means "HR has no
    value": the sync's value is removed."""
    current = _schema_part(user, path)
    if path == EMAILS_PATH:
        return _typed_items_ops(
            path, desired, current, (EMAIL_TYPE,), lambda e: str(e.get("value") or "").lower()
        )
    if path == PHONES_PATH:
        return _typed_items_ops(
            path,
            desired,
            current,
            ownership.phone_types,
            lambda p: normalise_phone(p.get("value")),
        )
    if path == ROLES_PATH:
        return _roles_ops(desired, current, ownership, resend_roles)
    if desired == current or canonical(path, desired) == canonical(path, current):
        return []
    if desired is None:
        return [{"op": "remove", "path": path}]
    return [{"op": "replace", "path": path, "value": payload_value(path, desired)}]


def diff_operations(
    desired: Mapping[str, Any], user: Mapping[str, Any], ownership: Ownership
) -> dict[str, list[dict[str, Any]]]:
    """Attribute path -> the operations that make ``user`` hold what ``desired`` says, for the
    paths that differ (in ``desired``'s order). A user made active again gets its roles sent
    again (harmless where it kept them; needed where it was deleted and re-enabled)."""
    resend = desired.get("active") is True and user.get("active", True) is False
    out: dict[str, list[dict[str, Any]]] = {}
    for path, value in desired.items():
        ops = attribute_operations(path, value, user, ownership, resend_roles=resend)
        if ops:
            out[path] = ops
    return out


def flatten_operations(operations: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The PatchOp ``Operations`` list of a :func:`diff_operations` result."""
    return [op for ops in operations.values() for op in ops]


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


def unsupported_paths(schemas: list[dict[str, Any]] | None) -> tuple[str, ...]:
    """The mapped attribute paths a target's ``/Schemas`` does not declare: never synced there."""
    supported = set(supported_paths(schemas))
    return tuple(p for p in MANAGED_PATHS if p not in supported)
