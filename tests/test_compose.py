"""The compose files, read statically (no Docker engine here; tests/deployment runs the same
components as processes): the LocalExecutor base and the CeleryExecutor override in the shape of
Airflow's official file, configured for the shared rate limit and the audit trail in PostgreSQL."""

from __future__ import annotations

import yaml

from genesys_sync.settings import PROJECT_ROOT


def _load(name: str) -> dict:
    return yaml.safe_load((PROJECT_ROOT / name).read_text())


def test_the_base_file_is_the_small_team_local_executor_deployment():
    base = _load("docker-compose.yml")
    services = base["services"]
    assert {"postgres", "airflow-init", "airflow-apiserver", "airflow-scheduler"} <= set(services)
    assert {"airflow-dag-processor", "airflow-triggerer"} <= set(services)
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["GENESYS_SYNC_AUDIT_STORE"] == "database"
    assert env["GENESYS_SYNC_RUNS_URL"] == "${GENESYS_SYNC_RUNS_URL:-}"  # default: the volume
    assert "healthcheck" in services["postgres"]


def test_the_celery_override_adds_redis_workers_and_a_second_triggerer():
    celery = _load("docker-compose.celery.yml")
    services = celery["services"]
    assert {"redis", "airflow-worker", "airflow-triggerer-2"} <= set(services)
    assert services["airflow-worker"]["command"] == "celery worker"
    assert "healthcheck" in services["redis"] and "healthcheck" in services["airflow-worker"]
    components = ("airflow-apiserver", "airflow-scheduler", "airflow-worker", "airflow-triggerer")
    for name in (*components, "airflow-triggerer-2"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://"), name
        assert env["GENESYS_SYNC_RATE_LIMIT_REDIS_URL"].startswith("redis://"), name
        assert "redis" in services[name]["depends_on"], name
        assert env["GENESYS_SYNC_RUNS_URL"].startswith("${GENESYS_SYNC_RUNS_URL:?"), name
        assert env["AIRFLOW__LOGGING__REMOTE_LOGGING"] == "True", name  # logs on no one disk
        assert env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"].startswith(
            "${AIRFLOW_REMOTE_LOG_"
        ), name
    for name in ("airflow-worker", "airflow-triggerer-2"):  # built on the base's services
        assert services[name]["extends"]["file"] == "docker-compose.yml"
