"""What the sync keeps between runs, in a SQL store (SQLite by default, PostgreSQL in compose).

- ``managed_users``: employee id -> target id, last ETag, active flag, since when inactive,
  the fingerprint of what was last applied (incremental runs skip unchanged users), and the
  roles the sync granted the user (the only roles it may remove: NULL = none).
- ``managed_users.applied``: the attribute values the sync last applied to the user (and its
  ETag): an incremental run writes a change directly from them, with ``If-Match``.
- ``sync_documents``: cached discovery (ServiceProviderConfig, Schemas) and role catalogue.
- ``applied_exports``: every accepted export (logical date, row counts) and whether it was
  applied, so the gate can compare row counts and backfills can tell an old export.

The state speeds planning up and remembers ownership; it is never trusted for a write:
writes are guarded by ETags and uniqueness, and the planner reads the target itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from genesys_sync import settings

metadata = sa.MetaData()

managed_users = sa.Table(
    "managed_users",
    metadata,
    sa.Column("employee_id", sa.String(64), primary_key=True),
    sa.Column("target_id", sa.String(128), nullable=False),
    sa.Column("etag", sa.String(128)),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("deactivated_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_run_id", sa.String(250)),
    sa.Column("fingerprint", sa.String(64)),
    sa.Column("granted_roles", sa.Text),  # JSON list of role names the sync granted
    # JSON: what the sync last applied (attribute path -> value; kubectl's last-applied
    # configuration). Personal data: kept here only (the store is owner-only), never logged.
    sa.Column("applied", sa.Text),
)

#: The one-run-at-a-time lease (``genesys_sync.run_lock``): one row while a run holds it.
run_lock = sa.Table(
    "run_lock",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("holder", sa.String(250), nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
)

#: The audit trail when it lives here (``GENESYS_SYNC_AUDIT_STORE=database``): one row per line
#: of the hash chain, never updated or deleted (``genesys_sync.audit_table``).
audit_trail = sa.Table(
    "audit_trail",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("line", sa.Text, nullable=False),
)

sync_meta = sa.Table(
    "sync_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(250), nullable=False),
)

#: Cached documents too long for ``sync_meta`` (the target's discovery, the role catalogue).
sync_documents = sa.Table(
    "sync_documents",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

applied_exports = sa.Table(
    "applied_exports",
    metadata,
    sa.Column("run_id", sa.String(250), primary_key=True),
    sa.Column("export_date", sa.Date),
    sa.Column("row_count", sa.Integer, nullable=False),
    sa.Column("accepted_count", sa.Integer, nullable=False),
    sa.Column("applied", sa.Boolean, nullable=False, default=False),
    sa.Column("full_export", sa.Boolean, nullable=False, default=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)


def _now() -> datetime:
    return datetime.now(UTC)


def _roles_json(roles: Collection[str]) -> str:
    return json.dumps(sorted(set(roles)))


def _applied_json(values: Mapping[str, Any]) -> str:
    return json.dumps(dict(values), sort_keys=True, default=str)


def _applied(raw: str | None) -> dict[str, Any] | None:
    try:
        values = json.loads(raw) if raw else None
    except ValueError:
        return None
    return values if isinstance(values, dict) else None


class AppliedValues(Mapping[str, tuple[str, str | None, dict[str, Any]]]):
    """employee id -> (target id, last ETag, last-applied values), as :meth:`StateStore.applied`
    reads them: each user's JSON is decoded when it is first looked up, so an incremental run
    that plans 1% of 100,000 users from the state decodes 1,000 of them, not all (decoding
    all took seconds and most of the plan's memory). A user whose stored values are not a
    JSON object is absent, as if none were stored."""

    def __init__(self, rows: Iterable[tuple[str, str, str | None, str | None]]) -> None:
        self._raw: dict[str, tuple[str, str | None, str | None]] = {
            eid: (tid, etag, raw) for eid, tid, etag, raw in rows
        }
        self._decoded: dict[str, tuple[str, str | None, dict[str, Any]] | None] = {}

    def _get(self, employee_id: str) -> tuple[str, str | None, dict[str, Any]] | None:
        if employee_id in self._decoded:
            return self._decoded[employee_id]
        entry = self._raw.get(employee_id)
        if entry is None:
            return None
        tid, etag, raw = entry
        values = _applied(raw)
        decoded = (tid, etag, values) if values is not None else None
        self._decoded[employee_id] = decoded
        return decoded

    def __getitem__(self, employee_id: str) -> tuple[str, str | None, dict[str, Any]]:
        found = self._get(employee_id)
        if found is None:
            raise KeyError(employee_id)
        return found

    def __contains__(self, employee_id: object) -> bool:
        return isinstance(employee_id, str) and self._get(employee_id) is not None

    def __iter__(self) -> Iterator[str]:
        for employee_id in self._raw:
            if self._get(employee_id) is not None:
                yield employee_id

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _owner_only_sqlite(url: sa.engine.URL) -> None:
    """A local SQLite file is created (or made) owner-only, whatever the umask: SQLite gives
    its journal and WAL files the database file's mode."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return
    if database.startswith("file:"):
        return
    path = Path(database)
    if path.parent.is_dir():
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))  # before SQLite creates it
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)


class StateStore:
    """The sync's state in a SQL database (tables created on first use)."""

    def __init__(self, url: str | None = None):
        self.url = url or settings.state_url()
        self.engine = sa.create_engine(self.url, future=True)
        _owner_only_sqlite(self.engine.url)
        metadata.create_all(self.engine)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Columns added since a store was created (tables are created, never migrated else)."""
        existing = {c["name"] for c in sa.inspect(self.engine).get_columns("managed_users")}
        with self.engine.begin() as conn:
            for column in managed_users.columns:
                if column.name not in existing:
                    kind = column.type.compile(dialect=self.engine.dialect)
                    conn.execute(
                        sa.text(f"ALTER TABLE managed_users ADD COLUMN {column.name} {kind}")
                    )

    def close(self) -> None:
        self.engine.dispose()

    # --- managed users ---------------------------------------------------------------------

    def managed_ids(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(managed_users.c.employee_id, managed_users.c.target_id))
            return {eid: tid for eid, tid in rows}

    def deactivated_since(self) -> dict[str, datetime]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(managed_users.c.employee_id, managed_users.c.deactivated_at).where(
                    managed_users.c.deactivated_at.is_not(None)
                )
            )
            return {eid: _aware(at) for eid, at in rows}

    def record_results(
        self,
        results: Iterable[Mapping[str, Any]],
        run_id: str,
        granted_roles: Mapping[tuple[str, str], Collection[str]] | None = None,
        applied: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    ) -> int:
        """Remember the target ids and states that a run's applied operations produced.

        ``granted_roles``: (employee id, change kind) -> the roles the sync owns on that user
        once the change is done (from the plan's batch files); recorded when the change was
        applied or found already done. ``applied``: (employee id, change kind) -> the
        attribute values the change made the user hold, merged into what was last applied.
        """
        now = _now()
        granted_roles = granted_roles or {}
        applied = applied or {}
        count = 0
        with self.engine.begin() as conn:
            for r in results:
                if r.get("outcome") not in ("applied", "unchanged") or not r.get("target_id"):
                    continue
                eid, kind = r["employee_id"], r["kind"]
                if kind == "delete":
                    conn.execute(sa.delete(managed_users).where(managed_users.c.employee_id == eid))
                    count += 1
                    continue
                existing = conn.execute(
                    sa.select(managed_users).where(managed_users.c.employee_id == eid)
                ).first()
                values: dict[str, Any] = {
                    "target_id": r["target_id"],
                    "updated_at": now,
                    "last_run_id": run_id,
                }
                if r.get("etag"):
                    values["etag"] = r["etag"]
                # What was applied, or None: a later incremental run then re-reads the user.
                values["fingerprint"] = r.get("fingerprint")
                roles = granted_roles.get((eid, kind))
                if roles is not None:
                    values["granted_roles"] = _roles_json(roles)
                done = applied.get((eid, kind))
                if done is not None:
                    before = _applied(existing.applied) if existing is not None else None
                    values["applied"] = _applied_json({**(before or {}), **done})
                if kind == "deactivate":
                    values["active"] = False
                    if existing is None or existing.deactivated_at is None:
                        values["deactivated_at"] = now
                elif kind in ("create", "reactivate"):
                    values["active"] = True
                    values["deactivated_at"] = None
                if existing is None:
                    values.setdefault("active", True)
                    conn.execute(sa.insert(managed_users).values(employee_id=eid, **values))
                else:
                    conn.execute(
                        sa.update(managed_users)
                        .where(managed_users.c.employee_id == eid)
                        .values(**values)
                    )
                count += 1
        return count

    def adopt_matched(self, matches: Mapping[str, tuple[str, bool]]) -> None:
        """Record users found in the target (employee id -> (target id, active)) as managed."""
        now = _now()
        with self.engine.begin() as conn:
            known = {eid for (eid,) in conn.execute(sa.select(managed_users.c.employee_id))}
            for eid, (tid, active) in matches.items():
                if eid in known:
                    continue
                conn.execute(
                    sa.insert(managed_users).values(
                        employee_id=eid,
                        target_id=tid,
                        active=active,
                        deactivated_at=None if active else now,
                        updated_at=now,
                    )
                )

    def fingerprints(self) -> dict[str, tuple[str, str | None, bool]]:
        """employee id -> (target id, fingerprint of what was applied, active)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    managed_users.c.employee_id,
                    managed_users.c.target_id,
                    managed_users.c.fingerprint,
                    managed_users.c.active,
                )
            )
            return {eid: (tid, fp, bool(active)) for eid, tid, fp, active in rows}

    def record_verified(self, verified: Mapping[str, tuple[str, str | None]]) -> None:
        """Users the target was seen to hold as desired: employee id -> (target id, fingerprint)."""
        with self.engine.begin() as conn:
            for eid, (tid, fp) in verified.items():
                conn.execute(
                    sa.update(managed_users)
                    .where(managed_users.c.employee_id == eid)
                    .values(target_id=tid, fingerprint=fp)
                )

    def applied(self) -> AppliedValues:
        """employee id -> (target id, last ETag, the values the sync last applied), for the
        users whose applied values are known (each decoded when first looked up)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    managed_users.c.employee_id,
                    managed_users.c.target_id,
                    managed_users.c.etag,
                    managed_users.c.applied,
                ).where(managed_users.c.applied.is_not(None))
            )
            return AppliedValues(rows)

    def record_applied(self, seen: Mapping[str, tuple[str, str | None, Mapping[str, Any]]]) -> None:
        """Users the target was seen to hold as desired: employee id -> (target id, ETag, the
        values they hold as the sync would apply them), merged into what was last applied."""
        if not seen:
            return
        with self.engine.begin() as conn:
            before = dict(
                conn.execute(sa.select(managed_users.c.employee_id, managed_users.c.applied)).all()
            )
            for eid, (tid, etag, values) in seen.items():
                merged = {**(_applied(before.get(eid)) or {}), **values}
                update = {"target_id": tid, "applied": _applied_json(merged)}
                if etag:
                    update["etag"] = etag
                conn.execute(
                    sa.update(managed_users)
                    .where(managed_users.c.employee_id == eid)
                    .values(**update)
                )

    def get_document(self, key: str) -> Any:
        """A cached JSON document (None when absent or unreadable)."""
        with self.engine.connect() as conn:
            raw = conn.execute(
                sa.select(sync_documents.c.value).where(sync_documents.c.key == key)
            ).scalar()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def set_document(self, key: str, value: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(sync_documents).where(sync_documents.c.key == key))
            conn.execute(
                sa.insert(sync_documents).values(
                    key=key, value=json.dumps(value, sort_keys=True), updated_at=_now()
                )
            )

    def granted_roles(self) -> dict[str, frozenset[str]]:
        """employee id -> the roles the sync granted that user (users with none left out)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(managed_users.c.employee_id, managed_users.c.granted_roles).where(
                    managed_users.c.granted_roles.is_not(None)
                )
            )
            return {eid: frozenset(json.loads(roles)) for eid, roles in rows if roles}

    def record_granted_roles(
        self, roles: Mapping[str, Collection[str]], *, shrink_only: bool = False
    ) -> None:
        """Set the roles the sync owns on users it saw holding them (employee id -> roles).

        ``shrink_only`` (a dry run, which must not gain ownership): keep only roles already
        owned, so a role HR stopped listing is forgotten but no new one is claimed.
        """
        if not roles:
            return
        before = self.granted_roles() if shrink_only else {}
        with self.engine.begin() as conn:
            for eid, names in roles.items():
                kept = set(names) & before.get(eid, frozenset()) if shrink_only else set(names)
                conn.execute(
                    sa.update(managed_users)
                    .where(managed_users.c.employee_id == eid)
                    .values(granted_roles=_roles_json(kept))
                )

    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sync_meta.c.value).where(sync_meta.c.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(sync_meta).where(sync_meta.c.key == key))
            conn.execute(sa.insert(sync_meta).values(key=key, value=value))

    # --- exports ---------------------------------------------------------------------------

    def record_export(
        self,
        run_id: str,
        export_date: Any,
        row_count: int,
        accepted_count: int,
        applied: bool,
        full_export: bool = True,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(applied_exports).where(applied_exports.c.run_id == run_id))
            conn.execute(
                sa.insert(applied_exports).values(
                    run_id=run_id,
                    export_date=export_date,
                    row_count=row_count,
                    accepted_count=accepted_count,
                    applied=applied,
                    full_export=full_export,
                    recorded_at=_now(),
                )
            )

    def previous_row_count(self, exclude_run_id: str | None = None) -> int | None:
        """Row count of the newest applied full export (the gate's truncation baseline)."""
        query = (
            sa.select(applied_exports.c.row_count)
            .where(applied_exports.c.applied.is_(True), applied_exports.c.full_export.is_(True))
            .order_by(applied_exports.c.recorded_at.desc())
            .limit(1)
        )
        if exclude_run_id:
            query = query.where(applied_exports.c.run_id != exclude_run_id)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def newest_applied_export_date(self, exclude_run_id: str | None = None) -> Any:
        query = sa.select(sa.func.max(applied_exports.c.export_date)).where(
            applied_exports.c.applied.is_(True)
        )
        if exclude_run_id:
            query = query.where(applied_exports.c.run_id != exclude_run_id)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()
