"""Behaviour 7: ETags equal meta.version; a stale If-Match answers 400 invalidVers."""

import httpx

from tests.sandbox.payloads import SCIM_ERROR, new_user, patch

VERSION_MISMATCH = "Version does not match current version"


def test_responses_carry_the_version_as_etag(scim: httpx.Client) -> None:
    created = scim.post("/users", json=new_user())
    fetched = scim.get(f"/users/{created.json()['id']}")

    assert created.headers["ETag"] == created.json()["meta"]["version"]
    assert fetched.headers["ETag"] == fetched.json()["meta"]["version"]
    not_modified = scim.get(
        f"/users/{created.json()['id']}", headers={"If-None-Match": fetched.headers["ETag"]}
    )
    assert not_modified.status_code == 304


def test_a_stale_if_match_answers_400_invalid_vers(scim: httpx.Client) -> None:
    created = scim.post("/users", json=new_user())
    user_id, stale = created.json()["id"], created.headers["ETag"]
    title = patch({"op": "replace", "path": "title", "value": "Lead"})
    fresh = scim.patch(f"/users/{user_id}", json=title, headers={"If-Match": stale})
    assert fresh.status_code == 200
    assert fresh.headers["ETag"] != stale

    stale_header = {"If-Match": stale}
    answers = [
        scim.put(f"/users/{user_id}", json=new_user(), headers=stale_header),
        scim.patch(f"/users/{user_id}", json=title, headers=stale_header),
        scim.delete(f"/users/{user_id}", headers=stale_header),
    ]

    for response in answers:
        assert response.status_code == 400
        assert response.json() == {
            "schemas": [SCIM_ERROR],
            "status": "400",
            "scimType": "invalidVers",
            "detail": VERSION_MISMATCH,
        }
    assert scim.get(f"/users/{user_id}").json()["title"] == "Lead"
    deleted = scim.delete(f"/users/{user_id}", headers={"If-Match": fresh.headers["ETag"]})
    assert deleted.status_code == 204
