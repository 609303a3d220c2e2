"""scim2-server's ScimService with the Genesys Cloud user rules, listing and version conventions."""

from collections.abc import Callable, Mapping
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
    SearchRequest,
)
from scim2_server.conditions import Conditions
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService

from genesys_sandbox.always_returned import with_always_returned
from genesys_sandbox.catalogue import Catalogue
from genesys_sandbox.filters import with_genesys_filter
from genesys_sandbox.page_limit import PageLimit, check_page_size
from genesys_sandbox.rules import apply_lifecycle, check_manager, check_user

VERSION_MISMATCH = "Version does not match current version"


class GenesysScimService(ScimService):
    """Validate users against the Genesys rules and the catalogue, and answer as Genesys does.

    - every written user passes :func:`~genesys_sandbox.rules.check_user` (400 otherwise),
      :func:`~genesys_sandbox.rules.check_manager` (400 ``invalidValue``) and
      :func:`~genesys_sandbox.rules.apply_lifecycle` (default role, ``dateHire`` form...);
    - a search without filter returns active users only, and Genesys's short filter names
      work (:mod:`~genesys_sandbox.filters`);
    - ``id``, ``userName``, ``active`` and ``meta`` are always returned;
    - a page over ``page_limit()`` users that returns the expensive attributes answers 429
      (:mod:`~genesys_sandbox.page_limit`);
    - a stale ``If-Match`` answers 400 ``invalidVers`` instead of RFC 7644's 412;
    - PATCH answers 200 with the user, as Genesys does, instead of 204.
    """

    def __init__(
        self,
        provider: ScimProvider,
        catalogue: Catalogue,
        user_exists: Callable[[str], bool],
        page_limit: Callable[[], PageLimit] = PageLimit,
    ) -> None:
        super().__init__(provider)
        self.catalogue = catalogue
        self.user_exists = user_exists
        self.page_limit = page_limit

    def genesys_form(
        self, resource: Resource[Any], previous: dict[str, Any] | None
    ) -> Resource[Any]:
        """Check a user about to be stored, and return it as Genesys would store it."""
        data = resource.model_dump()
        check_user(data, self.catalogue)
        check_manager(data, previous, self.user_exists)
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
        # Patch a copy: when Genesys's form of the result is the stored user (a dateHire sent
        # in another form, say), the handler answers with ``current``, which must stay as is.
        before = current.model_dump()
        patched = super().apply_patch(current.model_copy(deep=True), patch_op, conditions)
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

    def read_response_parameters(
        self, resource_type: ResourceType, query: Mapping[str, str]
    ) -> ResponseParameters[Any]:
        return super().read_response_parameters(resource_type, with_always_returned(query))

    def read_search(
        self, resource_types: list[ResourceType], payload: Any
    ) -> tuple[SearchRequest[Any], Any]:
        if isinstance(payload, dict):
            payload = with_always_returned(with_genesys_filter(payload))
        search_request, position = super().read_search(resource_types, payload)
        limit = self.page_limit()
        for resource_type in resource_types:
            check_page_size(self.get_model(resource_type), search_request, limit)
        return search_request, position

    @staticmethod
    def error_of(exception: Exception) -> Error:
        if isinstance(exception, PreconditionFailedException):
            return Error(status=400, scim_type="invalidVers", detail=VERSION_MISMATCH)
        return ScimService.error_of(exception)
