"""Great Expectations' own log lines (INFO/DEBUG) stay out of the task log while the gate runs
(issue 11, item 9); its warnings and errors still get through."""

from __future__ import annotations

import logging
from dataclasses import replace

from genesys_sync.validation import gate_export
from genesys_sync.validation.gx_runner import quiet_gx
from tests.validation.sample_exports import SAMPLE
from tests.validation.test_gate import CATALOGUE


def test_the_gate_on_the_sample_logs_no_gx_info_or_debug(sync_config, tmp_path, caplog) -> None:
    config = replace(sync_config, gate=replace(sync_config.gate, data_docs=True))
    with caplog.at_level(logging.DEBUG):
        result = gate_export(
            str(SAMPLE), config=config, run_dir=tmp_path / "run", catalogue=CATALOGUE
        )
    assert result.passed
    noise = [
        r
        for r in caplog.records
        if r.name.startswith("great_expectations") and r.levelno < logging.WARNING
    ]
    assert noise == []
    assert logging.getLogger("great_expectations").level == logging.NOTSET  # restored after


def test_quiet_gx_keeps_gx_warnings_and_restores_levels(caplog) -> None:
    child = logging.getLogger("great_expectations.core.test_child")
    child.setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG), quiet_gx():
            child.info("noise")
            child.warning("kept")
        assert [r.getMessage() for r in caplog.records if r.name == child.name] == ["kept"]
        assert child.level == logging.DEBUG
    finally:
        child.setLevel(logging.NOTSET)
