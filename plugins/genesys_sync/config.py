"""The sync's configuration file (``include/config/sync.yaml``), loaded into typed objects."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from genesys_sync import settings
from genesys_sync.mapping import DEFAULT_PHONE_TYPES

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
#: Employee ids the gate accepts (``gate.employee_id_pattern``): no markup, no formulas, no spaces.
DEFAULT_EMPLOYEE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


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
    # Where the run param ``export`` may point (local roots, URI prefixes); empty: the
    # directory of the configured location (see ``export.allowed_export_roots``).
    allowed_locations: tuple[str, ...] = ()

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
    max_rejected_count: int = 10
    employee_id_pattern: str = DEFAULT_EMPLOYEE_ID_PATTERN
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
    run_lock_hours: float = 24
    # Who owns roles: "additive" (the sync removes only roles it granted itself, never
    # "employee") or "authoritative" (HR owns every role; see sync.yaml for the risk).
    roles: str = "additive"
    # Export phone column -> SCIM phone type: the phone types the sync owns on every user.
    phone_types: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PHONE_TYPES))

    @property
    def roles_authoritative(self) -> bool:
        return self.roles == "authoritative"


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
    export = replace(export, allowed_locations=_string_list(export.allowed_locations, source))
    unknown_columns = sorted(set(export.columns) - set(CANONICAL_COLUMNS + OPTIONAL_COLUMNS))
    if unknown_columns:
        raise ConfigError(
            f"{source}: export.columns names unknown canonical column(s): "
            f"{', '.join(unknown_columns)}; allowed: {', '.join(CANONICAL_COLUMNS)}, password"
        )
    gate = _section({"gate": gate_raw}, "gate", GateConfig, source)
    _check_pattern(gate.employee_id_pattern, source)
    return SyncConfig(
        export=export,
        gate=gate,
        sync=_check_ownership(_section(raw, "sync", SyncPolicy, source), source),
        source=source,
    )


ROLE_MODES = ("additive", "authoritative")
PHONE_COLUMNS = ("work_phone", "mobile_phone")


def _check_ownership(policy: SyncPolicy, source: Path) -> SyncPolicy:
    """``sync.roles`` and ``sync.phone_types``: what the sync owns inside a user."""
    if policy.roles not in ROLE_MODES:
        raise ConfigError(
            f"{source}: sync.roles must be one of {', '.join(ROLE_MODES)}, got {policy.roles!r}"
        )
    types = policy.phone_types
    if not isinstance(types, dict) or not all(
        isinstance(t, str) and t.strip() for t in types.values()
    ):
        raise ConfigError(
            f"{source}: sync.phone_types must map export phone columns to SCIM phone types, "
            "e.g. {work_phone: work, mobile_phone: mobile}"
        )
    unknown = sorted(set(types) - set(PHONE_COLUMNS))
    if unknown:
        raise ConfigError(
            f"{source}: sync.phone_types names unknown column(s): {', '.join(unknown)}; "
            f"allowed: {', '.join(PHONE_COLUMNS)}"
        )
    if len(set(types.values())) != len(types):
        raise ConfigError(f"{source}: sync.phone_types maps two columns to the same phone type")
    return replace(policy, phone_types={c: t.strip() for c, t in types.items()})


def _string_list(value: Any, source: Path) -> tuple[str, ...]:
    """``export.allowed_locations``: a list of non-empty strings (a single string is one item)."""
    items = [value] if isinstance(value, str) else value or []
    if not isinstance(items, list | tuple) or not all(
        isinstance(item, str) and item.strip() for item in items
    ):
        raise ConfigError(
            f"{source}: export.allowed_locations must be a list of directories or URI prefixes "
            "(strings), e.g. ['/data/hris', 's3://hr-bucket/exports/']"
        )
    return tuple(item.strip() for item in items)


def _check_pattern(pattern: str, source: Path) -> None:
    try:
        re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise ConfigError(
            f"{source}: gate.employee_id_pattern is not a valid regular expression ({exc}); "
            f"the default is {DEFAULT_EMPLOYEE_ID_PATTERN}"
        ) from exc
