"""Where the sync keeps its local state: one directory, ``$GENESYS_SYNC_HOME``.

Everything a run writes (the Airflow home of the embedded setup, the state database, run
reports, rejects, plans, the audit log) lives below it, so two values share nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INCLUDE_DIR = PROJECT_ROOT / "include"


def sync_home() -> Path:
    """The sync's home directory (created on first use)."""
    home = Path(os.environ.get("GENESYS_SYNC_HOME") or PROJECT_ROOT / ".sync-home").resolve()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)  # a new home is owner-only
    return home


def config_path() -> Path:
    """The sync's config file: ``$GENESYS_SYNC_CONFIG`` or the shipped one."""
    return Path(os.environ.get("GENESYS_SYNC_CONFIG") or INCLUDE_DIR / "config" / "sync.yaml")


def safe_run_id(run_id: str) -> str:
    """A run id made safe for a directory name (Airflow run ids contain ':' and '+')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("_") or "run"


def restrict_tree(root: Path) -> None:
    """Take the group's and others' permissions off ``root`` and everything below it, whatever
    the umask was when they were written (the gate's Parquet and CSV, Data Docs, ...)."""
    root = Path(root)
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        if mode & 0o077:
            path.chmod(mode & 0o700)


def audit_log_path() -> Path:
    """The append-only audit log (JSON Lines): ``$AUDIT_LOG_PATH`` or under the sync home."""
    path = Path(os.environ.get("AUDIT_LOG_PATH") or sync_home() / "audit" / "audit.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


AUDIT_STORE_ENV = "GENESYS_SYNC_AUDIT_STORE"


def audit_in_database() -> bool:
    """Whether the audit trail is the state database's ``audit_trail`` table
    (``$GENESYS_SYNC_AUDIT_STORE=database``) rather than the JSON Lines file (``file``, the
    default)."""
    store = os.environ.get(AUDIT_STORE_ENV, "file").strip().lower() or "file"
    if store not in ("file", "database"):
        raise ValueError(f"{AUDIT_STORE_ENV} must be 'file' or 'database', not {store!r}")
    return store == "database"


#: Seconds a trigger waits before its first call (see ``ApplyBatchTrigger.run``).
TRIGGER_START_DELAY_ENV = "GENESYS_SYNC_TRIGGER_START_DELAY"


def trigger_start_delay(default: float = 5.0) -> float:
    """How long a trigger pauses before its first call: ``$GENESYS_SYNC_TRIGGER_START_DELAY``.

    The pause guards against an Airflow 3.3.2 deferral race in a real triggerer; where triggers
    run inline (``airflow dags test``, what ``make sync`` uses) it cannot happen, and the CLI
    sets it to 0.
    """
    value = os.environ.get(TRIGGER_START_DELAY_ENV, "").strip()
    return max(0.0, float(value)) if value else default


def state_url() -> str:
    """SQLAlchemy URL of the state store: ``$GENESYS_SYNC_STATE_URL`` or SQLite in the home."""
    return os.environ.get("GENESYS_SYNC_STATE_URL") or f"sqlite:///{sync_home() / 'state.db'}"
