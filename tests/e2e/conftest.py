"""End-to-end fixtures: one migrated Airflow metadata DB per session, a sync home per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def airflow_db():
    """Migrate the session's AIRFLOW_HOME (set in tests/conftest.py) once, as the CLI does."""
    from genesys_sync.cli import ensure_airflow_db

    ensure_airflow_db(dict(os.environ))
    return os.environ["AIRFLOW_HOME"]


@pytest.fixture
def sync_home(tmp_path: Path) -> Path:
    home = tmp_path / "sync-home"
    home.mkdir()
    return home
