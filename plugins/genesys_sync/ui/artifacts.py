"""Read a sync run's artifacts for the UI: the one place that knows which files a run leaves.

The stages write to the run store (``genesys_sync.runs``: ``$GENESYS_SYNC_HOME/runs/<safe run
id>/`` or an object store): ``report.json``, ``plan.json``, ``plan.md``, ``rejects.csv``,
``gate.json``; the Data Docs site stays in the home of the worker that ran the gate, and on an
object store the run's own pages go with its files (``data_docs/``). This module
reads them back as typed objects. It never creates a directory or a file (a viewer must not make
a sync home appear) and imports nothing from Airflow itself.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genesys_sync import runs
from genesys_sync.runs import Run, StorePath, runs_root
from genesys_sync.settings import safe_run_id

log = logging.getLogger(__name__)

#: At most this many rejected rows are read (the page says how many more there are).
MAX_REJECT_ROWS = 500
#: Larger artifacts are not read at all (a text artifact of a normal run is far smaller).
MAX_TEXT_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class RunSummary:
    """One run's line in the list and the chart: its report's counts, nothing personal."""

    run_id: str
    status: str
    dry_run: bool
    finished_at: str | None
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    rejected: int = 0
    failed: int = 0
    held: int = 0
    writes: int = 0
    api_calls: int = 0
    duration_s: float = 0.0

    @classmethod
    def from_report(cls, report: Mapping[str, Any], fallback_id: str) -> RunSummary:
        applied = report.get("applied") or {}
        return cls(
            run_id=str(report.get("run_id") or fallback_id),
            status=str(report.get("status") or "unknown"),
            dry_run=bool(report.get("dry_run")),
            finished_at=report.get("finished_at"),
            created=_int(applied.get("create")),
            updated=_int(applied.get("update")),
            deactivated=_int(applied.get("deactivate")),
            rejected=_int(report.get("rejected")),
            failed=_int(report.get("failed")),
            held=_int(report.get("held")),
            writes=_int(report.get("writes")),
            api_calls=_int(report.get("api_calls")),
            duration_s=_float(report.get("duration_s", report.get("duration_seconds"))),
        )


@dataclass(frozen=True)
class Rejects:
    """The gate's quarantined rows (``rejects.csv``): personal data."""

    header: list[str]
    rows: list[list[str]]
    total: int  # rows in the file (``rows`` holds at most MAX_REJECT_ROWS)


@dataclass(frozen=True)
class RunArtifacts:
    """Everything the UI shows of one run. ``plan``, ``plan_markdown``, ``rejects``, ``held``
    and ``refused`` name employees: shown only to users allowed to see personal data."""

    run_id: str
    directory: StorePath
    report: dict[str, Any] | None
    plan: dict[str, Any] | None
    plan_markdown: str | None
    rejects: Rejects | None
    gate: dict[str, Any] | None
    held: list[dict[str, Any]] = field(default_factory=list)
    data_docs: StorePath | None = None  # the page of the gate's Data Docs site

    @property
    def summary(self) -> RunSummary | None:
        return RunSummary.from_report(self.report, self.run_id) if self.report else None

    @property
    def refused(self) -> list[dict[str, Any]]:
        return list((self.report or {}).get("refused") or [])


def run_directory(run_id: str, root: StorePath | None = None) -> StorePath | None:
    """The directory of run ``run_id`` when there is one (never created)."""
    run = Run(run_id, root / safe_run_id(run_id) if root else None)
    return run.root if run.exists() else None


def read_run(run_id: str, root: StorePath | None = None) -> RunArtifacts | None:
    """One run's artifacts, or None when the run left none."""
    directory = run_directory(run_id, root)
    if directory is None:
        return None
    report = _read_json(directory / runs.REPORT)
    plan = _read_json(directory / runs.PLAN)
    gate = _read_json(directory / runs.GATE)
    held = [dict(c) for c in (plan or {}).get("changes") or [] if c.get("held")]
    return RunArtifacts(
        run_id=str((report or plan or {}).get("run_id") or run_id),
        directory=directory,
        report=report,
        plan=plan,
        plan_markdown=_read_text(directory / runs.PLAN_MARKDOWN),
        rejects=_read_rejects(directory / "rejects.csv"),
        gate=gate,
        held=held,
        data_docs=_data_docs_index(report, gate, root or runs_root(), directory),
    )


def list_runs(limit: int = 30, root: StorePath | None = None) -> list[RunSummary]:
    """The newest ``limit`` runs that wrote a report, newest first."""
    found: list[tuple[str, RunSummary]] = []
    for directory, report in _reports(root or runs_root()):
        summary = RunSummary.from_report(report, directory.name)
        stamp = summary.finished_at or ""
        found.append((stamp, summary))
    found.sort(key=lambda item: item[0], reverse=True)
    return [summary for _, summary in found[:limit]]


def artifact_bytes(run: RunArtifacts, name: str) -> bytes | None:
    """A file artifact of ``run`` (``rejects.csv``), wherever the run store keeps it."""
    try:
        return (run.directory / name).read_bytes()
    except OSError:
        return None


def data_docs_file(run: RunArtifacts, relative: str = "") -> StorePath | None:
    """A file of the Data Docs site the gate published for ``run`` (``""``: the page it
    returned), or None when it is not there or ``relative`` leads outside the site (``..``, an
    absolute path, a symlink out)."""
    if run.data_docs is None:
        return None
    if not relative:
        return run.data_docs
    site = run.data_docs.parent
    if relative.startswith(("/", "\\")):
        return None
    if runs.is_remote(site):  # keys, not files: no symlink, but no ".." either
        parts = relative.split("/")
        if any(p in ("", ".", "..") or "\\" in p for p in parts):
            return None
        candidate = site.joinpath(*parts)
        return candidate if candidate.is_file() else None
    candidate = (site / relative).resolve()
    if not candidate.is_relative_to(site.resolve()) or not candidate.is_file():
        return None
    return candidate


def _reports(root: StorePath) -> Iterator[tuple[StorePath, dict[str, Any]]]:
    if runs.is_remote(root):
        directories = [path.parent for path in runs.reports(root=root)]
    elif root.is_dir():  # a symlinked directory could lead anywhere on the disk: skipped
        directories = [d for d in root.iterdir() if d.is_dir() and not d.is_symlink()]
    else:
        return
    for directory in directories:
        report = _read_json(directory / runs.REPORT)
        if isinstance(report, dict):
            yield directory, report


def _read_text(path: StorePath) -> str | None:
    try:
        if path.stat().st_size > MAX_TEXT_BYTES:
            return None
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None


def _read_json(path: StorePath) -> dict[str, Any] | None:
    text = _read_text(path)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        runs.check_version(data, path.name, path)
    except runs.ArtifactVersionError as exc:  # a newer release wrote it: not shown, not misread
        log.warning("%s", exc)
        return None
    return data


def _read_rejects(path: StorePath) -> Rejects | None:
    try:
        raw = path.open("rb")
    except OSError:
        return None
    with io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        rows: list[list[str]] = []
        total = 0
        for row in reader:
            total += 1
            if len(rows) < MAX_REJECT_ROWS:
                rows.append(row)
    return Rejects(header=header, rows=rows, total=total)


def _data_docs_index(
    report: Mapping[str, Any] | None,
    gate: Mapping[str, Any] | None,
    root: StorePath,
    directory: StorePath,
) -> StorePath | None:
    """The Data Docs page the gate published (its site lies in the sync home, beside a local
    run store; on an object store, in the run's ``data_docs/``), or None."""
    raw = (report or {}).get("data_docs_path") or (gate or {}).get("data_docs_path")
    if not raw:
        return None
    if runs.is_remote(root):
        page = directory / runs.DATA_DOCS / "index.html"
        return page if str(raw) == str(page) and page.is_file() else None
    path = Path(str(raw).removeprefix("file://")).resolve()
    home = root.parent.resolve()
    return path if path.is_relative_to(home) and path.is_file() else None


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0
