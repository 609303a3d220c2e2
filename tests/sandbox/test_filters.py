"""Issue 8: the list filters Genesys documents, in its short names (email, manager, division...)."""

import httpx
import pytest

from tests.sandbox.payloads import ENTERPRISE, new_user


@pytest.fixture
def people(scim: httpx.Client) -> dict[str, dict]:
    """A manager in Home and a report in Sales whose work email differs from its userName."""
    manager = scim.post("/users", json=new_user(1)).json()
    report = new_user(
        2,
        emails=[{"value": "desk.two@example.com", "type": "work"}],
        **{
            ENTERPRISE: {
                "division": "Sales",
                "employeeNumber": "E-77",
                "manager": {"value": manager["id"]},
            }
        },
    )
    return {"manager": manager, "report": scim.post("/users", json=report).json()}


@pytest.mark.parametrize(
    ("make_filter", "who"),
    [
        (lambda p: 'email eq "agent1@example.com"', "manager"),
        (lambda p: 'email eq "AGENT2@example.com"', "report"),
        (lambda p: 'email eq "desk.two@example.com"', "report"),
        (lambda p: f'manager eq "{p["manager"]["id"]}"', "report"),
        (lambda p: 'division eq "Sales"', "report"),
        (lambda p: 'division eq "Home"', "manager"),
        (lambda p: 'employeeNumber eq "E-77"', "report"),
        (lambda p: 'employeeNumber eq "0001"', "manager"),
        (lambda p: 'Division eq "Sales" and active eq true', "report"),
        (lambda p: 'not (email eq "agent1@example.com")', "report"),
    ],
)
def test_documented_filters_find_the_user(
    scim: httpx.Client, people: dict[str, dict], make_filter, who: str
) -> None:
    response = scim.get("/users", params={"filter": make_filter(people)})

    assert response.status_code == 200
    body = response.json()
    assert [u["id"] for u in body["Resources"]] == [people[who]["id"]]
    assert body["totalResults"] == 1


def test_short_names_match_nobody_when_nothing_matches(
    scim: httpx.Client, people: dict[str, dict]
) -> None:
    for expression in (
        'email eq "nobody@example.com"',
        'manager eq "00000000-0000-4000-8000-000000000000"',
        'division eq "Billing"',
        'employeeNumber eq "E-78"',
    ):
        body = scim.get("/users", params={"filter": expression}).json()
        assert (body["totalResults"], body["Resources"]) == (0, []), expression


def test_rfc_spellings_still_work(scim: httpx.Client, people: dict[str, dict]) -> None:
    expression = f'{ENTERPRISE}:manager.value eq "{people["manager"]["id"]}"'

    body = scim.get("/users", params={"filter": expression}).json()

    assert [u["id"] for u in body["Resources"]] == [people["report"]["id"]]


def test_short_name_filters_see_inactive_users_when_asked(scim: httpx.Client) -> None:
    gone = new_user(3, active=False, **{ENTERPRISE: {"division": "Billing"}})
    inactive = scim.post("/users", json=gone).json()

    body = scim.get("/users", params={"filter": 'division eq "Billing"'}).json()

    assert [u["id"] for u in body["Resources"]] == [inactive["id"]]
    assert body["Resources"][0]["active"] is False
