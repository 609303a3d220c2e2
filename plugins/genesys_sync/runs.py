"""The run store: where one run's artifacts live, and the only code that knows their paths.

A run's directory, ``$GENESYS_SYNC_HOME/runs/<run id>/`` (the run id made safe for a file
name), owner-only because batches and accepted rows hold personal data::

    gate.json             the gate's summary (validate)
    accepted.parquet      the rows that passed (validate)        rejects.csv, quarantined.json
    plan.json, plan.md    the plan, for machines and for people (plan)
    batches/index.json    the batch files of each phase (plan)   -> BatchIndex
    batches/<id>.json     one batch job's changes (plan): never rewritten once written
    batches/linked/<id>.json   a second-wave batch with the first wave's target ids filled in
                          (manager_links), so the planned file stays as planned
    results/<id>.json     one batch job's per-operation results (the batch job)
    attempts/<id>         one byte per attempt at a batch job
    report.json, refused.md    the run report (report)
    verdict.json          a failed run's earliest failed stage and reason (outcome)
    failures/<task>[.<map index>].json   why a task failed, scrubbed (its failure callback)

Readers never create anything (a look at a run that does not exist leaves no directory);
writers create the directory owner-only and write atomically (``report.write_json``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from genesys_sync import report as reporting
from genesys_sync import settings

GATE = "gate.json"
PLAN = "plan.json"
PLAN_MARKDOWN = "plan.md"
INDEX = "batches/index.json"
REPORT = "report.json"
REFUSED = "refused.md"
VERDICT = "verdict.json"
_LINKED = "linked"


@dataclass(frozen=True)
class BatchIndex:
    """What the plan stage hands the batch jobs: the batch files of each phase (``phase1``,
    the first wave; ``phase2``, the manager wave; ``held_batches``, removals waiting for a
    human). The ``plan`` task returns it (XCom), and it is kept as ``batches/index.json``."""

    dry_run: bool = False
    planned: dict[str, int] = field(default_factory=dict)
    held: int = 0
    phase1: list[str] = field(default_factory=list)
    phase2: list[str] = field(default_factory=list)
    held_batches: list[str] = field(default_factory=list)
    plan_path: str | None = None
    version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchIndex:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


class Run:
    """One run's artifacts (see the module docstring for the layout)."""

    def __init__(self, run_id: str, root: Path | None = None) -> None:
        self.run_id = run_id
        self.root = root or runs_root() / settings.safe_run_id(run_id)

    @classmethod
    def of_batch(cls, batch_path: str | Path, batch: Mapping[str, Any]) -> Run:
        """The run a batch file belongs to (what a batch job knows is the file's path)."""
        root = run_root_of(batch_path)
        run_id = batch.get("run_id") or (read_optional(root / PLAN) or {}).get("run_id")
        return cls(str(run_id or root.name), root)

    def __repr__(self) -> str:
        return f"Run({self.run_id!r})"

    def path(self, name: str) -> Path:
        """Where artifact ``name`` is (or would be); creates nothing."""
        return self.root / name

    def prepare(self) -> Path:
        """The run's directory, created owner-only (the writers' side)."""
        settings.sync_home()  # a new home is owner-only too
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.root.stat().st_mode & 0o077:
            self.root.chmod(0o700)
        return self.root

    def read(self, name: str) -> dict[str, Any] | None:
        """A JSON artifact, or ``None`` when it was never written (or is unreadable)."""
        return read_optional(self.path(name))

    def write_json(self, name: str, data: Any) -> Path:
        self.prepare()
        path = self.path(name)
        reporting.write_json(path, data)
        return path

    def write_text(self, name: str, text: str) -> Path:
        self.prepare()
        path = self.path(name)
        reporting.write_text(path, text)
        return path

    # -- task failures (what the run's failure alert names) ---------------------------------

    def write_failure(self, task_id: str, map_index: Any, data: Mapping[str, Any]) -> Path:
        index = f".{map_index}" if isinstance(map_index, int) and map_index >= 0 else ""
        return self.write_json(f"failures/{settings.safe_run_id(task_id)}{index}.json", data)

    def failure(self, task_id: str) -> dict[str, Any] | None:
        """What ``write_failure`` kept for ``task_id`` (its first mapped instance if mapped)."""
        folder = self.root / "failures"
        found = sorted(folder.glob(f"{task_id}.json")) + sorted(folder.glob(f"{task_id}.*.json"))
        return read_optional(found[0]) if found else None

    # -- batches ---------------------------------------------------------------------------

    def batch_path(self, batch_id: str) -> Path:
        return self.root / "batches" / f"{batch_id}.json"

    def index(self) -> BatchIndex | None:
        data = self.read(INDEX)
        return BatchIndex.from_dict(data) if data is not None else None

    def write_index(self, index: BatchIndex) -> None:
        self.write_json(INDEX, index.to_dict())

    def clear_batches(self) -> None:
        """Forget the batches and results of an earlier attempt at planning (a retried plan
        starts from a clean slate)."""
        for stale in ("batches", "results"):
            shutil.rmtree(self.root / stale, ignore_errors=True)

    def results(self, phase: str) -> Iterator[dict[str, Any]]:
        """The results documents of the batch jobs of one phase that have finished."""
        for path in sorted((self.root / "results").glob(f"{phase}-*.json")):
            data = read_optional(path)
            if data is not None:
                yield data

    def attempt(self, batch_id: str) -> int:
        """Count one more attempt at a batch job and return its number (1, 2, ...)."""
        attempts = self.prepare() / "attempts"
        attempts.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(attempts / batch_id, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, b".")
            return os.fstat(fd).st_size
        finally:
            os.close(fd)


def runs_root() -> Path:
    """Where every run's directory is (``$GENESYS_SYNC_HOME/runs``); creates nothing, not
    even the home (``settings.sync_home`` would)."""
    home = os.environ.get("GENESYS_SYNC_HOME") or settings.PROJECT_ROOT / ".sync-home"
    return Path(home).resolve() / "runs"


def reports(since: float = 0.0) -> list[Path]:
    """The report files written at or after ``since`` (a ``time.time()``), oldest first."""
    found = [p for p in runs_root().glob(f"*/{REPORT}") if p.stat().st_mtime >= since]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def batch_id_of(batch_path: str | Path) -> str:
    return Path(batch_path).stem


def run_root_of(batch_path: str | Path) -> Path:
    """The run directory a batch file (planned or linked) belongs to."""
    path = Path(batch_path)
    batches = path.parent.parent if path.parent.name == _LINKED else path.parent
    return batches.parent


def results_path(batch_path: str | Path) -> Path:
    """Where a batch job writes its results: ``results/<batch id>.json`` of its run, the same
    for a planned batch and its linked version."""
    return run_root_of(batch_path) / "results" / f"{batch_id_of(batch_path)}.json"


def linked_path(batch_path: str | Path) -> Path:
    """Where the manager wave's version of a planned second-wave batch goes."""
    return run_root_of(batch_path) / "batches" / _LINKED / Path(batch_path).name


def effective_batch(batch_path: str | Path) -> dict[str, Any] | None:
    """The batch a job ran: the linked version of a second-wave batch when there is one."""
    linked = linked_path(batch_path)
    return read_optional(linked) if linked.exists() else read_optional(Path(batch_path))


def read_optional(path: Path) -> dict[str, Any] | None:
    """A JSON artifact, or ``None`` when it does not exist or cannot be parsed."""
    if not path.exists():
        return None
    try:
        return reporting.read_json(path)
    except (OSError, ValueError):
        return None
