"""Airflow provider metadata of genesys-scim-sync (the ``apache_airflow_provider`` entry point).

Installed as a package (``pip install .``; ``make install`` installs it editable), the project
registers the **Genesys Cloud** connection type: a form with the region, the OAuth client and
the options of other SCIM servers, and a working **Test** button.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

CONNECTION_TYPE = "genesys_cloud"


def _version() -> str:
    try:
        return version("genesys-scim-sync")
    except PackageNotFoundError:  # run from a source tree (PYTHONPATH=plugins)
        return "0.0.0"


def _field(label: str, description: str, kind: str = "string", **schema: Any) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": [kind, "null"], **schema},
    }


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "genesys-scim-sync",
        "name": "Genesys Cloud SCIM sync",
        "description": "Keep Genesys Cloud users in sync with the HR system over SCIM 2.0.",
        "versions": [_version()],
        "connection-types": [
            {
                "hook-class-name": "genesys_sync.hooks.genesys.GenesysScimHook",
                "hook-name": "Genesys Cloud",
                "connection-type": CONNECTION_TYPE,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "Region",
                        "login": "OAuth client id",
                        "password": "OAuth client secret",
                    },
                    "placeholders": {
                        "host": "mypurecloud.ie (empty for another SCIM server)",
                        "login": "the OAuth client's id (client credentials grant)",
                        "password": "the OAuth client's secret",
                    },
                },
                "conn-fields": {
                    "base_url": _field(
                        "SCIM base URL",
                        "Another SCIM 2.0 server (or the sandbox): its full SCIM base URL. "
                        "Empty for Genesys Cloud, whose URLs follow from the region.",
                    ),
                    "token_url": _field(
                        "Token URL",
                        "With a SCIM base URL: where to get OAuth client-credentials tokens.",
                    ),
                    "bearer_token": _field(
                        "Static bearer token",
                        "With a SCIM base URL and no token URL: a fixed token.",
                        format="password",
                    ),
                    "api_url": _field(
                        "Public API URL",
                        "Genesys Public API base (role and division names), when not derived "
                        "from the region.",
                    ),
                    "requests_per_minute": _field(
                        "Requests per minute",
                        "The OAuth client's rate limit (Genesys: 300), shared by all batch jobs.",
                        "integer",
                        default=300,
                        minimum=1,
                    ),
                },
            }
        ],
    }
