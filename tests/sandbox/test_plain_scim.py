"""The plain scim2-server fixture: RFC 7644 as is, with Bulk, wiped between tests."""

import json

from tests.fixtures.sandbox import PlainScimHandle
from tests.sandbox.payloads import CORE


def test_the_plain_server_advertises_bulk(plain_scim: PlainScimHandle) -> None:
    with plain_scim.client() as client:
        config = client.get("/ServiceProviderConfig").json()

    assert config["bulk"]["supported"] is True


def test_users_pages_through_every_user(plain_scim: PlainScimHandle) -> None:
    with plain_scim.client() as client:
        for number in range(120):
            user = {"schemas": [CORE], "userName": f"u{number}@example.com"}
            assert client.post("/Users", json=user).status_code == 201

    assert len(plain_scim.users()) == 120


def test_each_test_starts_empty(plain_scim: PlainScimHandle) -> None:
    assert plain_scim.users() == []


def test_connection_json_carries_the_bearer_token(plain_scim: PlainScimHandle) -> None:
    assert json.loads(plain_scim.connection_json()) == {
        "conn_type": "http",
        "extra": {"base_url": plain_scim.scim_base_url, "bearer_token": plain_scim.bearer_token},
    }
