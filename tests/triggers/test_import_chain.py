"""Import chains: nothing outside the Airflow adapters imports Airflow, and the triggerer's chain
stays light (the batch job's stage module loads neither the state store nor SQLAlchemy nor
Airflow; the trigger adds Airflow and the hook, nothing of the other stages)."""

from __future__ import annotations

import ast
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genesys_sync.settings import PROJECT_ROOT

PACKAGE_DIR = PROJECT_ROOT / "plugins" / "genesys_sync"

#: The Airflow adapters: the only modules that may import Airflow at module level. Everything
#: else (mapping, plan, scim, state, export, validation, audit, stages, ...) is core, usable and
#: testable without a scheduler; a core module that needs Airflow for one call (``export``'s
#: ObjectStoragePath) imports it inside that function.
ADAPTER_PACKAGES = ("hooks", "operators", "sensors", "triggers", "ui")
ADAPTER_MODULES = ("assets", "dag_support", "metrics", "notifiers", "provider_info")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_adapter(name: str) -> bool:
    parts = name.split(".")[1:]
    return bool(parts) and (parts[0] in ADAPTER_PACKAGES or ".".join(parts) in ADAPTER_MODULES)


CORE_MODULES = sorted(
    name
    for name in map(_module_name, PACKAGE_DIR.rglob("*.py"))
    if not _is_adapter(name) and "__pycache__" not in name
)


def _module_level_airflow_imports(tree: ast.Module) -> list[int]:
    """Lines of the ``import airflow...`` statements that run on import: anywhere but inside a
    function body or an ``if TYPE_CHECKING:`` block."""
    lines: list[int] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                names = []
            if any(n == "airflow" or n.startswith("airflow.") for n in names):
                lines.append(node.lineno)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, field, None) or []
                visit([c for c in children if isinstance(c, ast.stmt)])
                for child in children:  # except handlers, match cases
                    if not isinstance(child, ast.stmt) and hasattr(child, "body"):
                        visit(child.body)

    visit(tree.body)
    return lines


def _loaded_after(statement: str, env: dict[str, str] | None = None) -> set[str]:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**(env or {}), "PYTHONPATH": str(PROJECT_ROOT / "plugins")},
    )
    return set(json.loads(out.stdout))


def test_the_batch_job_stage_loads_neither_the_state_store_nor_sqlalchemy_nor_airflow() -> None:
    loaded = _loaded_after("import genesys_sync.stages.apply")
    assert "sqlalchemy" not in loaded and "genesys_sync.state" not in loaded
    assert {m.split(".")[0] for m in loaded} & {"sqlalchemy", "airflow", "pandas"} == set()
    assert {"genesys_sync.run_lock", "genesys_sync.state"} & loaded == set()
    others = {f"genesys_sync.stages.{s}" for s in ("validate", "plan", "finish")}
    assert others & loaded == set()


def test_the_trigger_loads_no_other_stage_and_not_the_state_store() -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith(("AIRFLOW", "GENESYS_SYNC"))}
    loaded = _loaded_after("import genesys_sync.triggers.apply_batch", env)
    assert "genesys_sync.stages.apply" in loaded
    assert {"genesys_sync.run_lock", "genesys_sync.state"} & loaded == set()
    others = {f"genesys_sync.stages.{s}" for s in ("validate", "plan", "finish")}
    assert others & loaded == set()


def test_the_rule_knows_the_layout_and_sees_module_level_imports() -> None:
    for package in ("hooks", "operators", "sensors", "triggers"):
        assert (PACKAGE_DIR / package / "__init__.py").exists(), package
    assert {"genesys_sync.mapping", "genesys_sync.plan", "genesys_sync.scim.client"} <= set(
        CORE_MODULES
    )
    assert not any(_is_adapter(name) for name in CORE_MODULES)
    source = (
        "from typing import TYPE_CHECKING\n"
        "import airflow\n"  # 2: flagged
        "if TYPE_CHECKING:\n    from airflow.sdk import Context\n"
        "try:\n    from airflow.sdk import BaseHook\nexcept ImportError:\n    pass\n"  # 6
        "class A:\n    import airflow.models\n"  # 10
        "def f():\n    from airflow.sdk import ObjectStoragePath\n"
    )
    assert _module_level_airflow_imports(ast.parse(source)) == [2, 6, 10]


@pytest.mark.parametrize("name", CORE_MODULES)
def test_no_core_module_imports_airflow_at_module_level(name: str) -> None:
    path = PACKAGE_DIR.parent / Path(*name.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    lines = _module_level_airflow_imports(ast.parse(path.read_text(), str(path)))
    assert lines == [], (
        f"{name} imports Airflow at module level (line {', '.join(map(str, lines))}): move the "
        "Airflow-facing code to an adapter (hooks/, operators/, sensors/, triggers/, ui/, assets, "
        "dag_support, notifiers) or import it inside the function that needs it"
    )


#: Development-only packages: the sandbox and what it is built on (requirements-dev.txt). The
#: production image (Dockerfile) ships none of them.
DEV_ONLY = ("genesys_sandbox", "scim2_server", "scim2_models")


@functools.cache
def _import_everything() -> dict[str, object]:
    """In a fresh interpreter, import every core module (noting the first one after which
    Airflow is loaded), then every adapter; report which development-only packages got loaded."""
    adapters = sorted(
        name
        for name in map(_module_name, PACKAGE_DIR.rglob("*.py"))
        if _is_adapter(name) and "__pycache__" not in name
    )
    code = (
        "import importlib, json, sys\n"
        "first = None\n"
        f"for name in {CORE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "    if first is None and 'airflow' in sys.modules:\n"
        "        first = name\n"
        f"for name in {adapters!r}:\n"
        "    importlib.import_module(name)\n"
        f"dev = sorted(m for m in sys.modules if m.split('.')[0] in {DEV_ONLY!r})\n"
        "print(json.dumps({'airflow_after': first, 'dev_only': dev}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k.startswith(("AIRFLOW", "GENESYS_SYNC"))}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**env, "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(PACKAGE_DIR.parent)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_every_core_module_loads_no_airflow() -> None:
    """The same rule through the import chain: no core module pulls in an adapter (or a
    library that loads Airflow) at import time. Names the first module that did."""
    first = _import_everything()["airflow_after"]
    assert first is None, f"importing {first} loaded Airflow"


def test_the_sync_loads_no_development_only_package() -> None:
    """Every module of the sync, adapters included, imports without the sandbox or its
    packages, and the runtime requirements do not list them."""
    assert _import_everything()["dev_only"] == []
    runtime = (PROJECT_ROOT / "requirements.txt").read_text().lower()
    assert not any(name.replace("_", "-") in runtime for name in DEV_ONLY[1:])
