"""What the sync keeps between runs, in a SQL store (SQLite by default, PostgreSQL in compose).

- ``managed_users``: employee id -> target id, last ETag, active flag, since when inactive,
  and the fingerprint of what was last applied (incremental runs skip unchanged users).
- ``applied_exports``: every accepted export (logical date, row counts) and whether it was
  applied, so the gate can compare row counts and backfills can tell an old export.

The state speeds planning up and remembers ownership; it is never trusted for a write:
writes are guarded by ETags and uniqueness, and the planner reads the target itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
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
)

sync_meta = sa.Table(
    "sync_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(250), nullable=False),
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


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class StateStore:
    """The sync's state in a SQL database (tables created on first use)."""

    def __init__(self, url: str | None = None):
        self.url = url or settings.state_url()
        self.engine = sa.create_engine(self.url, future=True)
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

    def record_results(self, results: Iterable[Mapping[str, Any]], run_id: str) -> int:
        """Remember the target ids and states that a run's applied operations produced."""
        now = _now()
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
