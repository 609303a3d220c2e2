"""Fixtures for the gate tests: a private sync home, the shipped config, an export writer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from genesys_sync.config import SyncConfig, load_config
from genesys_sync.settings import INCLUDE_DIR
from tests.validation.sample_exports import Rows, csv_text


@pytest.fixture(autouse=True)
def sync_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "sync-home"
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(home))
    monkeypatch.delenv("HRIS_EXPORT_PATH", raising=False)
    return home


@pytest.fixture
def sync_config() -> SyncConfig:
    """The shipped config, without Data Docs (built only where a test asks for them)."""
    loaded = load_config(INCLUDE_DIR / "config" / "sync.yaml")
    return replace(loaded, gate=replace(loaded.gate, data_docs=False))


@pytest.fixture
def write_export(tmp_path: Path) -> Callable[..., Path]:
    """Write rows (or raw text/bytes) as an export file and return its path."""

    def write(content: Rows | str | bytes, name: str = "hris_export.csv") -> Path:
        path = tmp_path / "exports" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_text(csv_text(content), encoding="utf-8")
        return path

    return write
