"""Reliability-suite fixtures: a sync home per test, as in the stage tier."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sync_home(tmp_path: Path) -> Path:
    home = tmp_path / "sync-home"
    home.mkdir()
    return home
