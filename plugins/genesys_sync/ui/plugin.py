"""The Airflow plugin: the sync's pages in the API server and their places in the UI.

* ``/genesys-sync/``: the recent runs with their counts and a chart of the last 30
  (**Browse > Genesys sync** in the UI);
* a **Sync results** tab on each dag run of ``genesys_user_sync``: that run's status, counts,
  links to its plan and report, its held removals and rejected rows;
* a fix of Airflow 3.3.2's connection **Test** button for connections without a port
  (``genesys_sync.ui.compat``).

Registered through the ``airflow.plugins`` entry point of the installed package
(``pyproject.toml``; the editable install of ``make install``, the wheel of the production
image); where the package is not installed (a bare plugins folder),
``plugins/genesys_sync_plugin.py`` registers it instead. Who may see what: ``genesys_sync.ui.app``.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from genesys_sync.ui.compat import ConnectionTestPortFix

URL_PREFIX = "/genesys-sync"  # genesys_sync.ui.app.URL_PREFIX
ENTRY_POINT_GROUP = "airflow.plugins"
ENTRY_POINT = "genesys_sync.ui.plugin:GenesysSyncPlugin"  # pyproject.toml


class LazyApp:
    """The pages' ASGI app, imported on its first request: every Airflow component (each task
    run too) loads the plugins, only the API server serves the pages."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from genesys_sync.ui.app import app

            self._app = app
        await self._app(scope, receive, send)


app = LazyApp()


class GenesysSyncPlugin(AirflowPlugin):
    name = "genesys_sync"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Genesys user sync"}]
    # Airflow 3.3.2's Test button fails on a connection without a port (the Genesys form hides
    # it): the upstream fix, applied to the test requests only (genesys_sync.ui.compat).
    fastapi_root_middlewares = [
        {"middleware": ConnectionTestPortFix, "args": [], "kwargs": {}, "name": "test-port-fix"}
    ]
    external_views = [
        {
            "name": "Genesys sync",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "genesys-sync",
        },
        {
            "name": "Sync results",
            "href": f"{URL_PREFIX}/dags/{{DAG_ID}}/runs/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "genesys-sync-run",
        },
    ]


def registered_by_entry_point() -> bool:
    """Whether an installed distribution registers this plugin (``airflow.plugins`` entry
    point), as Airflow's plugin manager finds it: then the plugins folder must not as well."""
    from importlib import metadata

    return any(
        ep.value.replace(" ", "") == ENTRY_POINT
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)
    )
