"""Behaviour 8: SCIM errors for 409s, Genesys error bodies for everything else."""

import httpx

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.payloads import is_genesys_error, is_scim_error, new_user


def test_conflicts_use_the_scim_error_shape(scim: httpx.Client) -> None:
    scim.post("/users", json=new_user())

    body = scim.post("/users", json=new_user()).json()

    assert is_scim_error(body, 409)
    assert set(body) == {"schemas", "status", "scimType", "detail"}


def test_scim2_server_400_and_404_answers_become_genesys_bodies(scim: httpx.Client) -> None:
    not_found = scim.get("/users/00000000-0000-0000-0000-000000000000")
    bad_filter = scim.get("/users", params={"filter": "userName eq"})
    bad_json = scim.post(
        "/users", content=b"{not json", headers={"Content-Type": "application/scim+json"}
    )

    assert not_found.status_code == 404
    assert is_genesys_error(not_found.json(), 404)
    assert not_found.json()["code"] == "not.found"
    for response in (bad_filter, bad_json):
        assert response.status_code == 400
        body = response.json()
        assert is_genesys_error(body, 400)
        assert isinstance(body["status"], int)
        assert body["details"] == [] and body["errors"] == []
        assert body["code"] == "bad.request" and body["message"]


def test_unknown_api_paths_get_a_genesys_404(sandbox: SandboxHandle, token: str) -> None:
    response = httpx.get(
        f"{sandbox.api_url}/api/v2/users/me", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 404
    assert is_genesys_error(response.json(), 404)
