"""Which columns the gate requires, and the quarantine limit max(count, fraction)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from genesys_sync.config import load_config
from genesys_sync.settings import INCLUDE_DIR
from genesys_sync.validation import gate_export
from tests.validation.sample_exports import clean_rows

OPTIONAL = [
    "mobile_phone",
    "skills",
    "languages",
    "title",
    "department",
    "division",
    "manager_employee_id",
    "hire_date",
    "work_phone",
    "roles",
    "first_name",
    "last_name",
    "display_name",
]


def without(*columns: str) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in columns} for row in clean_rows()]


@pytest.mark.parametrize("column", OPTIONAL)
def test_an_optional_column_may_be_absent(column, sync_config, write_export, tmp_path) -> None:
    result = gate_export(
        str(write_export(without(column))), config=sync_config, run_dir=tmp_path / "run"
    )

    assert result.passed is True, result.explanation()
    assert (result.accepted_count, result.rejected_count) == (60, 0)
    assert column not in pd.read_parquet(result.accepted_path).columns


def test_only_the_required_columns(sync_config, write_export, tmp_path) -> None:
    rows = [
        {c: r[c] for c in ("employee_id", "email", "display_name", "status")} for r in clean_rows()
    ]

    result = gate_export(str(write_export(rows)), config=sync_config, run_dir=tmp_path / "run")

    assert result.passed is True, result.explanation()
    assert result.accepted_count == 60


@pytest.mark.parametrize(
    "dropped",
    [("employee_id",), ("email",), ("status",), ("display_name", "last_name")],
    ids=lambda d: "+".join(d),
)
def test_id_email_status_and_a_name_stay_required(
    dropped, sync_config, write_export, tmp_path
) -> None:
    result = gate_export(
        str(write_export(without(*dropped))), config=sync_config, run_dir=tmp_path / "run"
    )

    assert result.passed is False
    failure = next(f for f in result.dataset_failures if f.rule == "required_columns")
    if "display_name" in dropped:
        assert "no name column" in failure.message
        assert "'display_name'" in failure.message and "'last_name'" in failure.message
    else:
        assert f"column {dropped[0]} is missing" in failure.message


def test_first_and_last_name_stand_in_for_display_name(sync_config, write_export, tmp_path) -> None:
    rows = without("display_name")
    rows[3]["last_name"] = ""

    result = gate_export(str(write_export(rows)), config=sync_config, run_dir=tmp_path / "run")

    assert result.passed is True
    assert result.row_failures_by_rule == {"name_required": 1}


def bad_phones(rows: list[dict[str, str]], count: int) -> list[dict[str, str]]:
    for row in rows[:count]:
        row["work_phone"] = "202-555-0100"
    return rows


def gate(rows, sync_config, write_export, tmp_path, **limits):
    config = replace(sync_config, gate=replace(sync_config.gate, **limits))
    return gate_export(str(write_export(rows)), config=config, run_dir=tmp_path / "run")


def test_two_bad_rows_of_a_twelve_row_export_do_not_block(
    sync_config, write_export, tmp_path
) -> None:
    rows = bad_phones(clean_rows()[:12], 2)  # 17%: above the 10% fraction, under the count

    result = gate(rows, sync_config, write_export, tmp_path)

    assert result.passed is True, result.explanation()
    assert (result.accepted_count, result.rejected_count) == (10, 2)


@pytest.mark.parametrize(("bad", "passed"), [(10, True), (11, False)])
def test_the_count_is_the_floor(bad, passed, sync_config, write_export, tmp_path) -> None:
    result = gate(bad_phones(clean_rows(), bad), sync_config, write_export, tmp_path)

    assert result.passed is passed
    if not passed:
        (failure,) = result.dataset_failures
        assert failure.rule == "rejected_fraction"
        assert "11 of 60 rows" in failure.message and "more than 10 rows" in failure.message
        assert "gate.max_rejected_count = 10" in failure.message


@pytest.mark.parametrize(("bad", "passed"), [(6, True), (7, False)])
def test_the_fraction_rules_above_the_count(
    bad, passed, sync_config, write_export, tmp_path
) -> None:
    result = gate(
        bad_phones(clean_rows(), bad), sync_config, write_export, tmp_path, max_rejected_count=0
    )

    assert result.passed is passed  # floor(10% of 60) = 6


def test_limits_and_pattern_come_from_the_config_file(tmp_path) -> None:
    text = (INCLUDE_DIR / "config" / "sync.yaml").read_text(encoding="utf-8")
    assert "max_rejected_count: 10" in text and "employee_id_pattern:" in text
    config_file = tmp_path / "sync.yaml"
    config_file.write_text(
        text.replace("max_rejected_count: 10", "max_rejected_count: 3").replace(
            "employee_id_pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'",
            "employee_id_pattern: '^E[0-9]{4}$'",
        ),
        encoding="utf-8",
    )

    config = load_config(config_file)

    assert config.gate.max_rejected_count == 3
    assert config.gate.employee_id_pattern == "^E[0-9]{4}$"


def test_a_configured_pattern_quarantines_other_ids(sync_config, write_export, tmp_path) -> None:
    rows = clean_rows()
    rows[20]["employee_id"] = "X-1021"

    result = gate(rows, sync_config, write_export, tmp_path, employee_id_pattern=r"^E[0-9]{4}$")

    assert result.passed is True
    assert result.row_failures_by_rule == {"employee_id_pattern": 1}


def test_an_invalid_pattern_is_a_config_error(tmp_path) -> None:
    from genesys_sync.config import ConfigError

    config_file = tmp_path / "sync.yaml"
    config_file.write_text("gate:\n  employee_id_pattern: '[a-'\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="gate.employee_id_pattern is not a valid"):
        load_config(config_file)
