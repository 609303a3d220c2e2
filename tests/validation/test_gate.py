"""The gate on the shipped sample and its artefacts: accepted rows, rejects, Data Docs, report."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from genesys_sync.config import CANONICAL_COLUMNS, load_config
from genesys_sync.export import read_export
from genesys_sync.settings import INCLUDE_DIR
from genesys_sync.validation import Catalogue, gate_export, run_gate
from genesys_sync.validation.suites import SuiteError
from tests.validation.sample_exports import (
    DIVISIONS,
    ROLES,
    SAMPLE,
    SAMPLE_DEFECTS,
    clean_rows,
    sample_rows,
)

CATALOGUE = Catalogue(frozenset(ROLES), frozenset(DIVISIONS))


def rejects_of(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_sample_passes_with_exactly_its_two_quarantined_rows(sync_config, tmp_path) -> None:
    result = gate_export(
        str(SAMPLE), config=sync_config, run_dir=tmp_path / "run", catalogue=CATALOGUE
    )

    assert result.passed is True
    assert (result.row_count, result.accepted_count, result.rejected_count) == (60, 58, 2)
    lines = rejects_of(result.rejects_path)
    assert {line["employee_id"]: line["rule"] for line in lines} == SAMPLE_DEFECTS
    assert {line["sync"] for line in lines} == {"quarantined, not synced"}
    assert result.row_failures_by_rule == {"work_phone": 1, "skills_proficiency": 1}
    assert result.rows_with_rejected_manager == 0
    assert result.explanation().startswith("Gate passed: 58 of 60 rows accepted, 2 quarantined")


def test_the_sample_is_what_the_demo_promises() -> None:
    rows = sample_rows()
    ids = [row["employee_id"] for row in rows]
    assert ids == [f"E{n}" for n in range(1001, 1061)]
    statuses = pd.Series([row["status"] for row in rows]).value_counts().to_dict()
    assert statuses == {"active": 52, "leave": 4, "terminated": 4}
    managers = {row["manager_employee_id"] for row in rows} - {""}
    assert not managers & set(SAMPLE_DEFECTS)  # the quarantined rows manage nobody
    by_id = {row["employee_id"]: row for row in rows}
    depth = {i: 0 for i in ids}
    for i in ids:
        node = i
        while by_id[node]["manager_employee_id"]:
            node = by_id[node]["manager_employee_id"]
            depth[i] += 1
    assert max(depth.values()) == 2 and sum(d == 0 for d in depth.values()) == 1
    for row in rows:
        assert set(row["roles"].split(";")) <= set(ROLES)
        assert row["division"] in DIVISIONS
        assert row["email"] == row["email"].lower() and row["email"].endswith("@example.com")
    assert any(ord(ch) > 127 for row in rows for ch in row["display_name"])


def test_accepted_rows_are_canonical_strings_in_file_order(sync_config, tmp_path) -> None:
    result = gate_export(str(SAMPLE), config=sync_config, run_dir=tmp_path / "run")

    accepted = pd.read_parquet(result.accepted_path)
    assert list(accepted.columns) == list(CANONICAL_COLUMNS)
    assert len(accepted) == 58
    assert not accepted.isna().any().any()
    assert all(isinstance(v, str) for v in accepted["manager_employee_id"])
    expected = [r["employee_id"] for r in sample_rows() if r["employee_id"] not in SAMPLE_DEFECTS]
    assert accepted["employee_id"].tolist() == expected


def test_data_docs_index_exists_and_holds_no_personal_data(
    sync_config, sync_home, tmp_path
) -> None:
    config = replace(sync_config, gate=replace(sync_config.gate, data_docs=True))
    result = gate_export(str(SAMPLE), config=config, run_dir=tmp_path / "run")

    assert result.data_docs_path is not None
    assert result.data_docs_path.name == "index.html"
    assert result.data_docs_path.is_file()
    assert result.data_docs_path.is_relative_to(sync_home / "gx")
    stored = [p for p in (sync_home / "gx").rglob("*") if p.suffix in {".json", ".html"}]
    assert any("validations" in p.parts for p in stored)
    personal = {r[c] for r in sample_rows() for c in ("email", "work_phone", "mobile_phone")}
    for path in stored:
        text = path.read_text(encoding="utf-8", errors="ignore")
        assert "@example.com" not in text, path
        assert not [value for value in personal - {""} if value in text], path


def test_gx_progress_bars_and_analytics_are_off(sync_config, sync_home, tmp_path) -> None:
    gate_export(str(SAMPLE), config=sync_config, run_dir=tmp_path / "run")

    settings_text = (sync_home / "gx" / "great_expectations.yml").read_text(encoding="utf-8")
    assert "globally: false" in settings_text
    assert "analytics_enabled: false" in settings_text


def test_rejects_neutralise_formulas_and_never_hold_passwords(
    sync_config, write_export, tmp_path
) -> None:
    rows = clean_rows()
    for row in rows:
        row["password"] = "Corr3ctHorse"
    rows[10].update(employee_id="=HYPERLINK(1)", email="not an email")
    rows[11].update(employee_id="+cmd", password="Tr0ub4dor")  # a strong password
    rows[11]["work_phone"] = "@SUM(1)"
    rows[12].update(employee_id="-2+3", password="weakpass")
    rows[13].update(employee_id="\tE1014", password="S3cret!x", hire_date="nope")
    path = write_export(rows)

    result = gate_export(str(path), config=sync_config, run_dir=tmp_path / "run")

    text = result.rejects_path.read_text(encoding="utf-8")
    lines = rejects_of(result.rejects_path)
    # Ids outside gate.employee_id_pattern are never written: the row number stands for them.
    assert {(line["employee_id"], line["rule"]) for line in lines} == {
        ("<row 12>", "email_syntax"),
        ("<row 12>", "employee_id_pattern"),
        ("<row 13>", "work_phone"),
        ("<row 13>", "employee_id_pattern"),
        ("<row 14>", "password_policy"),
        ("<row 14>", "employee_id_pattern"),
        ("E1014", "hire_date"),  # the reader trims the tab: a valid id
    }
    for secret in ("Corr3ctHorse", "Tr0ub4dor", "weakpass", "S3cret!x", "not an email", "@SUM"):
        assert secret not in text
    assert "HYPERLINK" not in text and "cmd" not in text
    assert all(
        not cell.startswith(("=", "+", "-", "@")) for line in lines for cell in line.values()
    )
    assert "password" in next(
        line["message"] for line in lines if line["rule"] == "password_policy"
    )


def test_accepted_rows_keep_the_optional_password_column(
    sync_config, write_export, tmp_path
) -> None:
    rows = clean_rows()
    for row in rows:
        row["password"] = "Corr3ctHorse"
    result = gate_export(str(write_export(rows)), config=sync_config, run_dir=tmp_path / "run")

    accepted = pd.read_parquet(result.accepted_path)
    assert list(accepted.columns) == [*CANONICAL_COLUMNS, "password"]


def test_reports_of_a_quarantined_manager_stay_accepted(
    sync_config, write_export, tmp_path
) -> None:
    rows = clean_rows()
    next(r for r in rows if r["employee_id"] == "E1002")["email"] = "jose.garcia@"
    reports = [r["employee_id"] for r in rows if r["manager_employee_id"] == "E1002"]

    result = gate_export(str(write_export(rows)), config=sync_config, run_dir=tmp_path / "run")

    assert result.passed is True
    assert [line["employee_id"] for line in rejects_of(result.rejects_path)] == ["E1002"]
    accepted = pd.read_parquet(result.accepted_path)
    assert set(reports) <= set(accepted["employee_id"])
    assert result.rows_with_rejected_manager == len(reports) == 11
    assert "report to a quarantined manager" in result.explanation()


@pytest.mark.parametrize(("rows", "passed"), [(54, True), (53, False)])
def test_row_count_may_drop_by_at_most_ten_percent(
    rows, passed, sync_config, write_export, tmp_path
) -> None:
    path = write_export(clean_rows()[:rows])

    result = gate_export(
        str(path), config=sync_config, run_dir=tmp_path / "run", previous_row_count=60
    )

    assert result.passed is passed
    if not passed:
        (failure,) = result.dataset_failures
        assert failure.rule == "row_count_drop"
        assert "53 rows" in failure.message and "60" in failure.message


def test_blocked_result_explains_rule_count_and_examples(
    sync_config, write_export, tmp_path
) -> None:
    rows = clean_rows()
    rows[40]["employee_id"] = "E1040"  # E1041 becomes a second E1040
    result = gate_export(str(write_export(rows)), config=sync_config, run_dir=tmp_path / "run")

    assert result.passed is False
    (failure,) = result.dataset_failures
    assert (failure.rule, failure.count, failure.examples) == ("unique_employee_id", 2, ["E1040"])
    explanation = result.explanation()
    assert "unique_employee_id" in explanation and "E1040" in explanation
    assert "2 rows share an employee_id" in explanation
    assert "nothing is written to Genesys Cloud" in explanation
    assert "re-run" in explanation


def test_to_dict_is_json_without_personal_data(sync_config, write_export, tmp_path) -> None:
    rows = clean_rows()
    rows[5]["email"] = rows[6]["email"].upper()
    result = gate_export(str(write_export(rows)), config=sync_config, run_dir=tmp_path / "run")

    payload = json.dumps(result.to_dict())
    assert "@" not in payload and "+1202" not in payload
    assert json.loads(payload)["dataset_failures"][0]["examples"] == ["E1006", "E1007"]
    assert not (tmp_path / "run" / "gate_result.json").exists(), "one copy: the stage's gate.json"


def test_catalogue_from_the_config_file(tmp_path, write_export) -> None:
    known = [role for role in ROLES if role != "Admin"]  # only the CEO row has Admin
    text = (INCLUDE_DIR / "config" / "sync.yaml").read_text(encoding="utf-8")
    text = text.replace("roles: []", f"roles: {json.dumps(known)}")
    config_file = tmp_path / "sync.yaml"
    config_file.write_text(text.replace("data_docs: true", "data_docs: false"), encoding="utf-8")
    config = load_config(config_file)

    result = gate_export(str(write_export(clean_rows())), config=config, run_dir=tmp_path / "run")

    assert result.passed is True
    assert [(line["employee_id"], line["rule"]) for line in rejects_of(result.rejects_path)] == [
        ("E1001", "unknown_role")
    ]
    assert result.rows_with_rejected_manager == 5


def test_suites_are_json_that_can_be_edited_without_python(
    sync_config, write_export, tmp_path
) -> None:
    suites = tmp_path / "expectations"
    shutil.copytree(INCLUDE_DIR / "expectations", suites)
    dataset = json.loads((suites / "hris_export_dataset.json").read_text(encoding="utf-8"))
    for expectation in dataset["expectations"]:
        if expectation["kwargs"].get("value_set") == ["active", "leave", "terminated"]:
            expectation["kwargs"]["value_set"].append("retired")
    (suites / "hris_export_dataset.json").write_text(json.dumps(dataset), encoding="utf-8")
    config = replace(sync_config, gate=replace(sync_config.gate, suites_dir=str(suites)))
    rows = clean_rows()
    rows[20]["status"] = "retired"

    result = gate_export(str(write_export(rows)), config=config, run_dir=tmp_path / "run")

    assert result.passed is True and result.rejected_count == 0


def test_a_broken_suite_file_is_a_clear_error(sync_config, tmp_path) -> None:
    suites = tmp_path / "expectations"
    shutil.copytree(INCLUDE_DIR / "expectations", suites)
    (suites / "hris_export_rows.json").write_text('{"name": "x", "expectations": [', "utf-8")
    config = replace(sync_config, gate=replace(sync_config.gate, suites_dir=str(suites)))

    with pytest.raises(SuiteError, match="hris_export_rows.json is not valid JSON"):
        gate_export(str(SAMPLE), config=config, run_dir=tmp_path / "run")


def test_run_gate_on_a_frame_read_separately(sync_config, tmp_path) -> None:
    frame = read_export(str(SAMPLE), sync_config.export)

    result = run_gate(frame, config=sync_config, run_dir=tmp_path / "run", catalogue=CATALOGUE)

    assert (result.passed, result.accepted_count, result.source) == (True, 58, str(SAMPLE))


def test_missing_columns_are_named_with_their_expected_header(
    sync_config, write_export, tmp_path
) -> None:
    rows = [{k: v for k, v in r.items() if k not in {"status", "email"}} for r in clean_rows()]
    rows = [{**r, "Notes": "private remark"} for r in rows]
    columns = dict(sync_config.export.columns, status="Employment Status")
    config = replace(sync_config, export=replace(sync_config.export, columns=columns))

    result = gate_export(str(write_export(rows)), config=config, run_dir=tmp_path / "run")

    (failure,) = result.dataset_failures
    assert failure.rule == "required_columns" and failure.count == 2
    assert "status" in failure.message and "'Employment Status'" in failure.message
    assert "column email is missing" in failure.message
    assert "the file's header has 'employee_id', 'display_name'" in failure.message
    assert "and 1 column(s) the config does not expect" in failure.message
    assert "Notes" not in failure.message  # a header the config does not know is only counted
