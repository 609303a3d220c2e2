"""Behaviour 3: Genesys's User schemas and ServiceProviderConfig, and the --bulk flag."""

from pathlib import Path

import httpx
import pytest

from tests.fixtures.sandbox import SandboxHandle, start_sandbox
from tests.sandbox.payloads import CORE, ENTERPRISE, GENESYS, is_genesys_error, new_user, patch


def attributes(schema: dict) -> dict[str, dict]:
    listed = schema.get("attributes") or schema.get("subAttributes") or []
    return {attribute["name"]: attribute for attribute in listed}


def test_schemas_describe_genesys_users(scim: httpx.Client) -> None:
    schemas = {s["id"]: s for s in scim.get("/schemas").json()["Resources"]}

    core = attributes(schemas[CORE])
    assert "name" not in core
    assert core["displayName"]["required"] is True
    assert core["userName"]["returned"] == core["active"]["returned"] == "always"
    phone_type = attributes(core["phoneNumbers"])["type"]
    assert phone_type["canonicalValues"] == [
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
    ]
    enterprise = attributes(schemas[ENTERPRISE])
    assert {"division", "department", "manager", "employeeNumber", "dateHire"} <= enterprise.keys()
    assert enterprise["dateHire"]["type"] == "string"
    genesys = attributes(schemas[GENESYS])
    skills = attributes(genesys["routingSkills"])
    assert skills["proficiency"]["type"] == "decimal"
    assert {"routingSkills", "routingLanguages", "externalIds"} <= genesys.keys()


def test_schema_files_ship_in_the_package() -> None:
    resources = Path(__file__).resolve().parents[2] / "plugins" / "genesys_sandbox" / "resources"

    assert {p.name for p in resources.glob("*.json")} >= {
        "schemas.json",
        "resource-types.json",
        "service-provider-config.json",
    }


def test_service_provider_config_matches_genesys(scim: httpx.Client) -> None:
    config = scim.get("/serviceproviderconfig").json()

    assert config["patch"]["supported"] is True
    assert config["filter"]["supported"] is True
    assert config["etag"]["supported"] is True
    assert config["bulk"]["supported"] is False
    assert config["changePassword"]["supported"] is False


def test_display_name_is_required_on_create(scim: httpx.Client) -> None:
    user = new_user()
    del user["displayName"]

    response = scim.post("/users", json=user)

    assert response.status_code == 400
    assert is_genesys_error(response.json(), 400)
    assert "displayName" in response.json()["message"]


def test_extension_attributes_round_trip(scim: httpx.Client) -> None:
    user = new_user(
        **{
            ENTERPRISE: {
                "division": "Sales",
                "department": "Inbound",
                "employeeNumber": "0042",
                "dateHire": "2024-03-01",
            },
            GENESYS: {
                "routingSkills": [{"name": "Billing", "proficiency": 4.5}],
                "routingLanguages": [{"name": "French", "proficiency": 3}],
                "externalIds": [{"authority": "hris", "value": "0042"}],
            },
        }
    )
    manager = scim.post("/users", json=new_user(2)).json()
    user[ENTERPRISE]["manager"] = {"value": manager["id"]}

    created = scim.post("/users", json=user).json()
    fetched = scim.get(f"/users/{created['id']}").json()

    assert fetched[ENTERPRISE]["dateHire"] == "2024-03-01"
    assert fetched[ENTERPRISE]["manager"]["value"] == manager["id"]
    assert fetched[GENESYS]["routingSkills"] == [{"name": "Billing", "proficiency": 4.5}]
    assert {"authority": "hris", "value": "0042"} in fetched[GENESYS]["externalIds"]


def test_routing_limits_and_date_format_are_checked(scim: httpx.Client) -> None:
    too_many = [{"name": f"skill{i}", "proficiency": 1} for i in range(51)]
    cases = [
        {GENESYS: {"routingSkills": too_many}},
        {GENESYS: {"routingLanguages": [{"name": "French", "proficiency": 6}]}},
        *(
            {ENTERPRISE: {"division": "Home", "dateHire": date}}
            for date in ("01/03/2024", "2024-13-01", "2024-02-30", "yesterday", "")
        ),
    ]
    for number, extra in enumerate(cases, start=1):
        response = scim.post("/users", json=new_user(number, **extra))
        assert response.status_code == 400, extra
        assert is_genesys_error(response.json(), 400)
    assert scim.get("/users").json()["totalResults"] == 0


@pytest.mark.parametrize(
    "sent",
    [
        "2024-03-01",
        "2024-03-01T00:00:00Z",
        "2024-03-01T00:00:00.000Z",
        "2024-03-01T23:30:00-05:00",
        "2024-03-01T08:15:00+02:00",
    ],
)
def test_date_hire_accepts_iso_8601_and_returns_a_date(scim: httpx.Client, sent: str) -> None:
    hired = {ENTERPRISE: {"division": "Home", "dateHire": sent}}

    created = scim.post("/users", json=new_user(1, **hired))
    replaced = scim.put(f"/users/{created.json()['id']}", json=new_user(1, **hired))
    patched = scim.patch(
        f"/users/{created.json()['id']}",
        json=patch({"op": "replace", "path": f"{ENTERPRISE}:dateHire", "value": sent}),
    )
    fetched = scim.get(f"/users/{created.json()['id']}")

    assert created.status_code == 201
    for response in (created, replaced, patched, fetched):
        assert response.json()[ENTERPRISE]["dateHire"] == "2024-03-01"
    assert replaced.headers["ETag"] == patched.headers["ETag"] == created.headers["ETag"]


def test_bulk_flag_turns_bulk_on_keeps_the_rules_and_counts_each_operation(
    tmp_path: Path,
) -> None:
    with start_sandbox(tmp_path, bulk=True) as box:
        headers = {"Authorization": f"Bearer {box.access_token()}"}
        config = httpx.get(f"{box.scim_base_url}/ServiceProviderConfig").json()
        astronaut = new_user(3, roles=[{"value": "Astronaut"}])
        bulk = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": f"u{n}", "data": user}
                for n, user in ((1, new_user(1, roles=[])), (2, new_user(2)), (3, astronaut))
            ],
        }
        response = httpx.post(f"{box.scim_base_url}/Bulk", json=bulk, headers=headers)
        stats = box.stats()
        users = box.users()

    assert config["bulk"]["supported"] is True
    assert response.status_code == 200
    operations = response.json()["Operations"]
    assert [op["status"] for op in operations] == ["201", "201", "400"]
    assert "Astronaut" in operations[2]["response"]["detail"]
    assert [(u["userName"], u["roles"]) for u in users] == [
        ("agent1@example.com", [{"value": "employee"}]),
        ("agent2@example.com", [{"value": "employee"}]),
    ]
    assert stats["writes"] == 3


def test_bulk_is_refused_without_the_flag(scim: httpx.Client) -> None:
    bulk = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []}

    response = scim.post("/Bulk", json=bulk)

    assert response.status_code == 501
    assert is_genesys_error(response.json(), 501)


def test_sandbox_handle_urls(sandbox: SandboxHandle) -> None:
    assert sandbox.scim_base_url == sandbox.url + "/api/v2/scim/v2"
    assert sandbox.api_url == sandbox.url
