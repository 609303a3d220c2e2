"""Issue 8: with attributes= or excludedAttributes=, id, userName, active and meta still come."""

import httpx
import pytest

from tests.sandbox.payloads import CORE, new_user, patch

ALWAYS = {"schemas", "id", "userName", "active", "meta"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"attributes": "displayName"}, ALWAYS | {"displayName"}),
        ({"attributes": "title"}, ALWAYS),
        ({"attributes": f"{CORE}:displayName,meta.version"}, ALWAYS | {"displayName"}),
        (
            {"excludedAttributes": "id,userName,active,meta,emails,phoneNumbers,roles,externalId"},
            ALWAYS
            | {
                "displayName",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User",
            },
        ),
    ],
)
def test_lists_and_reads_always_return_the_four(
    scim: httpx.Client, params: dict[str, str], expected: set[str]
) -> None:
    created = scim.post("/users", json=new_user(1)).json()

    listed = scim.get("/users", params=params)
    read = scim.get(f"/users/{created['id']}", params=params)

    assert listed.status_code == read.status_code == 200
    assert set(listed.json()["Resources"][0]) == expected
    assert set(read.json()) == expected
    assert read.json()["meta"]["version"] == created["meta"]["version"]
    assert read.json()["active"] is True and read.json()["userName"] == "agent1@example.com"


def test_writes_with_attributes_return_the_four_too(scim: httpx.Client) -> None:
    created = scim.post("/users", json=new_user(1)).json()

    patched = scim.patch(
        f"/users/{created['id']}",
        params={"attributes": "title"},
        json=patch({"op": "replace", "path": "title", "value": "Lead"}),
    )

    assert patched.status_code == 200
    assert set(patched.json()) == ALWAYS | {"title"}
    assert patched.json()["meta"]["version"] == patched.headers["ETag"]
