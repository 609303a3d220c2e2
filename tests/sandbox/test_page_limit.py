"""Issue 8: a user page over 25 that returns the expensive attributes answers a Genesys 429."""

from pathlib import Path

import httpx
import pytest

from tests.fixtures.sandbox import SandboxHandle, start_sandbox
from tests.sandbox.payloads import GENESYS, is_genesys_error, new_user

ROUTING = f"{GENESYS}:routingSkills,{GENESYS}:routingLanguages"


@pytest.mark.parametrize(
    "params",
    [
        {"count": "26"},
        {"count": "100"},
        {"count": "26", "excludedAttributes": "roles,externalId"},
        {"count": "26", "excludedAttributes": f"externalId,{GENESYS}"},
        {"count": "26", "attributes": "userName,roles.value"},
        {"count": "26", "attributes": f"userName,{GENESYS}"},
        {"count": "26", "filter": "active eq false"},
    ],
)
def test_untrimmed_pages_over_25_answer_429(
    scim: httpx.Client, sandbox: SandboxHandle, params: dict[str, str]
) -> None:
    scim.post("/users", json=new_user(1))
    sandbox.set_faults(retry_after_seconds=4)

    response = scim.get("/users", params=params)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "4"
    body = response.json()
    assert is_genesys_error(body, 429)
    assert body["code"] == "too.many.requests"
    assert body["limit"] == {
        "key": "scim.users.untrimmed.page.size",
        "namespace": "scim",
        "value": 25,
    }
    assert "excludedAttributes" in body["message"]
    assert sandbox.stats()["rate_limited"] == 1


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"count": "25"},
        {"count": "26", "excludedAttributes": f"roles,externalId,{ROUTING}"},
        {"count": "26", "excludedAttributes": f"roles,externalId,{GENESYS}"},
        {"count": "100", "attributes": "userName,displayName,emails"},
        {"count": "26", "attributes": "id"},
    ],
)
def test_small_or_trimmed_pages_are_served(scim: httpx.Client, params: dict[str, str]) -> None:
    created = scim.post("/users", json=new_user(1)).json()

    response = scim.get("/users", params=params)

    assert response.status_code == 200
    assert [u["id"] for u in response.json()["Resources"]] == [created["id"]]


def test_a_trimmed_page_over_25_pages_through_every_user(scim: httpx.Client) -> None:
    for number in range(1, 31):
        assert scim.post("/users", json=new_user(number)).status_code == 201
    trimmed = {"count": "30", "excludedAttributes": f"roles,externalId,{GENESYS}"}

    page = scim.get("/users", params=trimmed).json()

    assert page["totalResults"] == page["itemsPerPage"] == 30
    assert all("roles" not in user and "externalId" not in user for user in page["Resources"])


def test_the_knob_turns_the_limit_off_and_reset_turns_it_back_on(
    scim: httpx.Client, sandbox: SandboxHandle
) -> None:
    assert sandbox.set_faults(max_untrimmed_page_size=0)["max_untrimmed_page_size"] == 0
    off = scim.get("/users", params={"count": "100"})
    sandbox.set_faults(max_untrimmed_page_size=50)
    fifty = [scim.get("/users", params={"count": str(n)}).status_code for n in (50, 51)]
    sandbox.reset()
    back = scim.get("/users", params={"count": "26"})

    assert off.status_code == 200
    assert fifty == [200, 429]
    assert back.status_code == 429
    refused = httpx.post(f"{sandbox.url}/_sandbox/faults", json={"max_untrimmed_page_size": -1})
    assert refused.status_code == 400


def test_the_flag_sets_the_limit_at_start(tmp_path: Path) -> None:
    with start_sandbox(tmp_path, data_file=None, max_untrimmed_page_size=0) as box:
        headers = {"Authorization": f"Bearer {box.access_token()}"}
        response = httpx.get(f"{box.scim_base_url}/users?count=100", headers=headers)
        knobs = box.faults()

    assert response.status_code == 200
    assert knobs["max_untrimmed_page_size"] == 0
