"""The production image ships the sync, not the development tools: the Dockerfile's default
stage copies the pruned code (no sandbox, no demo CLI), the runtime requirements do not list the
sandbox's packages, and docker compose does not mount them back over the image."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile

import yaml

from genesys_sync.settings import PROJECT_ROOT

DEV_ONLY_PATHS = ("plugins/genesys_sandbox", "include/sandbox", "plugins/genesys_sync/cli.py")


def _stages() -> dict[str, list[str]]:
    """The Dockerfile's instructions (continuation lines joined) by stage name, in order."""
    text = re.sub(r"\\\n\s*", " ", (PROJECT_ROOT / "Dockerfile").read_text())
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            current = stages.setdefault(match.group(1), [])
        current.append(line)
    return stages


def test_the_default_stage_is_production_and_copies_only_the_pruned_code() -> None:
    stages = _stages()
    assert list(stages)[-1] == "production"  # what `docker build .` and compose build
    copies = [line for line in stages["production"] if line.startswith("COPY")]
    from_context = [line for line in copies if "--from=" not in line]
    assert from_context, "the requirements come from the build context"
    for line in from_context:
        assert not re.search(r"\b(plugins|include|dags)/", line), line
    assert any("--from=code" in line and "/stage/dist/" in line for line in copies)
    assert not any("/stage/plugins/" in line for line in copies), "the code comes as a wheel"
    removed = " ".join(line for line in stages["code"] if line.startswith("RUN"))
    for path in DEV_ONLY_PATHS:
        assert f"/stage/{path}" in removed, path
    installs = " ".join(line for line in stages["production"] if line.startswith("RUN"))
    assert "--no-deps /opt/genesys-sync/dist/genesys_scim_sync-" in installs


def test_the_image_s_wheel_holds_the_sync_and_its_entry_points_not_the_dev_tools(tmp_path):
    """The wheel the ``code`` stage builds, built the same way from a copy pruned the same
    way: the sync with its Airflow entry points (the connection type, the results UI), no
    sandbox, no demo CLI."""
    stage = tmp_path / "stage"
    shutil.copytree(PROJECT_ROOT / "plugins", stage / "plugins", ignore=_BUILD_LEFTOVERS)
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(PROJECT_ROOT / name, stage / name)
    for path in DEV_ONLY_PATHS:
        if path.startswith("plugins/"):
            target = stage / path
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", "dist", "."],
        cwd=stage,
        check=True,
        capture_output=True,
    )
    (wheel,) = (stage / "dist").glob("genesys_scim_sync-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entries = archive.read(entry_points).decode()
    assert "genesys_sync/runs.py" in names and "genesys_sync/ui/plugin.py" in names
    assert not [n for n in names if n.startswith("genesys_sandbox") or n.endswith("/cli.py")]
    assert "[apache_airflow_provider]" in entries and "genesys_sync.provider_info" in entries
    assert "[airflow.plugins]" in entries and "genesys_sync.ui.plugin:GenesysSyncPlugin" in entries


_BUILD_LEFTOVERS = shutil.ignore_patterns("__pycache__", "*.egg-info")


def test_the_sandbox_packages_are_development_requirements() -> None:
    runtime = (PROJECT_ROOT / "requirements.txt").read_text()
    dev = (PROJECT_ROOT / "requirements-dev.txt").read_text()
    constraints = (PROJECT_ROOT / "constraints.txt").read_text().splitlines()
    for package in ("scim2-server", "scim2-models"):
        assert package not in runtime
        (pin,) = re.findall(rf"^{package}==\S+", dev, re.MULTILINE)
        assert pin in constraints


def test_compose_runs_the_image_code_and_the_sandbox_from_its_own_stage() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            if isinstance(volume, dict):  # the long syntax
                source, target = str(volume.get("source")), str(volume.get("target"))
            else:
                source, target = (str(volume).split(":") + [""])[:2]
            code = ("/opt/airflow/plugins", "/opt/airflow/dags", "/opt/airflow/include")
            assert not target.startswith(code), f"{name} mounts {source} over the image's code"
    sandbox = compose["services"]["genesys-sandbox"]
    assert sandbox["build"]["target"] == "sandbox"
    assert sandbox["image"] != compose["x-airflow-common"]["image"]
