"""The UI's FastAPI app through Airflow's real auth dependency (Simple auth manager JWTs):
logged-in users only, personal data only for those who may edit the DAG, every value escaped."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.ui.conftest import (
    APPLIED_RUN,
    DRY_RUN,
    EMPLOYEE,
    HELD_EMPLOYEE,
    HOSTILE,
    REJECTED_EMAIL,
)

RUN = quote(APPLIED_RUN, safe="")
PAGES = [
    "/",
    "/runs.json",
    f"/runs/{RUN}",
    f"/runs/{RUN}/plan",
    f"/runs/{RUN}/report",
    f"/runs/{RUN}/report.json",
    f"/runs/{RUN}/rejects.csv",
    f"/runs/{RUN}/data-docs/",
    f"/dags/genesys_user_sync/runs/{RUN}",
]
PERSONAL = (EMPLOYEE, HELD_EMPLOYEE, REJECTED_EMAIL, "E9009")


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_logged_in_user(runs_root, client_for, path):
    assert client_for(None).get(path).status_code == 401


def test_a_forged_token_is_refused(runs_root, client_for):
    client = client_for(None)
    client.cookies.set("_token", "not-a-jwt")
    assert client.get("/").status_code == 403
    assert client.get("/", headers={"Authorization": "Bearer nope"}).status_code == 403


def test_the_run_list_shows_counts_and_charts_the_runs(runs_root, client_for):
    page = client_for("viewer").get("/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    table = html[html.index("Recent runs") :]
    assert table.index(DRY_RUN) < table.index(APPLIED_RUN)  # newest first
    assert f'href="/genesys-sync/runs/{RUN}"' in html
    for series in ("created", "updated", "deactivated", "rejected", "failed", "requests"):
        assert f'aria-label="{series}"' in html
    assert 'aria-label="duration (s)"' in html
    assert html.count("<svg") == 7 and "<script" not in html
    listed = client_for("viewer").get("/runs.json").json()
    assert [r["run_id"] for r in listed] == [DRY_RUN, APPLIED_RUN]
    assert listed[1]["created"] == 3 and listed[1]["api_calls"] == 11


def test_a_viewer_sees_counts_but_no_personal_data(runs_root, client_for):
    client = client_for("viewer")
    for path in (f"/runs/{RUN}", f"/runs/{RUN}/plan", f"/runs/{RUN}/report"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert not [p for p in PERSONAL if p in page.text], path
        assert "edit the <code>genesys_user_sync</code> DAG" in page.text
    assert '<td class="n">3</td>' in client.get(f"/runs/{RUN}/plan").text  # the counts
    assert "quarantined_employee_ids" not in client.get(f"/runs/{RUN}/report.json").json()
    assert client.get(f"/runs/{RUN}/rejects.csv").status_code == 403
    assert client.get(f"/runs/{RUN}/data-docs/").status_code == 403


@pytest.mark.parametrize("role", ["user", "admin"])
def test_who_may_edit_the_dag_sees_plan_rejects_and_held_removals(runs_root, client_for, role):
    client = client_for(role)
    run = client.get(f"/runs/{RUN}").text
    assert HELD_EMPLOYEE in run and REJECTED_EMAIL in run
    assert "Held removals (1)" in run and "Rejected rows (2)" in run
    plan = client.get(f"/runs/{RUN}/plan").text
    assert "<h2>create (1)</h2>" in plan and EMPLOYEE in plan  # Markdown rendered as HTML
    assert "<table>" in plan
    assert HOSTILE not in plan and "&lt;script&gt;" in plan  # ... with raw HTML kept as text
    report = client.get(f"/runs/{RUN}/report")
    assert report.status_code == 200 and "E9009" in report.text
    assert "p95 90.0 ms" in report.text
    rejects = client.get(f"/runs/{RUN}/rejects.csv")
    assert rejects.status_code == 200 and REJECTED_EMAIL in rejects.text
    assert rejects.headers["content-type"].startswith("text/csv")


def test_the_dag_run_tab_shows_the_run_of_the_sync_dag_only(runs_root, client_for):
    client = client_for("viewer")
    page = client.get(f"/dags/genesys_user_sync/runs/{RUN}")
    assert page.status_code == 200 and f"Sync run {APPLIED_RUN}" in page.text
    assert f'href="/genesys-sync/runs/{RUN}/plan"' in page.text
    assert f'href="/genesys-sync/runs/{RUN}/report"' in page.text
    other = client.get(f"/dags/another_dag/runs/{RUN}")
    assert other.status_code == 404 and "genesys_user_sync DAG only" in other.text


def test_an_unknown_run_is_404_and_creates_nothing(runs_root, client_for):
    client = client_for("admin")
    assert client.get("/runs/manual__nothing").status_code == 404
    assert client.get("/runs/..%2F..%2Fetc/plan").status_code == 404
    assert not (runs_root / "manual__nothing").exists()


def test_the_dry_run_says_so(runs_root, client_for):
    page = client_for("viewer").get(f"/runs/{quote(DRY_RUN, safe='')}")
    assert "dry run" in page.text


def test_the_plugin_mounts_the_app_and_places_its_views():
    import asyncio

    from genesys_sync.ui import plugin

    views = {v["destination"]: v for v in plugin.GenesysSyncPlugin.external_views}
    assert views["dag_run"]["href"] == "/genesys-sync/dags/{DAG_ID}/runs/{RUN_ID}"
    assert views["nav"]["href"] == "/genesys-sync/"
    (mounted,) = plugin.GenesysSyncPlugin.fastapi_apps
    assert mounted["url_prefix"] == plugin.URL_PREFIX

    from genesys_sync.ui import app as ui_app

    assert plugin.URL_PREFIX == ui_app.URL_PREFIX
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "raw_path": b"/",
        "root_path": "/genesys-sync",
        "query_string": b"",
        "headers": [],
    }
    asyncio.run(mounted["app"](scope, receive, send))
    assert sent[0]["status"] == 401  # the lazily imported app, with its auth dependency
