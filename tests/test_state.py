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


def test_granted_roles_are_recorded_from_applied_changes_only(store):
    store.record_results(
        [
            {"employee_id": "E1", "kind": "create", "outcome": "applied", "target_id": "t1"},
            {"employee_id": "E2", "kind": "create", "outcome": "failed"},
            {"employee_id": "E3", "kind": "update", "outcome": "unchanged", "target_id": "t3"},
        ],
        run_id="r1",
        granted_roles={
            ("E1", "create"): ["User", "employee"],
            ("E2", "create"): ["User"],
            ("E3", "update"): [],
        },
    )
    assert store.granted_roles() == {"E1": frozenset({"User", "employee"}), "E3": frozenset()}
    # A later write without a roles decision (a deactivation) keeps them.
    store.record_results(
        [{"employee_id": "E1", "kind": "deactivate", "outcome": "applied", "target_id": "t1"}],
        run_id="r2",
    )
    assert store.granted_roles()["E1"] == {"User", "employee"}


def test_a_dry_run_only_forgets_granted_roles(store):
    store.record_results(
        [{"employee_id": "E1", "kind": "create", "outcome": "applied", "target_id": "t1"}],
        run_id="r1",
        granted_roles={("E1", "create"): ["User", "Supervisor"]},
    )
    store.record_granted_roles({"E1": ["User", "Admin"]}, shrink_only=True)
    assert store.granted_roles() == {"E1": {"User"}}
    store.record_granted_roles({"E1": ["User", "Admin"]})
    assert store.granted_roles() == {"E1": {"User", "Admin"}}


def test_a_store_created_before_granted_roles_gains_the_column(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE managed_users (employee_id VARCHAR(64) PRIMARY KEY, "
                "target_id VARCHAR(128) NOT NULL, etag VARCHAR(128), active BOOLEAN NOT NULL, "
                "deactivated_at DATETIME, updated_at DATETIME NOT NULL, "
                "last_run_id VARCHAR(250), fingerprint VARCHAR(64))"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO managed_users VALUES ('E1', 't1', NULL, 1, NULL, "
                "'2026-01-01 00:00:00', 'r0', NULL)"
            )
        )
    engine.dispose()
    store = StateStore(url)
    try:
        assert store.managed_ids() == {"E1": "t1"}
        assert store.granted_roles() == {}  # nothing known: the sync owns no role yet
    finally:
        store.close()


def test_last_applied_values_are_merged_per_write_and_kept_with_the_etag(store):
    """What the sync last applied (kubectl's last-applied configuration), with the last ETag."""
    store.record_results(
        [
            {
                "employee_id": "E1",
                "kind": "create",
                "outcome": "applied",
                "target_id": "t1",
                "etag": "v1",
            }
        ],
        "run-1",
        applied={("E1", "create"): {"title": "Agent", "active": True}},
    )
    assert store.applied() == {"E1": ("t1", "v1", {"title": "Agent", "active": True})}
    manager = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"
    store.record_results(
        [
            {
                "employee_id": "E1",
                "kind": "link_manager",
                "outcome": "applied",
                "target_id": "t1",
                "etag": "v2",
            }
        ],
        "run-1",
        applied={("E1", "link_manager"): {manager: "t0"}},
    )
    assert store.applied()["E1"] == ("t1", "v2", {"title": "Agent", "active": True, manager: "t0"})
    store.record_applied({"E1": ("t1", "v3", {"title": "Lead"})})  # seen holding it: merged
    assert store.applied()["E1"] == ("t1", "v3", {"title": "Lead", "active": True, manager: "t0"})
    # a failed write changes nothing
    store.record_results(
        [{"employee_id": "E1", "kind": "update", "outcome": "failed", "target_id": "t1"}],
        "run-2",
        applied={("E1", "update"): {"title": "Never"}},
    )
    assert store.applied()["E1"][2]["title"] == "Lead"


def test_applied_values_are_decoded_when_looked_up_and_unreadable_ones_are_absent(store):
    for eid, kind in (("E1", "create"), ("E2", "create"), ("E3", "create")):
        store.record_results(
            [{"employee_id": eid, "kind": kind, "outcome": "applied", "target_id": f"t-{eid}"}],
            "run-1",
            applied={(eid, kind): {"title": eid}},
        )
    with store.engine.begin() as conn:  # E2's stored values are not a JSON object
        conn.execute(sa.text("UPDATE managed_users SET applied = '[1]' WHERE employee_id = 'E2'"))
    applied = store.applied()
    assert applied._decoded == {}  # nothing decoded yet
    assert "E1" in applied and "E2" not in applied and "E9" not in applied
    assert applied["E1"] == ("t-E1", None, {"title": "E1"})
    assert set(applied._decoded) == {"E1", "E2"}  # E3 still as stored
    with pytest.raises(KeyError):
        applied["E2"]
    assert sorted(applied) == ["E1", "E3"] and len(applied) == 2
    assert applied == {
        "E1": ("t-E1", None, {"title": "E1"}),
        "E3": ("t-E3", None, {"title": "E3"}),
    }


def test_cached_documents_round_trip_and_can_be_dropped(store):
    discovery = {"base_url": "https://x", "spc": {"bulk": {}}, "schemas": [{"id": "s" * 300}]}
    store.set_document("discovery", discovery)
    assert store.get_document("discovery") == discovery  # longer than sync_meta's 250
    store.set_document("discovery", None)
    assert store.get_document("discovery") is None
    assert store.get_document("never") is None
