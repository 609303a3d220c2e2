"""The measurements behind ``docs/reliability.md``, written out apart from the sync's own code:
final-state mismatches, duplicates, writes without an audit intent, and leaks (secrets anywhere,
personal data where it must not be). Each returns a count (or the offending items), so a test can
record the figure before it asserts that it is zero."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from genesys_sync import audit
from tests.fixtures.expect import assert_user_matches, by_external_id


def mismatches(target: Any, rows: list[dict[str, str]], skip: set[str]) -> list[str]:
    """Employee ids whose target user is missing or differs from the export (``skip``: rows the
    gate quarantined, which must not be there)."""
    users = by_external_id(target.users())
    ids = {eid: u["id"] for eid, u in users.items()}
    wrong = []
    for row in rows:
        eid = row["employee_id"]
        if eid in skip:
            if eid in users:
                wrong.append(eid)
            continue
        if eid not in users:
            if row["status"] == "active":
                wrong.append(eid)
            continue
        try:
            assert_user_matches(users[eid], row, ids, genesys=target.genesys)
        except AssertionError:
            wrong.append(eid)
    return wrong


def duplicates(users: list[dict[str, Any]]) -> int:
    """Users beyond the first sharing an employee id, plus those sharing a user name."""
    extra = 0
    for key in ("externalId", "userName"):
        seen = Counter(str(u.get(key) or "").lower() for u in users if u.get(key))
        extra += sum(n - 1 for n in seen.values())
    return extra


def trail_path(home: Path) -> Path:
    return home / "audit" / "audit.jsonl"


def unaudited_writes(home: Path, users: list[dict[str, Any]]) -> int:
    """Target users whose employee id has no create intent in the trail, plus one for a half
    line and one for a chain that does not verify."""
    path = trail_path(home)
    if not path.exists():
        return len(users)
    raw = path.read_bytes()
    faults = 0 if not raw or raw.endswith(b"\n") else 1
    faults += 0 if audit.verify(path).ok else 1
    return faults + _without_intent(raw.splitlines(), users)


def unaudited_writes_in(state_url: str, users: list[dict[str, Any]]) -> int:
    """The same count for a trail kept in the state database (``GENESYS_SYNC_AUDIT_STORE``)."""
    import sqlalchemy as sa

    engine = sa.create_engine(state_url)
    try:
        with engine.connect() as conn:
            lines = conn.execute(sa.text("SELECT line FROM audit_trail ORDER BY seq")).scalars()
            raw = [line.encode() for line in lines]
    finally:
        engine.dispose()
    env = {"GENESYS_SYNC_AUDIT_STORE": "database", "GENESYS_SYNC_STATE_URL": state_url}
    verified = subprocess.run(
        [sys.executable, "-m", "genesys_sync.audit", "verify"],
        env={**os.environ, **env},
        capture_output=True,
    )
    return (verified.returncode != 0) + _without_intent(raw, users)


def _without_intent(lines: list[bytes], users: list[dict[str, Any]]) -> int:
    """Unparseable lines, plus target users with no create intent among ``lines``."""
    records, faults = [], 0
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            faults += 1
    intended = {
        r.get("employee_id")
        for r in records
        if r.get("event") == audit.INTENT and r.get("operation") == "create"
    }
    return faults + sum(1 for eid in by_external_id(users) if eid not in intended)


def personal_data(rows: Iterable[dict[str, str]]) -> set[str]:
    """The export's emails and phone numbers (what must stay out of logs, events and the trail)."""
    values = set()
    for row in rows:
        for column in ("email", "work_phone", "mobile_phone"):
            if (row.get(column) or "").strip():
                values.add(row[column].strip())
    return values


def leaks(
    home: Path,
    secrets: Iterable[str],
    pii: set[str],
    texts: Iterable[str] = (),
) -> list[str]:
    """Where a secret appears (any file of the sync home, or ``texts``: logs, events), or personal
    data appears in ``texts``, the audit trail or a run report. One entry per finding."""
    secrets = [s for s in secrets if s]
    found = []
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"secret in {path.name}" for s in secrets if s.encode() in data]
        if path.name in ("audit.jsonl", "report.json"):
            text = data.decode("utf-8", "replace")
            found += [f"personal data in {path.name}" for v in pii if v in text]
    for i, text in enumerate(texts):
        found += [f"secret in text {i}" for s in secrets if s in text]
        found += [f"personal data in text {i}" for v in pii if v in text]
    return found


class FaultSchedule:
    """Changes the sandbox's fault knobs when its served-write count reaches a threshold: a fault
    that starts mid-apply, not before the first write. A background thread; use as a context."""

    def __init__(self, sandbox: Any, steps: list[tuple[int, dict[str, Any]]]) -> None:
        self.sandbox = sandbox
        self.steps = sorted(steps, key=lambda step: step[0])
        self.applied: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        pending = list(self.steps)
        while pending and not self._stop.is_set():
            if self.sandbox.stats()["writes"] >= pending[0][0]:
                _, knobs = pending.pop(0)
                self.sandbox.set_faults(**knobs)
                self.applied.append(knobs)
            else:
                time.sleep(0.01)

    def __enter__(self) -> FaultSchedule:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
