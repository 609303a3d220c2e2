"""The gate: block a bad export (dataset level) or quarantine its bad rows (row level)."""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from genesys_sync import settings
from genesys_sync.config import CANONICAL_COLUMNS, OPTIONAL_COLUMNS, SyncConfig
from genesys_sync.export import ExportError, read_export
from genesys_sync.validation.gx_runner import (
    ROW_COLUMN,
    CheckOutcome,
    open_context,
    publish_data_docs,
    run_suites,
)
from genesys_sync.validation.quarantine import write_quarantine
from genesys_sync.validation.rejects import Rejection, write_rejects
from genesys_sync.validation.result import MAX_EXAMPLES, Catalogue, GateResult, RuleFailure
from genesys_sync.validation.row_rules import python_checks, unsafe_employee_ids
from genesys_sync.validation.suites import DATASET_SUITE, ROW_SUITE, load_suite

log = logging.getLogger(__name__)

ACCEPTED_FILE = "accepted.parquet"
REJECTS_FILE = "rejects.csv"


def gate_export(
    location: str,
    *,
    config: SyncConfig,
    run_dir: Path,
    previous_row_count: int | None = None,
    catalogue: Catalogue | None = None,
) -> GateResult:
    """Read the export at ``location`` and gate it; an unreadable file is a dataset block."""
    try:
        frame = read_export(location, config.export)
    except ExportError as exc:
        log.warning("Gate blocked %s: %s", location, exc.rule)
        failure = RuleFailure(rule=exc.rule, message=str(exc), count=1)
        return _finish(_blocked(Path(run_dir), failure, source=location), Path(run_dir))
    return run_gate(
        frame,
        config=config,
        run_dir=run_dir,
        previous_row_count=previous_row_count,
        catalogue=catalogue,
    )


def run_gate(
    df: pd.DataFrame,
    *,
    config: SyncConfig,
    run_dir: Path,
    previous_row_count: int | None = None,
    catalogue: Catalogue | None = None,
) -> GateResult:
    """Validate the whole export and split it into accepted rows and rejects.

    Runs the dataset suite and the row suite with GX on the whole export, the Python row rules
    and two dataset rules (licence capacity, share of quarantined rows); writes the accepted
    rows (Parquet; empty when blocked), ``rejects.csv`` and Data Docs (the validate stage keeps the
    result itself, as the run's ``gate.json``).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    export_meta = df.attrs.get("export") or {}
    df = _as_strings(df.reset_index(drop=True))
    first_row = int(export_meta.get("first_data_row", 1))
    pattern = config.gate.employee_id_pattern
    labels = _row_labels(df, first_row, pattern)
    catalogue = catalogue or Catalogue(
        roles=frozenset(config.gate.catalogue_roles),
        divisions=frozenset(config.gate.catalogue_divisions),
    )

    context = open_context()
    suites_dir = config.gate.suites_path
    frame = _gx_frame(df, first_row)
    parameters = {"min_row_count": _min_row_count(previous_row_count, config)}
    dataset_run, row_run = run_suites(
        context,
        frame,
        [
            (load_suite(suites_dir, DATASET_SUITE), parameters),
            (load_suite(suites_dir, ROW_SUITE), {}),
        ],
    )
    del frame

    rejections = _row_rejections(row_run.outcomes, df, catalogue, first_row, pattern)
    rejected = np.zeros(len(df), dtype=bool)
    for rejection in rejections:
        rejected[rejection.positions] = True
    by_rule: dict[str, set[int]] = {}
    for rejection in rejections:
        by_rule.setdefault(rejection.rule, set()).update(rejection.positions.tolist())

    context_values = {
        "previous": previous_row_count,
        "max_drop_percent": f"{config.gate.max_row_drop_fraction * 100:g}",
        "minimum": parameters["min_row_count"],
        "name_headers": _name_headers(config),
    }
    failures = _dataset_failures(dataset_run.outcomes, labels, first_row, config, context_values)
    failures = [_with_file_header(f, export_meta) for f in failures]
    failures += _capacity_failures(df, config)
    failures += _rejected_share_failures(rejected, labels, by_rule, config)
    passed = not failures

    columns = [c for c in (*CANONICAL_COLUMNS, *OPTIONAL_COLUMNS) if c in df.columns]
    accepted = df.loc[~rejected, columns] if passed else df.loc[[], columns]
    accepted_path = run_dir / ACCEPTED_FILE
    accepted.to_parquet(accepted_path, index=False)
    rejects_path = run_dir / REJECTS_FILE
    write_rejects(rejects_path, rejections, labels)
    quarantined_path = _write_quarantine(run_dir, df, rejected, pattern)

    docs = None
    if config.gate.data_docs:
        try:
            docs = publish_data_docs(context, [dataset_run, row_run], run_dir.name, pattern)
        except Exception as exc:  # Data Docs are a by-product: never fail the gate for them
            log.warning("Data Docs were not built: %s", exc)
    result = GateResult(
        passed=passed,
        row_count=len(df),
        accepted_count=len(accepted),
        rejected_count=int(rejected.sum()),
        dataset_failures=failures,
        row_failures_by_rule={rule: len(rows) for rule, rows in by_rule.items()},
        accepted_path=accepted_path,
        rejects_path=rejects_path,
        data_docs_path=docs,
        rows_with_rejected_manager=_reports_of_rejected(df, rejected),
        source=export_meta.get("location"),
        quarantined_path=quarantined_path,
    )
    return _finish(result, Path(run_dir))


# --- building blocks --------------------------------------------------------------------------


def _gx_frame(df: pd.DataFrame, first_row: int) -> pd.DataFrame:
    """What GX validates: empty cells as nulls, row numbers, derived columns, no password."""
    frame = df.drop(columns=[c for c in OPTIONAL_COLUMNS if c in df.columns]).replace("", None)
    frame.insert(0, ROW_COLUMN, np.arange(first_row, first_row + len(df)))
    if "email" in frame.columns:
        frame["email_key"] = frame["email"].str.lower()
    # full_name exists when the file has a name: display_name, or first_name and last_name.
    joined = None
    if {"first_name", "last_name"} <= set(frame.columns):
        joined = frame["first_name"] + " " + frame["last_name"]
    if "display_name" in frame.columns:
        display = frame["display_name"]
        frame["full_name"] = display if joined is None else display.fillna(joined)
    elif joined is not None:
        frame["full_name"] = joined
    return frame


def _as_strings(df: pd.DataFrame) -> pd.DataFrame:
    """The frame as ``read_export`` gives it: strings, "" for missing (for hand-made frames)."""
    if (
        all(pd.api.types.is_string_dtype(dtype) for dtype in df.dtypes)
        and not df.isna().any().any()
    ):
        return df
    return df.astype(object).where(df.notna(), "").astype(str).astype("str")


def _row_rejections(
    outcomes: list[CheckOutcome],
    df: pd.DataFrame,
    catalogue: Catalogue,
    first_row: int,
    employee_id_pattern: str,
) -> list[Rejection]:
    """Failed row rules, GX's (by row number) then Python's (by mask), as row positions."""
    rejections = [
        Rejection(
            outcome.rule,
            _format(outcome.message, column=outcome.column),
            np.asarray(outcome.rows, dtype=int) - first_row,
        )
        for outcome in outcomes
        if not outcome.success
    ]
    rejections += [
        Rejection(check.rule, check.message, np.flatnonzero(check.failed))
        for check in python_checks(df, catalogue, employee_id_pattern)
        if check.failed.any()
    ]
    return rejections


def _row_labels(df: pd.DataFrame, first_row: int, employee_id_pattern: str) -> np.ndarray:
    """Each row's employee id, or ``<row N>`` when it has none or one outside the safe pattern
    (``gate.employee_id_pattern``): a label is shown in messages, rejects and the report."""
    numbers = pd.Series(np.arange(first_row, first_row + len(df))).astype(str)
    fallback = "<row " + numbers + ">"
    if "employee_id" not in df.columns:
        return fallback.to_numpy(dtype=object)
    ids = df["employee_id"].reset_index(drop=True)
    safe = ~unsafe_employee_ids(ids, employee_id_pattern)
    return ids.where(safe, fallback).to_numpy(dtype=object)


def _name_headers(config: SyncConfig) -> str:
    header = config.export.header_for
    return (
        f"a display_name column (header '{header('display_name')}'), or first_name and "
        f"last_name (headers '{header('first_name')}' and '{header('last_name')}')"
    )


def _min_row_count(previous: int | None, config: SyncConfig) -> int:
    if not previous:
        return 0
    return math.ceil(previous * (1 - config.gate.max_row_drop_fraction) - 1e-9)


def _examples(labels: np.ndarray, positions: np.ndarray) -> list[str]:
    seen: list[str] = []
    for label in labels[positions]:
        if label not in seen:
            seen.append(str(label))
        if len(seen) == MAX_EXAMPLES:
            break
    return seen


def _dataset_failures(
    outcomes: list[CheckOutcome],
    labels: np.ndarray,
    first_row: int,
    config: SyncConfig,
    values: dict[str, object],
) -> list[RuleFailure]:
    grouped: dict[str, list[CheckOutcome]] = {}
    for outcome in outcomes:
        if not outcome.success:
            grouped.setdefault(outcome.rule, []).append(outcome)
    failures = []
    for rule, failed in grouped.items():
        messages, count, positions = [], 0, []
        for outcome in failed:
            rows = np.asarray(outcome.rows, dtype=int) - first_row
            column = outcome.column
            header = config.export.header_for(column) if column else None
            count += outcome.unexpected_count if len(rows) else 1
            positions.extend(rows.tolist())
            messages.append(
                _format(
                    outcome.message,
                    column=column,
                    header=header,
                    count=outcome.unexpected_count,
                    observed=outcome.observed,
                    **values,
                )
            )
        failures.append(
            RuleFailure(
                rule=rule,
                message="; ".join(dict.fromkeys(messages)),
                count=count,
                examples=_examples(labels, np.asarray(positions, dtype=int)),
            )
        )
    return failures


def _with_file_header(failure: RuleFailure, export_meta: dict) -> RuleFailure:
    """Missing columns: say what the file's header does have, naming only the columns the
    config expects (any other header "name" may be file content: it is only counted)."""
    header = export_meta.get("header")
    if failure.rule != "required_columns" or header is None:
        return failure
    unexpected = int(export_meta.get("unexpected_columns") or 0)
    parts = []
    if header:
        parts.append(", ".join(f"'{name}'" for name in header))
    if unexpected or not header:
        parts.append(f"{unexpected} column(s) the config does not expect")
    shown = " and ".join(parts)
    return replace(failure, message=f"{failure.message} (the file's header has {shown})")


def _capacity_failures(df: pd.DataFrame, config: SyncConfig) -> list[RuleFailure]:
    if "status" not in df.columns:
        return []
    active = int((df["status"] == "active").sum())
    limit = config.gate.max_tenant_users
    if active <= limit:
        return []
    return [
        RuleFailure(
            rule="tenant_capacity",
            message=(
                f"the export has {active} active users, more than the licence allows "
                f"(gate.max_tenant_users = {limit}); check the export, or raise the limit "
                "if the licence changed"
            ),
            count=active,
        )
    ]


def _rejected_share_failures(
    rejected: np.ndarray, labels: np.ndarray, by_rule: dict[str, set[int]], config: SyncConfig
) -> list[RuleFailure]:
    total, count = len(rejected), int(rejected.sum())
    fraction = config.gate.max_rejected_fraction
    limit = max(config.gate.max_rejected_count, math.floor(fraction * total))
    if not total or count <= limit:
        return []
    top = sorted(by_rule.items(), key=lambda item: -len(item[1]))[:3]
    return [
        RuleFailure(
            rule="rejected_fraction",
            message=(
                f"{count} of {total} rows ({count / total:.0%}) fail row-level rules (most: "
                f"{', '.join(f'{rule} {len(rows)}' for rule, rows in top)}); more than {limit} "
                f"rows (max of gate.max_rejected_count = {config.gate.max_rejected_count} and "
                f"gate.max_rejected_fraction = {fraction:.0%} of the rows) points to a systematic "
                "defect such as shifted or swapped columns or a changed format: check those "
                "columns"
            ),
            count=count,
            examples=_examples(labels, np.flatnonzero(rejected)),
        )
    ]


def _write_quarantine(
    run_dir: Path, df: pd.DataFrame, rejected: np.ndarray, employee_id_pattern: str
) -> Path:
    """The quarantined rows' employee ids for the planner (present, so never "missing"), and
    how many quarantined rows have no readable id (see ``validation.quarantine``)."""
    if "employee_id" not in df.columns:
        return write_quarantine(run_dir, [], int(rejected.sum()))
    ids = df["employee_id"].str.strip()
    readable = ~unsafe_employee_ids(ids, employee_id_pattern)
    return write_quarantine(
        run_dir, ids[rejected & readable].tolist(), int((rejected & ~readable).sum())
    )


def _reports_of_rejected(df: pd.DataFrame, rejected: np.ndarray) -> int:
    if not rejected.any() or not {"employee_id", "manager_employee_id"} <= set(df.columns):
        return 0
    gone = df.loc[rejected, "employee_id"]
    managers = df["manager_employee_id"]
    return int((~rejected & managers.isin(gone[gone != ""]).to_numpy(bool)).sum())


def _format(template: str, **values: object) -> str:
    class _Keep(dict):
        def __missing__(self, key: str) -> str:
            return "{" + key + "}"

    shown = {k: v for k, v in values.items() if v is not None}
    try:
        return template.format_map(_Keep(shown))
    except (ValueError, IndexError):  # stray braces in a hand-edited message
        return template


def _blocked(run_dir: Path, failure: RuleFailure, source: str) -> GateResult:
    run_dir.mkdir(parents=True, exist_ok=True)
    accepted_path = run_dir / ACCEPTED_FILE
    pd.DataFrame({c: pd.Series([], dtype=str) for c in CANONICAL_COLUMNS}).to_parquet(
        accepted_path, index=False
    )
    rejects_path = run_dir / REJECTS_FILE
    write_rejects(rejects_path, [], np.array([], dtype=object))
    quarantined_path = write_quarantine(run_dir, [], 0)
    return GateResult(
        passed=False,
        row_count=0,
        accepted_count=0,
        rejected_count=0,
        dataset_failures=[failure],
        row_failures_by_rule={},
        accepted_path=accepted_path,
        rejects_path=rejects_path,
        source=source,
        quarantined_path=quarantined_path,
    )


def _finish(result: GateResult, run_dir: Path) -> GateResult:
    # Accepted rows, rejects, quarantine, Data Docs: owner-only, whatever the umask.
    settings.restrict_tree(run_dir)
    if result.data_docs_path:
        settings.restrict_tree(settings.sync_home() / "gx" / "uncommitted")
    if result.passed:
        log.info("%s", result.explanation())
    else:
        log.warning(
            "Gate blocked the export: %s",
            ", ".join(f.rule for f in result.dataset_failures),
        )
    return result
