"""Helpers for end-to-end runs: run the real DAG through ``airflow dags test`` (what ``make sync``
does) against a target, build exports, and state what the target must hold, user by user."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "include" / "sample" / "hris_export.csv"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GENESYS = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User"


@dataclass
class RunResult:
    returncode: int
    report: dict[str, Any] | None
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def read_rows(path: Path = SAMPLE) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def run_sync(
    sync_home: Path,
    export: Path | str,
    connection_json: str,
    conf: dict[str, Any] | None = None,
    logical_date: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> RunResult:
    """``python -m genesys_sync.cli sync`` in a subprocess: the real DAG, ``airflow dags test``."""
    env = {
        **os.environ,
        "GENESYS_SYNC_HOME": str(sync_home),
        "AIRFLOW_CONN_GENESYS_CLOUD": connection_json,
        **(extra_env or {}),
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "dags")])
    cmd = [
        sys.executable,
        "-m",
        "genesys_sync.cli",
        "sync",
        "--export",
        str(export),
        "--conf",
        json.dumps(conf or {}),
    ]
    if logical_date:
        cmd += ["--logical-date", logical_date]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    reports = sorted((sync_home / "runs").glob("*/report.json"), key=lambda p: p.stat().st_mtime)
    report = json.loads(reports[-1].read_text()) if reports else None
    return RunResult(proc.returncode, report, proc.stdout + proc.stderr)


def rejected_ids(report: dict[str, Any]) -> set[str]:
    path = report.get("rejects_path")
    if not path or not Path(path).exists():
        return set()
    with open(path, encoding="utf-8", newline="") as fh:
        return {r["employee_id"] for r in csv.DictReader(fh)}


def by_external_id(users: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {u["externalId"]: u for u in users if u.get("externalId")}


def split(cell: str) -> list[str]:
    return [p.strip() for p in cell.split(";") if p.strip()]


def assert_user_matches(
    user: dict[str, Any], row: dict[str, str], ids: dict[str, str], *, genesys: bool = True
) -> None:
    """The target user holds exactly what the HRIS row says (written out independently of the
    sync's own mapping code)."""
    eid = row["employee_id"]
    active = row["status"] == "active"
    assert user["userName"].lower() == row["email"].lower(), eid
    assert user["displayName"] == (row["display_name"] or f"{row['first_name']} {row['last_name']}")
    assert user.get("title") == (row["title"] or None), eid
    assert user["active"] is active, eid
    work = [e["value"] for e in user.get("emails", []) if e.get("type") == "work"]
    assert [w.lower() for w in work] == [row["email"].lower()], eid
    phones = {(p["type"], p["value"]) for p in user.get("phoneNumbers") or []}
    expected_phones = {
        (t, row[c]) for c, t in (("work_phone", "work"), ("mobile_phone", "mobile")) if row[c]
    }
    assert phones == expected_phones, eid
    roles = {r["value"] for r in user.get("roles") or []}
    if active:
        assert roles == set(split(row["roles"])), eid
    ent = user.get(ENTERPRISE) or {}
    assert ent.get("employeeNumber") == eid
    assert ent.get("department") == (row["department"] or None), eid
    assert ent.get("division") == (row["division"] or None), eid
    if genesys:
        assert ent.get("dateHire") == (row["hire_date"] or None), eid
    manager = (ent.get("manager") or {}).get("value")
    assert manager == (
        ids.get(row["manager_employee_id"]) if row["manager_employee_id"] else None
    ), eid
    if genesys:
        ext = user.get(GENESYS) or {}
        skills = {(s["name"], float(s["proficiency"])) for s in ext.get("routingSkills") or []}
        expected = {(n, float(p)) for n, _, p in (s.rpartition(":") for s in split(row["skills"]))}
        assert skills == expected, eid
        langs = {(s["name"], float(s["proficiency"])) for s in ext.get("routingLanguages") or []}
        expected = {
            (n, float(p)) for n, _, p in (s.rpartition(":") for s in split(row["languages"]))
        }
        assert langs == expected, eid
