"""Fixtures of the UI tests: a sync home holding a few runs' artifacts, and clients of the UI's
FastAPI app authenticated through Airflow's real Simple auth manager (JWTs it signs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genesys_sync.settings import safe_run_id

APPLIED_RUN = "scheduled__2026-12-01T02:00:00+00:00"
DRY_RUN = "manual__2026-12-02T03:58:30.592036+00:00"
#: What only users allowed to see personal data may see.
EMPLOYEE = "E1001"
HELD_EMPLOYEE = "E2002"
REJECTED_EMAIL = "jane.rejected@example.com"
HOSTILE = "<script>alert(1)</script>"


def write_run(runs: Path, run_id: str, finished_at: str, **overrides) -> Path:
    """One run's artifacts as the stages write them (report, plan, plan.md, rejects, gate)."""
    directory = runs / safe_run_id(run_id)
    directory.mkdir(parents=True)
    report = {
        "run_id": run_id,
        "status": "success",
        "dry_run": False,
        "finished_at": finished_at,
        "rows": 60,
        "rejected": 2,
        "planned": {"create": 3, "update": 1, "deactivate": 2, "held": 1},
        "applied": {"create": 3, "update": 1, "deactivate": 1},
        "failed": 0,
        "held": 1,
        "writes": 5,
        "api_calls": 11,
        "http_429": 0,
        "retries": 0,
        "latency_ms": {"p50": 40.0, "p95": 90.0, "max": 120.0},
        "duration_s": 12.5,
        "quarantined_employee_ids": ["E9009"],
        "refused": [],
        **overrides,
    }
    (directory / "report.json").write_text(json.dumps(report), encoding="utf-8")
    plan = {
        "run_id": run_id,
        "dry_run": report["dry_run"],
        "counts": report["planned"],
        "changes": [
            {"employee_id": EMPLOYEE, "kind": "create", "reason": HOSTILE},
            {"employee_id": HELD_EMPLOYEE, "kind": "deactivate", "held": True, "reason": "left"},
        ],
    }
    (directory / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    (directory / "plan.md").write_text(
        f"# Sync plan for run {run_id}\n\n| change | count |\n|---|---|\n| create | 3 |\n\n"
        f"## create (1)\n\n- {EMPLOYEE}: {HOSTILE}\n",
        encoding="utf-8",
    )
    (directory / "rejects.csv").write_text(
        f"row,employee_id,email,reason\n7,E3003,{REJECTED_EMAIL},email: not an address\n"
        "9,,x@example.com,employee_id: missing\n",
        encoding="utf-8",
    )
    (directory / "gate.json").write_text(json.dumps({"passed": True}), encoding="utf-8")
    return directory


@pytest.fixture
def runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "sync-home"
    monkeypatch.setenv("GENESYS_SYNC_HOME", str(home))
    runs = home / "runs"
    write_run(runs, APPLIED_RUN, "2026-12-01T02:10:00+00:00")
    write_run(
        runs,
        DRY_RUN,
        "2026-12-02T04:00:00+00:00",
        dry_run=True,
        applied={},
        writes=0,
        held=0,
        duration_s=3.0,
    )
    return runs


@pytest.fixture
def auth_manager(monkeypatch: pytest.MonkeyPatch):
    """Airflow's Simple auth manager, in-process. Its revoked-token check reads the metadata
    database, which these tests do not migrate: no token is revoked here."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers import base_auth_manager

    monkeypatch.setattr(base_auth_manager.RevokedToken, "is_revoked", lambda *a, **k: False)
    return create_auth_manager()


@pytest.fixture
def client_for(auth_manager):
    """A TestClient of the UI's app logged in (session cookie) with a Simple auth manager role;
    None: not logged in."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    from genesys_sync.ui.app import app

    def make(role: str | None) -> TestClient:
        client = TestClient(app)
        if role is not None:
            token = auth_manager.generate_jwt(SimpleAuthManagerUser(username=role, role=role))
            client.cookies.set("_token", token)
        return client

    return make
