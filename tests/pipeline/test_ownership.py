"""Never destroy what the sync does not own or cannot see (issue 8), against both real targets:
quarantined rows, values other owners put on a user, listings that lie, cleared HR values and
attributes a target does not declare.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from genesys_sync.stages.common import PlanStopped
from tests.fixtures.expect import ENTERPRISE, GENESYS, by_external_id, read_rows, write_rows
from tests.fixtures.targets import Target
from tests.pipeline.harness import StageRun, run_stages


def _run(target: Target, sync_home, tmp_path, rows, name, **kw) -> StageRun:
    result = run_stages(sync_home, write_rows(tmp_path / name, rows), target, **kw)
    assert result.ok, result.error
    return result


FULL = {"full_reconcile": True}


def _row(rows: list[dict[str, str]], eid: str) -> dict[str, str]:
    return next(r for r in rows if r["employee_id"] == eid)


def _versions(users: list[dict[str, Any]]) -> dict[str, Any]:
    return {u["id"]: (u.get("meta") or {}).get("version") for u in users}


def _roles(user: dict[str, Any]) -> set[str]:
    return {r["value"] for r in user.get("roles") or []}


def _phones(user: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p["type"], p["value"]) for p in user.get("phoneNumbers") or []}


def _kinds(result: StageRun, eid: str) -> list[str]:
    return [c["kind"] for c in result.plan["changes"] if c["employee_id"] == eid]


# --- 1. present but unreadable is present ----------------------------------------------------


def test_a_quarantined_existing_user_stays_active_and_untouched(target, sync_home, tmp_path):
    rows = read_rows()
    first = _run(target, sync_home, tmp_path, rows, "d1.csv")
    head = "E1003"  # head of support, with reports
    before = by_external_id(target.users())[head]
    changed = copy.deepcopy(rows)
    _row(changed, head)["skills"] = "Email Support:3.5"  # one decimal: the row is quarantined
    leaver = next(r for r in changed if r["status"] == "active" and r["employee_id"] > "E1040")
    changed.remove(leaver)  # really absent: deactivated
    for name, conf in (("incremental.csv", None), ("full.csv", FULL)):
        result = _run(target, sync_home, tmp_path, changed, name, conf=conf)
        assert head in result.report["quarantined_employee_ids"]
        assert result.report["quarantined"] == first.report["rejected"] + 1
        assert _kinds(result, head) == ["quarantined"]
        assert "quarantined" in result.plan_markdown and head in result.plan_markdown
        after = by_external_id(target.users())[head]
        assert after["active"] is True
        assert after == before, "a quarantined user gets no write at all"
    assert by_external_id(target.users())[leaver["employee_id"]]["active"] is False
    # Fixed in HR: synced again (the decimal is rounded away in the export).
    _row(changed, head)["skills"] = _row(rows, head)["skills"]
    fixed = _run(target, sync_home, tmp_path, changed, "fixed.csv", conf=FULL)
    assert head not in fixed.report["quarantined_employee_ids"]
    assert fixed.report["writes"] == 0


# --- 2. ownership inside a user ---------------------------------------------------------------


def _extra_phone(target: Target) -> dict[str, str]:
    """A number an integration put there: Teams on Genesys; a type the plain server accepts."""
    return {"type": "microsoftteams" if target.genesys else "other", "value": "+12025550999"}


def test_a_hand_granted_role_and_a_teams_number_survive_updates_and_full_reconciliations(
    target, sync_home, tmp_path
):
    rows = read_rows()
    _run(target, sync_home, tmp_path, rows, "d1.csv")
    eid = "E1007"  # roles employee;User
    user = by_external_id(target.users())[eid]
    extra = _extra_phone(target)
    target.patch_by_hand(
        user["id"],
        [
            {"op": "add", "path": "roles", "value": [{"value": "Admin"}]},
            {"op": "add", "path": "phoneNumbers", "value": [extra]},
        ],
    )
    # HR changes the title and adds a role: one PATCH that adds, and removes nothing.
    changed = copy.deepcopy(rows)
    _row(changed, eid)["title"] = "Principal Account Executive"
    _row(changed, eid)["roles"] = "employee;User;Supervisor"
    update = _run(target, sync_home, tmp_path, changed, "d2.csv")
    assert update.report["applied"]["update"] == 1 and update.report["writes"] == 1
    user = by_external_id(target.users())[eid]
    assert user["title"] == "Principal Account Executive"
    assert _roles(user) == {"employee", "User", "Supervisor", "Admin"}
    assert (extra["type"], extra["value"]) in _phones(user)
    # A full reconciliation: the hand-made values are not drift, so nothing is written ...
    full = _run(target, sync_home, tmp_path, changed, "d3.csv", conf=FULL)
    assert full.plan["target_read"] == "full"
    assert full.report["writes"] == 0 and _kinds(full, eid) == []
    again = _run(target, sync_home, tmp_path, changed, "d4.csv", conf=FULL)
    assert again.report["writes"] == 0
    user = by_external_id(target.users())[eid]
    assert _roles(user) == {"employee", "User", "Supervisor", "Admin"}
    assert (extra["type"], extra["value"]) in _phones(user)
    # ... and HR dropping the role the sync granted removes that one only.
    _row(changed, eid)["roles"] = "User"
    dropped = _run(target, sync_home, tmp_path, changed, "d5.csv", conf=FULL)
    assert dropped.report["writes"] == 1
    user = by_external_id(target.users())[eid]
    assert _roles(user) == {"employee", "User", "Admin"}  # employee: never removed
    assert (extra["type"], extra["value"]) in _phones(user)


def test_authoritative_roles_leave_exactly_the_roles_hr_lists(target, sync_home, tmp_path):
    from tests.pipeline.harness import stage_config

    config = stage_config()
    config = dataclasses.replace(
        config, sync=dataclasses.replace(config.sync, roles="authoritative")
    )
    rows = read_rows()
    _run(target, sync_home, tmp_path, rows, "d1.csv", config=config)
    eid = "E1007"
    user = by_external_id(target.users())[eid]
    target.patch_by_hand(
        user["id"], [{"op": "add", "path": "roles", "value": [{"value": "Admin"}]}]
    )
    changed = copy.deepcopy(rows)
    _row(changed, eid)["roles"] = "User"
    result = _run(target, sync_home, tmp_path, changed, "d2.csv", conf=FULL, config=config)
    assert result.report["writes"] == 1
    assert _roles(by_external_id(target.users())[eid]) == {"User"}


# --- 3. a trustworthy full read ---------------------------------------------------------------


class _PagingIgnoredProxy(BaseHTTPRequestHandler):
    """Forwards to the real target, but a user listing always answers its first page (of at
    most 10 users) and does not echo startIndex: the misbehaving server of issue 8."""

    upstream = ""

    def _forward(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        listing = self.command == "GET" and parts.path.lower().endswith("/users")
        if listing:
            query = [(k, "1" if k == "startIndex" else v) for k, v in query]
            query = [(k, str(min(int(v), 10)) if k == "count" else v) for k, v in query]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() in ("authorization", "content-type", "if-match", "accept")
        }
        url = f"{self.upstream}{parts.path}" + (f"?{urlencode(query)}" if query else "")
        answer = httpx.request(self.command, url, content=body, headers=headers, timeout=30)
        content = answer.content
        if listing and answer.status_code == 200:
            data = answer.json()
            data.pop("startIndex", None)
            content = json.dumps(data).encode()
        self.send_response(answer.status_code)
        for key in ("Content-Type", "ETag", "Retry-After"):
            if key in answer.headers:
                self.send_header(key, answer.headers[key])
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

    def log_message(self, *args: Any) -> None:  # quiet
        pass


@contextlib.contextmanager
def _paging_ignored(target: Target) -> Iterator[Target]:
    handler = type("Proxy", (_PagingIgnoredProxy,), {"upstream": target.handle.url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy_url = f"http://127.0.0.1:{server.server_address[1]}"

    @dataclasses.dataclass
    class Proxied(Target):
        def connection(self) -> dict[str, Any]:
            conn = super().connection()
            conn["extra"]["base_url"] = conn["extra"]["base_url"].replace(
                target.handle.url, proxy_url
            )
            return conn

    try:
        yield Proxied(target.name, target.handle, target.genesys)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_broken_paging_stops_the_plan_with_zero_writes(target, sync_home, tmp_path):
    rows = read_rows()
    _run(target, sync_home, tmp_path, rows, "d1.csv")
    before = target.users()
    leaver = next(r for r in rows if r["status"] == "active" and r["employee_id"] > "E1040")
    changed = [r for r in rows if r is not leaver]
    with _paging_ignored(target) as broken:
        result = run_stages(sync_home, write_rows(tmp_path / "d2.csv", changed), broken, conf=FULL)
    assert not result.ok and isinstance(result.error, PlanStopped)
    message = str(result.error)
    assert "duplicate ids" in message and "totalResults=" in message
    assert "nothing was planned or written" in message
    assert target.users() == before, "no write at all"
    assert by_external_id(target.users())[leaver["employee_id"]]["active"] is True
    assert result.report["status"] == "failed" and result.report["writes"] == 0
    assert "duplicate ids" in result.report["failure_reason"]
    assert result.plan["check"] == "duplicate ids"
    assert not (result.run_dir / "batches").exists()
    # Through the real paging, the same export deactivates the leaver.
    fine = _run(target, sync_home, tmp_path, changed, "d3.csv", conf=FULL)
    assert fine.report["applied"]["deactivate"] == 1


def test_a_managed_user_the_listing_lacks_is_looked_up_before_deciding(
    target, sync_home, tmp_path, monkeypatch
):
    """A listing that is consistent but lacks a managed user (a user deactivated between the
    active and the inactive listing, say): the user is read by id, and nothing is decided on
    the gap."""
    from genesys_sync.scim.client import AsyncScimClient

    rows = read_rows()
    _run(target, sync_home, tmp_path, rows, "d1.csv")
    hidden = by_external_id(target.users())["E1007"]["id"]
    real = AsyncScimClient.list_all_users

    async def lacking(self, *args, **kwargs):
        return [u for u in await real(self, *args, **kwargs) if u["id"] != hidden]

    monkeypatch.setattr(AsyncScimClient, "list_all_users", lacking)
    changed = copy.deepcopy(rows)
    _row(changed, "E1007")["title"] = "Looked up"
    result = _run(target, sync_home, tmp_path, changed, "d2.csv", conf=FULL)
    assert result.report["writes"] == 1 and result.report["applied"]["create"] == 0
    assert by_external_id(target.users())["E1007"]["title"] == "Looked up"


# --- 4. clearing what the sync owns -----------------------------------------------------------


def test_a_manager_cleared_in_hr_is_removed(target, sync_home, tmp_path):
    rows = read_rows()
    _run(target, sync_home, tmp_path, rows, "d1.csv")
    eid = "E1008"
    assert (by_external_id(target.users())[eid][ENTERPRISE].get("manager") or {}).get("value")
    changed = copy.deepcopy(rows)
    _row(changed, eid)["manager_employee_id"] = ""
    result = _run(target, sync_home, tmp_path, changed, "d2.csv")
    assert result.report["applied"]["update"] == 1 and result.report["writes"] == 1
    change = next(c for c in result.plan["changes"] if c["employee_id"] == eid)
    assert change["changed"] == [f"{ENTERPRISE}:manager"]
    assert not (by_external_id(target.users())[eid].get(ENTERPRISE) or {}).get("manager")
    assert _run(target, sync_home, tmp_path, changed, "d3.csv", conf=FULL).report["writes"] == 0


# --- 5. unsupported attributes are loud --------------------------------------------------------


def test_attributes_the_target_does_not_declare_are_reported_once(
    target, sync_home, tmp_path, caplog
):
    caplog.set_level(logging.WARNING, logger="genesys_sync")
    result = _run(target, sync_home, tmp_path, read_rows(), "d1.csv")
    warnings = [r for r in caplog.records if "not synced: the target does not declare" in r.message]
    undeclared = {
        f"{ENTERPRISE}:dateHire",
        f"{GENESYS}:routingSkills",
        f"{GENESYS}:routingLanguages",
    }
    if target.genesys:  # the sandbox declares every attribute the sync maps
        assert result.report["not_synced_attributes"] == [] and warnings == []
        return
    assert set(result.report["not_synced_attributes"]) == undeclared
    assert set(result.plan["not_synced_attributes"]) == undeclared
    assert "Not synced" in result.plan_markdown and "routingSkills" in result.plan_markdown
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert all(path in warnings[0].message for path in undeclared)
