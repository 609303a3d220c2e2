"""The audit trail: append-only, hash-chained JSON Lines (``$AUDIT_LOG_PATH``), or the same
lines in the state database's ``audit_trail`` table (``GENESYS_SYNC_AUDIT_STORE=database``, for
components on several hosts: see ``genesys_sync.audit_table``).

One line per run event (``GATE_PASSED``, ``PLANNED``, ``SYNC_SUCCESS``, ...) and, written by
the batch job while it runs, two per user operation: ``OPERATION_INTENT`` before the write is
sent (employee id, operation, attribute *names*, run, batch, attempt) and ``USER_OPERATION``
after it (outcome, target id, error name). An intent that never got its result (the job was
killed, the trail failed) is closed later by ``INTENT_CLOSED`` (see ``open_intents``), from
the results on disk or from what the target holds. No attribute values, emails, phone
numbers or secrets are ever written here.

Tamper evidence: every line carries ``seq`` (its number, from 1), ``prev`` (the SHA-256 hex of
the previous line's bytes; 64 zeros on the first) and ``hash`` (the SHA-256 of the line's own
canonical JSON without ``hash``). Appends hold an exclusive ``flock`` on the log while they read
its last line and write, so processes appending at once never fork the chain; each line is
one ``write()`` to a file opened in append mode, so a killed writer leaves no half line.

    python -m genesys_sync.audit verify [PATH]   # exit 0 intact, 1 naming the first bad line
    python -m genesys_sync.audit export [--out FILE]   # the trail as JSON Lines (either store)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import fcntl
import hashlib
import itertools
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genesys_sync import settings

GENESIS = "0" * 64
CHAIN_FIELDS = ("seq", "prev", "hash")

INTENT = "OPERATION_INTENT"
RESULT = "USER_OPERATION"
CLOSED = "INTENT_CLOSED"
BATCH_STARTED = "BATCH_STARTED"
BATCH_FINISHED = "BATCH_FINISHED"
BATCH_STOPPED = "BATCH_STOPPED"


class AuditUnavailable(RuntimeError):
    """The audit trail cannot be written: no write may be sent without its record."""


def utcnow_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _canonical(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _seal(record: Mapping[str, Any], seq: int, prev: str) -> bytes:
    """The chained line (without its newline) of ``record`` as line ``seq`` after ``prev``."""
    body = {k: v for k, v in record.items() if k not in CHAIN_FIELDS}
    body.update(seq=seq, prev=prev)
    body["hash"] = _sha(_canonical(body).encode())
    return _canonical(body).encode()


def _is_chained(record: Any) -> bool:
    return isinstance(record, dict) and all(k in record for k in CHAIN_FIELDS)


# --- appending ------------------------------------------------------------------------------


def _lines_backwards(fd: int, size: int, chunk: int = 8192) -> Iterator[bytes]:
    """The file's lines, last first (without their newlines)."""
    pos, tail = size, b""
    while pos > 0:
        start = max(0, pos - chunk)
        data = os.pread(fd, pos - start, start) + tail
        pos = start
        parts = data.split(b"\n")
        tail = parts.pop(0)
        yield from reversed(parts)
    if tail:
        yield tail


def _tail(fd: int, size: int) -> tuple[int, str, bool]:
    """(the next line's seq, its ``prev``, whether the file ends mid-line)."""
    if size == 0:
        return 1, GENESIS, False
    torn = os.pread(fd, 1, size - 1) != b"\n"
    end = size if torn else size - 1
    lines = _lines_backwards(fd, end)
    last = next(lines, b"")
    for after, line in enumerate(itertools.islice(itertools.chain([last], lines), 10_000)):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if _is_chained(record) and isinstance(record["seq"], int):
            return record["seq"] + after + 1, _sha(last), torn
        if record is not None and not _is_chained(record):  # lines from before the chain
            return 1, _sha(last), torn
    return 1, _sha(last), torn


def _write_all(fd: int, data: bytes, size: int) -> None:
    """One ``write()``; a short write is undone (no half line) and reported."""
    written = os.write(fd, data)
    if written != len(data):
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise OSError(errno.ENOSPC, "short write to the audit log")


def _describe(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def append(
    records: Sequence[Mapping[str, Any]], *, fsync: bool = False, path: Path | None = None
) -> list[int]:
    """Append ``records`` to the chain, one line each; return their sequence numbers.

    Raises ``AuditUnavailable`` when the trail cannot be written (nothing half-written stays).
    """
    if path is None and settings.audit_in_database():
        return _append_to_table(records)
    try:
        target = Path(path) if path else settings.audit_log_path()
    except OSError as exc:
        raise AuditUnavailable(f"the audit trail cannot be written: {_describe(exc)}") from exc
    try:
        fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:
        raise AuditUnavailable(
            f"the audit trail {target} cannot be written: {_describe(exc)}"
        ) from exc
    seqs: list[int] = []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        stat = os.fstat(fd)
        if stat.st_mode & 0o077:
            with contextlib.suppress(OSError):  # owner-only, whatever the umask
                os.fchmod(fd, 0o600)
        size = stat.st_size
        seq, prev, torn = _tail(fd, size)
        if torn:  # a line cut by a crash of the machine: keep it (verify names it), end it
            _write_all(fd, b"\n", size)
            size += 1
        for record in records:
            line = _seal(record, seq, prev)
            _write_all(fd, line + b"\n", size)
            size += len(line) + 1
            seqs.append(seq)
            seq, prev = seq + 1, _sha(line)
        if fsync:
            os.fsync(fd)
    except OSError as exc:
        raise AuditUnavailable(
            f"the audit trail {target} cannot be written: {_describe(exc)}"
        ) from exc
    finally:
        os.close(fd)  # releases the lock
    return seqs


def _append_to_table(records: Sequence[Mapping[str, Any]]) -> list[int]:
    from genesys_sync import audit_table

    def seal(seq: int, last: bytes | None) -> list[bytes]:
        prev, lines = (GENESIS if last is None else _sha(last)), []
        for record in records:
            lines.append(_seal(record, seq, prev))
            seq, prev = seq + 1, _sha(lines[-1])
        return lines

    try:
        return audit_table.append(settings.state_url(), seal)
    except Exception as exc:  # the database's own errors: never the URL (it may hold a password)
        raise AuditUnavailable(
            "the audit trail (table audit_trail of the state database) cannot be written: "
            f"{type(exc).__name__}"
        ) from exc


def audit(event: str, run_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """Append one run event to the audit trail (synced to disk) and return it."""
    record = {"timestamp": utcnow_iso(), "event": event, "run_id": run_id, **fields}
    append([record], fsync=True)
    return record


def result_record(
    run_id: str,
    result: Mapping[str, Any],
    batch_id: str | None = None,
    attempt: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``USER_OPERATION`` record of one operation's result (no values)."""
    record = {
        "timestamp": utcnow_iso(),
        "event": RESULT,
        "run_id": run_id,
        "batch_id": batch_id,
        "attempt": attempt,
        "employee_id": result.get("employee_id"),
        "operation": result.get("kind"),
        "outcome": result.get("outcome"),
        "target_id": result.get("target_id"),
        "changed_attributes": result.get("changed") or [],
        "error": result.get("error"),
        "note": result.get("note"),
    }
    return {**record, **extra}


def audit_operations(run_id: str, results: Iterable[Mapping[str, Any]], **extra: Any) -> int:
    """One ``USER_OPERATION`` event per result (outcome, kind, changed attribute names)."""
    records = [result_record(run_id, r, **extra) for r in results]
    if records:
        append(records, fsync=True)
    return len(records)


# --- the batch job's recorder ----------------------------------------------------------------


def intent_record(
    run_id: str, batch_id: str, attempt: int, change: Any, **extra: Any
) -> dict[str, Any]:
    """The ``OPERATION_INTENT`` record of a planned change (a ``plan.Change``): no values."""
    return {
        "timestamp": utcnow_iso(),
        "event": INTENT,
        "run_id": run_id,
        "batch_id": batch_id,
        "attempt": attempt,
        "employee_id": change.employee_id,
        "operation": str(change.kind),
        "attributes": list(change.changed or []),
        "target_id": change.target_id,
        **extra,
    }


class BatchRecorder:
    """Writes a batch job's audit records as it goes (the appliers' ``on_event`` callback).

    ``start`` and ``finish`` mark the batch and sync the trail to disk (the batch boundaries);
    each operation gets its intent before its write and its result after. Once the trail has
    failed, every later call raises ``AuditUnavailable`` again: the job sends nothing more.
    """

    def __init__(self, run_id: str, batch_id: str, attempt: int, path: Path | None = None):
        self.run_id = run_id
        self.batch_id = batch_id
        self.attempt = attempt
        self.path = path
        self.failure: AuditUnavailable | None = None
        self.intents = 0
        self.results = 0

    async def _append(self, records: list[dict[str, Any]], fsync: bool = False) -> None:
        if self.failure is not None:
            raise self.failure
        try:
            await asyncio.to_thread(append, records, fsync=fsync, path=self.path)
        except AuditUnavailable as exc:
            self.failure = exc
            raise

    def _event(self, event: str, **fields: Any) -> dict[str, Any]:
        return {
            "timestamp": utcnow_iso(),
            "event": event,
            "run_id": self.run_id,
            "batch_id": self.batch_id,
            "attempt": self.attempt,
            **fields,
        }

    async def start(self, operations: int) -> None:
        await self._append([self._event(BATCH_STARTED, operations=operations)], fsync=True)

    async def finish(self, outcomes: Mapping[str, int]) -> None:
        await self._append([self._event(BATCH_FINISHED, outcomes=dict(outcomes))], fsync=True)

    async def __call__(self, kind: str, change: Any, result: Any = None) -> None:
        if kind == "intent":
            record = intent_record(self.run_id, self.batch_id, self.attempt, change)
        else:
            data = result.to_dict() if hasattr(result, "to_dict") else dict(result or {})
            record = result_record(self.run_id, data, self.batch_id, self.attempt)
        await self._append([record])
        if kind == "intent":
            self.intents += 1
        else:
            self.results += 1


# --- reading: open intents, verification -----------------------------------------------------


def _key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        record.get("run_id"),
        record.get("batch_id"),
        record.get("attempt"),
        record.get("employee_id"),
        record.get("operation"),
    )


def _in_table(path: Path | None) -> bool:
    return path is None and settings.audit_in_database()


def read_records(path: Path | None = None, offset: int = 0) -> Iterator[tuple[int, dict]]:
    """(position, record) of every parseable line from ``offset`` on: a byte offset (a line
    start) in the file, a ``seq`` (the last one already read) in the table."""
    if _in_table(path):
        from genesys_sync import audit_table

        for seq, line in audit_table.lines(settings.state_url(), after=offset):
            record = json.loads(line)
            if isinstance(record, dict):
                yield seq, record
        return
    target = Path(path) if path else settings.audit_log_path()
    if not target.exists():
        return
    with target.open("rb") as fh:
        fh.seek(offset)
        while line := fh.readline():
            start = fh.tell() - len(line)
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield start, record


@dataclass
class TrailScan:
    """What one pass over the trail found: the intents without a result or a closure (oldest
    first), and where the next scan may start once they are closed (``"inode:offset"``)."""

    open: list[dict[str, Any]]
    checkpoint: str | None


def scan(path: Path | None = None, checkpoint: str | None = None) -> TrailScan:
    """Scan the trail, from ``checkpoint`` (an earlier scan's) when it still fits the trail:
    ``"inode:offset"`` in a file, ``"table:seq"`` in the database."""
    intents: dict[tuple[Any, ...], dict[str, Any]] = {}
    if _in_table(path):
        kind, _, at = (checkpoint or "").partition(":")
        start = int(at) if kind == "table" and at.isdigit() else 0
        last = start
        try:
            for last, record in read_records(None, start):  # noqa: B007 (the last seq read)
                _track(intents, record)
        except Exception as exc:
            raise AuditUnavailable(
                f"the audit trail (table audit_trail) cannot be read: {type(exc).__name__}"
            ) from exc
        return TrailScan(_oldest_first(intents), f"table:{last}")
    target = Path(path) if path else settings.audit_log_path()
    try:
        stat = target.stat()
    except FileNotFoundError:
        return TrailScan([], None)
    offset = 0
    inode, _, at = (checkpoint or "").partition(":")
    if inode == str(stat.st_ino) and at.isdigit() and int(at) <= stat.st_size:
        offset = int(at)
    try:
        for _start, record in read_records(target, offset):
            _track(intents, record)
    except OSError as exc:
        raise AuditUnavailable(
            f"the audit trail {target} cannot be read: {_describe(exc)}"
        ) from exc
    # Once the open intents are closed, every intent before this size has its record.
    return TrailScan(_oldest_first(intents), f"{stat.st_ino}:{stat.st_size}")


def _track(intents: dict[tuple[Any, ...], dict[str, Any]], record: Mapping[str, Any]) -> None:
    event = record.get("event")
    if event == INTENT:
        intents[_key(record)] = dict(record)
    elif event in (RESULT, CLOSED):
        intents.pop(_key(record), None)


def _oldest_first(intents: Mapping[tuple[Any, ...], dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(intents.values(), key=lambda r: r.get("seq") or 0)


def closure_record(
    intent: Mapping[str, Any], outcome: str, basis: str, closed_by: str | None, **extra: Any
) -> dict[str, Any]:
    """The ``INTENT_CLOSED`` record of an intent that has no result line.

    ``outcome``: the result's outcome when ``basis`` is ``results``; ``applied`` or
    ``not_applied`` when ``basis`` is ``target`` (what the target holds now); ``unknown``
    when nothing tells (``basis`` ``none``)."""
    return {
        "timestamp": utcnow_iso(),
        "event": CLOSED,
        "run_id": intent.get("run_id"),
        "batch_id": intent.get("batch_id"),
        "attempt": intent.get("attempt"),
        "employee_id": intent.get("employee_id"),
        "operation": intent.get("operation"),
        "intent_seq": intent.get("seq"),
        "outcome": outcome,
        "basis": basis,
        "closed_by": closed_by,
        **{k: v for k, v in extra.items() if v is not None},
    }


@dataclass
class Verification:
    ok: bool
    lines: int
    message: str
    bad_line: int | None = None
    legacy_lines: int = 0


def verify(path: Path | None = None, allow_legacy: bool = False) -> Verification:
    """Check the chain line by line; name the first line that was edited, removed or moved.

    Lines before the first chained line (written by versions without the chain) are refused
    unless ``allow_legacy``; the chain's first line must then follow the last of them."""
    if _in_table(path):
        from genesys_sync import audit_table

        rows = (line + b"\n" for _seq, line in audit_table.lines(settings.state_url()))
        return _verify_lines(rows, "table audit_trail", allow_legacy)
    target = Path(path) if path else settings.audit_log_path()
    if not target.exists():
        return Verification(False, 0, f"no audit log at {target}")
    with target.open("rb") as fh:
        return _verify_lines(fh, str(target), allow_legacy)


def _verify_lines(raws: Iterable[bytes], name: str, allow_legacy: bool) -> Verification:
    prev_raw: bytes | None = None
    expected: int | None = None
    legacy = 0
    number = 0
    for number, raw in enumerate(raws, start=1):  # noqa: B007 (used after the loop)
        if not raw.endswith(b"\n"):
            return _bad(number, "is incomplete (no newline): a torn write or a cut file")
        line = raw[:-1]
        try:
            record = json.loads(line)
        except ValueError:
            return _bad(number, "is not valid JSON: edited or damaged")
        if not _is_chained(record):
            if expected is None:
                legacy += 1
                prev_raw = line
                continue
            return _bad(number, "has no chain fields (seq, prev, hash): edited or inserted")
        body = {k: v for k, v in record.items() if k != "hash"}
        if record["hash"] != _sha(_canonical(body).encode()):
            return _bad(number, "was edited: its content does not match its hash")
        want = 1 if expected is None else expected
        if record["seq"] != want:
            return _bad(
                number,
                f"has seq {record['seq']}, expected {want}: a line was removed here or "
                "the lines were reordered",
            )
        want_prev = GENESIS if prev_raw is None else _sha(prev_raw)
        if record["prev"] != want_prev:
            return _bad(
                number,
                f"does not follow line {number - 1}: that line was edited, removed or reordered"
                if number > 1
                else "does not start the chain (prev is not the genesis hash)",
            )
        expected = want + 1
        prev_raw = line
    if legacy and not allow_legacy:
        return Verification(
            False,
            number,
            f"lines 1-{legacy} have no hash chain (written before it, or stripped of it): "
            "they cannot be verified; pass --allow-legacy to verify the lines after them",
            bad_line=1,
            legacy_lines=legacy,
        )
    chained = number - legacy
    note = f" ({legacy} earlier line(s) predate the chain)" if legacy else ""
    return Verification(
        True, number, f"{name}: {chained} line(s), chain intact{note}", None, legacy
    )


def _bad(number: int, what: str) -> Verification:
    return Verification(False, number, f"line {number} {what}", bad_line=number)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m genesys_sync.audit", description="The sync's audit trail."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("verify", help="check the hash chain of the audit log")
    check.add_argument(
        "path",
        nargs="?",
        help="the log (default: $AUDIT_LOG_PATH or $GENESYS_SYNC_HOME/audit/audit.jsonl)",
    )
    check.add_argument(
        "--allow-legacy",
        action="store_true",
        help="accept lines written before the chain existed at the start of the log",
    )
    export = sub.add_parser(
        "export", help="write the trail as JSON Lines (from the database table or the file)"
    )
    export.add_argument("--out", help="the file to write (default: standard output)")
    args = parser.parse_args(argv)
    if args.command == "export":
        return _export(Path(args.out) if args.out else None)
    # No path: the configured trail (the database table with GENESYS_SYNC_AUDIT_STORE=database).
    path = Path(args.path) if args.path else None
    if path is None and not settings.audit_in_database():
        path = _default_path()
    result = verify(path, allow_legacy=args.allow_legacy)
    where = path or "table audit_trail"
    if result.ok:
        print(f"OK: {result.message}")
        return 0
    print(f"FAILED: {where}: {result.message}", file=sys.stderr)
    return 1


def _export(out: Path | None) -> int:
    """Every line of the configured trail, byte for byte, each ending in a newline."""
    if settings.audit_in_database():
        from genesys_sync import audit_table

        lines: Iterable[bytes] = (line for _, line in audit_table.lines(settings.state_url()))
    else:
        path = _default_path()
        lines = path.read_bytes().splitlines() if path.exists() else []
    if out is None:
        for line in lines:
            sys.stdout.buffer.write(line + b"\n")
        sys.stdout.flush()
        return 0
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner-only
    with os.fdopen(fd, "wb") as fh:
        for line in lines:
            fh.write(line + b"\n")
    return 0


def _default_path() -> Path:
    """The default log, without creating anything (verification only reads)."""
    env = os.environ.get("AUDIT_LOG_PATH")
    if env:
        return Path(env)
    home = os.environ.get("GENESYS_SYNC_HOME") or settings.PROJECT_ROOT / ".sync-home"
    return Path(home) / "audit" / "audit.jsonl"


if __name__ == "__main__":
    sys.exit(main())
