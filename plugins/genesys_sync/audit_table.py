"""The audit trail in the state database: the chain's lines in an append-only table.

``GENESYS_SYNC_AUDIT_STORE=database`` puts the trail where every component reaches it (Celery
workers and triggerers on other hosts, ``make sync`` beside a deployment): the state database
(``$GENESYS_SYNC_STATE_URL``). Each row is one line of the same hash chain the file holds
(``genesys_sync.audit`` seals it), numbered by ``seq``; ``python -m genesys_sync.audit export``
writes the rows out as the JSON Lines file they stand for, and ``verify`` checks either.

Appenders are serialised by the database (a transaction-scoped advisory lock on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite) while they read the last line and insert theirs, so two
processes appending at once never fork the chain; a commit is the durability point (the
database's own fsync), so an intent is durable before its write is sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import sqlalchemy as sa

from genesys_sync.state import audit_trail, metadata

#: The advisory lock key of audit appends on PostgreSQL (any constant the deployment does not
#: use for something else: "gssaudit" as an integer).
_PG_LOCK_KEY = 0x6773736175646974
_engines: dict[str, sa.Engine] = {}
_guard = threading.Lock()


def engine(url: str) -> sa.Engine:
    """One engine per URL and process, with the trail's table created."""
    with _guard:
        if url not in _engines:
            sqlite = sa.engine.make_url(url).get_backend_name() == "sqlite"
            # SQLite: wait for another process's append rather than fail at once.
            args = {"connect_args": {"timeout": 30}} if sqlite else {"pool_pre_ping": True}
            created = sa.create_engine(url, **args)
            if sqlite:
                _immediate_transactions(created)
            with created.begin() as conn:  # processes starting at once create it once
                if not sqlite:
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
                metadata.create_all(conn, tables=[audit_trail])
            _engines[url] = created
        return _engines[url]


def _immediate_transactions(sqlite: sa.Engine) -> None:
    """SQLite: take the write lock when a transaction begins (SQLAlchemy's documented recipe),
    so the last line read is still the last when the new ones are inserted."""

    @sa.event.listens_for(sqlite, "connect")
    def _no_driver_transactions(dbapi_connection, _record):  # noqa: ANN001
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(sqlite, "begin")
    def _begin_immediate(conn):  # noqa: ANN001
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def append(url: str, seal: Callable[[int, bytes | None], list[bytes]]) -> list[int]:
    """Insert the lines ``seal(next_seq, last_line)`` returns, in one transaction that holds
    the trail's lock from reading its last line to the commit; return their numbers."""
    eng = engine(url)
    with eng.begin() as conn:
        if eng.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
        last = conn.execute(
            sa.select(audit_trail.c.seq, audit_trail.c.line)
            .order_by(audit_trail.c.seq.desc())
            .limit(1)
        ).first()
        first = last.seq + 1 if last else 1
        lines = seal(first, last.line.encode() if last else None)
        rows = [{"seq": first + n, "line": line.decode()} for n, line in enumerate(lines)]
        if rows:
            conn.execute(sa.insert(audit_trail), rows)
    return [row["seq"] for row in rows]


def lines(url: str, after: int = 0) -> Iterator[tuple[int, bytes]]:
    """(seq, line without newline) of every row after ``after``, in order."""
    eng = engine(url)
    query = (
        sa.select(audit_trail.c.seq, audit_trail.c.line)
        .where(audit_trail.c.seq > after)
        .order_by(audit_trail.c.seq)
    )
    with eng.connect() as conn:
        for row in conn.execution_options(yield_per=1000).execute(query):
            yield row.seq, row.line.encode()


def dispose() -> None:
    """Close every engine (tests, and processes about to fork)."""
    with _guard:
        for eng in _engines.values():
            eng.dispose()
        _engines.clear()
