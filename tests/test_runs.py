"""The run store owns the layout: readers create nothing, writers write owner-only and whole,
every artifact is typed and versioned, and a batch job finds its run and results from its
file's path."""

from __future__ import annotations

import json
import os

import pytest

from genesys_sync import runs
from genesys_sync.runs import Batch, BatchIndex, BatchResults, Run


def test_reading_a_run_that_does_not_exist_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path))
    run = Run("manual__2026-12-01T02:00:00+00:00")
    assert run.load(runs.Report) is None and run.load(BatchIndex) is None
    assert list(run.results("phase1")) == [] and runs.reports() == []
    assert not (tmp_path / "runs").exists()


def test_writes_are_owner_only_whole_and_replace_the_old_artifact(tmp_path, monkeypatch):
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path))
    os.umask(0o022)
    try:
        run = Run("r/1")
        first = run.write_json(runs.REPORT, {"n": 1})
        run.write_json(runs.REPORT, {"n": 2})
    finally:
        os.umask(0o077)
    assert json.loads(first.read_text()) == {"version": runs.ARTIFACT_VERSION, "n": 2}
    assert first.parent == run.root and "/" not in run.root.name  # a safe directory name
    assert run.root.stat().st_mode & 0o777 == 0o700 and first.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in run.root.iterdir()] == ["report.json"], "no temporary file left"


def test_the_batch_index_round_trips_with_its_version(tmp_path, monkeypatch):
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path))
    run = Run("r1")
    index = BatchIndex(planned={"create": 2}, phase1=[str(run.batch_path("phase1-0001"))])
    run.save(index)
    assert run.load(BatchIndex) == index and run.read(runs.INDEX)["version"] == 1
    assert BatchIndex.from_dict({**index.to_dict(), "added_later": 1}) == index


def test_a_batch_file_names_its_run_results_and_linked_version(tmp_path, monkeypatch):
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path))
    run = Run("r1")
    planned = run.batch_path("phase2-0003")
    linked = runs.linked_path(planned)
    assert linked == run.root / "batches" / "linked" / "phase2-0003.json"
    for path in (planned, linked):  # the same results file and run for both
        assert runs.results_path(path) == run.root / "results" / "phase2-0003.json"
        assert runs.run_root_of(path) == run.root
    batch = Batch(batch_id="phase2-0003", run_id="r1", changes=[{"kind": "update"}])
    assert run.write_batch(batch) == planned and runs.effective_batch(planned) == batch
    filled = Batch(batch_id="phase2-0003", run_id="r1", changes=[{"kind": "update", "x": 1}])
    assert runs.write_linked(planned, filled) == linked
    assert runs.effective_batch(planned) == filled and runs.read_batch(planned) == batch
    found = Run.of_batch(linked, batch)
    assert (found.run_id, found.root) == ("r1", run.root)
    assert [found.attempt("phase2-0003"), found.attempt("phase2-0003")] == [1, 2]


def test_typed_artifacts_carry_a_version_and_refuse_a_newer_one(tmp_path, monkeypatch):
    """Workers and triggerers on different releases (a rolling upgrade) must not misread each
    other's artifacts: a newer format is an error that says what to do."""
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path))
    run = Run("r1")
    path = run.write_batch(Batch(batch_id="phase1-0001", run_id="r1"))
    assert json.loads(path.read_text())["version"] == runs.ARTIFACT_VERSION
    results = BatchResults(batch_id="phase1-0001", results=[{"outcome": "applied"}], api_calls=1)
    runs.write_results(runs.results_path(path), results)
    assert runs.read_results(runs.results_path(path)) == results
    assert list(run.results("phase1")) == [results]

    run.write_json("batches/phase1-0002.json", {"batch_id": "phase1-0002", "version": 2})
    with pytest.raises(runs.ArtifactVersionError, match="format version 2.*same release"):
        runs.read_batch(run.batch_path("phase1-0002"))
    with pytest.raises(FileNotFoundError, match="phase1-0009"):
        runs.read_batch(run.batch_path("phase1-0009"))


@pytest.mark.parametrize(
    "artifact",
    [
        runs.GateSummary(passed=True, row_count=60, accepted_count=58, rejected_count=2),
        runs.PlanDocument(run_id="r1", counts={"create": 1}, changes=[{"kind": "create"}]),
        runs.Report(run_id="r1", status="success", writes=3, latency_ms={"p50": 1.0}),
    ],
    ids=lambda a: type(a).__name__,
)
def test_the_stage_documents_are_typed_where_the_run_keeps_them(artifact, tmp_path, monkeypatch):
    """The gate summary, the plan and the report: each saved under its own name, read back
    as itself; a key a later release adds is ignored, a newer format refused."""
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path))
    run = Run("r1")
    kind = type(artifact)
    assert run.load(kind) is None
    assert run.save(artifact) == run.path(kind.NAME)
    assert run.load(kind) == artifact
    assert run.read(kind.NAME) == {**artifact.to_dict(), "version": runs.ARTIFACT_VERSION}
    assert kind.from_dict({**artifact.to_dict(), "added_later": 1}) == artifact
    run.write_json(kind.NAME, {**artifact.to_dict(), "version": runs.ARTIFACT_VERSION + 1})
    with pytest.raises(runs.ArtifactVersionError, match=f"{kind.NAME} .*same release"):
        run.load(kind)
    with pytest.raises(runs.ArtifactVersionError, match=f"{kind.NAME} .*same release"):
        run.read(kind.NAME)
