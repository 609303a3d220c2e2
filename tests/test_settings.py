"""``genesys_sync.settings``: where local state lives and the knobs read from the environment."""

from __future__ import annotations

import pytest

from genesys_sync import settings


def test_trigger_start_delay_defaults_and_reads_the_environment(monkeypatch):
    monkeypatch.delenv(settings.TRIGGER_START_DELAY_ENV, raising=False)
    assert settings.trigger_start_delay() == 5.0
    assert settings.trigger_start_delay(default=2.0) == 2.0
    monkeypatch.setenv(settings.TRIGGER_START_DELAY_ENV, "0")
    assert settings.trigger_start_delay() == 0.0
    monkeypatch.setenv(settings.TRIGGER_START_DELAY_ENV, "-3")
    assert settings.trigger_start_delay() == 0.0
    monkeypatch.setenv(settings.TRIGGER_START_DELAY_ENV, "soon")
    with pytest.raises(ValueError):
        settings.trigger_start_delay()


def test_the_cli_runs_triggers_without_a_start_delay(monkeypatch, tmp_path):
    """``make sync`` runs ``airflow dags test`` (triggers inline): no pause before each job."""
    import subprocess

    from genesys_sync import cli

    seen = {}

    def fake_run(cmd, env, **kwargs):
        seen.update(env)
        return subprocess.CompletedProcess(cmd, 1)

    monkeypatch.delenv(settings.TRIGGER_START_DELAY_ENV, raising=False)
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path))
    monkeypatch.setattr(cli, "ensure_airflow_db", lambda env: None)
    monkeypatch.setattr(cli.subprocess, "run", fake_run)
    export = tmp_path / "export.csv"
    export.write_text("employee_id\n")
    assert cli.run_sync(str(export)) == 1
    assert seen[settings.TRIGGER_START_DELAY_ENV] == "0"
