"""Every DAG imports cleanly, follows the house rules, and does no work at parse time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
HEAVY = (
    "pandas",
    "great_expectations",
    "pyarrow",
    "scim2_server",
    "genesys_sandbox",
    "genesys_sync.validation",
    "genesys_sync.export",
)

PROBE = r"""
import builtins, json, os, socket, sys, time
opened = []
real_open = builtins.open
def spy_open(file, *a, **k):
    opened.append(os.fspath(file) if not isinstance(file, int) else file)
    return real_open(file, *a, **k)
builtins.open = spy_open
def no_network(*a, **k):
    raise AssertionError("network access at DAG parse time")
socket.socket.connect = no_network
socket.create_connection = no_network
sys.path[:0] = [sys.argv[1] + "/plugins", sys.argv[1] + "/dags"]
import airflow.sdk  # noqa: F401  (Airflow itself is already loaded in a DAG processor)
before = set(sys.modules)
opened.clear()
start = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[2])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
print(json.dumps({"opened": [str(p) for p in opened], "elapsed": elapsed,
                  "modules": sorted(set(sys.modules) - before)}))
"""


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_every_dag_imports_without_error(dagbag):
    assert dagbag.import_errors == {}
    assert "genesys_user_sync" in dagbag.dags


def test_dags_follow_house_rules(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.catchup is False, f"{dag_id} catches up"
        assert dag.max_active_runs == 1, f"{dag_id} allows parallel runs"
        assert dag.doc_md, f"{dag_id} has no doc_md"
        for task in dag.tasks:
            if task.task_id not in ("report", "outcome", "wait_for_export"):
                assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"
            assert task.on_failure_callback, f"{dag_id}.{task.task_id} has no failure alert"


def test_sync_dag_shape(dagbag):
    dag = dagbag.dags["genesys_user_sync"]
    assert set(dag.task_ids) == {
        "wait_for_export", "validate", "plan", "apply_batch", "manager_links", "link_managers",
        "removals_held", "approve_removals", "held_batches", "apply_held", "report",
        "notify_hris", "outcome",
    }  # fmt: skip
    assert dag.get_task("apply_batch").downstream_task_ids == {"manager_links", "removals_held"}
    assert dag.get_task("outcome").downstream_task_ids == set()
    approve = dag.get_task("approve_removals")
    assert approve.defaults == ["Reject"] and approve.response_timeout is not None
    assert dag.get_task("report").trigger_rule == "all_done"
    assert set(dag.params.keys()) == {
        "dry_run", "employee_ids", "export", "force", "approve_deactivations",
        "full_reconcile", "wait_for_approval",
    }  # fmt: skip


SECTIONS = {
    "dry_run": "Run",
    "export": "Run",
    "employee_ids": "Run",
    "full_reconcile": "Run",
    "force": "Risky switches",
    "approve_deactivations": "Risky switches",
    "wait_for_approval": "Approval",
}


def test_every_param_has_a_title_description_and_section_and_none_renders_required(dagbag):
    params = dagbag.dags["genesys_user_sync"].params
    for name in params:
        param = params.get_param(name)
        assert param.schema.get("title"), f"{name} has no title"
        assert param.description, f"{name} has no description"
        assert param.schema.get("section") == SECTIONS[name], f"{name} is in the wrong section"
        # The trigger form marks a field required when its type does not admit null.
        kinds = param.schema.get("type")
        assert isinstance(kinds, list) and "null" in kinds, f"{name} renders as required"
        assert param.resolve(param.value) == param.value  # its default validates
    assert params.get_param("employee_ids").resolve(["E1", "E2"]) == ["E1", "E2"]


@pytest.mark.parametrize("dag_file", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_parse_does_no_io_and_imports_nothing_heavy(dag_file, tmp_path):
    env = {**os.environ, "GENESYS_SYNC_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT), str(dag_file)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    project_files = [
        p
        for p in probe["opened"]
        if (str(ROOT) in p or str(tmp_path) in p)
        and not p.startswith(sys.prefix)
        and not p.endswith(".py")  # module source read by the import system itself
    ]
    assert project_files == [], f"files opened at parse time: {project_files}"
    heavy = [m for m in probe["modules"] if m.split(".")[0] in HEAVY or m in HEAVY]
    assert heavy == [], f"heavy modules imported at parse time: {heavy}"
    assert not (tmp_path / "home").exists(), "the sync home was created at parse time"
    # Parse speed (< 2 s) is measured by benchmarks/bench_parse.py, not asserted here.
