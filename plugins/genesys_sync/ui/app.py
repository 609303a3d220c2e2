"""The sync's pages in Airflow's API server: a FastAPI app the plugin mounts at ``/genesys-sync``.

Who sees what (the auth manager decides, so the same rule holds with the Simple, FAB or
Keycloak auth manager):

* every page needs a logged-in user (Airflow's session cookie or a bearer token; none: 401)
  who may **read the runs of the ``genesys_user_sync`` DAG** (else 403): run list, counts,
  chart, status, the plan's counts, the report's figures;
* **personal data** (employee ids in the plan and the report, rejected rows, held removals,
  refused operations, Data Docs, ``rejects.csv``) needs the right to **edit that DAG**: with
  the Simple auth manager the roles ``user``, ``op`` and ``admin``, not ``viewer``.
"""

from __future__ import annotations

import mimetypes
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from genesys_sync.ui import artifacts, views

DAG_ID = "genesys_user_sync"
URL_PREFIX = "/genesys-sync"
#: No page of a run is cached: it may name employees, and a rerun rewrites it.
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'self'"
    ),
}


@dataclass(frozen=True)
class Viewer:
    """The logged-in user and whether they may see personal data."""

    name: str
    personal: bool


def current_viewer(user: GetUserDep) -> Viewer:
    """The request's user, allowed to read the sync DAG's runs (else 403); ``personal`` when
    they may also edit the DAG."""
    manager = get_auth_manager()
    details = DagDetails(id=DAG_ID)
    if not manager.is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.RUN, details=details, user=user
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"Reading the {DAG_ID} runs is required")
    personal = manager.is_authorized_dag(method="PUT", details=details, user=user)
    return Viewer(name=user.get_name(), personal=bool(personal))


ViewerDep = Annotated[Viewer, Depends(current_viewer)]

app = FastAPI(
    title="Genesys user sync",
    description="Runs of the genesys_user_sync DAG: plans, reports, rejects, held removals.",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)


def _base(request: Request) -> str:
    """The app's own path as the browser sees it (the mount path below any API root path)."""
    return str(request.scope.get("root_path") or URL_PREFIX).rstrip("/")


def _html(text: str, code: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=code, headers=HEADERS)


def _run(run_id: str) -> artifacts.RunArtifacts:
    run = artifacts.read_run(run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "This run left no artifacts")
    return run


def _need_personal(viewer: Viewer) -> None:
    if not viewer.personal:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"Personal data needs edit access to the {DAG_ID} DAG"
        )


@app.get("/", response_class=HTMLResponse)
def runs(request: Request, viewer: ViewerDep) -> HTMLResponse:
    return _html(views.runs_page(artifacts.list_runs(100), _base(request)))


@app.get("/runs.json")
def runs_json(viewer: ViewerDep, limit: int = 30) -> JSONResponse:
    found = artifacts.list_runs(max(1, min(limit, 500)))
    return JSONResponse([asdict(r) for r in found], headers=HEADERS)


@app.get("/dags/{dag_id}/runs/{run_id}", response_class=HTMLResponse)
def dag_run(request: Request, dag_id: str, run_id: str, viewer: ViewerDep) -> HTMLResponse:
    """The page the dag run's "Sync results" tab shows (the view is offered on every DAG's runs)."""
    if dag_id != DAG_ID:
        text = f"Sync results exist for runs of the {DAG_ID} DAG only."
        return _html(views.not_found_page(text, _base(request)), 404)
    return run(request, run_id, viewer)


@app.get("/runs/{run_id}", response_class=HTMLResponse)
def run(request: Request, run_id: str, viewer: ViewerDep) -> HTMLResponse:
    return _html(views.run_page(_run(run_id), _base(request), viewer.personal))


@app.get("/runs/{run_id}/plan", response_class=HTMLResponse)
def plan(request: Request, run_id: str, viewer: ViewerDep) -> HTMLResponse:
    return _html(views.plan_page(_run(run_id), _base(request), viewer.personal))


@app.get("/runs/{run_id}/report", response_class=HTMLResponse)
def report(request: Request, run_id: str, viewer: ViewerDep) -> HTMLResponse:
    return _html(views.report_page(_run(run_id), _base(request), viewer.personal))


@app.get("/runs/{run_id}/report.json")
def report_json(run_id: str, viewer: ViewerDep) -> JSONResponse:
    found = _run(run_id).report
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "This run wrote no report")
    body = found if viewer.personal else views.redact_report(found)
    return JSONResponse(body, headers=HEADERS)


@app.get("/runs/{run_id}/rejects.csv")
def rejects_csv(run_id: str, viewer: ViewerDep) -> Response:
    _need_personal(viewer)
    content = artifacts.artifact_bytes(_run(run_id), "rejects.csv")  # a disk or a bucket
    if content is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "This run wrote no rejects file")
    disposition = {"Content-Disposition": 'attachment; filename="rejects.csv"'}
    return Response(content, media_type="text/csv", headers={**HEADERS, **disposition})


@app.get("/runs/{run_id}/data-docs/{path:path}")
def data_docs(run_id: str, path: str, viewer: ViewerDep) -> Response:
    """The gate's Data Docs site, sandboxed (no script, an origin of its own)."""
    _need_personal(viewer)
    found = artifacts.data_docs_file(_run(run_id), path)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No such Data Docs page")
    headers = {**HEADERS, "Content-Security-Policy": "sandbox; frame-ancestors 'self'"}
    if isinstance(found, Path):
        return FileResponse(found, headers=headers)
    media_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
    return Response(found.read_bytes(), media_type=media_type, headers=headers)
