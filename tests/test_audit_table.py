"""The audit trail in the state database (``GENESYS_SYNC_AUDIT_STORE=database``), on SQLite and
PostgreSQL: one chain however many processes append at once, the first edited, removed or
reordered row named, an export that is the JSON Lines file it stands for, and a whole run whose
intents and results land there (and nothing in a local file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from genesys_sync import audit, audit_table
from tests.fixtures.expect import SAMPLE
from tests.pipeline.harness import run_stages

ROOT = Path(__file__).resolve().parents[1]
PG = "postgresql+psycopg2://postgres@127.0.0.1:5432"
WRITER = """
import sys
from genesys_sync import audit
for n in range(int(sys.argv[2])):
    audit.append([{"event": "E", "writer": sys.argv[1], "n": n}], fsync=n % 10 == 0)
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def state_url(request, tmp_path, monkeypatch):
    """A fresh state database, and the trail configured into it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        name = f"gss_audit_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = f"{PG}/{name}"
    monkeypatch.setenv("GENESYS_SYNC_STATE_URL", url)
    monkeypatch.setenv("GENESYS_SYNC_AUDIT_STORE", "database")
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(tmp_path / "home"))
    yield url
    audit_table.dispose()
    if request.param == "postgresql":
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _rows(url: str) -> list[tuple[int, str]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT seq, line FROM audit_trail ORDER BY seq")).all()
    engine.dispose()
    return [(r.seq, r.line) for r in rows]


def _tamper(url: str, statement: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(statement)
    engine.dispose()


def test_processes_appending_at_once_keep_one_chain(state_url):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(w), "40"], env=env) for w in range(4)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0] * 4
    rows = _rows(state_url)
    assert [seq for seq, _ in rows] == list(range(1, 161))
    assert sorted((json.loads(line)["writer"], json.loads(line)["n"]) for _, line in rows) == (
        sorted((str(w), n) for w in range(4) for n in range(40))
    )
    checked = audit.verify()
    assert checked.ok and checked.lines == 160, checked.message
    assert not (Path(os.environ["GENESYS_SYNC_HOME"]) / "audit").exists(), "no local file"


SWAP_2_AND_5 = (
    "UPDATE audit_trail SET line = CASE seq "
    "WHEN 2 THEN (SELECT line FROM audit_trail WHERE seq = 5) "
    "ELSE (SELECT line FROM audit_trail WHERE seq = 2) END WHERE seq IN (2, 5)"
)


@pytest.mark.parametrize(
    ("statement", "line", "why"),
    [
        (
            "UPDATE audit_trail SET line = REPLACE(line, '\"n\":3', '\"n\":33') WHERE seq = 4",
            4,
            "was edited",
        ),
        ("DELETE FROM audit_trail WHERE seq = 3", 3, "has seq 4, expected 3"),
        (SWAP_2_AND_5, 2, "has seq 5, expected 2"),
    ],
    ids=["edited", "removed", "reordered"],
)
def test_an_edited_removed_or_reordered_row_is_named(state_url, statement, line, why):
    audit.append([{"event": "E", "n": n} for n in range(6)])
    assert audit.verify().ok
    _tamper(state_url, statement)
    checked = audit.verify()
    assert not checked.ok and checked.bad_line == line and why in checked.message, checked


def test_the_export_is_the_json_lines_file_and_verifies_as_one(state_url, tmp_path):
    audit.append([{"event": "E", "n": n, "run_id": "r"} for n in range(5)])
    out = tmp_path / "audit.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    cli = [sys.executable, "-m", "genesys_sync.audit"]
    subprocess.run([*cli, "export", "--out", str(out)], env=env, check=True)
    assert out.read_bytes() == b"".join(line.encode() + b"\n" for _, line in _rows(state_url))
    assert out.stat().st_mode & 0o077 == 0
    assert audit.verify(out).ok
    table = subprocess.run([*cli, "verify"], env=env, capture_output=True, text=True)
    assert table.returncode == 0 and "table audit_trail: 5 line(s), chain intact" in table.stdout
    _tamper(state_url, "DELETE FROM audit_trail WHERE seq = 2")
    broken = subprocess.run([*cli, "verify"], env=env, capture_output=True, text=True)
    assert broken.returncode == 1 and "line 2 has seq 3" in broken.stderr


def test_an_unreachable_database_is_an_audit_failure_that_names_no_url(monkeypatch):
    monkeypatch.setenv("GENESYS_SYNC_AUDIT_STORE", "database")
    monkeypatch.setenv("GENESYS_SYNC_STATE_URL", "postgresql+psycopg2://u:hunter2@127.0.0.1:9/x")
    with pytest.raises(audit.AuditUnavailable) as caught:
        audit.append([{"event": "E"}])
    assert "table audit_trail" in str(caught.value) and "hunter2" not in str(caught.value)
    audit_table.dispose()


def test_a_whole_run_writes_its_trail_to_the_database(state_url, sandbox_target, tmp_path):
    home = Path(os.environ["GENESYS_SYNC_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    result = run_stages(home, SAMPLE, sandbox_target)
    assert result.ok, result.error
    records = [json.loads(line) for _, line in _rows(state_url)]
    intents = [r for r in records if r["event"] == audit.INTENT and r["run_id"] == result.run_id]
    results = [r for r in records if r["event"] == audit.RESULT and r["run_id"] == result.run_id]
    assert len(intents) == len(results) == 50
    assert {r["event"] for r in records} >= {"GATE_PASSED", "PLANNED", "SYNC_SUCCESS"}
    assert audit.scan().open == [] and audit.verify().ok
    assert not (home / "audit").exists(), "nothing in a local file"
