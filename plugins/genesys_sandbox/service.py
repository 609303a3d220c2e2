"""scim2-server's ScimService with the Genesys Cloud user rules, listing and version conventions."""

from typing import Any

from scim2_models import (
    Context,
    Error,
    PatchOp,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    ScimProvider,
)
from scim2_server.conditions import Conditions
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService

from genesys_sandbox.catalogue import Catalogue
from genesys_sandbox.rules import apply_lifecycle, check_user

DEFAULT_LIST_FILTER = "active eq true"
"""Genesys lists active users only when a search has no filter."""

VERSION_MISMATCH = "Version does not match current version"


class GenesysScimService(ScimService):
    """Validate users against the Genesys rules and the catalogue, and answer as Genesys does.

    - every written user passes :func:`~genesys_sandbox.rules.check_user` (400 otherwise) and
      :func:`~genesys_sandbox.rules.apply_lifecycle` (roles stripped on deactivation...);
    - a search without filter returns active users only;
    - a stale ``If-Match`` answers 409 ``invalidVers`` instead of RFC 7644's 412;
    - PATCH answers 200 with the user, as Genesys does, instead of 204.
    """

    def __init__(self, provider: ScimProvider, catalogue: Catalogue) -> None:
        super().__init__(provider)
        self.catalogue = catalogue

    def genesys_form(
        self, resource: Resource[Any], previous: dict[str, Any] | None
    ) -> Resource[Any]:
        """Check a user about to be stored, and return it as Genesys would store it."""
        data = resource.model_dump()
        check_user(data, self.catalogue)
        return type(resource).model_validate(apply_lifecycle(data, previous))

    def read_creation(
        self, resource_type: ResourceType, body: bytes, content_type: str | None
    ) -> Resource[Any]:
        return self.genesys_form(super().read_creation(resource_type, body, content_type), None)

    def apply_replacement(
        self, current: Resource[Any], replacement: Resource[Any], conditions: Conditions
    ) -> Resource[Any] | None:
        replacement = self.genesys_form(replacement, current.model_dump())
        return super().apply_replacement(current, replacement, conditions)

    def apply_patch(
        self, current: Resource[Any], patch_op: "PatchOp[Any]", conditions: Conditions
    ) -> Resource[Any] | None:
        before = current.model_dump()
        patched = super().apply_patch(current, patch_op, conditions)
        if patched is None:
            return None
        result = self.genesys_form(patched, before)
        return None if result.model_dump() == before else result

    def patch_response(
        self,
        base_url: str,
        resource: Resource[Any],
        response_parameters: ResponseParameters[Any],
    ) -> ScimResponse:
        return self.resource_response(
            self.publish(base_url, resource),
            Context.RESOURCE_REPLACEMENT_RESPONSE,
            response_parameters,
        )

    def read_search(self, resource_types: list[ResourceType], payload: Any) -> Any:
        if isinstance(payload, dict) and not any(k.casefold() == "filter" for k in payload):
            payload = {**payload, "filter": DEFAULT_LIST_FILTER}
        return super().read_search(resource_types, payload)

    @staticmethod
    def error_of(exception: Exception) -> Error:
        if isinstance(exception, PreconditionFailedException):
            return Error(status=409, scim_type="invalidVers", detail=VERSION_MISMATCH)
        return ScimService.error_of(exception)
