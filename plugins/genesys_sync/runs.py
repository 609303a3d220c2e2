"""The run store: where one run's artifacts live, and the only code that knows their paths.

A run's directory, ``$GENESYS_SYNC_HOME/runs/<run id>/`` (the run id made safe for a file
name), owner-only because batches and accepted rows hold personal data::

    gate.json             the gate's summary (validate)          -> GateSummary
    accepted.parquet      the rows that passed (validate)        rejects.csv, quarantined.json
    plan.json, plan.md    the plan, for machines and for people (plan)   -> PlanDocument
    batches/index.json    the batch files of each phase (plan)   -> BatchIndex
    batches/<id>.json     one batch job's changes (plan): never rewritten once written -> Batch
    batches/linked/<id>.json   a second-wave batch with the first wave's target ids filled in
                          (manager_links), so the planned file stays as planned
    results/<id>.json     one batch job's per-operation results (the batch job) -> BatchResults
    attempts/<id>         one byte per attempt at a batch job
    report.json, refused.md    the run report (report)       -> Report
    verdict.json          a failed run's earliest failed stage and reason (outcome)
    data_docs/            on an object store: the gate's Data Docs pages of this run (validate)
    failures/<task>[.<map index>].json   why a task failed, scrubbed (its failure callback)

The artifacts stages hand each other are typed (``GateSummary``, ``PlanDocument``,
``BatchIndex``, ``Batch``, ``BatchResults``, ``Report``: ``Run.load`` and ``Run.save`` for the
named ones) and every JSON artifact carries a format ``version`` (the verdict and the task
failures too, small documents read by key): an artifact newer than this release reads is
refused (``ArtifactVersionError``), not misread, while workers run different releases.

Where: ``$GENESYS_SYNC_RUNS_URL`` (default ``$GENESYS_SYNC_HOME/runs`` on the local disk; for
a deployment whose workers and triggerers share no disk, an object store such as
``s3://bucket/prefix``, reached through Airflow's ``ObjectStoragePath`` with the connection
``$GENESYS_SYNC_RUNS_CONN_ID``, default ``aws_default``). Paths handed between tasks (XCom,
trigger events) are strings this module turns back into paths (``store_path``).

Readers never create anything (a look at a run that does not exist leaves no directory).
Writers write atomically: on a local disk a temporary file renamed into place, owner-only; on an
object store one PUT per artifact (an object is never seen half-written; the bucket's default
encryption applies, SSE-S3 on every new S3 object).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar, Union
from urllib.parse import unquote, urlparse

from genesys_sync import report as reporting
from genesys_sync import settings

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

RUNS_URL_ENV = "GENESYS_SYNC_RUNS_URL"
RUNS_CONN_ENV = "GENESYS_SYNC_RUNS_CONN_ID"
DEFAULT_RUNS_CONN_ID = "aws_default"
StorePath = Union[Path, "ObjectStoragePath"]
#: The format version of the typed artifacts this release writes, and the newest it reads.
ARTIFACT_VERSION = 1

GATE = "gate.json"
PLAN = "plan.json"
PLAN_MARKDOWN = "plan.md"
INDEX = "batches/index.json"
REPORT = "report.json"
REFUSED = "refused.md"
VERDICT = "verdict.json"
DATA_DOCS = "data_docs"
_LINKED = "linked"
A = TypeVar("A", bound="Artifact")


class Artifact:
    """A typed run artifact: a dataclass with a format ``version``. ``NAME``, where the run
    keeps it when a run has one of it (``Run.load``, ``Run.save``)."""

    NAME: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: object = "") -> Self:
        """The artifact ``data`` holds (keys this release does not know are ignored).

        :raises ArtifactVersionError: ``data`` is in a newer format than this release reads.
        """
        check_version(data, cls.__name__, where)
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class GateSummary(Artifact):
    """What the gate found (``gate.json``, written by validate): its counts, the rules that
    failed, where the accepted rows, the rejects and the Data Docs page are, and the requests
    it sent (the target's role and group catalogue). Counts and employee-id examples only."""

    NAME: ClassVar[str] = GATE

    passed: bool = False
    row_count: int = 0
    accepted_count: int = 0
    rejected_count: int = 0
    dataset_failures: list[dict[str, Any]] = field(default_factory=list)
    row_failures_by_rule: dict[str, int] = field(default_factory=dict)
    rows_with_rejected_manager: int = 0
    accepted_path: str | None = None
    rejects_path: str | None = None
    data_docs_path: str | None = None
    source: str | None = None
    quarantined_path: str | None = None
    export_location: str | None = None
    api_calls: int = 0
    api_stats: dict[str, Any] | None = None
    version: int = ARTIFACT_VERSION


@dataclass(frozen=True)
class PlanDocument(Artifact):
    """The plan (``plan.json``, written by the plan stage; ``plan.md`` says the same for
    people): its counts, every change but the unchanged (employee ids and attribute names),
    the removal threshold and how the target was read. A plan that could not be made says why
    (``error``, and the pre-flight ``check`` that refused)."""

    NAME: ClassVar[str] = PLAN

    run_id: str = ""
    dry_run: bool = False
    dry_run_reason: str | None = None
    employee_ids: list[str] = field(default_factory=list)
    unknown_employee_ids: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    managed_users: int = 0
    removal_threshold: int = 0
    active_after: int = 0
    bulk: dict[str, Any] = field(default_factory=dict)
    api_calls: int = 0
    api_stats: dict[str, Any] | None = None
    target_read: str = ""
    not_synced_attributes: list[str] = field(default_factory=list)
    quarantined_employee_ids: list[str] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    check: str | None = None
    version: int = ARTIFACT_VERSION


@dataclass(frozen=True)
class BatchIndex(Artifact):
    """What the plan stage hands the batch jobs: the batch files of each phase (``phase1``,
    the first wave; ``phase2``, the manager wave; ``held_batches``, removals waiting for a
    human). The ``plan`` task returns it (XCom), and it is kept as ``batches/index.json``."""

    NAME: ClassVar[str] = INDEX

    dry_run: bool = False
    planned: dict[str, int] = field(default_factory=dict)
    held: int = 0
    phase1: list[str] = field(default_factory=list)
    phase2: list[str] = field(default_factory=list)
    held_batches: list[str] = field(default_factory=list)
    plan_path: str | None = None
    version: int = ARTIFACT_VERSION


@dataclass
class Batch(Artifact):
    """One batch job's changes (``batches/<id>.json``, written by the plan; the manager wave
    writes its filled-in copy to ``batches/linked/``). ``changes`` are ``plan.Change`` dicts;
    ``bulk``, the target's RFC 7644 Bulk limits when the plan found it advertising Bulk."""

    batch_id: str
    run_id: str = ""  # older batch files name no run: Run.of_batch finds it from the path
    changes: list[dict[str, Any]] = field(default_factory=list)
    bulk: dict[str, Any] = field(default_factory=dict)
    version: int = ARTIFACT_VERSION


@dataclass(frozen=True)
class BatchResults(Artifact):
    """What a batch job did (``results/<id>.json``): one result per operation (``results``),
    their counts (``summary``), this attempt's requests (``api_calls``), every attempt's
    client figures (``api_stats``) and how the target could not be reached, if it could not."""

    batch_id: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    api_calls: int = 0
    api_stats: dict[str, Any] | None = None
    unreachable_target: dict[str, Any] | None = None
    version: int = ARTIFACT_VERSION


@dataclass
class Report(Artifact):
    """The run report (``report.json``, written by the report task whatever happened
    upstream): what was planned, applied and refused, the requests every stage sent
    (``reporting.api_figures``), where the run's other artifacts are, and, for a run that did
    not succeed, why (``failure_reason``). Read by the webhook, the alerts, the UI and
    ``make sync``; counts and employee ids only (``refused`` names the server's reasons)."""

    NAME: ClassVar[str] = REPORT

    run_id: str = ""
    status: str = "failed"
    dry_run: bool = False
    dry_run_reason: str | None = None
    logical_date: str | None = None
    export_location: str | None = None
    rows: int = 0
    rejected: int = 0
    planned: dict[str, int] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)
    operations: dict[str, Any] = field(default_factory=dict)  # per change type and outcome
    unchanged: int = 0
    conflict: int = 0
    failed: int = 0
    held: int = 0
    # Present in the export but quarantined by the gate: left exactly as they are.
    quarantined: int = 0
    quarantined_employee_ids: list[str] = field(default_factory=list)
    # Mapped attributes the target does not declare in its /Schemas: not synced there.
    not_synced_attributes: list[str] = field(default_factory=list)
    writes: int = 0
    missing_batches: list[str] = field(default_factory=list)
    failure_share: float = 0.0
    api_calls: int = 0  # every attempt of every stage's client, as the target counts them
    api_calls_by_method: dict[str, int] = field(default_factory=dict)
    api_calls_by_status: dict[str, int] = field(default_factory=dict)
    http_429: int = 0
    retries: int = 0
    token_requests: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)  # p50, p95, max
    duration_s: float = 0.0
    duration_seconds: float = 0.0  # the older name of duration_s
    report_path: str | None = None
    plan_path: str | None = None
    plan_summary_path: str | None = None
    rejects_path: str | None = None
    data_docs_path: str | None = None
    finished_at: str | None = None
    # Intents without a result line, closed now (by outcome): writes a killed job made.
    intents_closed: dict[str, int] = field(default_factory=dict)
    # The server's own explanation of each refused operation (also refused.md, escaped).
    refused: list[dict[str, Any]] = field(default_factory=list)
    refused_summary_path: str | None = None
    failure_reason: str | None = None
    version: int = ARTIFACT_VERSION


class ArtifactVersionError(ValueError):
    """An artifact written by a newer release than this one reads (a rolling upgrade with
    workers or triggerers on different releases)."""


def check_version(data: Mapping[str, Any], what: str, where: object) -> Mapping[str, Any]:
    """``data`` when this release reads its format ``version`` (absent: 1)."""
    version = int(data.get("version") or 1)
    if version > ARTIFACT_VERSION:
        raise ArtifactVersionError(
            f"{what} {where} has format version {version}; this genesys-scim-sync reads "
            f"up to {ARTIFACT_VERSION}: run the same release on every worker and triggerer"
        )
    return data


class Run:
    """One run's artifacts (see the module docstring for the layout)."""

    def __init__(self, run_id: str, root: StorePath | None = None) -> None:
        self.run_id = run_id
        self.root = root or runs_root() / settings.safe_run_id(run_id)

    @classmethod
    def of_batch(cls, batch_path: str | StorePath, batch: Batch) -> Run:
        """The run a batch file belongs to (what a batch job knows is the file's path)."""
        root = run_root_of(batch_path)
        run_id = batch.run_id or (read_optional(root / PLAN) or {}).get("run_id")
        return cls(str(run_id or root.name), root)

    def __repr__(self) -> str:
        return f"Run({self.run_id!r})"

    @property
    def remote(self) -> bool:
        """Whether the run lives in an object store (not on this machine's disk)."""
        return is_remote(self.root)

    def exists(self) -> bool:
        """Whether the run left anything (on a local disk: its directory)."""
        return _exists(self.root) and (self.remote or self.root.is_dir())

    def path(self, name: str) -> StorePath:
        """Where artifact ``name`` is (or would be); creates nothing."""
        return self.root / name

    def prepare(self) -> StorePath:
        """The run's directory, created owner-only (the writers' side; an object store has no
        directories to create)."""
        if self.remote:
            return self.root
        settings.sync_home()  # a new home is owner-only too
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.root.stat().st_mode & 0o077:
            self.root.chmod(0o700)
        return self.root

    def read(self, name: str) -> dict[str, Any] | None:
        """A JSON artifact, or ``None`` when it was never written (or is unreadable).

        :raises ArtifactVersionError: It was written in a newer format than this release reads.
        """
        path = self.path(name)
        data = read_optional(path)
        if isinstance(data, dict):
            check_version(data, name, path)
        return data

    def load(self, kind: type[A]) -> A | None:
        """The run's artifact of type ``kind`` (``GateSummary``, ``PlanDocument``,
        ``BatchIndex``, ``Report``), or ``None`` when it was never written.

        :raises ArtifactVersionError: It was written in a newer format than this release reads.
        """
        data = read_optional(self.path(kind.NAME))
        return kind.from_dict(data, self.path(kind.NAME)) if isinstance(data, dict) else None

    def save(self, artifact: Artifact) -> StorePath:
        """Write one of the run's typed artifacts where its type says (``NAME``)."""
        return self.write_json(artifact.NAME, artifact.to_dict())

    def write_json(self, name: str, data: Any) -> StorePath:
        """Write a JSON artifact; a document (the gate summary, the plan, the report, the
        verdict) carries the format ``version`` its readers check."""
        if isinstance(data, Mapping):
            data = {"version": ARTIFACT_VERSION, **data}
        return self.write_text(name, _json_text(data))

    def write_text(self, name: str, text: str) -> StorePath:
        self.prepare()
        return _put_text(self.path(name), text)

    @contextlib.contextmanager
    def workspace(self) -> Iterator[Path]:
        """A local directory for a stage whose tools write files (the gate: pandas, Great
        Expectations): the run's own directory on a local store; on an object store a
        temporary directory whose files are then put in the run, and removed."""
        if not self.remote:
            yield self.prepare()
            return
        with tempfile.TemporaryDirectory(prefix="genesys-sync-run-") as tmp:
            try:
                yield Path(tmp)
            finally:  # a blocked gate's rejects are kept too
                for file in sorted(Path(tmp).rglob("*")):
                    if file.is_file():
                        name = file.relative_to(tmp).as_posix()
                        (self.root / name).write_bytes(file.read_bytes())

    def kept(self, result: Any, workspace: Path) -> Any:
        """A dataclass result (the gate's) whose paths into ``workspace`` now name where the
        workspace's files are kept in the run."""
        if not self.remote:
            return result
        moved = {}
        for name, value in vars(result).items():
            if isinstance(value, Path) and value.is_relative_to(workspace):
                moved[name] = self.root / value.relative_to(workspace).as_posix()
        return dataclasses.replace(result, **moved)

    def restrict(self) -> None:
        """Every artifact of the run owner-only, whatever the umask (a local disk)."""
        if not self.remote:
            settings.restrict_tree(self.root)

    # -- task failures (what the run's failure alert names) ---------------------------------

    def write_failure(self, task_id: str, map_index: Any, data: Mapping[str, Any]) -> Path:
        index = f".{map_index}" if isinstance(map_index, int) and map_index >= 0 else ""
        return self.write_json(f"failures/{settings.safe_run_id(task_id)}{index}.json", data)

    def failure(self, task_id: str) -> dict[str, Any] | None:
        """What ``write_failure`` kept for ``task_id`` (its first mapped instance if mapped)."""
        folder = self.root / "failures"
        found = sorted(_glob(folder, f"{task_id}.json")) + sorted(
            _glob(folder, f"{task_id}.*.json")
        )
        return read_optional(found[0]) if found else None

    # -- batches ---------------------------------------------------------------------------

    def batch_path(self, batch_id: str) -> Path:
        return self.root / "batches" / f"{batch_id}.json"

    def clear_batches(self) -> None:
        """Forget the batches and results of an earlier attempt at planning (a retried plan
        starts from a clean slate)."""
        for stale in ("batches", "results"):
            if not self.remote:
                shutil.rmtree(self.root / stale, ignore_errors=True)
            elif _exists(self.root / stale):
                (self.root / stale).rmdir(recursive=True)

    def write_batch(self, batch: Batch) -> StorePath:
        """A planned batch (never rewritten: the manager wave writes ``linked_path``)."""
        return self.write_json(f"batches/{batch.batch_id}.json", batch.to_dict())

    def results(self, phase: str) -> Iterator[BatchResults]:
        """The results of the batch jobs of one phase that have finished."""
        for path in sorted(_glob(self.root / "results", f"{phase}-*.json")):
            found = read_results(path)
            if found is not None:
                yield found

    def attempt(self, batch_id: str) -> int:
        """Count one more attempt at a batch job and return its number (1, 2, ...)."""
        if self.remote:  # one job per batch at a time: read, count, write back
            counter = self.root / "attempts" / batch_id
            number = (len(counter.read_bytes()) if _exists(counter) else 0) + 1
            counter.write_bytes(b"." * number)
            return number
        attempts = self.prepare() / "attempts"
        attempts.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(attempts / batch_id, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, b".")
            return os.fstat(fd).st_size
        finally:
            os.close(fd)


def runs_root() -> StorePath:
    """Where every run's directory is (``$GENESYS_SYNC_RUNS_URL``, default
    ``$GENESYS_SYNC_HOME/runs``); creates nothing, not even the home (``settings.sync_home``
    would)."""
    url = os.environ.get(RUNS_URL_ENV, "").strip()
    if url:
        return store_path(url.rstrip("/"))
    home = os.environ.get("GENESYS_SYNC_HOME") or settings.PROJECT_ROOT / ".sync-home"
    return Path(home).resolve() / "runs"


def store_path(location: str | StorePath) -> StorePath:
    """A path of the run store from its string form (what XCom and trigger events carry): a
    local path (or ``file://`` URL) as a ``Path``, anything else (``s3://...``) as Airflow's
    ``ObjectStoragePath`` on ``$GENESYS_SYNC_RUNS_CONN_ID`` unless the URL names a connection."""
    if not isinstance(location, str):
        return location
    if location.startswith("file://"):
        return Path(unquote(urlparse(location).path))
    if "://" not in location:
        return Path(location)
    from airflow.sdk import ObjectStoragePath

    if "@" in location.split("://", 1)[1].split("/", 1)[0]:
        return ObjectStoragePath(location)  # the connection is in the URL (s3://conn@bucket/)
    conn_id = os.environ.get(RUNS_CONN_ENV) or DEFAULT_RUNS_CONN_ID
    return ObjectStoragePath(location, conn_id=conn_id)


def is_remote(path: StorePath) -> bool:
    return not isinstance(path, Path)


def _fresh(path: StorePath) -> StorePath:
    """``path`` with its file system's listings cache dropped: fsspec keeps what it listed, and
    another process (a task, a trigger) may have written an artifact since."""
    if is_remote(path):
        path.fs.invalidate_cache()
    return path


def _exists(path: StorePath) -> bool:
    return _fresh(path).exists()


def _glob(folder: StorePath, pattern: str) -> Iterator[StorePath]:
    return _fresh(folder).glob(pattern)


def reports(since: float = 0.0, root: StorePath | None = None) -> list[StorePath]:
    """The report files written at or after ``since`` (a ``time.time()``), oldest first (of
    the run store, or of the one at ``root``)."""
    found = [(p, p.stat().st_mtime) for p in _glob(root or runs_root(), f"*/{REPORT}")]
    return [p for p, mtime in sorted(found, key=lambda f: f[1]) if mtime >= since]


def batch_id_of(batch_path: str | StorePath) -> str:
    return store_path(batch_path).stem


def run_root_of(batch_path: str | StorePath) -> StorePath:
    """The run directory a batch file (planned or linked) belongs to."""
    path = store_path(batch_path)
    batches = path.parent.parent if path.parent.name == _LINKED else path.parent
    return batches.parent


def results_path(batch_path: str | StorePath) -> StorePath:
    """Where a batch job writes its results: ``results/<batch id>.json`` of its run, the same
    for a planned batch and its linked version."""
    return run_root_of(batch_path) / "results" / f"{batch_id_of(batch_path)}.json"


def linked_path(batch_path: str | StorePath) -> StorePath:
    """Where the manager wave's version of a planned second-wave batch goes."""
    return run_root_of(batch_path) / "batches" / _LINKED / store_path(batch_path).name


def effective_batch(batch_path: str | StorePath) -> Batch | None:
    """The batch a job ran: the linked version of a second-wave batch when there is one."""
    linked = linked_path(batch_path)
    data = read_optional(linked) if _exists(linked) else read_optional(store_path(batch_path))
    return Batch.from_dict(data, batch_path) if data is not None else None


def read_optional(path: str | StorePath) -> dict[str, Any] | None:
    """A JSON artifact, or ``None`` when it does not exist or cannot be parsed."""
    try:  # a missing artifact is FileNotFoundError: one request, not a look-up and a read
        return json.loads(_fresh(store_path(path)).read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return None


def read_batch(batch_path: str | StorePath) -> Batch:
    """A planned (or linked) batch; a missing or unreadable one is an error that names it."""
    data = read_optional(batch_path)
    if data is None:
        raise FileNotFoundError(f"No readable batch file at {batch_path} in the run store")
    return Batch.from_dict(data, batch_path)


def write_linked(batch_path: str | StorePath, batch: Batch) -> StorePath:
    """The manager wave's filled-in copy of the planned batch at ``batch_path``."""
    return _write_json(linked_path(batch_path), batch.to_dict())


def read_results(path: str | StorePath) -> BatchResults | None:
    """A batch job's results (``results_path``), or ``None`` when it wrote none."""
    data = read_optional(path)
    return BatchResults.from_dict(data, path) if data is not None else None


def write_results(path: str | StorePath, results: BatchResults) -> StorePath:
    return _write_json(path, results.to_dict())


def _write_json(path: str | StorePath, data: Any) -> StorePath:
    return _put_text(store_path(path), _json_text(data))


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str)


def _put_text(path: StorePath, text: str) -> StorePath:
    """Write an artifact whole: one PUT on an object store (never seen half-written), else a
    temporary file renamed into place, owner-only (``report.write_text``)."""
    if is_remote(path):
        path.write_bytes(text.encode("utf-8"))
    else:
        reporting.write_text(path, text)
    return path
