"""Behaviour 4: Genesys's user rules: userName, listing, catalogue, roles, phones, managers, ids."""

import json
from pathlib import Path

import httpx
import pytest

from tests.fixtures.sandbox import SandboxHandle, start_sandbox
from tests.sandbox.payloads import (
    ENTERPRISE,
    GENESYS,
    SCIM_ERROR,
    is_genesys_error,
    is_scim_error,
    new_user,
    patch,
)

SYSTEM_AUTHORITY = "x-pc:scimv2:v1"
CATALOGUE = Path(__file__).resolve().parents[2] / "include" / "sandbox" / "catalogue.json"
SDK_PHONE_TYPES = (
    "work",
    "work2",
    "work3",
    "work4",
    "home",
    "mobile",
    "other",
    "microsoftteams",
    "zoomphone",
    "eightbyeight",
    "ringcentral",
)


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


def test_deactivation_keeps_the_roles_by_patch_and_by_put(scim: httpx.Client) -> None:
    roles = [{"value": "Supervisor"}, {"value": "employee"}]
    by_patch = scim.post("/users", json=new_user(1, roles=roles)).json()
    by_put = scim.post("/users", json=new_user(2, roles=roles)).json()

    patched = scim.patch(
        f"/users/{by_patch['id']}", json=patch({"op": "replace", "path": "active", "value": False})
    )
    put = scim.put(f"/users/{by_put['id']}", json=new_user(2, roles=roles, active=False))
    reactivated = scim.patch(
        f"/users/{by_patch['id']}", json=patch({"op": "replace", "path": "active", "value": True})
    )

    assert patched.status_code == 200
    assert patched.json()["active"] is False and patched.json()["roles"] == roles
    assert put.status_code == 200
    assert put.json()["active"] is False and put.json()["roles"] == roles
    assert reactivated.json()["active"] is True and reactivated.json()["roles"] == roles
    inactive = scim.get("/users", params={"filter": "active eq false"}).json()["Resources"]
    assert [(u["id"], u["roles"]) for u in inactive] == [(by_put["id"], roles)]


def test_deletion_loses_the_roles(scim: httpx.Client) -> None:
    roles = [{"value": "Supervisor"}, {"value": "employee"}]
    deleted = scim.post("/users", json=new_user(1, roles=roles)).json()
    assert scim.delete(f"/users/{deleted['id']}").status_code == 204

    again = scim.post("/users", json=new_user(1, roles=[]))

    assert again.status_code == 201
    assert again.json()["id"] != deleted["id"]
    assert again.json()["roles"] == [{"value": "employee"}]


def test_new_users_get_the_default_employee_role(
    scim: httpx.Client, sandbox: SandboxHandle
) -> None:
    supervisor = scim.post("/users", json=new_user(1, roles=[{"value": "Supervisor"}]))
    no_roles = new_user(2)
    del no_roles["roles"]
    bare = scim.post("/users", json=no_roles)
    already = scim.post("/users", json=new_user(3, roles=[{"value": "employee"}]))
    seeded = sandbox.seed_user({"userName": "seeded@example.com", "displayName": "Seeded"})

    assert supervisor.status_code == 201
    assert supervisor.json()["roles"] == [{"value": "Supervisor"}, {"value": "employee"}]
    assert bare.status_code == 201 and bare.json()["roles"] == [{"value": "employee"}]
    assert already.status_code == 201 and already.json()["roles"] == [{"value": "employee"}]
    assert seeded["roles"] == [{"value": "employee"}]
    stored = scim.get(f"/users/{supervisor.json()['id']}").json()
    assert stored["roles"] == [{"value": "Supervisor"}, {"value": "employee"}]


def test_the_default_role_is_in_every_catalogue(tmp_path: Path) -> None:
    assert "employee" in json.loads(CATALOGUE.read_text())["roles"]
    catalogue = tmp_path / "catalogue.json"
    catalogue.write_text(json.dumps({"roles": ["Astronaut"], "divisions": ["Mars"]}))

    with start_sandbox(tmp_path, catalogue=catalogue) as box:
        headers = {"Authorization": f"Bearer {box.access_token()}"}
        roles = httpx.get(f"{box.api_url}/api/v2/authorization/roles", headers=headers).json()
        user = new_user(1, roles=[], **{ENTERPRISE: {"division": "Mars"}})
        created = httpx.post(f"{box.scim_base_url}/users", json=user, headers=headers)

    assert [entity["name"] for entity in roles["entities"]] == ["employee", "Astronaut"]
    assert created.status_code == 201
    assert created.json()["roles"] == [{"value": "employee"}]


def test_every_phone_needs_a_genesys_type(scim: httpx.Client) -> None:
    untyped = new_user(1, phoneNumbers=[{"value": "+15550001"}])
    fax = new_user(2, phoneNumbers=[{"value": "+15550002", "type": "fax"}])
    teams = new_user(3, phoneNumbers=[{"value": "+15550003", "type": "Teams"}])

    for user in (untyped, fax, teams):
        response = scim.post("/users", json=user)
        assert response.status_code == 400
        assert is_genesys_error(response.json(), 400)
        assert "phoneNumbers" in response.json()["message"]


def test_every_phone_type_of_the_sdk_is_accepted(scim: httpx.Client) -> None:
    phones = [
        {"value": f"+1555000{number:04d}", "type": kind}
        for number, kind in enumerate(SDK_PHONE_TYPES, start=1)
    ]

    created = scim.post("/users", json=new_user(1, phoneNumbers=phones))
    integration = scim.patch(
        f"/users/{created.json()['id']}",
        json=patch(
            {
                "op": "add",
                "path": "phoneNumbers",
                "value": [{"value": "+15559999", "type": "zoomphone"}],
            }
        ),
    )

    assert created.status_code == 201
    assert created.json()["phoneNumbers"] == phones
    assert integration.status_code == 200
    assert {"value": "+15559999", "type": "zoomphone"} in integration.json()["phoneNumbers"]


def test_a_manager_must_be_an_existing_user(scim: httpx.Client) -> None:
    manager = scim.post("/users", json=new_user(1)).json()
    report = scim.post("/users", json=new_user(2)).json()
    ghost = "00000000-0000-4000-8000-000000000000"

    def with_manager(number: int, manager_id: str) -> dict:
        return new_user(
            number, **{ENTERPRISE: {"division": "Home", "manager": {"value": manager_id}}}
        )

    answers = [
        scim.post("/users", json=with_manager(3, ghost)),
        scim.put(f"/users/{report['id']}", json=with_manager(2, ghost)),
        scim.patch(
            f"/users/{report['id']}",
            json=patch({"op": "replace", "path": f"{ENTERPRISE}:manager.value", "value": ghost}),
        ),
    ]
    accepted = scim.post("/users", json=with_manager(4, manager["id"]))

    for response in answers:
        assert response.status_code == 400
        assert response.json() == {
            "schemas": [SCIM_ERROR],
            "status": "400",
            "scimType": "invalidValue",
            "detail": f"The manager {ghost} does not exist.",
        }
    assert accepted.status_code == 201
    assert accepted.json()[ENTERPRISE]["manager"]["value"] == manager["id"]
    listed = scim.get("/users").json()["Resources"]
    assert sorted(u["userName"] for u in listed) == [
        "agent1@example.com",
        "agent2@example.com",
        "agent4@example.com",
    ]
    assert scim.get(f"/users/{report['id']}").json()[ENTERPRISE] == {
        "division": "Home",
        "employeeNumber": "0002",
    }


def test_a_user_whose_manager_was_deleted_can_still_be_updated(scim: httpx.Client) -> None:
    manager = scim.post("/users", json=new_user(1)).json()
    user = new_user(2, **{ENTERPRISE: {"division": "Home", "manager": {"value": manager["id"]}}})
    report = scim.post("/users", json=user).json()
    assert scim.delete(f"/users/{manager['id']}").status_code == 204

    retitled = scim.patch(
        f"/users/{report['id']}", json=patch({"op": "replace", "path": "title", "value": "Lead"})
    )

    assert retitled.status_code == 200
    assert retitled.json()["title"] == "Lead"


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
