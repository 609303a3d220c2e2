"""One sync at a time per state store: a lease row in the state database.

A run takes the lease in its first stage (``validate``) and gives it back in its last
(``report``, which Airflow runs whatever happened upstream). A second run meets ``RunLocked``,
which names the run that holds it. A crashed holder cannot keep the lease: it is taken over when
the holder is known to be gone (the ``make sync`` process that ran it has died; its Airflow run
is no longer running, as the DAG's adapter tells) and, as a last resort, when it is older than
``max_age``.

Holders: ``cli:<host>:<pid>`` for a run that ``make sync`` drives (the CLI sets
``$GENESYS_SYNC_RUN_HOLDER``), ``airflow`` for a run the scheduler drives, ``process:<host>:<pid>``
otherwise (the stage tier).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from genesys_sync.state import run_lock

HOLDER_ENV = "GENESYS_SYNC_RUN_HOLDER"
LOCK_NAME = "sync"


@dataclass(frozen=True)
class Lease:
    run_id: str
    holder: str
    acquired_at: datetime

    def describe(self) -> str:
        return f"run {self.run_id}, started {self.acquired_at.isoformat(timespec='seconds')}"


class RunLocked(RuntimeError):
    """Another run holds the sync's lease on this state store."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        super().__init__(
            f"Another sync run holds the lock ({lease.describe()}, holder {lease.holder}): one "
            "run at a time per target. Wait for it to finish, or stop it; a crashed run's lock "
            "is released once its process or Airflow run is gone."
        )


class HomeLocked(RuntimeError):
    """Another ``make sync`` runs on this home (``holder``: what its lock file says)."""

    def __init__(self, path: Path, holder: dict) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"Another sync (pid {holder.get('pid', '?')}, started "
            f"{holder.get('started_at', '?')}) holds the lock on {path.parent}: one run at a "
            "time per home. Wait for it to finish, or stop it."
        )


@contextlib.contextmanager
def home_lock(path: Path) -> Iterator[str]:
    """Hold ``path`` (``$GENESYS_SYNC_HOME/sync.lock``) exclusively for the block; yield the
    holder name for the run's lease. The OS releases it when the process dies, however it dies.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with contextlib.suppress(ValueError):
                raise HomeLocked(path, json.loads(os.pread(fd, 4096, 0) or b"{}")) from None
            raise HomeLocked(path, {}) from None
        holder = process_holder("cli")
        info = {"holder": holder, "pid": os.getpid(), "started_at": datetime.now(UTC).isoformat()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield holder
    finally:
        os.close(fd)


def process_holder(kind: str = "process") -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}"


def current_holder() -> str:
    """Who is taking the lease: ``$GENESYS_SYNC_RUN_HOLDER``, else this process."""
    return os.environ.get(HOLDER_ENV) or process_holder()


def process_gone(holder: str) -> bool:
    """Whether a ``<kind>:<host>:<pid>`` holder's process has ended (only knowable on its host)."""
    kind, _, rest = holder.partition(":")
    host, _, pid = rest.rpartition(":")
    if kind not in ("cli", "process") or host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def current_lease(engine: sa.Engine) -> Lease | None:
    """The lease held now, if any (``None`` too on a state database not yet created)."""
    if not sa.inspect(engine).has_table(run_lock.name):
        return None
    with engine.connect() as conn:
        row = conn.execute(sa.select(run_lock).where(run_lock.c.name == LOCK_NAME)).first()
    return Lease(row.run_id, row.holder, _as_utc(row.acquired_at)) if row else None


def acquire(
    engine: sa.Engine,
    run_id: str,
    holder: str | None = None,
    *,
    max_age: timedelta = timedelta(hours=24),
    run_gone: Callable[[str], bool] | None = None,
    now: datetime | None = None,
) -> Lease | None:
    """Take the lease for ``run_id`` (again, if it already holds it; a retried task does).

    Returns the stale lease it took over, if any. ``run_gone(run_id)`` tells whether an
    ``airflow`` holder's run has ended. Raises ``RunLocked`` while another live run holds it.
    """
    holder = holder or current_holder()
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # serialise concurrent acquirers
            conn.execute(sa.text("LOCK TABLE run_lock IN EXCLUSIVE MODE"))
        row = conn.execute(sa.select(run_lock).where(run_lock.c.name == LOCK_NAME)).first()
        stale = None
        if row is not None and row.run_id != run_id:
            lease = Lease(row.run_id, row.holder, _as_utc(row.acquired_at))
            gone = process_gone(lease.holder) or (
                lease.holder == "airflow" and run_gone is not None and run_gone(lease.run_id)
            )
            if not gone and now - lease.acquired_at < max_age:
                raise RunLocked(lease)
            stale = lease
        conn.execute(sa.delete(run_lock).where(run_lock.c.name == LOCK_NAME))
        conn.execute(
            sa.insert(run_lock).values(
                name=LOCK_NAME, run_id=run_id, holder=holder, acquired_at=now
            )
        )
    return stale


def release(engine: sa.Engine, run_id: str) -> bool:
    """Give the lease back if ``run_id`` holds it; whether it did."""
    with engine.begin() as conn:
        result = conn.execute(
            sa.delete(run_lock).where(run_lock.c.name == LOCK_NAME, run_lock.c.run_id == run_id)
        )
    return bool(result.rowcount)
