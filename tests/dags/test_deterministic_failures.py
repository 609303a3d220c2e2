"""Failures a retry cannot fix end the task at once (``AirflowFailException``): a refused
``export`` param, a blocked gate, a licence-capacity breach. Anything else stays retryable."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from genesys_sync.plan import CapacityExceeded
from genesys_sync.stages import plan as plan_stage_module
from genesys_sync.stages import validate as validate_stage_module
from genesys_sync.stages.common import GateBlocked
from tests.dags.test_dag_integrity import DAGS


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS)).dags["genesys_user_sync"]


@pytest.fixture
def drop(tmp_path, monkeypatch):
    root = tmp_path / "drop"
    root.mkdir()
    config = tmp_path / "sync.yaml"
    config.write_text(f"export:\n  location: '{root}/hris_{{ds}}.csv'\n", encoding="utf-8")
    monkeypatch.setenv("GENESYS_SYNC_CONFIG", str(config))
    monkeypatch.delenv("HRIS_EXPORT_PATH", raising=False)
    return root


def render_sensor(dag, export_param):
    import copy

    sensor = copy.copy(dag.get_task("wait_for_export"))
    context = {
        "params": {"export": export_param},
        "dag_run": SimpleNamespace(logical_date=datetime(2026, 11, 27, 2, 0)),
    }
    sensor.render_template_fields(context, jinja_env=dag.get_template_env())
    return sensor.location


def test_the_sensor_renders_the_configured_or_an_allowed_location(dag, drop) -> None:
    assert render_sensor(dag, None) == f"{drop}/hris_2026-11-27.csv"
    assert render_sensor(dag, f"{drop}/other.csv") == f"{drop}/other.csv"


@pytest.mark.parametrize("param", ["/etc/passwd", "http://127.0.0.1:9/admin", "../../x.csv"])
def test_a_refused_param_fails_the_sensor_without_retry(dag, drop, param) -> None:
    with pytest.raises(AirflowFailException, match="The run param 'export'") as caught:
        render_sensor(dag, param)
    assert "export.allowed_locations" in str(caught.value)


class FakeHook:
    def __init__(self, conn_id):
        pass

    def get_scim_config(self):
        return None


def call_task(dag, task_id, monkeypatch, *args):
    monkeypatch.setattr("genesys_sync.hooks.genesys.GenesysScimHook", FakeHook)
    context = {
        "run_id": "manual__x",
        "dag_run": SimpleNamespace(logical_date=datetime(2026, 11, 27)),
        "ti": SimpleNamespace(dag_id="genesys_user_sync"),
        "params": {},
    }
    return dag.get_task(task_id).python_callable(*args, **context)


def test_a_blocked_gate_is_not_retried(dag, drop, monkeypatch) -> None:
    def blocked(*args, **kwargs):
        raise GateBlocked("Gate blocked the HRIS export: required_columns")

    monkeypatch.setattr(validate_stage_module, "validate_stage", blocked)

    with pytest.raises(AirflowFailException, match="Gate blocked the HRIS export"):
        call_task(dag, "validate", monkeypatch, "/x.csv")


def test_other_validate_errors_stay_retryable(dag, drop, monkeypatch) -> None:
    def flaky(*args, **kwargs):
        raise ConnectionError("the catalogue request timed out")

    monkeypatch.setattr(validate_stage_module, "validate_stage", flaky)

    with pytest.raises(ConnectionError):
        call_task(dag, "validate", monkeypatch, "/x.csv")


def test_a_capacity_breach_is_not_retried(dag, drop, monkeypatch) -> None:
    def over(*args, **kwargs):
        raise CapacityExceeded("the sync would leave 60 active users, above the licence")

    monkeypatch.setattr(plan_stage_module, "plan_stage", over)

    with pytest.raises(AirflowFailException, match="above the licence"):
        call_task(dag, "plan", monkeypatch, {"accepted_path": "/x.parquet"})
