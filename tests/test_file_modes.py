"""Owner-only files whatever the umask: the state database, run artifacts, the CLI's children."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from genesys_sync import settings
from genesys_sync.report import write_json, write_text
from genesys_sync.runs import Run
from genesys_sync.state import StateStore

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_sqlite_state_is_owner_only(tmp_path, umask_022):
    db = tmp_path / "state.db"
    store = StateStore(f"sqlite:///{db}")
    store.set_meta("k", "v")
    store.close()
    assert _mode(db) == 0o600


def test_an_existing_world_readable_state_is_made_owner_only(tmp_path, umask_022):
    db = tmp_path / "state.db"
    StateStore(f"sqlite:///{db}").close()
    db.chmod(0o644)
    StateStore(f"sqlite:///{db}").close()
    assert _mode(db) == 0o600


def test_run_artifacts_are_owner_only(tmp_path, monkeypatch, umask_022):
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path / "home"))
    run = Run("manual__2026-11-27T00:00:00+00:00").prepare()
    write_json(run / "results" / "phase1-0001.json", {"results": []})
    write_text(run / "plan.md", "# plan\n")
    (run / "loose.csv").write_text("a,b\n")  # what a library writes with the umask's mode
    assert _mode(run / "loose.csv") == 0o644
    settings.restrict_tree(run)
    for path in [run, *run.rglob("*")]:
        assert _mode(path) & 0o077 == 0, path
    assert _mode(tmp_path / "home") == 0o700  # a new home is owner-only


def test_the_cli_runs_everything_with_umask_077(tmp_path):
    # `env` starts nothing; the umask it leaves is what every subprocess of a run inherits.
    code = (
        "import os, sys; from genesys_sync import cli; cli.main(['env']); "
        "print(oct(os.umask(0)), file=sys.stderr)"
    )
    done = subprocess.run(
        ["sh", "-c", f'umask 022 && exec "{sys.executable}" -c "{code}"'],
        env={**os.environ, "PYTHONPATH": str(PLUGINS), "GENESYS_SYNC_HOME": str(tmp_path / "h")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "0o77"
