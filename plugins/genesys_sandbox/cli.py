"""The ``python -m genesys_sandbox`` command line."""

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from genesys_sandbox.app import SandboxApplication
from genesys_sandbox.faults import FaultSettings
from genesys_sandbox.options import (
    DEFAULT_CATALOGUE,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PORT,
    SandboxOptions,
)
from genesys_sandbox.server import serve

DESCRIPTION = """\
Local Genesys Cloud SCIM sandbox. This is a DEVELOPMENT AND TEST TOOL, NOT Genesys Cloud:
it imitates the part of the Genesys Cloud API the sync uses (OAuth client credentials,
SCIM 2.0 users at /api/v2/scim/v2, roles and divisions listings, rate limits, error
shapes) with injectable faults. It listens on 127.0.0.1 unless --host says otherwise."""


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of the sandbox command."""
    defaults = FaultSettings()
    parser = argparse.ArgumentParser(
        prog="python -m genesys_sandbox",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; only a container needs another)",
    )
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID, help="OAuth client id")
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET, help="OAuth secret")
    parser.add_argument(
        "--catalogue",
        type=Path,
        default=DEFAULT_CATALOGUE,
        metavar="FILE",
        help='JSON {"roles": [...], "divisions": [...]} of the known names',
    )
    parser.add_argument(
        "--data-file",
        type=Path,
        metavar="PATH",
        help="load users from this JSON file at start and save them after every write "
        "(default: memory only)",
    )
    parser.add_argument(
        "--bulk", action="store_true", help="support RFC 7644 /Bulk (Genesys does not)"
    )
    knobs = parser.add_argument_group("fault knobs (also settable via POST /_sandbox/faults)")
    knobs.add_argument(
        "--token-lifetime",
        dest="token_lifetime_seconds",
        type=int,
        default=defaults.token_lifetime_seconds,
        metavar="SECONDS",
        help="lifetime of issued tokens (default: %(default)s)",
    )
    knobs.add_argument(
        "--requests-per-minute",
        type=int,
        default=defaults.requests_per_minute,
        metavar="N",
        help="per-token limit over a sliding 60 s window (default: %(default)s)",
    )
    knobs.add_argument(
        "--max-untrimmed-page-size",
        type=int,
        default=defaults.max_untrimmed_page_size,
        metavar="N",
        help="a user list with count over N that returns roles, externalId, routing skills or "
        "languages answers 429, as on Genesys; 0 turns it off (default: %(default)s)",
    )
    knobs.add_argument(
        "--latency-ms", type=int, default=defaults.latency_ms, metavar="MS", help="delay per call"
    )
    knobs.add_argument(
        "--error-rate", type=float, default=defaults.error_rate, help="fraction answered 503"
    )
    knobs.add_argument(
        "--reset-rate", type=float, default=defaults.reset_rate, help="fraction reset (TCP RST)"
    )
    knobs.add_argument(
        "--force-429",
        type=int,
        default=defaults.force_429,
        metavar="N",
        help="answer the next N API requests 429",
    )
    knobs.add_argument(
        "--retry-after-seconds",
        type=int,
        default=defaults.retry_after_seconds,
        metavar="S",
        help="Retry-After of forced 429s (default: %(default)s)",
    )
    knobs.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return parser


def options_from(args: argparse.Namespace) -> SandboxOptions:
    """Turn parsed arguments into sandbox options."""
    faults = FaultSettings(
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        reset_rate=args.reset_rate,
        force_429=args.force_429,
        retry_after_seconds=args.retry_after_seconds,
        token_lifetime_seconds=args.token_lifetime_seconds,
        requests_per_minute=args.requests_per_minute,
        max_untrimmed_page_size=args.max_untrimmed_page_size,
        seed=args.seed,
    )
    return SandboxOptions(
        port=args.port,
        host=args.host,
        client_id=args.client_id,
        client_secret=args.client_secret,
        catalogue=args.catalogue,
        data_file=args.data_file,
        bulk=args.bulk,
        faults=faults,
    )


def stop(signum: int, frame: FrameType | None) -> None:
    """Leave the server loop on SIGTERM, as on Ctrl-C."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, build the sandbox and serve it."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = options_from(args)
    if not options.catalogue.is_file():
        parser.error(f"catalogue file not found: {options.catalogue} (pass --catalogue FILE)")
    try:
        application = SandboxApplication(options)
    except ValueError as error:
        parser.error(str(error))
    signal.signal(signal.SIGTERM, stop)
    serve(application, options.port, options.host)
    sys.exit(0)
