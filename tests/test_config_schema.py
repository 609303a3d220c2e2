"""``sync.yaml`` is checked against a schema (pydantic): a wrong type or an unknown key fails
on load, naming the key; the shipped file and the loaded objects stay as callers know them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from genesys_sync.config import (
    AlertsConfig,
    ConfigError,
    ExportConfig,
    SyncConfig,
    check_config,
    load_config,
)
from tests.fixtures.expect import ROOT

SHIPPED = ROOT / "include" / "config" / "sync.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sync.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_config_passes_the_schema_and_loads_as_before():
    config = load_config(SHIPPED)
    assert isinstance(config, SyncConfig) and config.source == SHIPPED
    assert config.sync.batch_size == 100 and config.export.allowed_locations == ()
    assert config.gate.catalogue_roles == () and config.gate.data_docs is True
    assert config.export.columns["employee_id"] == "employee_id"
    assert config.alerts == AlertsConfig()  # the shipped alerts section is the defaults


def test_an_empty_file_is_the_defaults(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert config.export == ExportConfig() and config.sync.batch_size == 100


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ('sync:\n  batch_size: "ten"\n', "sync.batch_size", "valid integer (got 'ten')"),
        ('sync:\n  batch_size: "10"\n', "sync.batch_size", "valid integer"),  # no coercion
        ("sync:\n  batch_size: 0\n", "sync.batch_size", "greater than or equal to 1"),
        ("sync:\n  max_failure_fraction: 1.5\n", "sync.max_failure_fraction", "less than"),
        ("gate:\n  data_docs: maybe\n", "gate.data_docs", "valid boolean"),
        ("gate:\n  max_tenant_users: 1.5\n", "gate.max_tenant_users", "valid integer"),
        ("export:\n  format: xlsx\n", "export.format", "must be one of csv, jsonl, parquet"),
        ("export:\n  wait_timeout_minutes: soon\n", "export.wait_timeout_minutes", "number"),
        ("alerts:\n  email:\n    to: 5\n", "alerts.email.to", "valid list"),
        ("version: 2\n", "version", "must be 1"),
    ],
)
def test_a_wrong_value_names_its_key(tmp_path, text, key, says):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    message = str(caught.value)
    assert re.search(rf"{re.escape(key)}[: ]", message), message
    assert says in message
    assert str(tmp_path / "sync.yaml") in message


@pytest.mark.parametrize(
    ("text", "key", "allowed"),
    [
        ("sync:\n  batchsize: 10\n", "sync.batchsize", "batch_size"),
        ("gate:\n  catalogue:\n    role: [Admin]\n", "gate.catalogue.role", "roles, divisions"),
        ("alerts:\n  http:\n    url: http://x\n", "alerts.http.url", "conn_id, endpoint"),
        ("exports:\n  location: x.csv\n", "exports", "export"),
    ],
)
def test_an_unknown_key_is_refused_by_name(tmp_path, text, key, allowed):
    with pytest.raises(ConfigError, match=rf"{re.escape(key)}: unknown key; allowed: ") as caught:
        load_config(write(tmp_path, text))
    assert allowed in str(caught.value)


def test_every_problem_is_named_at_once(tmp_path):
    text = 'sync:\n  batch_size: "ten"\n  roles: all\ngate:\n  typo: 1\n'
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    message = str(caught.value)
    assert "sync.batch_size" in message and "sync.roles must be one of" in message
    assert "gate.typo: unknown key" in message


def test_the_alerts_section_loads(tmp_path):
    raw = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    raw["alerts"] = {
        "http": {"conn_id": "my_alerts", "endpoint": "/hook"},
        "email": {"to": "oncall@example.org", "from_email": "airflow@example.org"},
        "slack": {"webhook_conn_id": "slack_alerts"},
        "max_message_chars": 300,
    }
    config = load_config(write(tmp_path, yaml.safe_dump(raw)))
    assert config.alerts.http_conn_id == "my_alerts" and config.alerts.http_endpoint == "/hook"
    assert config.alerts.email_to == ("oncall@example.org",)
    assert config.alerts.slack_webhook_conn_id == "slack_alerts"
    assert config.alerts.max_message_chars == 300


def test_check_config_refuses_a_non_mapping():
    with pytest.raises(ConfigError, match="must be a mapping"):
        check_config(["a", "b"])
