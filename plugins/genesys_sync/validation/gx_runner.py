"""Run the expectation suites with GX Core on a file data context and keep Data Docs."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from genesys_sync import settings
from genesys_sync.config import DEFAULT_EMPLOYEE_ID_PATTERN
from genesys_sync.validation.suites import SuiteError, rule_of

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd
    from great_expectations.data_context import FileDataContext

ROW_COLUMN = "row"
DATASOURCE = "hris_export"
ASSET = "export_frame"
BATCH_DEFINITION = "whole_export"
_TABLE_LEVEL = {"expect_column_to_exist"}  # their "column" may be missing: that is the check
_KEPT_INDEXES = 20  # row numbers kept per expectation in the stored (Data Docs) results


@dataclass
class CheckOutcome:
    """One expectation's verdict: its rule, failing row numbers and observed value."""

    rule: str
    message: str
    expectation: str
    column: str | None
    success: bool
    rows: list[int] = field(default_factory=list)
    unexpected_count: int = 0
    observed: Any = None


@dataclass
class SuiteRun:
    """A suite as run (missing columns' expectations left out) and its GX result."""

    suite: gx.ExpectationSuite
    result: Any
    batch_id: str
    outcomes: list[CheckOutcome]


GX_LOGGER = "great_expectations"


@contextlib.contextmanager
def quiet_gx(level: int = logging.WARNING) -> Iterator[None]:
    """GX's loggers (``great_expectations`` and its children) at ``level`` (WARNING) while the
    gate runs, so its thousands of INFO/DEBUG lines stay out of the task log; the levels they
    had are restored after. Usable as a decorator."""
    names = [GX_LOGGER] + [
        name for name in logging.root.manager.loggerDict if name.startswith(GX_LOGGER + ".")
    ]
    loggers = [logging.getLogger(name) for name in names]
    before = [logger.level for logger in loggers]
    for logger, was in zip(loggers, before, strict=True):
        if logger.name == GX_LOGGER or logging.NOTSET < was < level:
            logger.setLevel(level)
    try:
        yield
    finally:
        for logger, was in zip(loggers, before, strict=True):
            logger.setLevel(was)


@quiet_gx()
def open_context() -> FileDataContext:
    """The file data context in ``$GENESYS_SYNC_HOME/gx`` (progress bars, analytics off)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=settings.sync_home())
    variables = context.variables
    bars = variables.progress_bars  # a ProgressBarsConfig, or a dict when read from the file
    globally = bars.get("globally") if isinstance(bars, dict) else getattr(bars, "globally", None)
    if globally is not False or variables.analytics_enabled is not False:
        variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        variables.analytics_enabled = False
        variables.save()
    return context


@quiet_gx()
def run_suites(
    context: FileDataContext,
    frame: pd.DataFrame,
    suites: list[tuple[gx.ExpectationSuite, dict[str, Any]]],
) -> list[SuiteRun]:
    """Validate ``frame`` (with its ``row`` column) against each (suite, parameters) pair.

    One batch serves every suite (GX fingerprints the frame once per batch). Expectations on
    a column the frame lacks are left out: ``expect_column_to_exist`` reports the column.
    """
    batch = _batch_definition(context).get_batch(batch_parameters={"dataframe": frame})
    columns = set(frame.columns)
    index_columns = [ROW_COLUMN] + (["employee_id"] if "employee_id" in columns else [])
    result_format = {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": index_columns,
        "exclude_unexpected_values": True,
        "return_unexpected_index_query": False,
        "partial_unexpected_count": 0,
    }
    runs = []
    for suite, parameters in suites:
        runnable = _runnable(suite, columns)
        result = batch.validate(
            runnable, result_format=result_format, expectation_parameters=parameters
        )
        outcomes = [_outcome(item, suite.name) for item in result.results]
        runs.append(SuiteRun(suite=runnable, result=result, batch_id=batch.id, outcomes=outcomes))
    return runs


def _runnable(suite: gx.ExpectationSuite, columns: set[str]) -> gx.ExpectationSuite:
    import great_expectations as gx

    kept = [
        expectation.configuration
        for expectation in suite.expectations
        if expectation.configuration.type in _TABLE_LEVEL
        or _column(expectation.configuration) in (None, *columns)
    ]
    return gx.ExpectationSuite(
        name=suite.name, expectations=kept, meta=dict(suite.meta), notes=suite.notes
    )


@quiet_gx()
def publish_data_docs(
    context: FileDataContext,
    runs: list[SuiteRun],
    run_name: str,
    employee_id_pattern: str = DEFAULT_EMPLOYEE_ID_PATTERN,
) -> Path:
    """Store the (sanitised) results, rebuild the Data Docs site and return its index.html.

    Employee ids outside ``employee_id_pattern`` are replaced by a placeholder: the row
    number identifies those rows."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(UTC))
    keys = []
    for run in runs:
        context.suites.add_or_update(run.suite)
        _sanitise(run.result, re.compile(employee_id_pattern))
        run.result.meta["run_id"] = run_id
        run.result.meta["validation_time"] = run_id.run_time
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=run.suite.name),
            run_id=run_id,
            batch_identifier=run.batch_id,
        )
        context.validation_results_store.set(key, run.result)
        keys.append(key)
    urls = context.build_data_docs(resource_identifiers=keys)
    url = next(iter(urls.values()))
    return Path(unquote(urlparse(url).path))


def keep_run_pages(index: Path, run_name: str, dest: Path) -> Path:
    """Copy the pages of one gate run out of the Data Docs site of ``index`` into ``dest``
    (its validation pages, the suites' pages and the site's static assets, at the same
    relative paths, so their links hold) with an index of its own; return that index.

    For a run store other processes read (an object store): the site itself stays in the
    home of the worker that ran the gate and holds every run it ever validated."""
    import html
    import shutil

    site = index.parent
    pages: list[str] = []
    for part in (
        "static",
        "expectations",
        *(p.relative_to(site).as_posix() for p in sorted(site.glob(f"validations/*/{run_name}"))),
    ):
        source = site / part
        if source.is_dir():
            shutil.copytree(source, dest / part, dirs_exist_ok=True)
            if part.startswith("validations/"):
                pages += sorted(
                    f.relative_to(dest).as_posix() for f in (dest / part).rglob("*.html")
                )
    links = "".join(
        f'<li><a href="{html.escape(page, quote=True)}">{html.escape(page)}</a></li>'
        for page in pages
    )
    page = dest / "index.html"
    page.write_text(
        '<!doctype html><html><head><meta charset="utf-8"><title>Data Docs</title></head>'
        f"<body><h1>Validation results of this run</h1><ul>{links}</ul></body></html>\n",
        encoding="utf-8",
    )
    return page


def _batch_definition(context: FileDataContext) -> Any:
    sources = context.data_sources
    source = (
        sources.get(DATASOURCE) if DATASOURCE in sources.all() else sources.add_pandas(DATASOURCE)
    )
    assets = {asset.name for asset in source.assets}
    asset = source.get_asset(ASSET) if ASSET in assets else source.add_dataframe_asset(ASSET)
    names = {definition.name for definition in asset.batch_definitions}
    if BATCH_DEFINITION in names:
        return asset.get_batch_definition(BATCH_DEFINITION)
    return asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)


def _column(configuration: Any) -> str | None:
    return configuration.kwargs.get("column")


def _outcome(item: Any, suite_name: str) -> CheckOutcome:
    config = item.expectation_config
    info = item.exception_info or {}
    raised = info.get("raised_exception") or any(
        isinstance(value, dict) and value.get("raised_exception") for value in info.values()
    )
    if raised:
        raise SuiteError(
            f"suite {suite_name}: expectation {config.type} {dict(config.kwargs)} could not be "
            f"evaluated: {_exception_message(info)}"
        )
    rule = rule_of(config.meta)
    result = item.result or {}
    rows: list[int] = []
    for entry in result.get("unexpected_index_list") or []:
        if isinstance(entry, dict) and ROW_COLUMN in entry:
            values = entry[ROW_COLUMN]
            rows.extend(int(v) for v in (values if isinstance(values, list) else [values]))
    return CheckOutcome(
        rule=rule.rule,
        message=rule.message,
        expectation=config.type,
        column=_column(config),
        success=bool(item.success),
        rows=rows,
        unexpected_count=int(result.get("unexpected_count") or len(rows)),
        observed=result.get("observed_value"),
    )


def _exception_message(info: dict[str, Any]) -> str:
    if info.get("exception_message"):
        return str(info["exception_message"])
    for value in info.values():
        if isinstance(value, dict) and value.get("exception_message"):
            return str(value["exception_message"])
    return "unknown error"


def _sanitise(result: Any, safe_id: re.Pattern[str]) -> None:
    """Keep row numbers and (safe) ids only, and at most a few of them, in the stored result."""
    for item in result.results:
        details = item.result or {}
        for key in ("partial_unexpected_list", "partial_unexpected_counts", "unexpected_list"):
            details.pop(key, None)
        details.pop("unexpected_index_query", None)
        entries = details.get("unexpected_index_list")
        if entries:
            details["unexpected_index_list"] = [
                {name: _safe_ids(name, values, safe_id) for name, values in entry.items()}
                if isinstance(entry, dict)
                else entry
                for entry in entries[:_KEPT_INDEXES]
            ]


def _safe_ids(name: str, values: Any, safe_id: re.Pattern[str]) -> Any:
    values = list(values)[:_KEPT_INDEXES] if isinstance(values, list) else values
    if name != "employee_id":
        return values

    def shown(value: Any) -> Any:
        return value if isinstance(value, str) and safe_id.fullmatch(value) else "<unsafe id>"

    return [shown(v) for v in values] if isinstance(values, list) else shown(values)
