"""The attributes Genesys always returns, whatever ``attributes`` or ``excludedAttributes`` say.

The SDK documents that ``id``, ``userName``, ``active`` and ``meta`` are always returned. The
schemas declare ``userName`` and ``active`` ``returned: always``, which scim2-models honours;
``meta`` is a common attribute no schema declares, so the parameters are adjusted here: these
names are added to ``attributes`` and taken out of ``excludedAttributes``.
"""

from collections.abc import Mapping
from typing import Any

from genesys_sandbox.rules import CORE_SCHEMA

ALWAYS_RETURNED = ("id", "userName", "active", "meta")


def _names(value: Any) -> list[str]:
    """Return the attribute names of a parameter: a comma-separated string or a JSON list."""
    items = value.split(",") if isinstance(value, str) else value
    return [str(item).strip() for item in items if str(item).strip()]


def _head(name: str) -> str:
    """Return the core attribute a name designates, lower-cased: ``meta.version`` -> ``meta``."""
    bare = name.casefold().removeprefix(f"{CORE_SCHEMA.casefold()}:")
    return bare.split(".", 1)[0]


def with_always_returned(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Return query or search parameters whose attribute selection keeps the four attributes."""
    result = dict(parameters)
    always = {name.casefold() for name in ALWAYS_RETURNED}
    for key, value in parameters.items():
        if not isinstance(value, str | list) or not _names(value):
            continue
        names = _names(value)
        if key.casefold() == "attributes":
            present = {_head(name) for name in names}
            names += [name for name in ALWAYS_RETURNED if name.casefold() not in present]
        elif key.casefold() == "excludedattributes":
            names = [name for name in names if _head(name) not in always]
        else:
            continue
        if not names:
            del result[key]
        else:
            result[key] = ",".join(names) if isinstance(value, str) else names
    return result
