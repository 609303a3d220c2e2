"""How Airflow finds the UI plugin: through the installed package's ``airflow.plugins`` entry
point, or, where the package is not installed, from the plugins folder; once either way.

Each case asks Airflow's own plugin manager in a fresh interpreter set up as an Airflow
component is (the project's plugins folder configured and on ``sys.path``, the working directory
not on it), and reads what it loaded and the import errors it recorded (the UI shows those)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PLUGIN = "genesys_sync"

PLUGIN_MANAGER = """
import json, sys
if sys.argv[1] == "not-installed":
    # A bare plugins folder: plugins/ on sys.path, nothing pip-installed. Hide the installed
    # distribution from both metadata readers (Airflow uses the importlib_metadata backport).
    import importlib.metadata as stdlib_metadata
    import importlib_metadata
    for module in (stdlib_metadata, importlib_metadata):
        def distributions(_real=module.distributions, **kwargs):
            return (d for d in _real(**kwargs) if d.metadata["Name"] != "genesys-scim-sync")
        module.distributions = distributions
from airflow import plugins_manager
print(json.dumps({
    "plugins": [
        {"name": p["name"], "source": str(p["source"]), "fastapi_apps": len(p["fastapi_apps"]),
         "external_views": [v["url_route"] for v in p["external_views"]]}
        for p in plugins_manager.get_plugin_info()
    ],
    "import_errors": plugins_manager.get_import_errors(),
}))
"""


def _loaded_plugins(case: str, tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__CORE__PLUGINS")}
    env |= {
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT / "dags")]),
    }
    child = subprocess.run(
        [sys.executable, "-c", PLUGIN_MANAGER, case],
        env=env,
        cwd=tmp_path,  # an Airflow command has its own bin directory first on sys.path, not "."
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.strip().splitlines()[-1])


def test_the_installed_package_registers_the_plugin_once_beside_the_plugins_folder(tmp_path):
    from genesys_sync.ui.plugin import registered_by_entry_point

    if not registered_by_entry_point():
        pytest.fail("genesys-scim-sync is not installed with its entry points: run `make install`")

    loaded = _loaded_plugins("installed", tmp_path)

    ours = [p for p in loaded["plugins"] if p["name"] == PLUGIN]
    assert len(ours) == 1, loaded["plugins"]
    (plugin,) = ours
    assert "genesys-scim-sync==" in plugin["source"]
    assert "genesys_sync.ui.plugin:GenesysSyncPlugin" in plugin["source"]
    assert plugin["fastapi_apps"] == 1
    assert plugin["external_views"] == ["genesys-sync", "genesys-sync-run"]
    # Not registered a second time and skipped ("Plugin 'genesys_sync' already registered"):
    # Airflow records that as an import error, shown in the UI.
    assert loaded["import_errors"] == {}


def test_without_the_package_the_plugins_folder_registers_it(tmp_path):
    loaded = _loaded_plugins("not-installed", tmp_path)

    ours = [p for p in loaded["plugins"] if p["name"] == PLUGIN]
    assert len(ours) == 1, loaded["plugins"]
    assert ours[0]["source"] == "$PLUGINS_FOLDER/genesys_sync_plugin.py"
    assert ours[0]["external_views"] == ["genesys-sync", "genesys-sync-run"]
    assert loaded["import_errors"] == {}


def test_the_entry_point_names_the_plugin_class():
    import tomllib

    from genesys_sync.ui import plugin

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    entry_points = project["project"]["entry-points"][plugin.ENTRY_POINT_GROUP]
    assert entry_points == {PLUGIN: plugin.ENTRY_POINT}
    module, _, attribute = plugin.ENTRY_POINT.partition(":")
    assert getattr(sys.modules[module], attribute) is plugin.GenesysSyncPlugin
    assert plugin.GenesysSyncPlugin.name == PLUGIN
