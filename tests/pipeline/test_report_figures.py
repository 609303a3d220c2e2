"""The run report's request figures (issue 11, item 8) equal what the sandbox counted: requests
in all and by method, 429 answers, requests re-sent, and a latency summary; the summary goes to
the task's logger, and the batch jobs log their progress."""

from __future__ import annotations

import logging

from tests.fixtures.expect import SAMPLE
from tests.pipeline.harness import run_stages


def test_report_figures_equal_the_sandbox_counters(sandbox_target, sync_home, caplog) -> None:
    sandbox = sandbox_target.handle
    sandbox.set_faults(force_429=3, retry_after_seconds=1)
    with caplog.at_level(logging.INFO, logger="genesys_sync"):
        result = run_stages(sync_home, SAMPLE, sandbox_target)
    assert result.ok, result.error
    report = result.report
    stats = sandbox.stats()
    tokens = stats["token_requests"]  # the sandbox counts token requests; the report does not

    assert report["api_calls"] == stats["requests"] - tokens
    assert report["http_429"] == stats["rate_limited"] == 3
    resent = stats["rate_limited"] + stats["connection_resets"]
    resent += sum(n for status, n in stats["by_status"].items() if status.startswith("5"))
    assert report["retries"] == resent == 3
    by_method = {**stats["by_method"], "POST": stats["by_method"].get("POST", 0) - tokens}
    assert report["api_calls_by_method"] == {m: n for m, n in by_method.items() if n}
    assert sum(report["api_calls_by_method"].values()) == report["api_calls"]
    by_status = {**stats["by_status"], "200": stats["by_status"].get("200", 0) - tokens}
    assert report["api_calls_by_status"] == {s: n for s, n in by_status.items() if n}
    assert report["token_requests"] == tokens
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["max"]
    assert report["duration_s"] == report["duration_seconds"] > 0

    finish = [r.getMessage() for r in caplog.records if r.name == "genesys_sync.stages.finish"]
    assert any("API calls" in line and "answered 429" in line for line in finish)
    assert any(line.startswith(f"genesys_user_sync run {report['run_id']}") for line in finish)
    progress = [r.getMessage() for r in caplog.records if r.name == "genesys_sync.progress"]
    assert progress and all(line.startswith("batch ") for line in progress)
    assert any("/min" in line and " done, " in line for line in progress)
    assert not any("@" in line for line in finish + progress)  # no email in these lines
