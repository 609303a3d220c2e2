"""Behaviour 2: the SCIM base path, both spellings of the endpoints, and bearer tokens."""

import httpx
import pytest

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.payloads import is_genesys_error, new_user


@pytest.mark.parametrize(
    "path",
    [
        "/users",
        "/Users",
        "/serviceproviderconfig",
        "/ServiceProviderConfig",
        "/schemas",
        "/Schemas",
        "/resourcetypes",
        "/ResourceTypes",
    ],
)
def test_lower_case_and_rfc_spellings_both_answer(scim: httpx.Client, path: str) -> None:
    assert scim.get(path).status_code == 200


def test_a_user_is_reachable_under_both_spellings(scim: httpx.Client) -> None:
    created = scim.post("/users", json=new_user()).json()

    assert scim.get(f"/users/{created['id']}").json()["id"] == created["id"]
    assert scim.get(f"/Users/{created['id']}").json()["id"] == created["id"]
    assert created["meta"]["location"].startswith(scim.base_url.__str__().rstrip("/"))


def test_users_need_a_bearer_token_and_discovery_does_not(sandbox: SandboxHandle) -> None:
    base = sandbox.scim_base_url

    anonymous = httpx.get(f"{base}/users")
    assert anonymous.status_code == 401
    assert is_genesys_error(anonymous.json(), 401)
    assert httpx.post(f"{base}/users", json=new_user()).status_code == 401
    for path in ("/serviceproviderconfig", "/schemas", "/resourcetypes"):
        assert httpx.get(f"{base}{path}").status_code == 200


def test_the_older_base_path_without_v2_answers_too(sandbox: SandboxHandle, token: str) -> None:
    response = httpx.get(
        f"{sandbox.url}/api/v2/scim/users", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200
    assert response.json()["totalResults"] == 0
