"""The run param ``export`` may only choose among the locations the deployment allows."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from genesys_sync import export
from genesys_sync.config import ConfigError, ExportConfig, load_config
from genesys_sync.export import (
    ExportNotAllowed,
    allowed_export_roots,
    resolve_run_location,
)
from genesys_sync.settings import INCLUDE_DIR, PROJECT_ROOT

DAY = date(2026, 11, 27)


@pytest.fixture(autouse=True)
def no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HRIS_EXPORT_PATH", raising=False)


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    """The deployment's drop directory, with today's export and a neighbour's secret."""
    root = tmp_path / "drop"
    (root / "2026-11-27").mkdir(parents=True)
    (root / "2026-11-27" / "hris.csv").write_text("employee_id\n", encoding="utf-8")
    (tmp_path / "secret.csv").write_text("root:x:0:0\n", encoding="utf-8")
    return root


def daily(drop: Path, **kwargs) -> ExportConfig:
    return ExportConfig(location=f"{drop}/{{ds}}/hris.csv", **kwargs)


def refused(config: ExportConfig, param: str) -> str:
    with pytest.raises(ExportNotAllowed) as caught:
        resolve_run_location(config, DAY, param=param)
    return str(caught.value)


def test_without_the_param_the_configured_location_is_read_as_before(drop) -> None:
    assert resolve_run_location(daily(drop), DAY) == f"{drop}/2026-11-27/hris.csv"
    assert resolve_run_location(daily(drop), DAY, param="  ") == f"{drop}/2026-11-27/hris.csv"


def test_default_root_is_the_configured_directory_before_its_first_placeholder(drop) -> None:
    assert allowed_export_roots(daily(drop)) == (str(drop.resolve()),)
    flat = ExportConfig(location="include/sample/hris_export.csv")
    assert allowed_export_roots(flat) == (str((INCLUDE_DIR / "sample").resolve()),)
    remote = ExportConfig(location="s3://aws_default@hr-bucket/exports/{ds}/users.parquet")
    assert allowed_export_roots(remote) == ("s3://aws_default@hr-bucket/exports/",)


@pytest.mark.parametrize(
    "location",
    ["/hris_{ds}.csv", "{ds}/hris.csv", "hris.csv", "s3://bucket-{ds}/x.csv", "~/hris.csv"],
)
def test_a_default_that_would_be_a_filesystem_or_project_root_allows_nothing(location) -> None:
    config = ExportConfig(location=location)

    assert allowed_export_roots(config) == ()
    assert "nothing (no default could be derived)" in refused(config, str(PROJECT_ROOT / "x.csv"))


def test_hris_export_path_is_the_configured_location(drop, monkeypatch, tmp_path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv("HRIS_EXPORT_PATH", str(other / "hris_{ds}.csv"))

    assert allowed_export_roots(daily(drop)) == (str(other.resolve()),)
    assert resolve_run_location(daily(drop), DAY, param=str(other / "a.csv")) == str(
        (other / "a.csv").resolve()
    )
    env = {"HRIS_EXPORT_PATH": f"{drop}/x.csv"}  # an explicit environment wins
    assert allowed_export_roots(daily(drop), env) == (str(drop.resolve()),)


def test_a_param_under_the_default_root_is_read_resolved(drop) -> None:
    param = f"{drop}/2026-11-26/./hris.csv"

    assert resolve_run_location(daily(drop), DAY, param=param) == f"{drop}/2026-11-26/hris.csv"
    assert resolve_run_location(daily(drop), DAY, param=f"{drop}/{{ds}}/hris.csv") == (
        f"{drop}/2026-11-27/hris.csv"
    )


@pytest.mark.parametrize(
    "param",
    ["/etc/passwd", "/etc/shadow", "file:///etc/passwd", "~/.ssh/id_rsa", "../../etc/passwd"],
)
def test_paths_outside_every_root_are_refused(drop, param) -> None:
    message = refused(daily(drop), param)

    assert "run param 'export'" in message
    assert "export.allowed_locations" in message  # how to allow it
    assert "nothing was read" in message
    assert str(drop.resolve()) in message  # what is allowed


def test_dot_dot_cannot_leave_the_root(drop, tmp_path) -> None:
    message = refused(daily(drop), f"{drop}/2026-11-27/../../secret.csv")

    assert f"it resolves to {tmp_path.resolve() / 'secret.csv'}" in message


def test_a_symlink_inside_the_root_cannot_point_outside_it(drop, tmp_path) -> None:
    (drop / "innocent.csv").symlink_to(tmp_path / "secret.csv")
    (drop / "etc").symlink_to("/etc", target_is_directory=True)

    assert "resolves to" in refused(daily(drop), f"{drop}/innocent.csv")
    assert "resolves to /etc/passwd" in refused(daily(drop), f"{drop}/etc/passwd")


def test_a_sibling_directory_sharing_the_prefix_is_not_inside(drop, tmp_path) -> None:
    sibling = tmp_path / "drop-private"
    sibling.mkdir()

    refused(daily(drop), str(sibling / "hris.csv"))


@pytest.mark.parametrize(
    "param",
    [
        "http://127.0.0.1:8080/admin/config.json",
        "https://metadata.internal/latest/meta-data/",
        "s3://hr-bucket/exports/users.csv",
        "FILE:///etc/passwd",
    ],
)
def test_uri_schemes_not_on_the_list_are_refused(drop, param) -> None:
    scheme = param.split("://")[0].lower()

    assert f"the scheme '{scheme}' is not on the allow-list" in refused(daily(drop), param)


def test_uri_prefixes_on_the_list_are_allowed_and_nothing_else(drop) -> None:
    config = daily(drop, allowed_locations=("s3://hr-bucket/exports", str(drop)))

    assert resolve_run_location(config, DAY, param="s3://hr-bucket/exports/{ds}/u.csv") == (
        "s3://hr-bucket/exports/2026-11-27/u.csv"
    )
    assert resolve_run_location(config, DAY, param="S3://hr-bucket/exports/u.csv") == (
        "s3://hr-bucket/exports/u.csv"
    )
    assert "not under an allowed URI prefix" in refused(config, "s3://hr-bucket/other/u.csv")
    assert "not under an allowed URI prefix" in refused(config, "s3://hr-bucket/exports-x/u")
    assert "not under an allowed URI prefix" in refused(config, "s3://hr-bucket.evil/exports/u")
    for sneaky in ("s3://hr-bucket/exports/../secrets/u", "s3://hr-bucket/exports/%2E%2E/x"):
        assert "'.' or '..' path segments" in refused(config, sneaky)
    assert resolve_run_location(config, DAY, param=str(drop / "x.csv")) == str(
        (drop / "x.csv").resolve()
    )


def test_a_password_in_a_refused_uri_is_not_repeated(drop) -> None:
    message = refused(daily(drop), "https://admin:hunter2@127.0.0.1/x")

    assert "hunter2" not in message and "https://admin:***@127.0.0.1/x" in message


def test_a_refused_param_is_never_read(drop, monkeypatch) -> None:
    touched = []
    monkeypatch.setattr(export, "_object_path", lambda location: touched.append(location))
    monkeypatch.setattr(export, "_read_bytes", lambda location: touched.append(location))

    refused(daily(drop), "http://127.0.0.1:9/x.csv")
    refused(daily(drop), "/etc/passwd")
    assert touched == []


def test_allowed_locations_from_the_config_file(tmp_path) -> None:
    text = (INCLUDE_DIR / "config" / "sync.yaml").read_text(encoding="utf-8")
    assert "allowed_locations: []" in text
    config_file = tmp_path / "sync.yaml"
    config_file.write_text(
        text.replace("allowed_locations: []", "allowed_locations: [/srv/hris, 's3://b/x/']"),
        encoding="utf-8",
    )

    loaded = load_config(config_file).export

    assert loaded.allowed_locations == ("/srv/hris", "s3://b/x/")
    assert allowed_export_roots(loaded) == (str(Path("/srv/hris").resolve()), "s3://b/x/")


def test_the_shipped_config_allows_the_sample_directory_by_default() -> None:
    config = load_config(INCLUDE_DIR / "config" / "sync.yaml").export

    assert config.allowed_locations == ()
    sample = str(INCLUDE_DIR / "sample" / "hris_export.csv")
    assert resolve_run_location(config, DAY, param=sample) == sample
    with pytest.raises(ExportNotAllowed):
        resolve_run_location(config, DAY, param=str(INCLUDE_DIR / "config" / "sync.yaml"))


@pytest.mark.parametrize("value", ["[1, 2]", "['']", "{a: b}"])
def test_allowed_locations_must_be_strings(tmp_path, value) -> None:
    config_file = tmp_path / "sync.yaml"
    config_file.write_text(f"export:\n  allowed_locations: {value}\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="export.allowed_locations must be a list"):
        load_config(config_file)


def test_export_location_macro_enforces_the_list(drop, monkeypatch, tmp_path) -> None:
    """The DAG's ``export_location`` macro (what the trigger form's param goes through)."""
    from datetime import datetime
    from types import SimpleNamespace

    from genesys_sync.dag_support import export_location

    config_file = tmp_path / "sync.yaml"
    config_file.write_text(f"export:\n  location: '{drop}/{{ds}}/hris.csv'\n", encoding="utf-8")
    monkeypatch.setenv("GENESYS_SYNC_CONFIG", str(config_file))
    run = SimpleNamespace(logical_date=datetime(2026, 11, 27, 2, 0))

    assert export_location(None, run) == f"{drop}/2026-11-27/hris.csv"
    assert export_location(f"{drop}/2026-11-27/hris.csv", run) == f"{drop}/2026-11-27/hris.csv"
    with pytest.raises(ExportNotAllowed):
        export_location("/etc/passwd", run)
