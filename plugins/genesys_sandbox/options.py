"""The start-up options of the sandbox (the CLI flags), with their defaults."""

from dataclasses import dataclass, field
from pathlib import Path

from genesys_sandbox.faults import FaultSettings

DEFAULT_PORT = 8089
DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"
DEFAULT_CATALOGUE = Path(__file__).resolve().parents[2] / "include" / "sandbox" / "catalogue.json"
"""The project's ``include/sandbox/catalogue.json`` (``plugins/`` and ``include/`` are siblings)."""


@dataclass
class SandboxOptions:
    """Everything the sandbox needs at start; the fault knobs can change later at runtime."""

    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    catalogue: Path = DEFAULT_CATALOGUE
    data_file: Path | None = None
    bulk: bool = False
    faults: FaultSettings = field(default_factory=FaultSettings)
