"""The run store on an object store (``GENESYS_SYNC_RUNS_URL=s3://...``, moto's S3 server):
the same artifacts as on a local disk, nothing under the sync home, paths that survive XCom as
strings, batch files the manager wave never rewrites."""

from __future__ import annotations

import json
import time

from genesys_sync import runs
from genesys_sync.runs import Batch, BatchIndex, BatchResults, Run

RUN_ID = "scheduled__2026-12-01T02:00:00+00:00"


def _under(bucket: str, keys: list[str]) -> list[str]:
    prefix = "genesys-sync/runs/" + runs.settings.safe_run_id(RUN_ID) + "/"
    assert all(k.startswith(prefix) for k in keys), keys
    return [k[len(prefix) :] for k in keys]


def test_artifacts_go_to_the_bucket_and_nothing_to_the_home(s3_runs, tmp_path, monkeypatch):
    endpoint, bucket, _ = s3_runs
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path / "home"))
    run = Run(RUN_ID)
    assert run.remote and run.read(runs.REPORT) is None and runs.reports() == []
    run.write_json(runs.REPORT, {"status": "success"})
    run.write_text(runs.PLAN_MARKDOWN, "# plan\n")
    run.save(BatchIndex(phase1=[str(run.batch_path("phase1-0001"))]))
    run.restrict()  # no local tree to restrict: a no-op, not an error

    assert _under(bucket, endpoint.keys(bucket)) == ["batches/index.json", "plan.md", "report.json"]
    stored = {"version": runs.ARTIFACT_VERSION, "status": "success"}
    assert json.loads(endpoint.read(bucket, endpoint.keys(bucket)[-1])) == stored
    assert Run(RUN_ID).read(runs.REPORT) == stored
    assert [p.parent.name for p in runs.reports()] == [runs.settings.safe_run_id(RUN_ID)]
    assert runs.reports(since=time.time() + 3600) == []
    assert not (tmp_path / "home").exists(), "the home is never written"


def test_a_batch_path_survives_xcom_as_a_string(s3_runs, monkeypatch, tmp_path):
    endpoint, bucket, _ = s3_runs
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path / "home"))
    run = Run(RUN_ID)
    batch = Batch(batch_id="phase2-0001", run_id=RUN_ID, changes=[{"kind": "update"}])
    written = run.write_batch(batch)
    as_sent = str(written)  # what the plan task returns and the trigger is given
    assert as_sent.startswith("s3://") and "testing" not in as_sent  # a conn id, never a secret

    assert runs.read_batch(as_sent) == batch
    assert str(runs.run_root_of(as_sent)) == str(run.root)
    assert str(runs.results_path(as_sent)).endswith("/results/phase2-0001.json")
    assert runs.effective_batch(as_sent) == batch
    linked = Batch(batch_id="phase2-0001", run_id=RUN_ID, changes=[{"target_id": "t-1"}])
    runs.write_linked(as_sent, linked)
    assert runs.effective_batch(as_sent) == linked and runs.read_batch(as_sent) == batch
    assert Run.of_batch(as_sent, batch).run_id == RUN_ID
    assert [Run(RUN_ID).attempt("phase2-0001") for _ in range(3)] == [1, 2, 3]

    results = BatchResults(batch_id="phase2-0001", results=[{"outcome": "applied"}])
    runs.write_results(runs.results_path(as_sent), results)
    assert list(run.results("phase2")) == [results]
    run.clear_batches()  # a retried plan starts clean: batches and results gone
    keys = _under(bucket, endpoint.keys(bucket))
    assert not [k for k in keys if k.startswith(("batches/", "results/"))], keys


def test_the_gate_workspace_is_kept_in_the_run_even_when_the_gate_blocks(s3_runs, tmp_path):
    endpoint, bucket, _ = s3_runs
    run = Run(RUN_ID)
    try:
        with run.workspace() as local:
            (local / "rejects.csv").write_text("employee_id,reason\n")
            raise RuntimeError("the gate blocked")
    except RuntimeError:
        pass
    assert not local.exists(), "the local copy is removed"
    assert _under(bucket, endpoint.keys(bucket)) == ["rejects.csv"]


def test_a_local_url_is_the_local_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("GENESYS_SYNC_RUNS_URL", (tmp_path / "elsewhere").as_uri())
    run = Run(RUN_ID)
    path = run.write_json(runs.REPORT, {"n": 1})
    assert not run.remote and path.is_relative_to(tmp_path / "elsewhere")
    assert path.stat().st_mode & 0o777 == 0o600
    assert runs.store_path(str(path)) == path


def test_the_gates_data_docs_go_with_the_run_and_the_ui_serves_them(s3_runs, tmp_path, monkeypatch):
    """On an object store the pages of the run's Data Docs are kept in the run (the site stays
    in the home of the worker that ran the gate), so the api-server can show them."""
    from genesys_sync.stages.validate import validate_stage
    from genesys_sync.ui import artifacts
    from tests.fixtures.expect import SAMPLE
    from tests.pipeline.harness import stage_config

    endpoint, bucket, _ = s3_runs
    home = tmp_path / "home"
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(home))
    validate_stage(RUN_ID, str(SAMPLE), stage_config(data_docs=True), None)
    kept = _under(bucket, endpoint.keys(bucket))
    pages = [k for k in kept if k.startswith("data_docs/validations/") and k.endswith(".html")]
    assert len(pages) == 2, kept  # the dataset suite's page and the row suite's
    assert "data_docs/index.html" in kept and any(k.startswith("data_docs/static/") for k in kept)
    assert not (home / "runs").exists()

    run = artifacts.read_run(RUN_ID)
    index = artifacts.data_docs_file(run).read_text()
    for page in pages:
        relative = page.removeprefix("data_docs/")
        assert f'href="{relative}"' in index
        assert "<html" in artifacts.data_docs_file(run, relative).read_text().lower()
    for outside in ("../gate.json", "validations/../../gate.json", "/etc/passwd", "a\\..\\b"):
        assert artifacts.data_docs_file(run, outside) is None
