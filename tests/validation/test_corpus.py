"""A corpus of bad exports, each a small edit of the sample, and the gate's exact outcome."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from genesys_sync.validation import Catalogue, GateResult, gate_export
from tests.validation.sample_exports import DIVISIONS, ROLES, Rows, clean_rows, csv_text


@dataclass(frozen=True)
class Blocked:
    """Dataset level: the run is blocked by (at least) this rule; nothing is accepted."""

    rule: str


@dataclass(frozen=True)
class Quarantined:
    """Row level: exactly this row is rejected, for exactly this rule (and ``also``); the rest
    go on."""

    employee_id: str
    rule: str
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    name: str
    export: Callable[[], Rows | str | bytes]
    expected: Blocked | Quarantined
    previous_row_count: int | None = None
    catalogue: bool = False
    gate: dict[str, Any] = field(default_factory=dict)


def edit(target: str, /, **changes: str) -> Callable[[], Rows]:
    """The clean sample with some cells of one row (by employee id) changed."""

    def build() -> Rows:
        rows = clean_rows()
        row = next(r for r in rows if r["employee_id"] == target)
        row.update(changes)
        return rows

    return build


def every_row(**changes: str) -> Callable[[], Rows]:
    def build() -> Rows:
        return [{**row, **changes} for row in clean_rows()]

    return build


def raw_line(employee_id: str, change: Callable[[str], str]) -> Callable[[], str]:
    """The clean sample as CSV text with the line of one row edited as text."""

    def build() -> str:
        lines = csv_text(clean_rows()).splitlines(keepends=True)
        return "".join(change(ln) if ln.startswith(employee_id + ",") else ln for ln in lines)

    return build


def with_header(change: Callable[[list[str]], list[str]]) -> Callable[[], str]:
    def build() -> str:
        rows = clean_rows()
        text = csv_text(rows)
        header, body = text.split("\n", 1)
        return ",".join(change(header.split(","))) + "\n" + body

    return build


def insert_field(line: str) -> str:
    fields = line.split(",")
    return ",".join([*fields[:6], "EMEA", *fields[6:]])  # "Title, EMEA" without quotes


def mixed_encoding() -> bytes:
    lines = csv_text(clean_rows()).splitlines(keepends=True)
    return b"".join(
        ln.encode("latin-1") if ln.startswith("E1002,") else ln.encode("utf-8") for ln in lines
    )


def swap(names: list[str], first: str, second: str) -> list[str]:
    i, j = names.index(first), names.index(second)
    names[i], names[j] = names[j], names[i]
    return names


def with_passwords() -> Rows:
    rows = clean_rows()
    for row in rows:
        row["password"] = ""
    next(r for r in rows if r["employee_id"] == "E1025")["password"] = "password"
    return rows


def no_active() -> Rows:
    rows = clean_rows()
    for row in rows:
        if row["status"] == "active":
            row["status"] = "leave"
    return rows


def dropped(column: str) -> Callable[[], Rows]:
    def build() -> Rows:
        return [{k: v for k, v in row.items() if k != column} for row in clean_rows()]

    return build


FIFTY_ONE_LANGUAGES = ";".join(f"Language {i}:3" for i in range(51))

DATASET_CASES = [
    Case("empty file", lambda: b"", Blocked("empty_file")),
    Case("whitespace-only file", lambda: "\n \n", Blocked("empty_file")),
    Case("header only", lambda: csv_text([], header=list(clean_rows()[0])), Blocked("header_only")),
    Case(
        "wrong delimiter", lambda: csv_text(clean_rows(), delimiter=";"), Blocked("wrong_delimiter")
    ),
    Case("shifted columns", raw_line("E1020", insert_field), Blocked("field_count")),
    Case("mixed encodings", mixed_encoding, Blocked("encoding")),
    Case(
        "duplicate header",
        with_header(lambda names: [("email" if n == "title" else n) for n in names]),
        Blocked("duplicate_header"),
    ),
    Case(
        "trailing garbage",
        lambda: csv_text(clean_rows()) + "Total records: 60\n-- end of export --\n",
        Blocked("field_count"),
    ),
    Case(
        "trailing summary row",
        lambda: csv_text(clean_rows()) + "TOTAL 60" + "," * 15 + "\n",
        Blocked("status_values"),
    ),
    Case("missing required column", dropped("status"), Blocked("required_columns")),
    Case(
        "truncated export below the previous count",
        lambda: clean_rows()[:40],
        Blocked("row_count_drop"),
        previous_row_count=60,
    ),
    Case(
        "duplicate employee id", edit("E1050", employee_id="E1049"), Blocked("unique_employee_id")
    ),
    Case(
        "duplicate email differing only in case",
        edit("E1050", email="Noemie.Faure@EXAMPLE.com"),
        Blocked("unique_email"),
    ),
    Case("unknown status value", edit("E1030", status="retired"), Blocked("status_values")),
    Case("status in the wrong case", edit("E1030", status="Active"), Blocked("status_values")),
    Case("empty status", edit("E1030", status=""), Blocked("status_values")),
    Case("no active row", no_active, Blocked("at_least_one_active")),
    Case(
        "more active users than the licence",
        clean_rows,
        Blocked("tenant_capacity"),
        gate={"max_tenant_users": 50},
    ),
    Case(
        "swapped columns (email and display_name)",
        with_header(lambda names: swap(names, "email", "display_name")),
        Blocked("rejected_fraction"),
    ),
    Case(
        "systematically bad phones",
        every_row(work_phone="202-555-0100"),
        Blocked("rejected_fraction"),
    ),
]

ROW_CASES = [
    Case("invalid email", edit("E1010", email="soren.nielsen(at)example.com"), None),
    Case("empty email", edit("E1011", email=""), None),
    Case("phone not in E.164 form", edit("E1012", work_phone="202-555-0112"), None),
    Case("phone number that does not exist", edit("E1013", mobile_phone="+1202555011"), None),
    Case("hire date not YYYY-MM-DD", edit("E1014", hire_date="03/15/2020"), None),
    Case("hire date not a real date", edit("E1016", hire_date="2021-02-30"), None),
    Case("skill proficiency 7", edit("E1017", skills="Billing:7;Refunds:3"), None),
    Case("skills not name:proficiency", edit("E1018", skills="Billing;Refunds"), None),
    Case("more than 50 languages", edit("E1019", languages=FIFTY_ONE_LANGUAGES), None),
    Case("unknown role", edit("E1020", roles="employee;Wizard"), None, catalogue=True),
    Case("unknown division", edit("E1022", division="Marketing"), None, catalogue=True),
    Case("unknown manager", edit("E1023", manager_employee_id="E9999"), None),
    Case("own manager", edit("E1024", manager_employee_id="E1024"), None),
    Case("weak password", with_passwords, None),
    Case("very long title", edit("E1026", title="Senior " * 50), None),
    Case("very long employee id", edit("E1028", employee_id="E" + "9" * 70), None),
    Case("empty employee id", edit("E1029", employee_id=""), None),
    Case("no name at all", edit("E1030", display_name="", first_name="", last_name=""), None),
    Case("formula in the employee id", edit("E1031", employee_id="=1+2", email="x"), None),
    Case("markup in the employee id", edit("E1032", employee_id="<script>x</script>"), None),
    Case("link in the employee id", edit("E1033", employee_id="[x](http://e.test)"), None),
    Case("space in the employee id", edit("E1034", employee_id="E 1034"), None),
    Case("right-to-left override in a name", edit("E1035", display_name="Ann\u202eeB"), None),
    Case("NUL in a last name", edit("E1036", last_name="Ro\x00ss"), None),
    Case("line break in a title", edit("E1038", title="Agent\nLead"), None),
    Case("C1 control in a first name", edit("E1039", first_name="Al\x85ex"), None),
    Case("bidi isolate in a department", edit("E1040", department="Sales\u2067"), None),
]
ROW_EXPECTED = [
    Quarantined("E1010", "email_syntax"),
    Quarantined("E1011", "email_required"),
    Quarantined("E1012", "work_phone"),
    Quarantined("E1013", "mobile_phone"),
    Quarantined("E1014", "hire_date"),
    Quarantined("E1016", "hire_date"),
    Quarantined("E1017", "skills_proficiency"),
    Quarantined("E1018", "skills_format"),
    Quarantined("E1019", "languages_too_many"),
    Quarantined("E1020", "unknown_role"),
    Quarantined("E1022", "unknown_division"),
    Quarantined("E1023", "manager_unknown"),
    Quarantined("E1024", "manager_self"),
    Quarantined("E1025", "password_policy"),
    Quarantined("E1026", "title_too_long"),
    # An id outside gate.employee_id_pattern is never shown: the row number stands for it.
    Quarantined("<row 29>", "employee_id_too_long", also=("employee_id_pattern",)),
    Quarantined("<row 30>", "employee_id_required"),  # 29th data row; the header is row 1
    Quarantined("E1030", "name_required"),
    Quarantined("<row 32>", "email_syntax", also=("employee_id_pattern",)),
    Quarantined("<row 33>", "employee_id_pattern"),
    Quarantined("<row 34>", "employee_id_pattern"),
    Quarantined("<row 35>", "employee_id_pattern"),
    Quarantined("E1035", "display_name_characters"),
    Quarantined("E1036", "last_name_characters"),
    Quarantined("E1038", "title_characters"),
    Quarantined("E1039", "first_name_characters"),
    Quarantined("E1040", "department_characters"),
]
ROW_CASES = [replace(c, expected=e) for c, e in zip(ROW_CASES, ROW_EXPECTED, strict=True)]


def run_case(case: Case, sync_config, write_export, tmp_path: Path) -> GateResult:
    config = replace(sync_config, gate=replace(sync_config.gate, **case.gate))
    catalogue = Catalogue(frozenset(ROLES), frozenset(DIVISIONS)) if case.catalogue else None
    return gate_export(
        str(write_export(case.export())),
        config=config,
        run_dir=tmp_path / "run",
        previous_row_count=case.previous_row_count,
        catalogue=catalogue,
    )


def rejects(result: GateResult) -> list[dict[str, str]]:
    with result.rejects_path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_corpus_covers_at_least_22_distinct_defects() -> None:
    names = [case.name for case in DATASET_CASES + ROW_CASES]
    assert len(set(names)) == len(names) >= 22


@pytest.mark.parametrize("case", DATASET_CASES, ids=lambda c: c.name)
def test_dataset_level_defect_blocks_the_run(case, sync_config, write_export, tmp_path) -> None:
    result = run_case(case, sync_config, write_export, tmp_path)

    assert result.passed is False
    assert case.expected.rule in [failure.rule for failure in result.dataset_failures]
    assert result.accepted_count == 0
    assert len(pd.read_parquet(result.accepted_path)) == 0
    failure = next(f for f in result.dataset_failures if f.rule == case.expected.rule)
    assert failure.message
    assert case.expected.rule in result.explanation()


@pytest.mark.parametrize("case", ROW_CASES, ids=lambda c: c.name)
def test_row_level_defect_quarantines_only_that_row(
    case, sync_config, write_export, tmp_path
) -> None:
    result = run_case(case, sync_config, write_export, tmp_path)

    assert result.passed is True, result.explanation()
    assert result.dataset_failures == []
    lines = rejects(result)
    rules = (case.expected.rule, *case.expected.also)
    assert {(line["employee_id"], line["rule"]) for line in lines} == {
        (case.expected.employee_id, rule) for rule in rules
    }
    assert result.rejected_count == 1
    assert result.row_failures_by_rule == dict.fromkeys(rules, 1)
    assert result.accepted_count == result.row_count - 1 == 59
    assert len(pd.read_parquet(result.accepted_path)) == 59
