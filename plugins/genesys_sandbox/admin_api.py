"""The unauthenticated ``/_sandbox/*`` endpoints tests use: reset, stats, faults, users."""

import dataclasses
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from wsgiref.util import application_uri

from scim2_server.requests import ScimRequest

from genesys_sandbox.errors import genesys_error
from genesys_sandbox.rules import CORE_SCHEMA
from genesys_sandbox.wsgi_io import json_response, read_body

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from genesys_sandbox.app import SandboxApplication

PREFIX = "/_sandbox"
SCIM_BASE_PATH = "/api/v2/scim/v2"


def read_json_object(environ: "WSGIEnvironment") -> dict[str, Any] | None:
    """Return the JSON object body of a request, None when it is not one."""
    try:
        data = json.loads(read_body(environ) or b"{}")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def with_schemas(user: dict[str, Any]) -> dict[str, Any]:
    """Fill in ``schemas`` when a seeded user leaves it out: the core URN and its extensions."""
    if "schemas" in user:
        return user
    extensions = [key for key in user if key.startswith("urn:")]
    return {"schemas": [CORE_SCHEMA, *extensions], **user}


class AdminApi:
    """Serve the admin endpoints. They need no token, and faults and counters skip them."""

    def __init__(self, sandbox: "SandboxApplication") -> None:
        self.sandbox = sandbox

    def __call__(
        self, environ: "WSGIEnvironment", start_response: "StartResponse"
    ) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ["PATH_INFO"].rstrip("/").removeprefix(PREFIX)
        sandbox = self.sandbox
        match f"{method} {path}":
            case "POST /reset":
                sandbox.reset()
                return json_response(start_response, 200, {"reset": True})
            case "GET /stats":
                return json_response(start_response, 200, sandbox.stats.snapshot())
            case "GET /faults":
                return json_response(start_response, 200, self.faults())
            case "POST /faults":
                return self.set_faults(environ, start_response)
            case "GET /users":
                users = sandbox.scim.all_users(self.scim_base_url(environ))
                return json_response(start_response, 200, users)
            case "POST /users":
                return self.seed_user(environ, start_response)
            case "GET /tokens":  # for leak checks: where must no token appear?
                return json_response(start_response, 200, sandbox.tokens.issued())
        body = genesys_error(404, f"No sandbox admin endpoint for {method} {PREFIX}{path}")
        return json_response(start_response, 404, body)

    @staticmethod
    def scim_base_url(environ: "WSGIEnvironment") -> str:
        """Return the SCIM base URL, as the client sees it."""
        return application_uri(environ).rstrip("/") + SCIM_BASE_PATH

    def faults(self) -> dict[str, Any]:
        """Return the current fault knobs."""
        return dataclasses.asdict(self.sandbox.faults.settings)

    def set_faults(
        self, environ: "WSGIEnvironment", start_response: "StartResponse"
    ) -> Iterable[bytes]:
        """Change some knobs from a JSON object; ``expire_tokens: true`` invalidates every token."""
        changes = read_json_object(environ)
        if changes is None:
            body = genesys_error(400, "The body must be a JSON object of fault knobs.")
            return json_response(start_response, 400, body)
        try:
            expire_tokens = self.sandbox.faults.update(changes)
        except ValueError as error:
            return json_response(start_response, 400, genesys_error(400, str(error)))
        if expire_tokens:
            self.sandbox.tokens.expire_all()
        return json_response(start_response, 200, self.faults())

    def seed_user(
        self, environ: "WSGIEnvironment", start_response: "StartResponse"
    ) -> Iterable[bytes]:
        """Create a user through the SCIM service, without token, limits, faults or counters."""
        user = read_json_object(environ)
        if user is None:
            body = genesys_error(400, "The body must be a SCIM user JSON object.")
            return json_response(start_response, 400, body)
        request = ScimRequest(
            method="POST",
            base_url=self.scim_base_url(environ),
            path="/Users",
            headers={"Content-Type": "application/scim+json"},
            body=json.dumps(with_schemas(user)).encode(),
        )
        response = self.sandbox.scim.serve_unmetered(request)
        headers = {k: v for k, v in response.headers.items() if k in ("ETag", "Location")}
        return json_response(start_response, response.status.value, response.body, headers)
