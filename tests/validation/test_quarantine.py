"""The gate's quarantine list: who is present but unreadable, for the planner."""

from __future__ import annotations

from genesys_sync.validation import gate_export
from genesys_sync.validation.quarantine import Quarantine, read_quarantine
from tests.validation.sample_exports import SAMPLE, clean_rows


def test_quarantined_ids_are_written_for_the_planner(sync_config, tmp_path):
    result = gate_export(str(SAMPLE), config=sync_config, run_dir=tmp_path / "run")
    assert result.passed and result.quarantined_path == tmp_path / "run" / "quarantined.json"
    assert read_quarantine(tmp_path / "run") == Quarantine(frozenset({"E1037", "E1048"}), 0)
    assert result.to_dict()["quarantined_path"] == str(result.quarantined_path)


def test_rows_without_a_readable_id_are_only_counted(sync_config, write_export, tmp_path):
    rows = clean_rows()
    managers = {r["manager_employee_id"] for r in rows}
    a, b, c = [r for r in rows if r["employee_id"] not in managers][:3]
    a["employee_id"] = ""
    b["employee_id"] = "=HYPERLINK(1)"
    c["email"] = "not an email"
    result = gate_export(str(write_export(rows)), config=sync_config, run_dir=tmp_path / "run")
    assert result.passed, result.explanation()
    quarantine = read_quarantine(tmp_path / "run")
    assert quarantine.employee_ids == {c["employee_id"]}
    assert quarantine.unreadable_rows == 2


def test_no_list_is_none():
    from pathlib import Path

    assert read_quarantine(Path("/nonexistent-run-dir")) is None
