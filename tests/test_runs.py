"""The run store owns the layout: readers create nothing, writers write owner-only and whole,
the batch index is typed, and a batch job finds its run and results from its file's path."""

from __future__ import annotations

import json
import os

from genesys_sync import runs
from genesys_sync.runs import BatchIndex, Run


def test_reading_a_run_that_does_not_exist_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path))
    run = Run("manual__2026-12-01T02:00:00+00:00")
    assert run.read(runs.REPORT) is None and run.index() is None
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
    assert json.loads(first.read_text()) == {"n": 2}
    assert first.parent == run.root and "/" not in run.root.name  # a safe directory name
    assert run.root.stat().st_mode & 0o777 == 0o700 and first.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in run.root.iterdir()] == ["report.json"], "no temporary file left"


def test_the_batch_index_round_trips_with_its_version(tmp_path, monkeypatch):
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path))
    run = Run("r1")
    index = BatchIndex(planned={"create": 2}, phase1=[str(run.batch_path("phase1-0001"))])
    run.write_index(index)
    assert run.index() == index and run.read(runs.INDEX)["version"] == 1
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
    run.write_json("batches/phase2-0003.json", {"changes": ["planned"]})
    assert runs.effective_batch(planned) == {"changes": ["planned"]}
    run.write_json("batches/linked/phase2-0003.json", {"changes": ["linked"]})
    assert runs.effective_batch(planned) == {"changes": ["linked"]}
    found = Run.of_batch(linked, {"run_id": "r1"})
    assert (found.run_id, found.root) == ("r1", run.root)
    assert [found.attempt("phase2-0003"), found.attempt("phase2-0003")] == [1, 2]
