"""The Public API catalogue endpoints: ``GET /api/v2/authorization/roles`` and ``/divisions``."""

from collections.abc import Iterable
from typing import TYPE_CHECKING

from genesys_sandbox.catalogue import Catalogue
from genesys_sandbox.errors import genesys_error
from genesys_sandbox.wsgi_io import json_response, query_params

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

PREFIX = "/api/v2/authorization/"
KINDS = ("roles", "divisions")
MAX_PAGE_SIZE = 500


def positive_int(value: str | None, default: int) -> int | None:
    """Return a query value as a positive integer, the default when absent, None when invalid."""
    if value is None or value == "":
        return default
    return int(value) if value.isdigit() and int(value) > 0 else None


class AuthorizationApi:
    """List the catalogue's roles and divisions as Genesys entity listings.

    The token is checked upstream, by the application.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    @staticmethod
    def serves(path: str) -> bool:
        """Tell whether a path is one of the listings."""
        return path.removeprefix(PREFIX).rstrip("/") in KINDS and path.startswith(PREFIX)

    def __call__(
        self, environ: "WSGIEnvironment", start_response: "StartResponse"
    ) -> Iterable[bytes]:
        path = environ["PATH_INFO"].rstrip("/")
        if environ["REQUEST_METHOD"] != "GET":
            body = genesys_error(405, "Only GET is supported here.")
            return json_response(start_response, 405, body, {"Allow": "GET"})
        query = query_params(environ)
        page_size = positive_int(query.get("pageSize"), 25)
        page_number = positive_int(query.get("pageNumber"), 1)
        if page_size is None or page_number is None or page_size > MAX_PAGE_SIZE:
            message = f"pageSize must be 1 to {MAX_PAGE_SIZE}, and pageNumber at least 1."
            return json_response(start_response, 400, genesys_error(400, message))
        kind = path.removeprefix(PREFIX)
        listing = self.catalogue.listing(kind, page_size, page_number, path)
        return json_response(start_response, 200, listing)
