"""``ApplyBatchOperator``: what its failure says, and the deadline it hands its trigger."""

from __future__ import annotations

from datetime import timedelta

import pytest

from genesys_sync.operators.apply_batch import ApplyBatchOperator, BatchJobFailed


def _operator(**kw) -> ApplyBatchOperator:
    return ApplyBatchOperator(task_id="apply_batch", batch_path="/b/phase1-0001.json", **kw)


def test_an_unreachable_target_is_named_as_such():
    event = {
        "status": "error",
        "batch_id": "phase1-0001",
        "unreachable": 3,
        "message": "the target was unreachable (last error ScimTransportError, tried for 42 s): "
        "3 operation(s) not applied",
    }
    with pytest.raises(BatchJobFailed) as caught:
        _operator().execute_complete({}, event)
    assert "phase1-0001 failed: the target was unreachable (last error" in str(caught.value)
    assert "did not finish" not in str(caught.value)


def test_without_a_message_the_failure_still_says_unreachable():
    with pytest.raises(BatchJobFailed, match="the target was unreachable: 2 operation"):
        _operator().execute_complete({}, {"status": "error", "unreachable": 2})


def test_the_trigger_gets_the_job_timeout_as_its_deadline(monkeypatch):
    captured = {}

    def defer(self, *, trigger, method_name, timeout):
        captured.update(trigger=trigger, timeout=timeout)

    monkeypatch.setattr(ApplyBatchOperator, "defer", defer)
    _operator(job_timeout=timedelta(minutes=30)).execute({})
    assert captured["trigger"].job_timeout_seconds == 1800
    assert captured["timeout"] == timedelta(minutes=30)
