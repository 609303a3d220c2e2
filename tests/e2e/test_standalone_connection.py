"""``make airflow`` keeps the Genesys connection in Airflow's database (the UI shows and edits
it), puts the sandbox's there only when there is none or the stored one is the sandbox's, and
never replaces a connection of the user's own."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from genesys_sync.cli import CONN_ID, bin_path, ensure_connection

pytestmark = pytest.mark.e2e


def _stored(env) -> dict:
    out = subprocess.run(
        [bin_path("airflow"), "connections", "get", CONN_ID, "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out[out.index("[") :])[0]


def _sandbox_conn(port: int) -> dict:
    url = f"http://127.0.0.1:{port}"
    return {
        "conn_type": "genesys_cloud",
        "login": "sandbox-client",
        "password": "sandbox-secret",
        "extra": {"base_url": f"{url}/api/v2/scim/v2", "token_url": f"{url}/oauth/token"},
    }


def test_the_sandbox_connection_is_stored_and_a_users_own_is_kept(airflow_db):
    env = {**os.environ}
    env.pop("AIRFLOW_CONN_GENESYS_CLOUD", None)
    subprocess.run(
        [bin_path("airflow"), "connections", "delete", CONN_ID], env=env, capture_output=True
    )
    assert ensure_connection(env, _sandbox_conn(8089)) == "the sandbox"
    stored = _stored(env)
    assert stored["conn_type"] == "genesys_cloud"
    assert stored["extra_dejson"]["base_url"] == "http://127.0.0.1:8089/api/v2/scim/v2"
    # The stored sandbox connection is the CLI's: a sandbox on another port replaces it ...
    assert ensure_connection(env, _sandbox_conn(9099)) == "the sandbox"
    # ... but a connection the user made (a real tenant) is never touched.
    subprocess.run([bin_path("airflow"), "connections", "delete", CONN_ID], env=env, check=True)
    mine = {"conn_type": "genesys_cloud", "host": "mypurecloud.ie", "login": "id", "password": "s"}
    subprocess.run(
        [bin_path("airflow"), "connections", "add", CONN_ID, "--conn-json", json.dumps(mine)],
        env=env,
        check=True,
        capture_output=True,
    )
    assert ensure_connection(env, _sandbox_conn(8089)) == "yours, kept"
    assert _stored(env)["host"] == "mypurecloud.ie"
    subprocess.run([bin_path("airflow"), "connections", "delete", CONN_ID], env=env, check=True)
