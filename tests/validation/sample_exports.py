"""The sample export as rows, and helpers to edit it into the bad exports of the corpus."""

from __future__ import annotations

import csv
import io

from genesys_sync.settings import INCLUDE_DIR

SAMPLE = INCLUDE_DIR / "sample" / "hris_export.csv"
SAMPLE_DEFECTS = {"E1037": "work_phone", "E1048": "skills_proficiency"}
ROLES = ["employee", "User", "Supervisor", "Quality Evaluator", "Admin", "Communicate - User"]
DIVISIONS = ["Home", "Sales", "Support", "Billing"]

Rows = list[dict[str, str]]


def sample_rows() -> Rows:
    with SAMPLE.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def clean_rows() -> Rows:
    """The sample with its two deliberate row-level defects repaired."""
    rows = sample_rows()
    for row in rows:
        if row["employee_id"] == "E1037":
            row["work_phone"] = "+12025550137"
        if row["employee_id"] == "E1048":
            row["skills"] = "Billing:4;French Support:3"
    return rows


def csv_text(rows: Rows, delimiter: str = ",", header: list[str] | None = None) -> str:
    out = io.StringIO()
    fields = header or list(rows[0])
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([row.get(name, "") for name in fields])
    return out.getvalue()
