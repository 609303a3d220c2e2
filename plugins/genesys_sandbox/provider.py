"""The SCIM description of the sandbox (schemas, resource types, config) from its JSON files."""

import importlib.resources
import json
from typing import Any

from scim2_models import ResourceType, Schema, ScimPolicy, ScimProvider, ServiceProviderConfig

from genesys_sandbox.errors import MAX_BODY_BYTES

BULK_MAX_OPERATIONS = 1000


def load_json(name: str) -> Any:
    """Load one of the JSON files of ``genesys_sandbox/resources``."""
    text = (importlib.resources.files("genesys_sandbox") / "resources" / name).read_text("utf-8")
    return json.loads(text)


def load_provider(*, bulk: bool = False) -> ScimProvider:
    """Describe the Genesys SCIM service; ``bulk`` announces RFC 7644 Bulk (Genesys has none).

    Unknown attributes are dropped, not refused, as Genesys ignores what it does not support.
    """
    config = ServiceProviderConfig.model_validate(load_json("service-provider-config.json"))
    if bulk:
        config.bulk = config.bulk.model_copy(
            update={
                "supported": True,
                "max_operations": BULK_MAX_OPERATIONS,
                "max_payload_size": MAX_BODY_BYTES,
            }
        )
    return ScimProvider.from_discovery(
        [Schema.model_validate(s) for s in load_json("schemas.json")],
        [ResourceType.model_validate(rt) for rt in load_json("resource-types.json")],
        config=config,
        policy=ScimPolicy(unknown=ScimPolicy.Unknown.ignore),
    )
