"""``make sync`` (``genesys_sync.cli sync``): EXPORT is the operator's configured location, the
param ``export`` stays on the allow-list, and a run that cannot succeed never starts Airflow."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from genesys_sync import cli
from genesys_sync.settings import INCLUDE_DIR


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    root = tmp_path / "drop"
    root.mkdir()
    (root / "hris_2026-11-27.csv").write_text("employee_id\n", encoding="utf-8")
    return root


@pytest.fixture
def airflow(monkeypatch, tmp_path, drop) -> list[dict]:
    """``airflow dags test`` replaced by a recorder; a config whose export lands in ``drop``."""
    calls: list[dict] = []

    def fake_run(cmd, env, **kwargs):
        calls.append({"cmd": cmd, "env": dict(env)})
        return subprocess.CompletedProcess(cmd, 1)

    text = (INCLUDE_DIR / "config" / "sync.yaml").read_text(encoding="utf-8")
    shipped = "location: include/sample/hris_export.csv"
    assert shipped in text
    config = tmp_path / "sync.yaml"
    config.write_text(text.replace(shipped, f"location: {drop}/hris_{{ds}}.csv"))
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GENESYS_SYNC_CONFIG", str(config))
    monkeypatch.delenv("HRIS_EXPORT_PATH", raising=False)
    monkeypatch.delenv("GENESYS_SYNC_WAIT_FOR_EXPORT", raising=False)
    monkeypatch.setattr(cli, "ensure_airflow_db", lambda env: calls.append({"db": True}))
    monkeypatch.setattr(cli.subprocess, "run", fake_run)
    return calls


def sync(*args: str) -> int:
    return cli.main(["sync", "--logical-date", "2026-11-27", *args])


def run_conf(calls: list[dict]) -> dict:
    (call,) = [c for c in calls if "cmd" in c]
    return json.loads(call["cmd"][call["cmd"].index("-c") + 1])


def test_export_sets_the_configured_location_not_the_param(airflow, tmp_path) -> None:
    elsewhere = tmp_path / "operator" / "any.csv"  # outside every allowed directory
    elsewhere.parent.mkdir()
    elsewhere.write_text("employee_id\n", encoding="utf-8")

    sync("--export", str(elsewhere))

    (call,) = [c for c in airflow if "cmd" in c]
    assert call["env"]["HRIS_EXPORT_PATH"] == str(elsewhere.resolve())
    assert "export" not in run_conf(airflow)
    assert run_conf(airflow)["wait_for_approval"] is False


def test_a_relative_export_is_made_absolute(airflow, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("mine.csv").write_text("employee_id\n", encoding="utf-8")

    sync("--export", "mine.csv")

    (call,) = [c for c in airflow if "cmd" in c]
    assert call["env"]["HRIS_EXPORT_PATH"] == str(tmp_path / "mine.csv")


def test_a_param_on_the_allow_list_is_passed_on(airflow, drop) -> None:
    sync("--conf", json.dumps({"export": str(drop / "hris_2026-11-27.csv"), "dry_run": True}))

    assert run_conf(airflow)["export"] == str(drop / "hris_2026-11-27.csv")


@pytest.mark.parametrize(
    "param",
    [
        "/etc/passwd",
        "http://127.0.0.1:8080/admin",
        "{drop}/../secret.csv",
        "file:///etc/shadow",
    ],
)
def test_a_refused_param_never_starts_airflow(airflow, drop, capsys, param) -> None:
    code = sync("--conf", json.dumps({"export": param.format(drop=drop)}))

    assert code == 2
    assert airflow == []  # not even the metadata database
    err = capsys.readouterr().err
    assert "FAILED: The run param 'export'" in err
    assert "export.allowed_locations" in err and str(drop.resolve()) in err


def test_a_missing_export_fails_at_once_naming_the_path(airflow, drop, capsys) -> None:
    code = cli.main(["sync", "--logical-date", "2026-11-28"])

    assert code == 2 and airflow == []
    err = capsys.readouterr().err
    assert f"not found at {drop}/hris_2026-11-28.csv" in err
    assert "export.location in" in err and "--wait-for-export" in err


def test_a_mistyped_export_fails_at_once(airflow, tmp_path, capsys) -> None:
    code = sync("--export", str(tmp_path / "hirs.csv"))

    assert code == 2 and airflow == []
    assert f"not found at {tmp_path / 'hirs.csv'} (from EXPORT" in capsys.readouterr().err


def test_wait_for_export_lets_the_sensor_wait(airflow, tmp_path, monkeypatch) -> None:
    sync("--export", str(tmp_path / "later.csv"), "--wait-for-export")
    monkeypatch.setenv("GENESYS_SYNC_WAIT_FOR_EXPORT", "1")
    sync("--export", str(tmp_path / "later.csv"))

    assert len([c for c in airflow if "cmd" in c]) == 2


def test_a_found_export_starts_the_run(airflow) -> None:
    sync()

    assert len([c for c in airflow if "cmd" in c]) == 1


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ("[1]", "CONF must be a JSON object"),
        ('"x"', "CONF must be a JSON object"),
        ('{"export": 3}', "the run param 'export' must be a string"),
    ],
)
def test_conf_must_be_an_object_with_a_string_export(airflow, conf, message, capsys) -> None:
    assert sync("--conf", conf) == 2
    assert airflow == []
    assert message in capsys.readouterr().err


def test_triggers_run_without_a_start_delay(airflow) -> None:
    """``make sync`` runs ``airflow dags test`` (triggers inline): no pause before each job."""
    from genesys_sync.settings import TRIGGER_START_DELAY_ENV

    assert sync() == 1
    (call,) = [c for c in airflow if "cmd" in c]
    assert call["env"][TRIGGER_START_DELAY_ENV] == "0"
