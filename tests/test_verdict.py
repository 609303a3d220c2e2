"""The run's verdict (``check_outcome``): only failed tasks count, the earliest stage first."""

from __future__ import annotations

import pytest

from genesys_sync.report import write_json
from genesys_sync.runs import Run
from genesys_sync.stages.common import SyncFailed
from genesys_sync.stages.finish import check_outcome, failed_tasks_of

ORDER = ("wait_for_export", "validate", "plan", "apply_batch", "link_managers", "report")


def test_skipped_and_upstream_failed_tasks_are_not_failures():
    states = {
        "report": "success",
        "link_managers": "upstream_failed",
        "apply_batch": "failed",
        "removals_held": "skipped",
        "validate": "success",
        "outcome": "failed",
    }
    assert failed_tasks_of(states, ORDER, exclude="outcome") == ["apply_batch"]


def test_the_earliest_stage_comes_first():
    states = {"report": "failed", "plan": "failed", "link_managers": "failed"}
    assert failed_tasks_of(states, ORDER) == ["plan", "link_managers", "report"]


def test_the_verdict_names_the_stage_that_failed_first(tmp_path, monkeypatch):
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path))

    write_json(
        Run("r1").prepare() / "report.json",
        {"status": "failed", "failure_reason": "the target was unreachable (...)"},
    )
    with pytest.raises(SyncFailed) as caught:
        check_outcome("r1", failed_tasks=["apply_batch", "report"])
    message = str(caught.value)
    assert "stage apply_batch failed first (then report)" in message
    assert "the target was unreachable" in message
