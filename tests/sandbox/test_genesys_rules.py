"""Behaviour 4: Genesys's rules on userName, listing, catalogue names, roles, phones, size, ids."""

import json
from pathlib import Path

import httpx
import pytest

from tests.fixtures.sandbox import start_sandbox
from tests.sandbox.payloads import (
    ENTERPRISE,
    GENESYS,
    is_genesys_error,
    is_scim_error,
    new_user,
    patch,
)

SYSTEM_AUTHORITY = "x-pc:scimv2:v1"


def test_user_name_is_unique_case_insensitively(scim: httpx.Client) -> None:
    scim.post("/users", json=new_user(1))
    other = scim.post("/users", json=new_user(2)).json()
    clash = {"userName": "AGENT1@Example.com"}

    responses = [
        scim.post("/users", json=new_user(3, **clash)),
        scim.put(f"/users/{other['id']}", json=new_user(2, **clash)),
        scim.patch(
            f"/users/{other['id']}",
            json=patch({"op": "replace", "path": "userName", "value": clash["userName"]}),
        ),
    ]

    for response in responses:
        assert response.status_code == 409
        assert is_scim_error(response.json(), 409)
        assert response.json()["scimType"] == "uniqueness"


def test_a_list_without_filter_returns_active_users_only(scim: httpx.Client) -> None:
    active = scim.post("/users", json=new_user(1)).json()
    inactive = scim.post("/users", json=new_user(2, active=False)).json()

    listed = scim.get("/users").json()
    inactive_listed = scim.get("/users", params={"filter": "active eq false"}).json()

    assert [u["id"] for u in listed["Resources"]] == [active["id"]]
    assert listed["totalResults"] == 1
    assert [u["id"] for u in inactive_listed["Resources"]] == [inactive["id"]]


@pytest.mark.parametrize(
    "make_filter",
    [
        lambda u: 'externalId eq "E0002"',
        lambda u: 'userName eq "AGENT2@example.com"',
        lambda u: f'id eq "{u["id"]}"',
        lambda u: (
            f'{GENESYS}:externalIds[authority eq "{SYSTEM_AUTHORITY}" and value eq "{u["id"]}"]'
        ),
    ],
)
def test_equality_filters_find_one_user(scim: httpx.Client, make_filter) -> None:
    scim.post("/users", json=new_user(1))
    wanted = scim.post("/users", json=new_user(2)).json()

    found = scim.get("/users", params={"filter": make_filter(wanted)}).json()

    assert [u["id"] for u in found["Resources"]] == [wanted["id"]]


def test_unknown_role_or_division_names_are_refused(scim: httpx.Client) -> None:
    role = scim.post("/users", json=new_user(1, roles=[{"value": "Astronaut"}]))
    division = scim.post("/users", json=new_user(2, **{ENTERPRISE: {"division": "Mars"}}))
    valid = scim.post("/users", json=new_user(3)).json()
    patched = scim.patch(
        f"/users/{valid['id']}",
        json=patch({"op": "add", "path": "roles", "value": [{"value": "Astronaut"}]}),
    )

    for response, kind in ((role, "role"), (division, "division"), (patched, "role")):
        assert response.status_code == 400
        body = response.json()
        assert is_genesys_error(body, 400)
        assert kind in body["message"].lower()


def test_the_catalogue_file_is_configurable(tmp_path: Path) -> None:
    catalogue = tmp_path / "catalogue.json"
    catalogue.write_text(json.dumps({"roles": ["Astronaut"], "divisions": ["Mars"]}))

    with start_sandbox(tmp_path, catalogue=catalogue) as box:
        headers = {"Authorization": f"Bearer {box.access_token()}"}
        user = new_user(1, roles=[{"value": "Astronaut"}], **{ENTERPRISE: {"division": "Mars"}})
        accepted = httpx.post(f"{box.scim_base_url}/users", json=user, headers=headers)
        refused = httpx.post(f"{box.scim_base_url}/users", json=new_user(2), headers=headers)

    assert accepted.status_code == 201
    assert refused.status_code == 400


def test_deactivation_strips_roles_and_reactivation_does_not_restore_them(
    scim: httpx.Client,
) -> None:
    by_patch = scim.post("/users", json=new_user(1)).json()
    by_put = scim.post("/users", json=new_user(2)).json()

    patched = scim.patch(
        f"/users/{by_patch['id']}", json=patch({"op": "replace", "path": "active", "value": False})
    )
    put = scim.put(f"/users/{by_put['id']}", json=new_user(2, active=False))
    reactivated = scim.patch(
        f"/users/{by_patch['id']}", json=patch({"op": "replace", "path": "active", "value": True})
    )

    assert patched.status_code == 200 and "roles" not in patched.json()
    assert put.status_code == 200 and "roles" not in put.json()
    assert reactivated.json()["active"] is True
    assert "roles" not in reactivated.json()
    restored = scim.patch(
        f"/users/{by_patch['id']}",
        json=patch({"op": "add", "path": "roles", "value": [{"value": "employee"}]}),
    )
    assert restored.json()["roles"] == [{"value": "employee"}]


def test_every_phone_needs_a_genesys_type(scim: httpx.Client) -> None:
    untyped = new_user(1, phoneNumbers=[{"value": "+15550001"}])
    fax = new_user(2, phoneNumbers=[{"value": "+15550002", "type": "fax"}])
    typed = new_user(
        3,
        phoneNumbers=[
            {"value": "+15550003", "type": kind}
            for kind in ("work", "work2", "work3", "work4", "home", "mobile", "other")
        ],
    )

    for user in (untyped, fax):
        response = scim.post("/users", json=user)
        assert response.status_code == 400
        assert is_genesys_error(response.json(), 400)
    assert scim.post("/users", json=typed).status_code == 201


def test_bodies_over_512000_bytes_get_413(scim: httpx.Client) -> None:
    user = new_user(1, title="x" * 512_001)

    response = scim.post("/users", json=user)

    assert response.status_code == 413
    assert is_genesys_error(response.json(), 413)


def test_the_system_external_id_is_given_and_immutable(scim: httpx.Client) -> None:
    created = scim.post("/users", json=new_user(1)).json()
    system_item = {"authority": SYSTEM_AUTHORITY, "value": created["id"]}
    assert system_item in created[GENESYS]["externalIds"]

    forged = {"authority": SYSTEM_AUTHORITY, "value": "forged"}
    put = scim.put(
        f"/users/{created['id']}",
        json=new_user(1, **{GENESYS: {"externalIds": [forged, {"authority": "a", "value": "b"}]}}),
    ).json()
    removed = scim.patch(
        f"/users/{created['id']}",
        json=patch({"op": "remove", "path": f"{GENESYS}:externalIds"}),
    ).json()

    assert put[GENESYS]["externalIds"] == [{"authority": "a", "value": "b"}, system_item]
    assert removed[GENESYS]["externalIds"] == [system_item]
