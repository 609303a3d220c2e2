"""``GenesysScimHook``: the Genesys Cloud connection type (registered through the provider entry
point), its form's fields, and the Test button against the real sandbox and scim2-server."""

from __future__ import annotations

import json

import pytest

from genesys_sync.hooks.genesys import GenesysScimHook, form_extra
from genesys_sync.provider_info import CONNECTION_TYPE


def _use(monkeypatch, conn: dict) -> GenesysScimHook:
    monkeypatch.setenv("AIRFLOW_CONN_GENESYS_CLOUD", json.dumps(conn))
    return GenesysScimHook()


def test_the_connection_type_is_registered_with_its_form():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "genesys-scim-sync" in manager.providers
    hook = manager.hooks[CONNECTION_TYPE]
    assert hook is not None and hook.hook_class_name.endswith("GenesysScimHook")
    behaviour = manager.field_behaviours[CONNECTION_TYPE]
    assert behaviour["relabeling"]["login"] == "OAuth client id"
    assert set(behaviour["hidden_fields"]) == {"schema", "port"}
    widgets = {k for k in manager.connection_form_widgets if CONNECTION_TYPE in k}
    assert {f"extra__{CONNECTION_TYPE}__{f}" for f in ("base_url", "bearer_token")} <= widgets
    assert manager.connection_form_widgets[f"extra__{CONNECTION_TYPE}__bearer_token"].is_sensitive


def test_form_fields_are_read_with_or_without_their_prefix():
    extra = {
        f"extra__{CONNECTION_TYPE}__base_url": "https://scim.example.com/v2",
        "bearer_token": "t",
        f"extra__{CONNECTION_TYPE}__token_url": "",
        "requests_per_minute": None,
    }
    assert form_extra(extra) == {"base_url": "https://scim.example.com/v2", "bearer_token": "t"}


def test_test_button_connects_to_the_sandbox(monkeypatch, sandbox):
    conn = json.loads(sandbox.connection_json())
    ok, message = _use(monkeypatch, {**conn, "conn_type": CONNECTION_TYPE}).test_connection()
    assert ok, message
    assert "OAuth client credentials" in message and "users are readable" in message
    assert sandbox.stats()["token_requests"] == 1


def test_test_button_connects_to_a_plain_scim_server(monkeypatch, plain_scim):
    ok, message = _use(monkeypatch, json.loads(plain_scim.connection_json())).test_connection()
    assert ok, message
    assert "bearer token" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"password": "wrong-secret"}, "credentials were refused"),
        ({"extra": {"base_url": "http://127.0.0.1:9/v2", "bearer_token": "x"}}, "cannot reach"),
        ({"extra": {"base_url": "http://127.0.0.1:9/v2"}}, "needs extra.token_url"),
    ],
)
def test_test_button_names_what_is_wrong(monkeypatch, sandbox, change, expected):
    conn = {**json.loads(sandbox.connection_json()), **change}
    ok, message = _use(monkeypatch, conn).test_connection()
    assert not ok and expected in message, message
    assert "wrong-secret" not in message and "sandbox-secret" not in message
