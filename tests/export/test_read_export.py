"""Reading the export: CSV (BOM, delimiter, header mapping), JSON Lines, Parquet, and errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genesys_sync.config import CANONICAL_COLUMNS, ExportConfig, load_config
from genesys_sync.export import ExportError, read_export
from genesys_sync.settings import INCLUDE_DIR

SAMPLE = INCLUDE_DIR / "sample" / "hris_export.csv"
HEADER = ",".join(CANONICAL_COLUMNS)
ROW = (
    "E1,ana.perez@example.com,Ana Lucía Pérez,Ana Lucía,Pérez,Agent,Support,Support,,active,"
    "2020-01-02,+12025550101,,employee;User,Billing:4,English:5"
)
CSV = ExportConfig(format="csv")


def write(tmp_path: Path, content: str | bytes, name: str = "export.csv") -> str:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return str(path)


def test_reads_the_sample_as_canonical_strings_in_file_order() -> None:
    frame = read_export(str(SAMPLE), CSV)

    assert list(frame.columns) == list(CANONICAL_COLUMNS)
    assert frame.shape == (60, 16)
    assert frame["employee_id"].tolist() == [f"E{n}" for n in range(1001, 1061)]
    assert not frame.isna().any().any()
    assert all(isinstance(value, str) for value in frame["manager_employee_id"])
    assert frame.loc[1, "display_name"] == "José García"
    assert frame.attrs["export"]["first_data_row"] == 2
    assert frame.attrs["export"]["header"] == list(CANONICAL_COLUMNS)


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["no BOM", "BOM"])
@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8"])
def test_utf8_with_or_without_bom(tmp_path, bom, encoding) -> None:
    path = write(tmp_path, bom + f"{HEADER}\n{ROW}\n".encode())

    frame = read_export(path, ExportConfig(encoding=encoding))

    assert frame.columns[0] == "employee_id"
    assert frame.loc[0, "display_name"] == "Ana Lucía Pérez"


def test_other_single_byte_encoding(tmp_path) -> None:
    path = write(tmp_path, f"{HEADER}\n{ROW}\n".encode("cp1252"))

    frame = read_export(path, ExportConfig(encoding="cp1252"))

    assert frame.loc[0, "last_name"] == "Pérez"


def test_delimiter_quotes_and_whitespace(tmp_path) -> None:
    row = ROW.replace(",", ";").replace("employee;User", '"employee;User"')
    row = row.replace("Agent", '"Agent; Tier 2"')
    row = row.replace("E1;", "  E1  ;").replace(";active;", "; active ;")
    path = write(tmp_path, HEADER.replace(",", ";") + "\n" + row + "\n")

    frame = read_export(path, ExportConfig(delimiter=";"))

    row0 = frame.iloc[0]
    assert (row0["employee_id"], row0["title"], row0["status"]) == ("E1", "Agent; Tier 2", "active")
    assert row0["roles"] == "employee;User"
    assert row0["mobile_phone"] == "" and row0["manager_employee_id"] == ""


def test_quoted_newline_in_a_value(tmp_path) -> None:
    row = ROW.replace("Agent", '"Agent\nLead"')
    path = write(tmp_path, f"{HEADER}\n{row}\n")

    frame = read_export(path, CSV)

    assert frame.loc[0, "title"] == "Agent\nLead"


def test_header_mapping_from_a_config_file(tmp_path) -> None:
    config_file = tmp_path / "sync.yaml"
    config_file.write_text(
        "export:\n"
        "  delimiter: '|'\n"
        "  columns:\n"
        "    employee_id: Employee Number\n"
        "    email: Work Email\n"
        "    display_name: Full Name\n",
        encoding="utf-8",
    )
    config = load_config(config_file)
    renamed = {"employee_id": "Employee Number", "email": "Work Email", "display_name": "Full Name"}
    header = "|".join([renamed.get(name, name) for name in CANONICAL_COLUMNS] + ["Salary", "email"])
    row = ROW.replace(",", "|") + "|100000|private@example.org"
    path = write(tmp_path, f"{header}\n{row}\n")

    frame = read_export(path, config.export)

    assert list(frame.columns) == list(CANONICAL_COLUMNS)  # Salary and the other email: out
    assert frame.loc[0, "employee_id"] == "E1"
    assert frame.loc[0, "email"] == "ana.perez@example.com"
    assert frame.loc[0, "display_name"] == "Ana Lucía Pérez"


def test_optional_password_column_is_kept(tmp_path) -> None:
    path = write(tmp_path, f"{HEADER},password\n{ROW},S3cretPass\n")

    frame = read_export(path, CSV)

    assert frame.columns[-1] == "password" and frame.loc[0, "password"] == "S3cretPass"


def test_missing_columns_are_left_to_the_gate(tmp_path) -> None:
    path = write(tmp_path, "employee_id,nickname\nE1,Ann\nE2,Bo\n")

    frame = read_export(path, CSV)

    assert list(frame.columns) == ["employee_id"]
    assert len(frame) == 2


def test_no_canonical_column_keeps_the_row_count(tmp_path) -> None:
    path = write(tmp_path, "a,b\n1,2\n3,4\n5,6\n")

    frame = read_export(path, CSV)

    assert frame.shape == (3, 0)


def test_json_lines(tmp_path) -> None:
    records = [
        {"employee_id": 1001, "email": "a@example.com", "status": "active", "extra": "x"},
        {"employee_id": "E2", "email": None, "status": " leave ", "skills": ["Billing:4"]},
        {"employee_id": 3.0, "mobile_phone": "+12025550101", "title": True},
    ]
    text = "\n".join(json.dumps(r) for r in records) + "\n\n"
    path = write(tmp_path, text, "export.jsonl")

    frame = read_export(path, ExportConfig(format=None))

    assert frame["employee_id"].tolist() == ["1001", "E2", "3"]
    assert frame["email"].tolist() == ["a@example.com", "", ""]
    assert frame["status"].tolist() == ["active", "leave", ""]
    assert frame.loc[1, "skills"] == '["Billing:4"]'
    assert frame.loc[2, "title"] == "true"
    assert "extra" not in frame.columns
    assert frame.attrs["export"]["first_data_row"] == 1


def test_parquet(tmp_path) -> None:
    table = pa.table(
        {
            "employee_id": pa.array([1001, 1002], pa.int64()),
            "email": ["a@example.com", None],
            "hire_date": pa.array([pd.Timestamp("2020-01-02").date(), None], pa.date32()),
            "status": ["active", "leave"],
            "salary": [1.5, 2.5],
        }
    )
    path = tmp_path / "export.parquet"
    pq.write_table(table, path)

    frame = read_export(str(path), ExportConfig(format=None))

    assert list(frame.columns) == ["employee_id", "email", "status", "hire_date"]
    assert frame["employee_id"].tolist() == ["1001", "1002"]
    assert frame["email"].tolist() == ["a@example.com", ""]
    assert frame["hire_date"].tolist() == ["2020-01-02", ""]
    assert "salary" not in frame.columns


def test_format_from_the_config_wins_over_the_suffix(tmp_path) -> None:
    path = write(tmp_path, f"{HEADER}\n{ROW}\n", "export.txt")

    assert len(read_export(path, ExportConfig(format="csv"))) == 1
    assert len(read_export(path, ExportConfig(format=None))) == 1  # .txt reads as CSV


def test_gzipped_csv(tmp_path) -> None:
    path = write(tmp_path, gzip.compress(f"{HEADER}\n{ROW}\n".encode()), "export.csv.gz")

    assert read_export(path, ExportConfig(format=None)).loc[0, "employee_id"] == "E1"


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"], ids=["0 bytes", "blank lines"])
def test_empty_file(tmp_path, content) -> None:
    with pytest.raises(ExportError, match="the export is empty") as caught:
        read_export(write(tmp_path, content), CSV)
    assert caught.value.rule == "empty_file"
    assert "re-run the export" in str(caught.value)


def test_mixed_encodings_name_the_line(tmp_path) -> None:
    content = f"{HEADER}\n{ROW}\n".encode() + ROW.replace("E1", "E2").encode("latin-1") + b"\n"

    with pytest.raises(ExportError, match="line 3 is not valid utf-8-sig") as caught:
        read_export(write(tmp_path, content), CSV)
    assert caught.value.rule == "encoding"
    assert isinstance(caught.value, ValueError)
    assert "mixes encodings" in str(caught.value)


def test_utf16_file_gets_a_hint(tmp_path) -> None:
    content = f"{HEADER}\n{ROW}\n".encode("utf-16")

    with pytest.raises(ExportError, match="UTF-16 byte-order mark"):
        read_export(write(tmp_path, content), CSV)


def test_duplicate_header(tmp_path) -> None:
    header = HEADER.replace("title", "email")

    with pytest.raises(ExportError, match="'email' more than once") as caught:
        read_export(write(tmp_path, f"{header}\n{ROW}\n"), CSV)
    assert caught.value.rule == "duplicate_header"


def test_wrong_delimiter(tmp_path) -> None:
    content = HEADER.replace(",", ";") + "\n" + ROW.replace(",", ";") + "\n"

    with pytest.raises(ExportError, match="looks ';'-delimited") as caught:
        read_export(write(tmp_path, content), CSV)
    assert caught.value.rule == "wrong_delimiter"
    assert "export.delimiter" in str(caught.value)


def test_shifted_columns_name_the_rows(tmp_path) -> None:
    shifted = ROW.replace("Agent", "Agent, Tier 2")

    with pytest.raises(ExportError, match="row 3 has 17 field") as caught:
        read_export(write(tmp_path, f"{HEADER}\n{ROW}\n{shifted}\n{ROW}\n"), CSV)
    assert caught.value.rule == "field_count"
    assert "without quotes" in str(caught.value)


def test_trailing_garbage(tmp_path) -> None:
    with pytest.raises(ExportError, match="row 3 has 1 field") as caught:
        read_export(write(tmp_path, f"{HEADER}\n{ROW}\nEND OF FILE\n"), CSV)
    assert caught.value.rule == "field_count"
    assert "trailer" in str(caught.value)


def test_invalid_json_line(tmp_path) -> None:
    text = json.dumps({"employee_id": "E1"}) + "\n{not json\n"

    with pytest.raises(ExportError, match="line 2 is not valid JSON") as caught:
        read_export(write(tmp_path, text, "export.jsonl"), ExportConfig(format="jsonl"))
    assert caught.value.rule == "field_count"


def test_parquet_read_as_csv_says_so(tmp_path) -> None:
    path = tmp_path / "export.csv"
    pq.write_table(pa.table({"employee_id": ["E1"]}), path)

    with pytest.raises(ExportError, match="Set export.format to parquet"):
        read_export(str(path), CSV)


def test_truncated_parquet(tmp_path) -> None:
    path = tmp_path / "export.parquet"
    pq.write_table(pa.table({"employee_id": ["E1"] * 100}), path)
    path.write_bytes(path.read_bytes()[:-40])

    with pytest.raises(ExportError, match="not a readable Parquet file"):
        read_export(str(path), ExportConfig(format="parquet"))


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ExportError, match="does not exist") as caught:
        read_export(str(tmp_path / "nope.csv"), CSV)
    assert caught.value.rule == "export_missing"


def test_unknown_format(tmp_path) -> None:
    with pytest.raises(ExportError, match="use one of csv, jsonl, parquet"):
        read_export(write(tmp_path, f"{HEADER}\n"), ExportConfig(format="xlsx"))


def test_delimiter_must_be_one_character(tmp_path) -> None:
    with pytest.raises(ExportError, match="one character") as caught:
        read_export(write(tmp_path, f"{HEADER}\n{ROW}\n"), ExportConfig(delimiter="\\t"))
    assert caught.value.rule == "wrong_delimiter"


# --- messages name expected columns at most: never a value, a line or an unknown header ------

SECRET = "s3cr3t-T0KEN-9f8e7d"


def test_wrong_delimiter_does_not_quote_the_header(tmp_path) -> None:
    content = f"{SECRET};{HEADER.replace(',', ';')}\n1;2\n"

    with pytest.raises(ExportError, match="looks ';'-delimited") as caught:
        read_export(write(tmp_path, content), CSV)
    assert SECRET not in str(caught.value) and "employee_id" not in str(caught.value)


def test_duplicate_header_names_only_expected_columns(tmp_path) -> None:
    header = f"{HEADER},email,{SECRET},{SECRET}"

    with pytest.raises(ExportError) as caught:
        read_export(write(tmp_path, f"{header}\n{ROW},x,y,z\n"), CSV)
    message = str(caught.value)
    assert "'email' and 1 other column name(s) more than once" in message
    assert SECRET not in message


def test_encoding_error_quotes_no_byte(tmp_path) -> None:
    content = f"{HEADER}\n".encode() + b"E1,\xe9" + SECRET.encode() + b"\n"

    with pytest.raises(ExportError, match="line 2 is not valid utf-8-sig") as caught:
        read_export(write(tmp_path, content), CSV)
    assert "0xe9" not in str(caught.value) and SECRET not in str(caught.value)


def test_an_unterminated_quote_is_named_by_row_not_quoted(tmp_path) -> None:
    content = f'{HEADER}\n"{SECRET},{ROW}\n'

    with pytest.raises(ExportError, match="row 2 has 1 field") as caught:
        read_export(write(tmp_path, content), CSV)
    assert SECRET not in str(caught.value)


def test_the_frame_records_only_expected_header_names(tmp_path) -> None:
    frame = read_export(write(tmp_path, f"{HEADER},{SECRET}\n{ROW},x\n"), CSV)

    assert frame.attrs["export"]["header"] == list(CANONICAL_COLUMNS)
    assert frame.attrs["export"]["unexpected_columns"] == 1
    assert SECRET not in repr(frame.attrs)
