"""The audit trail: a hash chain that names the first line edited, removed or reordered, one
chain however many processes append at once, owner-only files, and the appliers' write-ahead
hook (an intent before every write, nothing sent once the trail fails)."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genesys_sync import audit
from genesys_sync.apply import BatchApplier, BulkBatchApplier, Outcome
from genesys_sync.mapping import supported_paths
from genesys_sync.plan import Change, Kind
from genesys_sync.scim.client import AsyncScimClient
from tests.test_apply import _config, _plan
from tests.test_plan import row

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def _write(path: Path, count: int = 6) -> None:
    audit.append([{"event": "E", "n": n, "run_id": "r"} for n in range(1, count + 1)], path=path)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "genesys_sync.audit", "verify", *args],
        env={**os.environ, "PYTHONPATH": str(PLUGINS), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_intact_log_verifies(tmp_path):
    log = tmp_path / "audit.jsonl"
    _write(log)
    result = audit.verify(log)
    assert result.ok and result.lines == 6, result.message
    records = [json.loads(line) for line in _lines(log)]
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[0]["prev"] == "0" * 64
    done = _cli(env={"AUDIT_LOG_PATH": str(log)})  # the default path: $AUDIT_LOG_PATH
    assert done.returncode == 0, done.stderr
    assert "6 line(s), chain intact" in done.stdout


def test_an_edited_line_is_named(tmp_path):
    log = tmp_path / "audit.jsonl"
    _write(log)
    lines = _lines(log)
    lines[2] = lines[2].replace(b'"n":3', b'"n":30')
    log.write_bytes(b"".join(lines))
    result = audit.verify(log)
    assert not result.ok and result.bad_line == 3, result.message
    done = _cli(str(log))
    assert done.returncode == 1 and "line 3 was edited" in done.stderr


def test_an_edit_that_recomputes_its_own_hash_is_named_by_the_next_line(tmp_path):
    log = tmp_path / "audit.jsonl"
    _write(log)
    lines = _lines(log)
    record = json.loads(lines[2])
    forged = audit._seal({**record, "n": 30}, record["seq"], record["prev"])
    lines[2] = forged + b"\n"
    log.write_bytes(b"".join(lines))
    result = audit.verify(log)
    assert not result.ok and result.bad_line == 4
    assert "does not follow line 3" in result.message


def test_an_edited_last_line_is_named(tmp_path):
    log = tmp_path / "audit.jsonl"
    _write(log)
    lines = _lines(log)
    lines[-1] = lines[-1].replace(b'"n":6', b'"n":7')
    log.write_bytes(b"".join(lines))
    assert audit.verify(log).bad_line == 6


def test_a_removed_line_is_named(tmp_path):
    log = tmp_path / "audit.jsonl"
    _write(log)
    lines = _lines(log)
    del lines[3]
    log.write_bytes(b"".join(lines))
    result = audit.verify(log)
    assert not result.ok and result.bad_line == 4, result.message
    done = _cli(str(log))
    assert done.returncode == 1 and "line 4 " in done.stderr and "removed" in done.stderr


def test_reordered_lines_are_named(tmp_path):
    log = tmp_path / "audit.jsonl"
    _write(log)
    lines = _lines(log)
    lines[1], lines[2] = lines[2], lines[1]
    log.write_bytes(b"".join(lines))
    result = audit.verify(log)
    assert not result.ok and result.bad_line == 2, result.message
    assert "reordered" in result.message


def test_a_torn_last_line_is_named_and_appends_stay_whole(tmp_path):
    log = tmp_path / "audit.jsonl"
    _write(log, 3)
    with log.open("ab") as fh:
        fh.write(b'{"event":"half')  # what a crash of the machine mid-write could leave
    assert audit.verify(log).bad_line == 4
    _write(log, 2)
    lines = _lines(log)
    assert all(line.endswith(b"\n") for line in lines) and len(lines) == 6
    assert [json.loads(line)["seq"] for line in lines[4:]] == [5, 6]
    assert audit.verify(log).bad_line == 4  # the damage stays visible


def test_lines_from_before_the_chain_are_refused_unless_allowed(tmp_path):
    log = tmp_path / "audit.jsonl"
    log.write_text('{"event": "OLD", "run_id": "r0"}\n{"event": "OLD", "run_id": "r1"}\n')
    _write(log, 2)
    strict = audit.verify(log)
    assert not strict.ok and "lines 1-2 have no hash chain" in strict.message
    assert audit.verify(log, allow_legacy=True).ok
    assert _cli(str(log)).returncode == 1
    assert _cli(str(log), "--allow-legacy").returncode == 0


def test_a_missing_log_fails(tmp_path):
    done = _cli(str(tmp_path / "nothing.jsonl"))
    assert done.returncode == 1 and "no audit log" in done.stderr


def _appender(path: str, worker: int, count: int, barrier) -> None:
    barrier.wait(timeout=60)  # all start at once
    for n in range(count):
        audit.append([{"event": "E", "worker": worker, "n": n}], path=Path(path))
        time.sleep(0.002)  # yield the core: the workers' appends interleave even on a busy box


def test_concurrent_appends_from_several_processes_keep_one_chain(tmp_path):
    log = tmp_path / "audit.jsonl"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    workers = [
        context.Process(target=_appender, args=(str(log), w, 150, barrier)) for w in range(4)
    ]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
        assert p.exitcode == 0
    result = audit.verify(log)
    assert result.ok and result.lines == 600, result.message
    records = [json.loads(line) for line in _lines(log)]
    assert len({(r["worker"], r["n"]) for r in records}) == 600
    switches = sum(a["worker"] != b["worker"] for a, b in itertools.pairwise(records))
    assert switches > 3, "the workers never ran at once: nothing was tested"


def test_the_log_and_its_folder_are_owner_only_under_umask_022(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIT_LOG_PATH", str(tmp_path / "trail" / "audit.jsonl"))
    old = os.umask(0o022)
    try:
        audit.audit("E", "r")
    finally:
        os.umask(old)
    log = tmp_path / "trail" / "audit.jsonl"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    log.chmod(0o644)  # a log made readable by hand is made owner-only again
    audit.audit("E", "r")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_an_unwritable_trail_raises_audit_unavailable(tmp_path):
    folder = tmp_path / "a-directory"
    folder.mkdir()
    with pytest.raises(audit.AuditUnavailable, match="cannot be written"):
        audit.append([{"event": "E"}], path=folder)


def test_a_short_write_leaves_no_half_line(tmp_path, monkeypatch):
    log = tmp_path / "audit.jsonl"
    _write(log, 2)
    real = os.write
    monkeypatch.setattr(audit.os, "write", lambda fd, data: real(fd, data[:10]))
    with pytest.raises(audit.AuditUnavailable):
        _write(log, 1)
    monkeypatch.undo()
    assert audit.verify(log).ok and len(_lines(log)) == 2


def test_intent_records_hold_names_never_values():
    change = Change(
        Kind.CREATE,
        "E1",
        changed=["userName", "emails", "phoneNumbers"],
        body={"userName": "ann@example.com", "phoneNumbers": [{"value": "+3312345678"}]},
        desired={"userName": "ann@example.com"},
    )
    record = audit.intent_record("run", "phase1-0001", 1, change)
    text = json.dumps(record)
    assert record["attributes"] == ["userName", "emails", "phoneNumbers"]
    assert "@" not in text and "+33" not in text


# --- the appliers' write-ahead hook (real sandbox / scim2-server) -----------------------------


@pytest.fixture
async def client(sandbox):
    sandbox.set_faults(requests_per_minute=6000)
    async with AsyncScimClient(_config(sandbox)) as c:
        yield c


async def test_every_write_is_preceded_by_its_intent(client, sandbox):
    changes = _plan([], *(row(f"E{n}") for n in range(8))).writes
    events: list[tuple[str, str]] = []

    def on_event(kind, change, result=None):
        # Never more writes reached the target than intents were recorded before them.
        intents = sum(1 for k, _ in events if k == "intent")
        assert sandbox.stats()["writes"] <= intents
        events.append((kind, change.employee_id))
        assert (result is None) == (kind == "intent")

    results = await BatchApplier(client, on_event=on_event).apply(changes)
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 8
    for change in changes:
        mine = [k for k, eid in events if eid == change.employee_id]
        assert mine == ["intent", "result"]
    assert sandbox.stats()["writes"] == 8


async def test_a_failing_hook_stops_the_batch_before_its_next_write(client, sandbox):
    changes = _plan([], *(row(f"E{n}") for n in range(10))).writes
    recorded: list[str] = []

    async def on_event(kind, change, result=None):
        if kind == "intent" and len(recorded) == 2:
            raise audit.AuditUnavailable("the audit trail cannot be written: test")
        if kind == "intent":
            recorded.append(change.employee_id)

    with pytest.raises(audit.AuditUnavailable):
        await BatchApplier(client, on_event=on_event).apply(changes)
    assert sandbox.stats()["writes"] == 2
    assert sorted(u["externalId"] for u in sandbox.users()) == sorted(recorded)


async def test_bulk_requests_record_every_intent_before_sending(plain_scim):
    with plain_scim.client() as http:  # E3's userName is taken: its bulk operation is refused
        http.post(
            "/Users",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "e3@example.com",
                "externalId": "X",
            },
        ).raise_for_status()
    events: list[tuple[str, str, str | None]] = []

    def on_event(kind, change, result=None):
        if kind == "intent":  # nothing of this operation has reached the server yet
            names = {u["userName"] for u in plain_scim.users()}
            assert change.employee_id == "E3" or change.body["userName"] not in names
        events.append((kind, change.employee_id, result.outcome if result else None))

    async with AsyncScimClient(_config(plain_scim)) as client:
        paths = supported_paths(await client.schemas())
        changes = _plan([], row("E1"), row("E2"), row("E3"), paths=paths).writes
        applier = BulkBatchApplier(client, 2, 1_000_000, on_event=on_event)
        results = {r.employee_id: r for r in await applier.apply(changes)}
    assert results["E1"].note == "bulk" and results["E3"].outcome == Outcome.CONFLICT
    for eid in ("E1", "E2"):
        assert [(k, o) for k, e, o in events if e == eid] == [
            ("intent", None),
            ("result", Outcome.APPLIED),
        ]
    # Refused in the bulk answer, then sent alone: each attempt has its intent and result.
    assert [(k, o) for k, e, o in events if e == "E3"] == [
        ("intent", None),
        ("result", Outcome.REPLAYED),
        ("intent", None),
        ("result", Outcome.CONFLICT),
    ]
