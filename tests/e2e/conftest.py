"""End-to-end fixtures: a migrated Airflow metadata DB shared by the session, a sync home per test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def airflow_db():
    """``airflow db migrate`` once for the session's AIRFLOW_HOME (set in tests/conftest.py)."""
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True,
                   env={**os.environ})
    return os.environ["AIRFLOW_HOME"]


@pytest.fixture
def sync_home(tmp_path: Path) -> Path:
    home = tmp_path / "sync-home"
    home.mkdir()
    return home
