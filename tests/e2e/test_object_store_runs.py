"""``make sync`` with the run store in S3 (``GENESYS_SYNC_RUNS_URL=s3://...``, moto's server, the
amazon provider's ``aws_default`` connection): the plan, batches, results and report are in the
bucket and none of them under ``$GENESYS_SYNC_HOME``; the rerun writes nothing."""

from __future__ import annotations

import json

import pytest

from genesys_sync.settings import safe_run_id
from tests.e2e.harness import assert_state, read_rows, rejected_ids, run_sync, write_rows

pytestmark = pytest.mark.e2e


def test_make_sync_keeps_the_run_in_the_bucket(s3_runs, sandbox_target, sync_home, tmp_path):
    endpoint, bucket, env = s3_runs
    rows = read_rows()
    export = write_rows(tmp_path / "export.csv", rows)

    first = run_sync(sync_home, export, sandbox_target.connection_json(), extra_env=env)

    assert first.ok, first.output[-3000:]
    rejected = rejected_ids(first.report)  # the rejects file, read back from the bucket
    assert len(rejected) == 2 and first.report["failed"] == 0
    assert_state(sandbox_target, rows, rejected)
    run_dir = f"genesys-sync/runs/{safe_run_id(first.report['run_id'])}/"
    keys = {k[len(run_dir) :] for k in endpoint.keys(bucket, run_dir)}
    assert {"gate.json", "accepted.parquet", "rejects.csv", "plan.json", "plan.md"} <= keys
    assert {"report.json", "batches/index.json"} <= keys
    index = json.loads(endpoint.read(bucket, run_dir + "batches/index.json"))
    assert index["phase1"] and all(
        p.startswith(f"s3://aws_default@{bucket}/") for p in index["phase1"]
    )
    for batch in index["phase1"]:
        batch_id = batch.rsplit("/", 1)[1]
        assert f"batches/{batch_id}" in keys and f"results/{batch_id}" in keys
    report = json.loads(endpoint.read(bucket, run_dir + "report.json"))
    assert report["applied"]["create"] == first.report["applied"]["create"] > 0
    assert report["report_path"] == f"s3://aws_default@{bucket}/{run_dir}report.json"
    assert not (sync_home / "runs").exists(), "no run artifact on the local disk"

    second = run_sync(sync_home, export, sandbox_target.connection_json(), extra_env=env)

    assert second.ok, second.output[-3000:]
    assert second.report["run_id"] != first.report["run_id"]
    assert second.report["writes"] == 0 and second.report["failed"] == 0
    assert_state(sandbox_target, rows, rejected)
    assert not (sync_home / "runs").exists()
