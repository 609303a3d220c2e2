"""The sync's configuration file (``include/config/sync.yaml``), loaded into typed objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genesys_sync import settings

CANONICAL_COLUMNS: tuple[str, ...] = (
    "employee_id",
    "email",
    "display_name",
    "first_name",
    "last_name",
    "title",
    "department",
    "division",
    "manager_employee_id",
    "status",
    "hire_date",
    "work_phone",
    "mobile_phone",
    "roles",
    "skills",
    "languages",
)
OPTIONAL_COLUMNS: tuple[str, ...] = ("password",)


class ConfigError(ValueError):
    """The config file is missing, unreadable or holds a value the sync cannot use."""


@dataclass(frozen=True)
class ExportConfig:
    location: str = "include/sample/hris_export.csv"
    format: str | None = "csv"
    encoding: str = "utf-8-sig"
    delimiter: str = ","
    wait_timeout_minutes: float = 360
    poke_interval_seconds: float = 60
    columns: dict[str, str] = field(default_factory=dict)

    def header_for(self, canonical: str) -> str:
        return self.columns.get(canonical, canonical)


@dataclass(frozen=True)
class GateConfig:
    suites_dir: str = "include/expectations"
    max_row_drop_fraction: float = 0.10
    max_tenant_users: int = 50_000
    catalogue_roles: tuple[str, ...] = ()
    catalogue_divisions: tuple[str, ...] = ()
    max_rejected_fraction: float = 0.10
    data_docs: bool = True

    @property
    def suites_path(self) -> Path:
        return resolve_project_path(self.suites_dir)


@dataclass(frozen=True)
class SyncPolicy:
    batch_size: int = 100
    deletion_threshold_count: int = 10
    deletion_threshold_fraction: float = 0.05
    delete_after_days: float | None = None
    max_failure_fraction: float = 0.2
    reconcile_every_days: float = 7


@dataclass(frozen=True)
class SyncConfig:
    export: ExportConfig = field(default_factory=ExportConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    sync: SyncPolicy = field(default_factory=SyncPolicy)
    source: Path | None = None


def resolve_project_path(value: str) -> Path:
    """A path from the config: absolute as given, relative to the project root otherwise."""
    path = Path(value)
    return path if path.is_absolute() else settings.PROJECT_ROOT / path


def _section(raw: dict[str, Any], name: str, cls: type, source: Path) -> Any:
    values = raw.get(name) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: section '{name}' must be a mapping")
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) in '{name}': {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(known))}"
        )
    try:
        return cls(**values)
    except TypeError as exc:  # pragma: no cover - dataclass argument errors
        raise ConfigError(f"{source}: section '{name}': {exc}") from exc


def load_config(path: str | Path | None = None) -> SyncConfig:
    """Load and check the config file (``$GENESYS_SYNC_CONFIG`` or the shipped one)."""
    source = Path(path) if path else settings.config_path()
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {source}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {source} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a mapping")
    gate_raw = dict(raw.get("gate") or {})
    catalogue = gate_raw.pop("catalogue", None) or {}
    gate_raw["catalogue_roles"] = tuple(catalogue.get("roles") or ())
    gate_raw["catalogue_divisions"] = tuple(catalogue.get("divisions") or ())
    export = _section(raw, "export", ExportConfig, source)
    unknown_columns = sorted(set(export.columns) - set(CANONICAL_COLUMNS + OPTIONAL_COLUMNS))
    if unknown_columns:
        raise ConfigError(
            f"{source}: export.columns names unknown canonical column(s): "
            f"{', '.join(unknown_columns)}; allowed: {', '.join(CANONICAL_COLUMNS)}, password"
        )
    return SyncConfig(
        export=export,
        gate=_section({"gate": gate_raw}, "gate", GateConfig, source),
        sync=_section(raw, "sync", SyncPolicy, source),
        source=source,
    )
