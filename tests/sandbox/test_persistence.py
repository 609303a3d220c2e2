"""Behaviour 11: --data-file keeps users across restarts; without it, memory only."""

import json
from pathlib import Path

import httpx

from tests.fixtures.sandbox import start_sandbox
from tests.sandbox.payloads import new_user, patch


def without_locations(users: list[dict]) -> list[dict]:
    """Drop meta.location, which names the port of the server that answered."""
    return [{**u, "meta": {k: v for k, v in u["meta"].items() if k != "location"}} for u in users]


def test_a_restarted_sandbox_keeps_its_users(tmp_path: Path) -> None:
    data_file = tmp_path / "users.json"
    with start_sandbox(tmp_path / "first", data_file=data_file) as box:
        headers = {"Authorization": f"Bearer {box.access_token()}"}
        created = httpx.post(f"{box.scim_base_url}/users", json=new_user(), headers=headers).json()
        body = patch({"op": "replace", "path": "active", "value": False})
        httpx.patch(f"{box.scim_base_url}/users/{created['id']}", json=body, headers=headers)
        before = box.users()
    assert [u["id"] for u in json.loads(data_file.read_text())] == [created["id"]]

    with start_sandbox(tmp_path / "second", data_file=data_file) as box:
        after = box.users()
        headers = {"Authorization": f"Bearer {box.access_token()}"}
        updated = httpx.patch(
            f"{box.scim_base_url}/users/{created['id']}",
            json=patch({"op": "replace", "path": "title", "value": "Lead"}),
            headers=headers,
        )

    assert without_locations(after) == without_locations(before)
    assert updated.status_code == 200
    assert updated.headers["ETag"] not in {u["meta"]["version"] for u in before}
    assert not list(tmp_path.glob(".*.tmp"))


def test_without_a_data_file_users_live_in_memory(tmp_path: Path) -> None:
    with start_sandbox(tmp_path, data_file=None) as box:
        box.seed_user({"userName": "a@example.com", "displayName": "A"})
        assert len(box.users()) == 1

    assert not list(tmp_path.glob("*.json"))
