"""Read the nightly HRIS export (CSV, JSON Lines, Parquet) into canonical string columns."""

# pandas and pyarrow are imported inside the functions (the DAG may import this module at parse
# time); object-storage URIs go through Airflow's ObjectStoragePath, imported only when used.

from __future__ import annotations

import csv
import gzip
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from genesys_sync.config import CANONICAL_COLUMNS, OPTIONAL_COLUMNS, ExportConfig
from genesys_sync.config import resolve_project_path as _project_path
from genesys_sync.settings import PROJECT_ROOT

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

EXPORT_ENV = "HRIS_EXPORT_PATH"
FORMATS = ("csv", "jsonl", "parquet")
_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_UTF8 = {"utf-8", "utf8", "utf_8", "utf-8-sig", "utf_8_sig", "utf8-sig"}
_BOM = b"\xef\xbb\xbf"
_OTHER_DELIMITERS = (",", ";", "\t", "|")
_MAX_REPORTED = 5


class ExportNotAllowed(ValueError):
    """The run param ``export`` names a location the deployment does not allow."""


class ExportError(ValueError):
    """The export cannot be read as a table; ``rule`` names the defect for the gate report."""

    def __init__(self, message: str, *, rule: str = "export_unreadable") -> None:
        super().__init__(message)
        self.rule = rule


def resolve_location(
    config: ExportConfig,
    logical_date: datetime | date | None,
    override: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Where this run's export is: run param, else ``$HRIS_EXPORT_PATH``, else the config.

    ``{ds}`` / ``{ds_nodash}`` become the logical date (UTC; today when there is none, as for a
    manual run in Airflow 3). Relative local paths are resolved against the project root.
    ``environ`` (default ``os.environ``) is where ``$HRIS_EXPORT_PATH`` is looked up.
    """
    raw = (override or "").strip() or configured_location(config, environ)
    day = _utc_day(logical_date)
    location = raw.replace("{ds}", day.isoformat()).replace("{ds_nodash}", day.strftime("%Y%m%d"))
    location = location.removeprefix("file://")
    if _is_remote(location):
        return location
    return str(_project_path(os.path.expanduser(location)))


def resolve_run_location(
    config: ExportConfig,
    logical_date: datetime | date | None,
    param: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The export a run reads, with the run param ``export`` held to the allow-list.

    Without the param this is ``resolve_location``. With it, the param (after ``{ds}``
    templating) must lie under one of ``allowed_export_roots``: a local path is resolved first
    (``..`` and symlinks followed, so neither can leave a root) and the resolved path is what
    the run reads; a URI must start with an allowed prefix and have no ``.``/``..`` segment.
    Anything else raises ``ExportNotAllowed`` before the location is touched.
    """
    if not (param or "").strip():
        return resolve_location(config, logical_date, environ=environ)
    location = resolve_location(config, logical_date, override=param, environ=environ)
    roots = allowed_export_roots(config, environ)
    if _is_remote(location):
        return _allowed_uri(location, roots, config)
    return _allowed_path(location, roots, config)


def configured_location(config: ExportConfig, environ: Mapping[str, str] | None = None) -> str:
    """The deployment's own export location (``$HRIS_EXPORT_PATH``, else ``export.location``)."""
    environ = os.environ if environ is None else environ
    return environ.get(EXPORT_ENV, "").strip() or config.location


def allowed_export_roots(
    config: ExportConfig, environ: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """Where the run param ``export`` may point: resolved local directories and URI prefixes.

    ``export.allowed_locations`` when set; otherwise the directory of the configured location,
    cut before its first ``{ds}``-style part (``/data/hris/{ds}/users.csv`` allows
    ``/data/hris/``). A default that would be a filesystem root, the project root or a bare
    scheme allows nothing.
    """
    if config.allowed_locations:
        return tuple(_normal_root(entry) for entry in config.allowed_locations)
    root = _default_root(configured_location(config, environ))
    return (root,) if root else ()


def is_remote(location: str) -> bool:
    """Whether ``location`` is an object-storage URI (not a local path or ``file://``)."""
    return _is_remote(location)


def export_exists(location: str) -> bool:
    """Whether the export has landed (a local file, or an object behind a storage URI)."""
    if _is_remote(location):
        return bool(_object_path(location).is_file())
    return _local(location).is_file()


def read_export(location: str, config: ExportConfig) -> pd.DataFrame:
    """Read the export at ``location`` into a frame of canonical columns.

    Every canonical column the file has (renamed from its header per ``export.columns``),
    every value a whitespace-trimmed string ("" when empty), rows in file order, other columns
    left out. Defects that keep the file from being a table (encoding, empty file, duplicate
    header, wrong delimiter, rows with the wrong number of fields...) raise ``ExportError``;
    missing columns and bad values are left to the gate. ``attrs["export"]`` records the
    location, format, the file's header and the number a reader gives the first data row (2 in
    a CSV, whose header is row 1).
    """
    fmt = _format_for(location, config)
    data = _read_bytes(location)
    if not data.strip():
        raise ExportError(
            f"{location}: the export is empty (0 bytes or only whitespace). The HRIS job probably "
            "failed while writing it: re-run the export, then clear this task to read it again.",
            rule="empty_file",
        )
    if fmt != "parquet" and data[:4] == b"PAR1":
        raise ExportError(
            f"{location}: the file is Parquet but export.format is '{fmt}'. Set export.format to "
            "parquet (or null to go by the file suffix) in the config.",
            rule="wrong_format",
        )
    if fmt == "csv":
        table, header = _csv_table(data, config, location)
    elif fmt == "parquet":
        table, header = _parquet_table(data, config, location)
    else:
        table = _jsonl_table(_decode(data, config.encoding, location), location)
        header = list(table.column_names)
    frame = _canonical_frame(table, config)
    known, unexpected = split_header(header, config)
    frame.attrs["export"] = {  # header names only as far as the sync expects them
        "location": location,
        "format": fmt,
        "header": known,
        "unexpected_columns": unexpected,
        "first_data_row": 2 if fmt == "csv" else 1,
    }
    return frame


def split_header(header: list[str], config: ExportConfig) -> tuple[list[str], int]:
    """The header names the config expects (in file order), and how many others there are.

    Messages and artifacts name only the former: any other "name" is file content (the first
    line of a file that is not an export at all, say) and is only counted.
    """
    expected = {config.header_for(c) for c in CANONICAL_COLUMNS + OPTIONAL_COLUMNS}
    known = [name for name in header if name in expected]
    return known, len(header) - len(known)


def _duplicates_message(duplicates: list[str], config: ExportConfig) -> str:
    known, unexpected = split_header(duplicates, config)
    shown = [", ".join(map(repr, known))] if known else []
    if unexpected:
        shown.append(f"{unexpected} other column name(s)")
    return " and ".join(shown)


# --- locations --------------------------------------------------------------------------------


def _utc_day(value: datetime | date | None) -> date:
    if value is None:
        return datetime.now(UTC).date()
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    return value


def _default_root(location: str) -> str | None:
    location = location.strip().removeprefix("file://")
    scheme = ""
    if _is_remote(location):
        scheme, _, location = location.partition("://")
    parts = location.split("/")[:-1]  # the directory
    cut = next((i for i, part in enumerate(parts) if "{" in part), len(parts))
    directory = "/".join(parts[:cut])
    if scheme:
        authority = directory.split("/", 1)[0]
        return _normal_root(f"{scheme}://{directory}") if authority else None
    if not directory.strip("/") or directory.strip() in (".", "~"):
        return None
    root = _normal_root(directory)
    return None if Path(root) == PROJECT_ROOT.resolve() else root


def _normal_root(entry: str) -> str:
    """An allow-list entry as compared: a resolved local directory, or a URI prefix ending '/'."""
    entry = entry.strip().removeprefix("file://")
    if _is_remote(entry):
        scheme, _, rest = entry.partition("://")
        return f"{scheme.lower()}://{rest.rstrip('/')}/"
    return str(_project_path(os.path.expanduser(entry)).resolve())


def _segments_escape(path: str) -> bool:
    return any(unquote(part) in (".", "..") or "\\" in part for part in path.split("/"))


def _allowed_uri(location: str, roots: tuple[str, ...], config: ExportConfig) -> str:
    scheme, _, rest = location.partition("://")
    normal = f"{scheme.lower()}://{rest}"
    prefixes = [root for root in roots if _is_remote(root)]
    if _segments_escape(rest):
        why = "a URI may not contain '.' or '..' path segments"
    elif not any(p.startswith(f"{scheme.lower()}://") for p in prefixes):
        why = f"the scheme '{scheme.lower()}' is not on the allow-list"
    elif not any(normal.startswith(p) for p in prefixes):
        why = "it is not under an allowed URI prefix"
    else:
        return normal
    raise _not_allowed(location, why, roots, config)


def _allowed_path(location: str, roots: tuple[str, ...], config: ExportConfig) -> str:
    try:
        resolved = Path(location).resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        raise _not_allowed(location, "it is not a valid path", roots, config) from exc
    for root in roots:
        if not _is_remote(root) and resolved.is_relative_to(root):
            return str(resolved)
    shown = "" if str(resolved) == location else f" (it resolves to {resolved})"
    raise _not_allowed(location, f"it is outside every allowed directory{shown}", roots, config)


def _not_allowed(
    location: str, why: str, roots: tuple[str, ...], config: ExportConfig
) -> ExportNotAllowed:
    allowed = ", ".join(roots) or "nothing (no default could be derived)"
    source = (
        "export.allowed_locations"
        if config.allowed_locations
        else ("the default: the directory of the configured export location")
    )
    return ExportNotAllowed(
        f"The run param 'export' ({_redacted(location)}) was refused: {why}. The param may "
        f"only choose an export under {allowed} ({source}); nothing was read. To allow it, "
        "add its directory or URI prefix to export.allowed_locations in the config file; or "
        "leave the param out and set the configured location instead ($HRIS_EXPORT_PATH, or "
        "`make sync EXPORT=<path>` from the operator's shell)."
    )


def _redacted(location: str) -> str:
    """A location fit for a message: a URI's password (``user:secret@``) is masked."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):[^/@]*@", r"\1:***@", location)


def _is_remote(location: str) -> bool:
    return bool(_URI.match(location)) and not location.startswith("file://")


def _local(location: str) -> Path:
    return Path(location.removeprefix("file://"))


def _object_path(location: str) -> Any:
    from airflow.sdk import ObjectStoragePath  # the one Airflow import: storage URIs only

    return ObjectStoragePath(location)


def _read_bytes(location: str) -> bytes:
    try:
        if _is_remote(location):
            data = _object_path(location).read_bytes()
        else:
            data = _local(location).read_bytes()
    except FileNotFoundError as exc:
        raise ExportError(
            f"{location}: the export does not exist. Check export.location in the config, "
            f"${EXPORT_ENV} or the run's 'export' param.",
            rule="export_missing",
        ) from exc
    except OSError as exc:  # permissions, a directory, a storage error: named, never quoted
        raise ExportError(
            f"{location}: the export cannot be read ({type(exc).__name__}). Check that the "
            "path names a file the sync may read.",
            rule="export_unreadable",
        ) from exc
    if location.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ExportError(  # gzip's message quotes the file's first bytes: never shown
                f"{location}: the file ends in .gz but is not valid gzip; the transfer "
                "was probably cut short. Re-deliver the export.",
                rule="export_unreadable",
            ) from exc
    return data


def _format_for(location: str, config: ExportConfig) -> str:
    fmt = (config.format or "").strip().lower()
    if not fmt:
        name = location.removesuffix(".gz")
        fmt = _SUFFIX_FORMATS.get(os.path.splitext(name)[1].lower(), "csv")
    if fmt not in FORMATS:
        raise ExportError(
            f"export.format is '{config.format}'; use one of {', '.join(FORMATS)} "
            "(or null to go by the file suffix).",
            rule="wrong_format",
        )
    return fmt


# --- decoding ---------------------------------------------------------------------------------


def _decode(data: bytes, encoding: str, location: str) -> str:
    """The file as text; an ``ExportError`` naming the first undecodable line otherwise."""
    utf8 = encoding.lower() in _UTF8
    try:
        return data.decode("utf-8-sig" if utf8 else encoding)
    except UnicodeDecodeError as exc:
        raise _encoding_error(data, exc, encoding, location) from exc
    except LookupError as exc:
        raise ExportError(
            f"export.encoding '{encoding}' is not an encoding Python knows; use utf-8-sig.",
            rule="encoding",
        ) from exc


def _encoding_error(
    data: bytes, exc: UnicodeDecodeError, encoding: str, location: str
) -> ExportError:
    line = data.count(b"\n", 0, exc.start) + 1
    hint = ""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        hint = " The file starts with a UTF-16 byte-order mark: export it as UTF-8."
    return ExportError(
        f"{location}: line {line} is not valid {encoding} (at byte offset {exc.start}); the "
        "file mixes encodings (e.g. UTF-8 and Latin-1/Windows-1252)."
        f"{hint} Have the HRIS write the whole file as UTF-8, or set export.encoding if the "
        "whole file uses another encoding.",
        rule="encoding",
    )


# --- CSV --------------------------------------------------------------------------------------


def _csv_header(data: bytes, config: ExportConfig, location: str) -> list[str]:
    if len(config.delimiter) != 1:
        raise ExportError(
            f"export.delimiter must be one character, not {config.delimiter!r} "
            '(write a tab as "\\t" in the YAML).',
            rule="wrong_delimiter",
        )
    head = data[:65536].removeprefix(_BOM)
    try:
        text = head.decode("utf-8" if config.encoding.lower() in _UTF8 else config.encoding)
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the chunk's end
            raise _encoding_error(head, exc, config.encoding, location) from exc
        text = head[: exc.start].decode("utf-8")
    first = text.split("\n", 1)[0].rstrip("\r")
    header = [name.strip() for name in next(csv.reader([first], delimiter=config.delimiter))]
    duplicates = sorted({name for name in header if name and header.count(name) > 1})
    if duplicates:
        raise ExportError(
            f"{location}: the header names {_duplicates_message(duplicates, config)} more than "
            "once, so it is ambiguous which column holds the data. Remove or rename the "
            "duplicate column(s) in the export.",
            rule="duplicate_header",
        )
    if len(header) == 1:
        others = [d for d in _OTHER_DELIMITERS if d != config.delimiter and d in header[0]]
        if others:
            shown = {"\t": "\\t"}.get(others[0], others[0])
            raise ExportError(
                f"{location}: the header is a single column; the file "
                f"looks '{shown}'-delimited but export.delimiter is '{config.delimiter}'. Set "
                f"export.delimiter to '{shown}' in the config, or have the HRIS write "
                f"'{config.delimiter}'-delimited files.",
                rule="wrong_delimiter",
            )
    return [name or f"<unnamed {i + 1}>" for i, name in enumerate(header)]


def _csv_table(data: bytes, config: ExportConfig, location: str) -> tuple[pa.Table, list[str]]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    header = _csv_header(data, config, location)
    if config.encoding.lower() in _UTF8:
        body = data.removeprefix(_BOM)
    else:
        body = _decode(data, config.encoding, location).encode("utf-8")
    wanted = _wanted_headers(header, config)
    bad_rows: list[Any] = []

    def on_invalid_row(row: Any) -> str:
        bad_rows.append(row)
        return "skip"

    try:
        table = pcsv.read_csv(
            pa.BufferReader(body),
            read_options=pcsv.ReadOptions(column_names=header, skip_rows=1, use_threads=False),
            parse_options=pcsv.ParseOptions(
                delimiter=config.delimiter,
                newlines_in_values=True,
                invalid_row_handler=on_invalid_row,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                include_columns=wanted or header[:1],  # one column keeps the row count
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        if "utf8" in str(exc).lower():
            _decode(data, config.encoding, location)  # raises with the line number
        raise ExportError(  # Arrow's message may quote the row: never shown
            f"{location}: the CSV cannot be parsed. Check export.delimiter and "
            "export.encoding, and that quotes in values are escaped.",
            rule="export_unreadable",
        ) from exc
    if bad_rows:
        raise _field_count_error(bad_rows, len(header), config.delimiter, location)
    return table, header


def _field_count_error(
    rows: list[Any], expected: int, delimiter: str, location: str
) -> ExportError:
    shown = "; ".join(
        f"row {row.number} has {row.actual_columns} field(s)" for row in rows[:_MAX_REPORTED]
    )
    at_end = all(row.actual_columns < expected for row in rows) and len(rows) <= 3
    cause = (
        "They look like a trailer/footer written after the data: remove it from the export."
        if at_end
        else f"A value containing '{delimiter}' without quotes shifts the columns of its row: "
        "have the HRIS quote such values (RFC 4180)."
    )
    return ExportError(
        f"{location}: {len(rows)} row(s) do not have the header's {expected} fields ({shown}; "
        f"the header is row 1). {cause} No row was synced.",
        rule="field_count",
    )


# --- JSON Lines and Parquet -------------------------------------------------------------------


def _jsonl_table(text: str, location: str) -> pa.Table:
    import pyarrow as pa

    columns: dict[str, list[str]] = {}
    count = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ExportError(
                f"{location}: line {number} is not valid JSON ({exc.msg}); every line of a JSON "
                "Lines export must be one JSON object. Fix or remove the line (a truncated or "
                "trailer line?) and re-deliver the export.",
                rule="field_count",
            ) from exc
        if not isinstance(record, dict):
            raise ExportError(
                f"{location}: line {number} is a JSON {type(record).__name__}, not an object; "
                "every line must be one JSON object with the export's columns as keys.",
                rule="field_count",
            )
        for key, value in record.items():
            columns.setdefault(str(key), [""] * count).append(_json_text(value))
        count += 1
        for values in columns.values():
            if len(values) < count:
                values.append("")
    if not columns:
        raise ExportError(
            f"{location}: the JSON Lines export has no records. Re-run the HRIS export.",
            rule="empty_file",
        )
    return pa.table({key: pa.array(values, pa.string()) for key, values in columns.items()})


def _json_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _parquet_table(data: bytes, config: ExportConfig, location: str) -> tuple[pa.Table, list[str]]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise ExportError(
            f"{location}: not a readable Parquet file ({type(exc).__name__}); the transfer may "
            "have been cut short. Re-deliver the export.",
            rule="export_unreadable",
        ) from exc
    names = table.column_names
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ExportError(
            f"{location}: the Parquet schema names {_duplicates_message(duplicates, config)} "
            "more than once; remove or rename the duplicate column(s) in the export.",
            rule="duplicate_header",
        )
    strings = {}
    for name in _wanted_headers(names, config) or names[:1]:
        column = table.column(name)
        try:
            strings[name] = pc.cast(column, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            strings[name] = pa.array([_json_text(v) for v in column.to_pylist()], pa.string())
    return pa.table(strings), names


# --- canonical frame --------------------------------------------------------------------------


def _wanted_headers(header: list[str], config: ExportConfig) -> list[str]:
    wanted = {config.header_for(c) for c in CANONICAL_COLUMNS + OPTIONAL_COLUMNS}
    return [name for name in header if name in wanted]


def _canonical_frame(table: pa.Table, config: ExportConfig) -> pd.DataFrame:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    columns: dict[str, Any] = {}
    for canonical in CANONICAL_COLUMNS + OPTIONAL_COLUMNS:
        header = config.header_for(canonical)
        if header in table.column_names:
            column = pc.cast(table.column(header), pa.string())
            columns[canonical] = pc.fill_null(pc.utf8_trim_whitespace(column), "")
    if not columns:
        return pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    return pa.table(columns).to_pandas()
