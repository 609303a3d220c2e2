"""Behaviour 5: the Public API listings of roles and divisions."""

import json
from pathlib import Path

import httpx

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.payloads import is_genesys_error

CATALOGUE = Path(__file__).resolve().parents[2] / "include" / "sandbox" / "catalogue.json"


def get(sandbox: SandboxHandle, token: str, kind: str, **params: int) -> httpx.Response:
    return httpx.get(
        f"{sandbox.api_url}/api/v2/authorization/{kind}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
    )


def test_roles_and_divisions_are_listed_with_stable_ids(sandbox: SandboxHandle, token: str) -> None:
    catalogue = json.loads(CATALOGUE.read_text())

    for kind in ("roles", "divisions"):
        first = get(sandbox, token, kind, pageSize=100).json()
        again = get(sandbox, token, kind, pageSize=100).json()
        assert [e["name"] for e in first["entities"]] == catalogue[kind]
        assert first["entities"] == again["entities"]
        assert first["total"] == len(catalogue[kind])
        assert first["pageNumber"] == 1 and first["pageCount"] == 1
        assert len({e["id"] for e in first["entities"]}) == len(catalogue[kind])


def test_listings_page_with_page_size_and_number(sandbox: SandboxHandle, token: str) -> None:
    everything = get(sandbox, token, "roles", pageSize=100).json()["entities"]

    pages = [get(sandbox, token, "roles", pageSize=4, pageNumber=n).json() for n in (1, 2)]

    assert pages[0]["pageSize"] == 4
    assert pages[0]["pageCount"] == (len(everything) + 3) // 4
    assert pages[0]["entities"] + pages[1]["entities"] == everything
    assert get(sandbox, token, "roles", pageSize=0).status_code == 400


def test_listings_need_a_token(sandbox: SandboxHandle) -> None:
    response = httpx.get(f"{sandbox.api_url}/api/v2/authorization/roles")

    assert response.status_code == 401
    assert is_genesys_error(response.json(), 401)
