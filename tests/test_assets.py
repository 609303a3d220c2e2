"""The sync's Assets: the HRIS export as the run's inlet, and an event on the organisation's
users asset only when a run applied something."""

from __future__ import annotations

from pathlib import Path

import pytest

from genesys_sync import assets

DAGS = Path(__file__).resolve().parents[1] / "dags"


class FakeOutletEvents(dict):
    """``context["outlet_events"]``: one accessor per outlet, recording what was added."""

    def __missing__(self, key):
        self[key] = accessor = FakeAccessor()
        return accessor


class FakeAccessor:
    def __init__(self):
        self.added = []

    def add(self, asset, extra=None):
        self.added.append((asset, extra))


@pytest.mark.parametrize(
    ("base_url", "uri"),
    [
        ("https://api.mypurecloud.ie/api/v2/scim/v2", "genesys://api.mypurecloud.ie/users"),
        ("https://API.usw2.pure.cloud/api/v2/scim/v2/", "genesys://api.usw2.pure.cloud/users"),
        ("http://user:pw@127.0.0.1:8089/api/v2/scim/v2", "genesys://127.0.0.1:8089/users"),
    ],
)
def test_one_asset_per_organisation(base_url, uri):
    assert assets.users_asset_uri(base_url) == uri
    assert assets.users_asset(base_url).uri == uri


def test_an_applying_run_adds_the_organisations_asset_to_the_alias():
    events = FakeOutletEvents()
    summary = {"status": "success", "writes": 5, "failed": 0, "held": 1, "dry_run": False}
    base = "https://api.mypurecloud.ie/api/v2/scim/v2"
    asset = assets.emit_users_updated(events, summary, base, "manual__1")
    assert asset.uri == "genesys://api.mypurecloud.ie/users"
    ((added, extra),) = events[assets.GENESYS_USERS].added
    assert added == asset
    assert extra == {
        "run_id": "manual__1",
        "status": "success",
        "writes": 5,
        "failed": 0,
        "held": 1,
        "api_calls": None,
    }


@pytest.mark.parametrize(
    "summary",
    [
        {"status": "success", "writes": 0, "dry_run": True},
        {"status": "success", "writes": 3, "dry_run": True},  # cannot happen; still no event
        {"status": "success", "writes": 0, "dry_run": False},  # nothing changed
    ],
)
def test_no_event_when_nothing_was_applied(summary):
    events = FakeOutletEvents()
    assert assets.emit_users_updated(events, summary, "https://h/scim", "r") is None
    assert not events


@pytest.mark.parametrize("base_url", [None, "", "not a url"])
def test_no_event_without_the_connections_url(base_url):
    events = FakeOutletEvents()
    assert assets.emit_users_updated(events, {"writes": 1}, base_url, "r") is None
    assert not events


def test_the_dag_declares_the_export_inlet_and_the_users_alias_outlet():
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS)).dags["genesys_user_sync"]
    assert assets.HRIS_EXPORT in dag.get_task("validate").inlets
    assert assets.GENESYS_USERS in dag.get_task("report").outlets


def test_the_event_goes_through_airflows_own_outlet_accessors():
    """What the task's ``context["outlet_events"]`` is in a run (task SDK 3.3.2)."""
    from airflow.sdk.execution_time.context import OutletEventAccessors

    events = OutletEventAccessors()
    summary = {"status": "success", "writes": 2, "dry_run": False}
    assets.emit_users_updated(events, summary, "https://api.mypurecloud.de/api/v2/scim/v2", "r1")
    (alias_event,) = events[assets.GENESYS_USERS].asset_alias_events
    assert alias_event.source_alias_name == "genesys_users"
    assert alias_event.dest_asset_key.uri == "genesys://api.mypurecloud.de/users"
    assert alias_event.extra["writes"] == 2 and alias_event.extra["run_id"] == "r1"
