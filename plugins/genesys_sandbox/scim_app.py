"""scim2-server's WSGIApplication with Genesys paths, tokens, write counts and error shapes."""

import logging
from http import HTTPStatus
from typing import Any

from scim2_models import (
    BulkOperation,
    Context,
    PreconditionFailedException,
    Resource,
    ResourceType,
    SCIMException,
    ScimProvider,
    UnauthorizedException,
)
from scim2_server.applications.base import BaseApplication
from scim2_server.applications.wsgi import WSGIApplication
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import Operation

from genesys_sandbox.errors import (
    GenesysBadRequest,
    UnknownManager,
    UntrimmedPageTooLarge,
    genesys_error,
    page_limit_error,
)
from genesys_sandbox.service import GenesysScimService
from genesys_sandbox.stats import Stats
from genesys_sandbox.storage import SandboxStorage
from genesys_sandbox.tokens import TokenStore

log = logging.getLogger("genesys_sandbox.scim")

CANONICAL_SEGMENTS = {
    name.casefold(): name
    for name in ("Users", "ServiceProviderConfig", "ResourceTypes", "Schemas", "Bulk")
}
"""Genesys's swagger spells the endpoints in lower case; RFC 7644 capitalises them."""

PUBLIC_OPERATIONS = {
    Operation.service_provider_config,
    Operation.resource_types,
    Operation.resource_type,
    Operation.schemas,
    Operation.schema,
}
WRITE_OPERATIONS = {Operation.create, Operation.replace, Operation.patch, Operation.delete}
SCIM_ERROR_STATUSES = {HTTPStatus.CONFLICT}
SCIM_ERROR_EXCEPTIONS = (PreconditionFailedException, UnknownManager)
"""Genesys answers 409s, stale versions (400 ``invalidVers``) and unknown managers (400
``invalidValue``) with a SCIM error; everything else gets a Genesys error body."""


class GenesysScimHandler(ScimHandler):
    """scim2-server's handler, with the Genesys rules applied to the creations of a Bulk too."""

    service: GenesysScimService

    def apply_bulk_operation(
        self, resource_type: ResourceType, operation: BulkOperation[Resource[Any]]
    ) -> Resource[Any] | None:
        if operation.method == BulkOperation.Method.post and operation.data is not None:
            created = self.service.genesys_form(operation.data, None)
            return self.storage.create(resource_type, created)
        return super().apply_bulk_operation(resource_type, operation)


class GenesysScimApplication(WSGIApplication):
    """Serve the Genesys users over SCIM, mounted at ``/api/v2/scim`` (``/v2`` optional)."""

    def __init__(
        self,
        storage: SandboxStorage,
        provider: ScimProvider,
        service: GenesysScimService,
        tokens: TokenStore,
        stats: Stats,
    ) -> None:
        super().__init__(storage, provider, service)
        self.storage: SandboxStorage = storage
        self.handler = GenesysScimHandler(service, storage)
        self.tokens = tokens
        self.stats = stats

    @staticmethod
    def split_path(path: str) -> str:
        """Strip ``/v2``, and accept the lower-case endpoint names of the Genesys swagger."""
        path = BaseApplication.split_path(path)
        head, _, rest = path.lstrip("/").partition("/")
        head = CANONICAL_SEGMENTS.get(head.casefold(), head)
        return f"/{head}/{rest}" if rest else f"/{head}"

    def needs_auth(self, request: ScimRequest) -> bool:
        """The discovery endpoints are public, as on Genesys."""
        return self.service.match(request).operation not in PUBLIC_OPERATIONS

    def check_auth(self, request: ScimRequest) -> None:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not self.tokens.is_valid(token.strip()):
            raise UnauthorizedException(detail="Invalid login credentials.")

    def dispatch_request(self, request: ScimRequest) -> ScimResponse:
        """Authenticate, count the user writes (whatever their outcome), and serve."""
        operation = self.service.match(request).operation
        if self.needs_auth(request):
            self.check_auth(request)
        if operation in WRITE_OPERATIONS:
            self.stats.count_writes()
        response = self.handler.handle(request)
        if operation is Operation.bulk and response.body:
            self.stats.count_writes(len(response.body.get("Operations") or []))
        return response

    def serve_unmetered(self, request: ScimRequest) -> ScimResponse:
        """Serve a request without authentication or write counting (admin endpoints)."""
        try:
            response = self.handler.handle(request)
        except Exception as exception:
            response = self.handle_exception(request, exception)
        return self.finalize_response(request, response)

    def handle_exception(self, request: ScimRequest, exception: Exception) -> ScimResponse:
        """Answer an error in the Genesys shape; log no request data.

        409s, stale versions and unknown managers get a SCIM error; an untrimmed page gets
        the Genesys 429 body with ``Retry-After``.
        """
        if isinstance(exception, SCIMException):
            log.info("SCIM error %s (%s)", exception.status, type(exception).__name__)
        else:
            log.exception("Unexpected error while serving a SCIM request")
        response = self.service.error_response(exception)
        if isinstance(exception, UntrimmedPageTooLarge):
            body = page_limit_error(exception.count, exception.limit)
            headers = {
                "Content-Type": "application/json",
                "Retry-After": str(exception.retry_after_seconds),
            }
            return ScimResponse(response.status, body, headers)
        scim_shaped = isinstance(exception, SCIM_ERROR_EXCEPTIONS)
        if scim_shaped or response.status in SCIM_ERROR_STATUSES or response.body is None:
            return response
        details: list[dict[str, Any]] = []
        code = None
        if isinstance(exception, GenesysBadRequest):
            code, details = exception.code, exception.details
        body = genesys_error(
            response.status.value,
            str(response.body.get("detail") or response.status.phrase),
            code=code,
            details=details,
        )
        response.headers["Content-Type"] = "application/json"
        return ScimResponse(response.status, body, response.headers)

    def all_users(self, base_url: str) -> list[dict[str, Any]]:
        """Return every user, active or not, as published SCIM JSON, oldest first."""
        with self.provider, self.storage.lock:
            resources = sorted(
                self.storage.resources, key=lambda r: (r.meta.created if r.meta else None, r.id)
            )
            return [
                self.service.publish(base_url, resource).model_dump(
                    scim_ctx=Context.RESOURCE_QUERY_RESPONSE
                )
                for resource in resources
            ]
