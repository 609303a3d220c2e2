"""Honest outcomes and retries that repeat nothing (issue 12, items 4 and 5), stage tier.

A batch job run again (a task retry, a restarted trigger) sends only the operations its results
file has no applied/unchanged result for; a target that cannot be reached is named as such in
the report; a refused write keeps the server's explanation in the report, never in the log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

from genesys_sync.stages.apply import apply_batch_file
from genesys_sync.stages.finish import finish_stage
from genesys_sync.stages.plan import plan_stage
from genesys_sync.stages.validate import validate_stage
from tests.fixtures.expect import by_external_id, read_rows, write_rows
from tests.pipeline.harness import stage_config, sync_home_env

ACTIVE_CREATED = 50


def _planned(target, home, tmp_path, run_id="stage__retry"):
    """Validate and plan the sample export; the run's first-wave batch files."""
    from genesys_sync.stages.common import RunParams

    config = stage_config()
    scim = target.scim_config()
    export = str(write_rows(tmp_path / "export.csv", read_rows()))
    gate = validate_stage(run_id, export, config, scim)
    planned = plan_stage(run_id, gate["accepted_path"], RunParams.from_mapping({}), config, scim)
    return config, planned["phase1"]


def _writes(sandbox) -> int:
    return int(sandbox.stats()["writes"])


def test_a_repeated_batch_job_sends_only_the_operations_without_a_result(
    sandbox_target, sync_home, tmp_path
):
    sandbox = sandbox_target.handle
    with sync_home_env(sync_home):
        _, batches = _planned(sandbox_target, sync_home, tmp_path)
        once = dataclasses.replace(sandbox_target.scim_config(), max_attempts=1)
        sandbox.set_faults(error_rate=0.4, seed=7)
        first = [asyncio.run(apply_batch_file(once, p, retry_rounds=0)) for p in batches]
        sandbox.set_faults(error_rate=0.0)
        missing = sum(e["outcomes"].get("failed", 0) for e in first)
        done = sum(e["outcomes"].get("applied", 0) for e in first)
        assert missing > 0 and done > 0, first  # some results exist, some do not
        before = _writes(sandbox)
        again = [asyncio.run(apply_batch_file(sandbox_target.scim_config(), p)) for p in batches]
        assert sum(e["sent"] for e in again) == missing
        # Only the missing creates went out: one POST each (no look-up, no repeat of the rest).
        assert _writes(sandbox) - before == missing
        assert sum(e["outcomes"].get("applied", 0) for e in again) == ACTIVE_CREATED
        results = json.loads(Path(again[0]["results_path"]).read_text())["results"]
        assert any(r.get("note") == "done by an earlier attempt" for r in results)
        third = [asyncio.run(apply_batch_file(sandbox_target.scim_config(), p)) for p in batches]
        assert sum(e["sent"] for e in third) == 0 and _writes(sandbox) - before == missing
    assert len(by_external_id(sandbox_target.users())) == ACTIVE_CREATED


def test_unreachable_operations_are_sent_again_within_the_job(sandbox_target, sync_home, tmp_path):
    sandbox = sandbox_target.handle
    with sync_home_env(sync_home):
        _, batches = _planned(sandbox_target, sync_home, tmp_path, "stage__rounds")
        once = dataclasses.replace(
            sandbox_target.scim_config(), max_attempts=1, max_backoff_seconds=0.1
        )
        sandbox.set_faults(force_429=3, retry_after_seconds=0)
        before = sandbox.stats()
        events = [asyncio.run(apply_batch_file(once, p)) for p in batches]
    after = sandbox.stats()
    assert sum(e["outcomes"].get("applied", 0) for e in events) == ACTIVE_CREATED
    assert not any(e["unreachable"] for e in events)
    # The 3 answered 429 (no attempt left in the client) were sent once more, by the job.
    assert after["rate_limited"] - before["rate_limited"] == 3
    api = (after["requests"] - after["token_requests"]) - (
        before["requests"] - before["token_requests"]
    )
    assert api == ACTIVE_CREATED + 3
    assert len(by_external_id(sandbox_target.users())) == ACTIVE_CREATED


def test_an_unreachable_target_is_named_in_the_report(sandbox_target, sync_home, tmp_path):
    sandbox = sandbox_target.handle
    with sync_home_env(sync_home):
        config, batches = _planned(sandbox_target, sync_home, tmp_path, "stage__down")
        once = dataclasses.replace(
            sandbox_target.scim_config(), max_attempts=2, max_backoff_seconds=0.1
        )
        sandbox.set_faults(error_rate=1.0)
        events = [asyncio.run(apply_batch_file(once, path)) for path in batches]
        sandbox.set_faults(error_rate=0.0)
        assert all(e["message"].startswith("the target was unreachable") for e in events)
        assert "ScimServerError HTTP 503" in events[0]["message"]
        finish_stage("stage__down", config, None)
        report = json.loads((sync_home / "runs" / "stage__down" / "report.json").read_text())
    reason = report["failure_reason"]
    assert report["status"] == "failed"
    assert reason.startswith("the target was unreachable (last error ScimServerError HTTP 503")
    assert "tried for" in reason and "did not finish" not in reason
    assert report["refused"] == []  # unreachable is not a refusal


def test_a_refused_write_is_explained_per_employee_in_the_report(
    sandbox_target, sync_home, tmp_path, caplog
):
    with sync_home_env(sync_home):
        config, batches = _planned(sandbox_target, sync_home, tmp_path, "stage__refused")
        path = batches[0]
        batch = json.loads(Path(path).read_text())
        victim = batch["changes"][0]
        victim["body"].pop("userName")  # the server refuses it with its own explanation
        Path(path).write_text(json.dumps(batch))
        event = asyncio.run(apply_batch_file(sandbox_target.scim_config(), path))
        finish_stage("stage__refused", config, None)
        report = json.loads((sync_home / "runs" / "stage__refused" / "report.json").read_text())
    (refused,) = report["refused"]
    assert refused["employee_id"] == victim["employee_id"]
    assert refused["operation"] == "create" and refused["status"] == 400
    assert refused["detail"]
    assert refused["detail"] not in caplog.text
    assert refused["detail"] not in json.dumps(event)  # the trigger event / XCom
    assert report["refused_summary_path"].endswith("refused.md")


def test_refused_markdown_escapes_the_servers_text():
    from genesys_sync.stages.finish import refused_markdown

    text = refused_markdown(
        "r1",
        [
            {
                "employee_id": "=HYPERLINK(1)",
                "operation": "update",
                "status": 400,
                "scim_type": "invalidValue",
                "detail": "[click](http://evil) <script>x</script>",
            }
        ],
    )
    assert "<script>" not in text and "[click](http" not in text
    assert "'=HYPERLINK" in text and "invalidValue" in text
