"""The state store on SQLite (default) and on the local PostgreSQL (the compose deployment)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
import sqlalchemy as sa

from genesys_sync.state import StateStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
        yield s
        s.close()
        return
    name = f"gss_state_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    s = StateStore(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}")
    yield s
    s.close()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}"'))
    admin.dispose()


def test_results_record_ownership_and_deactivation(store):
    store.record_results(
        [
            {
                "employee_id": "E1",
                "kind": "create",
                "outcome": "applied",
                "target_id": "t1",
                "etag": "v1",
            },
            {"employee_id": "E2", "kind": "create", "outcome": "failed"},
            {"employee_id": "E3", "kind": "update", "outcome": "conflict", "target_id": "x"},
        ],
        run_id="r1",
    )
    assert store.managed_ids() == {"E1": "t1"}
    store.record_results(
        [{"employee_id": "E1", "kind": "deactivate", "outcome": "applied", "target_id": "t1"}],
        run_id="r2",
    )
    assert set(store.deactivated_since()) == {"E1"}
    store.record_results(
        [{"employee_id": "E1", "kind": "reactivate", "outcome": "applied", "target_id": "t1"}],
        run_id="r3",
    )
    assert store.deactivated_since() == {}
    store.record_results(
        [{"employee_id": "E1", "kind": "delete", "outcome": "applied", "target_id": "t1"}],
        run_id="r4",
    )
    assert store.managed_ids() == {}


def test_adopt_matched_keeps_existing_entries(store):
    store.record_results(
        [{"employee_id": "E1", "kind": "create", "outcome": "applied", "target_id": "t1"}],
        run_id="r1",
    )
    store.adopt_matched({"E1": ("other", True), "E2": ("t2", False)})
    assert store.managed_ids() == {"E1": "t1", "E2": "t2"}
    assert set(store.deactivated_since()) == {"E2"}


def test_export_history_gives_baseline_and_newest_date(store):
    assert store.previous_row_count() is None
    store.record_export("r1", date(2026, 3, 1), 100, 98, applied=True)
    store.record_export("r2", date(2026, 3, 2), 120, 120, applied=False)
    store.record_export("r3", date(2026, 2, 1), 5, 5, applied=True, full_export=False)
    assert store.previous_row_count() == 100
    assert store.newest_applied_export_date() == date(2026, 3, 1)
    assert store.newest_applied_export_date(exclude_run_id="r1") == date(2026, 2, 1)
