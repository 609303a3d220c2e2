"""Where a run's export is (param, env, config; {ds}) and whether it has landed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from genesys_sync import export
from genesys_sync.config import ExportConfig
from genesys_sync.export import export_exists, resolve_location
from genesys_sync.settings import PROJECT_ROOT

DAILY = ExportConfig(location="exports/hris_{ds_nodash}.csv")


@pytest.fixture(autouse=True)
def no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HRIS_EXPORT_PATH", raising=False)


def test_config_location_relative_to_the_project_root() -> None:
    location = resolve_location(DAILY, date(2024, 3, 9))

    assert location == str(PROJECT_ROOT / "exports" / "hris_20240309.csv")


def test_ds_and_ds_nodash_use_the_utc_day_of_the_logical_date() -> None:
    config = ExportConfig(location="/data/{ds}/hris_{ds_nodash}.csv")
    late_evening_in_new_york = datetime(2024, 3, 9, 22, 30, tzinfo=timezone(timedelta(hours=-5)))

    assert (
        resolve_location(config, late_evening_in_new_york) == "/data/2024-03-10/hris_20240310.csv"
    )
    assert (
        resolve_location(config, datetime(2024, 3, 9, 23, 0))
        == "/data/2024-03-09/hris_20240309.csv"
    )


def test_no_logical_date_means_today() -> None:
    today = datetime.now(UTC).date()

    assert resolve_location(DAILY, None).endswith(f"hris_{today:%Y%m%d}.csv")


def test_env_overrides_the_config_and_the_param_overrides_both(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HRIS_EXPORT_PATH", str(tmp_path / "env_{ds}.csv"))

    assert resolve_location(DAILY, date(2024, 1, 2)) == str(tmp_path / "env_2024-01-02.csv")
    assert resolve_location(DAILY, date(2024, 1, 2), override="/x/param.csv") == "/x/param.csv"
    assert resolve_location(DAILY, date(2024, 1, 2), override="  ") == str(
        tmp_path / "env_2024-01-02.csv"
    )


def test_uris_are_kept_and_file_uris_become_paths() -> None:
    s3 = ExportConfig(location="s3://aws_default@hr-bucket/exports/{ds}/users.parquet")

    assert resolve_location(s3, date(2024, 1, 2)) == (
        "s3://aws_default@hr-bucket/exports/2024-01-02/users.parquet"
    )
    assert resolve_location(DAILY, None, override="file:///srv/hris.csv") == "/srv/hris.csv"


def test_other_braces_in_a_location_are_left_alone() -> None:
    config = ExportConfig(location="/data/{region}/{ds}.csv")

    assert resolve_location(config, date(2024, 1, 2)) == "/data/{region}/2024-01-02.csv"


def test_export_exists_for_local_files(tmp_path) -> None:
    path = tmp_path / "hris.csv"

    assert export_exists(str(path)) is False
    path.write_text("employee_id\n", encoding="utf-8")
    assert export_exists(str(path)) is True
    assert export_exists(str(tmp_path)) is False  # a directory is not an export
    assert export_exists(f"file://{path}") is True


def test_export_exists_for_object_storage_uses_object_storage_path(monkeypatch) -> None:
    asked = []

    class FakeObject:
        def __init__(self, location: str) -> None:
            asked.append(location)

        def is_file(self) -> bool:
            return True

    monkeypatch.setattr(export, "_object_path", FakeObject)

    assert export_exists("s3://bucket/hris.csv") is True
    assert asked == ["s3://bucket/hris.csv"]


def test_read_export_from_object_storage(monkeypatch) -> None:
    class FakeObject:
        def __init__(self, location: str) -> None:
            self.location = location

        def read_bytes(self) -> bytes:
            return b"employee_id,status\nE1,active\n"

    monkeypatch.setattr(export, "_object_path", FakeObject)

    frame = export.read_export("gs://bucket/hris.csv", ExportConfig())

    assert frame.to_dict("records") == [{"employee_id": "E1", "status": "active"}]


def test_object_storage_path_is_airflows(tmp_path) -> None:
    pytest.importorskip("airflow.sdk")
    path = tmp_path / "hris.csv"
    path.write_text("employee_id\nE1\n", encoding="utf-8")

    assert type(export._object_path(f"file://{path}")).__name__ == "ObjectStoragePath"


def test_module_imports_neither_airflow_nor_pandas() -> None:
    import subprocess
    import sys

    code = (
        "import sys, genesys_sync.export; "
        "print(any(m.split('.')[0] in {'airflow', 'pandas', 'pyarrow', 'great_expectations'} "
        "for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(PROJECT_ROOT / "plugins")},
    )
    assert out.stdout.strip() == "False"
