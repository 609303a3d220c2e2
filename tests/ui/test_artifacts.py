"""The run-artifact reader: what it reads back, and that it never creates anything."""

from __future__ import annotations

import json
from pathlib import Path

from genesys_sync.ui import artifacts
from tests.ui.conftest import APPLIED_RUN, DRY_RUN, EMPLOYEE, HELD_EMPLOYEE, write_run


def test_runs_are_listed_newest_first_with_their_counts(runs_root: Path):
    runs = artifacts.list_runs()
    assert [r.run_id for r in runs] == [DRY_RUN, APPLIED_RUN]
    applied = runs[1]
    assert (applied.created, applied.updated, applied.deactivated) == (3, 1, 1)
    assert (applied.rejected, applied.failed, applied.held, applied.writes) == (2, 0, 1, 5)
    assert (applied.api_calls, applied.duration_s, applied.dry_run) == (11, 12.5, False)
    assert runs[0].dry_run and runs[0].created == 0
    assert [r.run_id for r in artifacts.list_runs(limit=1)] == [DRY_RUN]


def test_a_run_without_a_report_or_with_a_broken_one_is_left_out(runs_root: Path):
    (runs_root / "running").mkdir()
    (runs_root / "running" / "plan.json").write_text("{}", encoding="utf-8")
    broken = write_run(runs_root, "broken", "2026-12-03T00:00:00+00:00")
    (broken / "report.json").write_text("{not json", encoding="utf-8")
    assert [r.run_id for r in artifacts.list_runs()] == [DRY_RUN, APPLIED_RUN]
    # ... but a run in progress can be opened: its plan is there.
    assert artifacts.read_run("running").report is None


def test_a_report_from_a_newer_release_is_left_out_not_misread(runs_root: Path, caplog):
    newer = write_run(runs_root, "newer", "2026-12-03T00:00:00+00:00")
    report = json.loads((newer / "report.json").read_text(encoding="utf-8"))
    (newer / "report.json").write_text(json.dumps({**report, "version": 99}), encoding="utf-8")
    assert [r.run_id for r in artifacts.list_runs()] == [DRY_RUN, APPLIED_RUN]
    assert "format version 99" in caplog.text and "same release" in caplog.text


def test_one_run_reads_back_its_plan_report_rejects_and_held_removals(runs_root: Path):
    run = artifacts.read_run(APPLIED_RUN)
    assert run is not None and run.run_id == APPLIED_RUN
    assert run.summary.writes == 5
    assert run.plan["counts"]["create"] == 3
    assert EMPLOYEE in run.plan_markdown
    assert [c["employee_id"] for c in run.held] == [HELD_EMPLOYEE]
    assert run.rejects.header == ["row", "employee_id", "email", "reason"]
    assert run.rejects.total == 2 and run.rejects.rows[0][1] == "E3003"
    assert run.data_docs is None


def test_rejects_beyond_the_cap_are_counted_not_read(runs_root: Path, monkeypatch):
    monkeypatch.setattr(artifacts, "MAX_REJECT_ROWS", 1)
    rejects = artifacts.read_run(APPLIED_RUN).rejects
    assert (len(rejects.rows), rejects.total) == (1, 2)


def test_an_unknown_run_and_a_path_in_a_run_id_find_nothing(runs_root: Path):
    assert artifacts.read_run("manual__never") is None
    # A run id is made a directory name first: "../" cannot leave the runs directory.
    (runs_root.parent / "secret").mkdir()
    assert artifacts.read_run("../secret") is None
    assert artifacts.run_directory("../secret") is None


def test_reading_never_creates_the_home_or_a_run_directory(tmp_path: Path, monkeypatch):
    home = tmp_path / "no-home-yet"
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(home))
    assert artifacts.list_runs() == []
    assert artifacts.read_run(APPLIED_RUN) is None
    assert not home.exists()


def test_data_docs_are_served_from_the_gates_site_only(runs_root: Path):
    site = runs_root.parent / "gx" / "uncommitted" / "data_docs" / "local_site"
    (site / "validations").mkdir(parents=True)
    (site / "index.html").write_text("<html>index</html>", encoding="utf-8")
    (site / "validations" / "run.html").write_text("<html>run</html>", encoding="utf-8")
    (runs_root.parent / "state.db").write_text("secret", encoding="utf-8")
    directory = runs_root / artifacts.safe_run_id(APPLIED_RUN)
    gate = {"passed": True, "data_docs_path": str(site / "index.html")}
    (directory / "gate.json").write_text(json.dumps(gate), encoding="utf-8")
    run = artifacts.read_run(APPLIED_RUN)
    assert run.data_docs == (site / "index.html").resolve()
    assert artifacts.data_docs_file(run) == run.data_docs
    assert artifacts.data_docs_file(run, "validations/run.html").read_text() == "<html>run</html>"
    for outside in ("../../../state.db", "/etc/passwd", "validations/missing.html"):
        assert artifacts.data_docs_file(run, outside) is None


def test_data_docs_outside_the_sync_home_are_ignored(runs_root: Path, tmp_path: Path):
    elsewhere = tmp_path / "elsewhere.html"
    elsewhere.write_text("x", encoding="utf-8")
    directory = runs_root / artifacts.safe_run_id(APPLIED_RUN)
    gate = {"passed": True, "data_docs_path": str(elsewhere)}
    (directory / "gate.json").write_text(json.dumps(gate), encoding="utf-8")
    assert artifacts.read_run(APPLIED_RUN).data_docs is None


def test_runs_in_an_object_store_read_back_as_from_the_disk(runs_root: Path, s3_runs):
    """The api-server reads the run store the stages wrote to, here a bucket (moto's S3)."""
    on_disk = (
        [s.run_id for s in artifacts.list_runs(root=runs_root)],
        artifacts.read_run(APPLIED_RUN, root=runs_root),
    )
    endpoint, bucket, env = s3_runs
    prefix = env["GENESYS_SYNC_RUNS_URL"].split(bucket + "/", 1)[1]
    for file in runs_root.rglob("*"):
        if file.is_file():
            key = f"{prefix}/{file.relative_to(runs_root).as_posix()}"
            endpoint.client().upload_file(str(file), bucket, key)

    listed = artifacts.list_runs()
    run = artifacts.read_run(APPLIED_RUN)

    assert [s.run_id for s in listed] == on_disk[0] and len(listed) >= 2
    assert str(run.directory).startswith(f"s3://aws_default@{bucket}/")
    assert (run.report, run.plan, run.plan_markdown) == (
        on_disk[1].report,
        on_disk[1].plan,
        on_disk[1].plan_markdown,
    )
    assert run.rejects == on_disk[1].rejects and run.held == on_disk[1].held
    rejects = runs_root / run.directory.name / "rejects.csv"
    assert artifacts.artifact_bytes(run, "rejects.csv") == rejects.read_bytes()
    assert artifacts.read_run("no-such-run") is None
