"""The role and division names a sandbox tenant knows, and their Public API listings."""

import json
import math
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ID_NAMESPACE = uuid.UUID("6f4d1c52-4a8e-4b8e-9a53-0c6f3f1e2d7a")
"""Entity ids are uuid5 of this namespace and ``kind:name``, so they are stable per name."""

DEFAULT_ROLE = "employee"
"""The role Genesys gives every new user; every Genesys organisation has it."""


@dataclass(frozen=True)
class Catalogue:
    """Role and division names, as in ``{"roles": [...], "divisions": [...]}``.

    The default ``employee`` role is always there: a file that leaves it out gets it first.
    """

    roles: tuple[str, ...]
    divisions: tuple[str, ...]

    @classmethod
    def load(cls, path: Path) -> "Catalogue":
        """Read a catalogue JSON file."""
        data = json.loads(path.read_text(encoding="utf-8"))
        roles = tuple(str(name) for name in data.get("roles", []))
        return cls(
            roles=roles if DEFAULT_ROLE in roles else (DEFAULT_ROLE, *roles),
            divisions=tuple(str(name) for name in data.get("divisions", [])),
        )

    def names(self, kind: str) -> tuple[str, ...]:
        """Return the names of ``roles`` or ``divisions``."""
        return self.roles if kind == "roles" else self.divisions

    @staticmethod
    def entity_id(kind: str, name: str) -> str:
        """Return the stable id of a named entity."""
        return str(uuid.uuid5(ID_NAMESPACE, f"{kind}:{name}"))

    def listing(self, kind: str, page_size: int, page_number: int, path: str) -> dict[str, Any]:
        """Return one page of a Genesys entity listing of ``roles`` or ``divisions``."""
        names = self.names(kind)
        start = (page_number - 1) * page_size
        page = names[start : start + page_size]
        page_count = math.ceil(len(names) / page_size) if names else 0

        def uri(number: int) -> str:
            return f"{path}?pageSize={page_size}&pageNumber={number}"

        listing: dict[str, Any] = {
            "entities": [{"id": self.entity_id(kind, name), "name": name} for name in page],
            "pageSize": page_size,
            "pageNumber": page_number,
            "total": len(names),
            "pageCount": page_count,
            "firstUri": uri(1),
            "selfUri": uri(page_number),
            "lastUri": uri(max(page_count, 1)),
        }
        if page_number < page_count:
            listing["nextUri"] = uri(page_number + 1)
        if page_number > 1:
            listing["previousUri"] = uri(page_number - 1)
        return listing
