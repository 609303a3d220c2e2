"""The triggerer's import chain stays light: the batch job's stage module loads neither the state
store nor SQLAlchemy nor Airflow, and the trigger adds Airflow and the hook, nothing of the other
stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from genesys_sync.settings import PROJECT_ROOT


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
