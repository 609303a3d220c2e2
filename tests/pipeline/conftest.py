"""Stage-tier fixtures: a sync home per test (the targets come from ``tests.fixtures``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sync_home(tmp_path: Path) -> Path:
    home = tmp_path / "sync-home"
    home.mkdir()
    return home


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/pipeline/" in str(item.path):
            item.add_marker(pytest.mark.stage)
