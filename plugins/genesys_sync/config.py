"""The sync's configuration file (``include/config/sync.yaml``), checked against a schema and
loaded into typed objects.

The schema (pydantic models, ``extra="forbid"``) refuses an unknown key or a value of the wrong
type with the dotted key in the message (``sync.batch_size: ...``); what the sync reads is the
frozen dataclasses below, built from the checked values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
ROLE_MODES = ("additive", "authoritative")
PHONE_COLUMNS = ("work_phone", "mobile_phone")
EXPORT_FORMATS = ("csv", "jsonl", "parquet")
#: The http connection that receives alerts (``$ALERT_WEBHOOK_URL`` stands in for it).
DEFAULT_ALERT_CONN_ID = "sync_alerts"


class ConfigError(ValueError):
    """The config file is missing, unreadable or holds a value the sync cannot use."""


# --- what the sync reads -------------------------------------------------------------------


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
class AlertsConfig:
    """Where alerts go (``alerts:``): each channel is used when it is configured."""

    http_conn_id: str | None = DEFAULT_ALERT_CONN_ID
    http_endpoint: str | None = None
    email_to: tuple[str, ...] = ()
    email_from: str | None = None
    smtp_conn_id: str | None = None
    slack_webhook_conn_id: str | None = None
    slack_conn_id: str | None = None
    slack_channel: str | None = None
    # Base of the log links (Airflow's ``[api] base_url`` when empty).
    base_url: str | None = None
    max_message_chars: int = 600


@dataclass(frozen=True)
class SyncConfig:
    export: ExportConfig = field(default_factory=ExportConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    sync: SyncPolicy = field(default_factory=SyncPolicy)
    source: Path | None = None
    alerts: AlertsConfig = field(default_factory=AlertsConfig)


def resolve_project_path(value: str) -> Path:
    """A path from the config: absolute as given, relative to the project root otherwise."""
    path = Path(value)
    return path if path.is_absolute() else settings.PROJECT_ROOT / path


# --- the schema of sync.yaml ---------------------------------------------------------------
#
# Strict types: a quoted number ("10") or a word ("ten") where a number belongs is refused,
# not coerced. A validator's message starts with a verb ("must ...", "names ..."), so the
# error reads "sync.roles must be one of ...".


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ExportSchema(_Section):
    location: str = ExportConfig.location
    format: str | None = ExportConfig.format
    encoding: str = ExportConfig.encoding
    delimiter: str = Field(ExportConfig.delimiter, min_length=1)
    wait_timeout_minutes: float = Field(ExportConfig.wait_timeout_minutes, ge=0)
    poke_interval_seconds: float = Field(ExportConfig.poke_interval_seconds, gt=0)
    columns: dict[str, str] = Field(default_factory=dict)
    allowed_locations: tuple[str, ...] = ()

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        if value is not None and value not in EXPORT_FORMATS:
            raise ValueError(f"must be one of {', '.join(EXPORT_FORMATS)} or null, got {value!r}")
        return value

    @field_validator("columns", mode="before")
    @classmethod
    def _columns(cls, value: Any) -> Any:
        value = value or {}
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(CANONICAL_COLUMNS + OPTIONAL_COLUMNS), key=str)
            if unknown:
                raise ValueError(
                    f"names unknown canonical column(s): {', '.join(map(str, unknown))}; "
                    f"allowed: {', '.join(CANONICAL_COLUMNS)}, password"
                )
        return value

    @field_validator("allowed_locations", mode="before")
    @classmethod
    def _allowed_locations(cls, value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value or []
        if not isinstance(items, list | tuple) or not all(
            isinstance(item, str) and item.strip() for item in items
        ):
            raise ValueError(
                "must be a list of directories or URI prefixes (strings), "
                "e.g. ['/data/hris', 's3://hr-bucket/exports/']"
            )
        return tuple(item.strip() for item in items)


class CatalogueSchema(_Section):
    roles: list[str] = Field(default_factory=list)
    divisions: list[str] = Field(default_factory=list)

    @field_validator("roles", "divisions", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class GateSchema(_Section):
    suites_dir: str = GateConfig.suites_dir
    max_row_drop_fraction: float = Field(GateConfig.max_row_drop_fraction, ge=0, le=1)
    max_tenant_users: int = Field(GateConfig.max_tenant_users, ge=0)
    catalogue: CatalogueSchema = Field(default_factory=CatalogueSchema)
    max_rejected_fraction: float = Field(GateConfig.max_rejected_fraction, ge=0, le=1)
    max_rejected_count: int = Field(GateConfig.max_rejected_count, ge=0)
    employee_id_pattern: str = GateConfig.employee_id_pattern
    data_docs: bool = GateConfig.data_docs

    @field_validator("catalogue", mode="before")
    @classmethod
    def _no_catalogue(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("employee_id_pattern", mode="before")
    @classmethod
    def _pattern(cls, value: Any) -> Any:
        try:
            re.compile(value)
        except (re.error, TypeError) as exc:
            raise ValueError(
                f"is not a valid regular expression ({exc}); "
                f"the default is {DEFAULT_EMPLOYEE_ID_PATTERN}"
            ) from None
        return value


class SyncSchema(_Section):
    batch_size: int = Field(SyncPolicy.batch_size, ge=1)
    deletion_threshold_count: int = Field(SyncPolicy.deletion_threshold_count, ge=0)
    deletion_threshold_fraction: float = Field(SyncPolicy.deletion_threshold_fraction, ge=0, le=1)
    delete_after_days: float | None = Field(SyncPolicy.delete_after_days, ge=0)
    max_failure_fraction: float = Field(SyncPolicy.max_failure_fraction, ge=0, le=1)
    reconcile_every_days: float = Field(SyncPolicy.reconcile_every_days, ge=0)
    run_lock_hours: float = Field(SyncPolicy.run_lock_hours, ge=0)
    roles: str = SyncPolicy.roles
    phone_types: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PHONE_TYPES))

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: str) -> str:
        if value not in ROLE_MODES:
            raise ValueError(f"must be one of {', '.join(ROLE_MODES)}, got {value!r}")
        return value

    @field_validator("phone_types", mode="before")
    @classmethod
    def _phone_types(cls, value: Any) -> dict[str, str]:
        if not isinstance(value, dict) or not all(
            isinstance(t, str) and t.strip() for t in value.values()
        ):
            raise ValueError(
                "must map export phone columns to SCIM phone types, "
                "e.g. {work_phone: work, mobile_phone: mobile}"
            )
        unknown = sorted(set(value) - set(PHONE_COLUMNS), key=str)
        if unknown:
            raise ValueError(
                f"names unknown column(s): {', '.join(map(str, unknown))}; "
                f"allowed: {', '.join(PHONE_COLUMNS)}"
            )
        if len({t.strip() for t in value.values()}) != len(value):
            raise ValueError("maps two columns to the same phone type")
        return {column: t.strip() for column, t in value.items()}


class HttpAlertSchema(_Section):
    conn_id: str | None = DEFAULT_ALERT_CONN_ID
    endpoint: str | None = None


class EmailAlertSchema(_Section):
    to: list[str] = Field(default_factory=list)
    from_email: str | None = None
    conn_id: str | None = None

    @field_validator("to", mode="before")
    @classmethod
    def _one_address(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value or []


class SlackAlertSchema(_Section):
    webhook_conn_id: str | None = None
    conn_id: str | None = None
    channel: str | None = None


class AlertsSchema(_Section):
    http: HttpAlertSchema = Field(default_factory=HttpAlertSchema)
    email: EmailAlertSchema = Field(default_factory=EmailAlertSchema)
    slack: SlackAlertSchema = Field(default_factory=SlackAlertSchema)
    base_url: str | None = None
    max_message_chars: int = Field(AlertsConfig.max_message_chars, ge=80)

    @field_validator("http", "email", "slack", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value is None else value


class ConfigSchema(_Section):
    """``sync.yaml`` as a whole: every section optional, no other top-level key."""

    version: int = 1
    export: ExportSchema = Field(default_factory=ExportSchema)
    gate: GateSchema = Field(default_factory=GateSchema)
    sync: SyncSchema = Field(default_factory=SyncSchema)
    alerts: AlertsSchema = Field(default_factory=AlertsSchema)

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != 1:
            raise ValueError(f"must be 1 (the only version this sync reads), got {value}")
        return value

    @field_validator("export", "gate", "sync", "alerts", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value is None else value


def _describe(error: Mapping[str, Any]) -> str:
    """One schema error as ``key message``: the dotted key first, as the file spells it."""
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key{_allowed_keys(error['loc'])}"
    if error["type"] == "value_error":
        return f"{key} {str(error['msg']).removeprefix('Value error, ')}"
    got = error.get("input")
    shown = f" (got {got!r})" if isinstance(got, str | int | float | bool) else ""
    return f"{key}: {error['msg']}{shown}"


def _allowed_keys(loc: tuple[Any, ...]) -> str:
    model: type[BaseModel] = ConfigSchema
    for part in loc[:-1]:
        info = model.model_fields.get(str(part))
        annotation = getattr(info, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    return f"; allowed: {', '.join(model.model_fields)}"


def check_config(raw: Any, source: Path | str = "sync.yaml") -> ConfigSchema:
    """Check a parsed config mapping against the schema; ``ConfigError`` names every key
    that is unknown or holds a value of the wrong type."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a mapping")
    try:
        return ConfigSchema.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors(include_url=False)]
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def load_config(path: str | Path | None = None) -> SyncConfig:
    """Load and check the config file (``$GENESYS_SYNC_CONFIG`` or the shipped one)."""
    source = Path(path) if path else settings.config_path()
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {source}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {source} is not valid YAML: {exc}") from exc
    checked = check_config(raw, source)
    return _typed(checked, source)


def _typed(checked: ConfigSchema, source: Path | None) -> SyncConfig:
    """The checked values as the dataclasses the sync reads."""
    export, gate, alerts = checked.export, checked.gate, checked.alerts
    gate_values = gate.model_dump(exclude={"catalogue"})
    return SyncConfig(
        export=ExportConfig(**{**export.model_dump(), "columns": dict(export.columns)}),
        gate=GateConfig(
            **gate_values,
            catalogue_roles=tuple(gate.catalogue.roles),
            catalogue_divisions=tuple(gate.catalogue.divisions),
        ),
        sync=SyncPolicy(**checked.sync.model_dump()),
        source=source,
        alerts=AlertsConfig(
            http_conn_id=alerts.http.conn_id,
            http_endpoint=alerts.http.endpoint,
            email_to=tuple(alerts.email.to),
            email_from=alerts.email.from_email,
            smtp_conn_id=alerts.email.conn_id,
            slack_webhook_conn_id=alerts.slack.webhook_conn_id,
            slack_conn_id=alerts.slack.conn_id,
            slack_channel=alerts.slack.channel,
            base_url=alerts.base_url,
            max_message_chars=alerts.max_message_chars,
        ),
    )
