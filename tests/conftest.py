"""Test-wide setup: an isolated sync home and Airflow home per session, and shared fixtures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Airflow reads its configuration when first imported: point it at a throw-away home before any
# test module imports it, so tests never touch a developer's .sync-home or ~/airflow.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="genesys-sync-tests-"))
os.environ["GENESYS_SYNC_HOME"] = str(_SESSION_HOME / "home")
os.environ["AIRFLOW_HOME"] = str(_SESSION_HOME / "airflow")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "plugins")
for _var in (
    "AIRFLOW_CONN_GENESYS_CLOUD",
    "HRIS_WEBHOOK_URL",
    "AUDIT_LOG_PATH",
    "GENESYS_SYNC_STATE_URL",
    "GENESYS_SYNC_CONFIG",
    "HRIS_EXPORT_PATH",
    "GENESYS_SYNC_RATE_LIMIT_REDIS_URL",
    "GENESYS_SYNC_RUNS_URL",
    "GENESYS_SYNC_RUNS_CONN_ID",
):
    os.environ.pop(_var, None)

pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.targets",
    "tests.fixtures.webhook",
    "tests.fixtures.reliability",
    "tests.fixtures.s3",
]


@pytest.fixture(autouse=True)
def _tokens_of_this_test_only():
    """Each test's clients fetch their own first token: the process's token cache
    (``scim.client._TOKENS``) would carry one over from a sandbox an earlier test reset."""
    from genesys_sync.scim import client

    client._TOKENS.clear()
