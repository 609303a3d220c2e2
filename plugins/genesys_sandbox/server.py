"""The threaded HTTP server on 127.0.0.1, with connection resets and privacy-safe request logs."""

import contextlib
import logging
import socket
import struct
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, make_server

from scim2_server.testserver.cli import ThreadingWSGIServer

from genesys_sandbox.app import RESET_CONNECTION

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

HOST = "127.0.0.1"
log = logging.getLogger("genesys_sandbox.http")


def loggable_path(raw_path: str) -> str:
    """Return a request path without its query, and with any segment holding an ``@`` masked."""
    path = urlsplit(raw_path).path
    return "/".join("<redacted>" if "@" in segment else segment for segment in path.split("/"))


class SandboxRequestHandler(WSGIRequestHandler):
    """Log method, path and status only; let the application reset the TCP connection."""

    reset_requested = False

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ[RESET_CONNECTION] = self.request_reset
        return environ

    def request_reset(self) -> None:
        """Reset the connection, with no response, once the application returns."""
        self.reset_requested = True

    def handle(self) -> None:
        super().handle()
        if self.reset_requested:
            # SO_LINGER with a zero timeout makes close() send a RST instead of a FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.info("%s %s %s", self.command, loggable_path(self.path), code)

    def log_error(self, format: str, *args: Any) -> None:
        code = args[0] if args and isinstance(args[0], int) else "-"
        log.warning("HTTP error %s on a malformed request", code)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("HTTP server message (details omitted)")


def serve(application: "WSGIApplication", port: int, host: str = HOST) -> None:
    """Serve an application (on 127.0.0.1 unless told otherwise) until interrupted."""
    with make_server(
        host,
        port,
        application,
        server_class=ThreadingWSGIServer,
        handler_class=SandboxRequestHandler,
    ) as server:
        print(
            f"Genesys sandbox (development and test tool, not Genesys) on http://{host}:{port}",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
