"""The run store in a real run: the manager wave writes its own artifacts and the planned
batches stay as planned; the gate's result is kept once."""

from __future__ import annotations

import dataclasses

from genesys_sync import runs
from genesys_sync.runs import Run
from tests.fixtures.expect import SAMPLE, assert_state, read_rows, rejected_ids
from tests.pipeline.harness import run_stages, stage_config, sync_home_env


def test_the_manager_wave_leaves_the_planned_batches_as_planned(sandbox_target, sync_home):
    config = stage_config()
    # Batches of 10: the sample's top managers first, the rest in a second wave.
    config = dataclasses.replace(config, sync=dataclasses.replace(config.sync, batch_size=10))
    result = run_stages(sync_home, SAMPLE, sandbox_target, config=config)
    assert result.ok, result.error
    with sync_home_env(sync_home):
        run = Run(result.run_id)
        index = run.load(runs.BatchIndex)
    assert index is not None and index.phase2, "the sample needs a second wave at 10 a batch"
    for path in index.phase2:
        planned = runs.read_batch(run.batch_path(runs.batch_id_of(path)))
        linked = runs.effective_batch(path)
        assert runs.linked_path(path).exists() and linked != planned
        assert all(c.get("target_id") is None for c in planned.changes if c["kind"] != "create")
    assert_state(sandbox_target, read_rows(), rejected_ids(result.report))
    names = {p.name for p in result.run_dir.iterdir()}
    assert "gate.json" in names and "gate_result.json" not in names
