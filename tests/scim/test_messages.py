"""Pure request building: filters, PatchOp, Bulk chunking and limits, list paging."""

from __future__ import annotations

import json

import pytest

from genesys_sync.scim import bulk_limits, chunk_bulk_operations, eq_filter, quote_filter_value
from genesys_sync.scim.messages import (
    BULK_REQUEST,
    PATCH_OP,
    encode_json,
    etag_of,
    next_start_index,
    parse_list_response,
    prepare_bulk,
    prepare_delete_user,
    prepare_discovery,
    prepare_list_users,
    prepare_patch_user,
    prepare_public_api_page,
)


def test_filter_quoting_escapes_quotes_and_backslashes() -> None:
    assert quote_filter_value('a"b\\c') == '"a\\"b\\\\c"'
    assert eq_filter("userName", 'o"brien@example.com') == 'userName eq "o\\"brien@example.com"'
    assert eq_filter("externalId", "E1") == 'externalId eq "E1"'
    assert eq_filter("active", False) == "active eq false"
    assert eq_filter("x", 3) == "x eq 3"
    ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"
    assert eq_filter(ext, "42") == f'{ext} eq "42"'
    assert eq_filter("emails.value", "a@b") == 'emails.value eq "a@b"'


@pytest.mark.parametrize("attribute", ["", "user name", 'x"', "a eq b or 1", "(x"])
def test_filter_refuses_odd_attribute_paths(attribute: str) -> None:
    with pytest.raises(ValueError):
        eq_filter(attribute, "v")


def test_list_users_params() -> None:
    request = prepare_list_users(
        "/users",
        filter="active eq false",
        attributes=["id", "userName"],
        excluded_attributes=["roles"],
        start_index=26,
        count=25,
    )
    assert request.method == "GET" and request.path == "/users"
    assert dict(request.params) == {
        "startIndex": "26",
        "count": "25",
        "filter": "active eq false",
        "attributes": "id,userName",
        "excludedAttributes": "roles",
    }


def test_patch_with_if_match_and_id_quoted() -> None:
    ops = [{"op": "replace", "path": "active", "value": False}]
    request = prepare_patch_user("/Users", "a/b", ops, etag='W/"3"')
    assert request.path == "/Users/a%2Fb"
    assert dict(request.headers) == {
        "Content-Type": "application/scim+json",
        "If-Match": 'W/"3"',
    }
    assert json.loads(request.body or b"") == {"schemas": [PATCH_OP], "Operations": ops}
    with pytest.raises(ValueError):
        prepare_patch_user("/Users", "id", [])
    assert dict(prepare_delete_user("/Users", "id").headers) == {}


def test_discovery_paths_by_flavor() -> None:
    assert prepare_discovery("genesys", "service_provider_config").path == "/serviceproviderconfig"
    assert prepare_discovery("genesys", "schemas").path == "/schemas"
    assert prepare_discovery("generic", "service_provider_config").path == "/ServiceProviderConfig"
    assert prepare_discovery("generic", "schemas").path == "/Schemas"


def test_public_api_page() -> None:
    request = prepare_public_api_page("/api/v2/authorization/roles", 3)
    assert request.public_api
    assert dict(request.params) == {"pageSize": "100", "pageNumber": "3"}


def test_bulk_message() -> None:
    ops = [{"method": "DELETE", "path": "/Users/1"}]
    body = json.loads(prepare_bulk(ops, fail_on_errors=2).body or b"")
    assert body == {"schemas": [BULK_REQUEST], "Operations": ops, "failOnErrors": 2}


def _op(n: int, size: int = 10) -> dict[str, object]:
    return {
        "method": "POST",
        "path": "/Users",
        "bulkId": f"b{n}",
        "data": {"userName": f"u{n}", "displayName": "x" * size},
    }


def test_chunking_by_count_keeps_order() -> None:
    ops = [_op(n) for n in range(7)]
    chunks = chunk_bulk_operations(ops, max_operations=3, max_payload_size=1_000_000)
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert [op["bulkId"] for chunk in chunks for op in chunk] == [f"b{n}" for n in range(7)]


def test_chunking_by_payload_size_measures_the_whole_request() -> None:
    ops = [_op(n, size=200) for n in range(10)]
    limit = 1000
    chunks = chunk_bulk_operations(ops, max_operations=100, max_payload_size=limit)
    assert len(chunks) > 1
    assert sum(len(c) for c in chunks) == 10
    for chunk in chunks:
        body = prepare_bulk(chunk, fail_on_errors=2**31 - 1).body or b""
        assert len(body) <= limit
    # Greedy: adding the next operation would have gone over.
    for chunk, following in zip(chunks, chunks[1:], strict=False):
        assert len(prepare_bulk([*chunk, following[0]], fail_on_errors=2**31 - 1).body) > limit


def test_chunking_errors() -> None:
    assert chunk_bulk_operations([], 10, 1000) == []
    with pytest.raises(ValueError, match="over the server's maxPayloadSize"):
        chunk_bulk_operations([_op(1, size=5000)], 10, 1000)
    with pytest.raises(ValueError):
        chunk_bulk_operations([_op(1)], 0, 1000)


def test_bulk_limits() -> None:
    spc = {"bulk": {"supported": True, "maxOperations": 1000, "maxPayloadSize": 1048576}}
    assert bulk_limits(spc) == (True, 1000, 1048576)
    assert bulk_limits({"bulk": {"supported": False}}) == (False, 0, 0)
    assert bulk_limits({}) == (False, 0, 0)
    assert bulk_limits({"bulk": {"supported": "yes", "maxOperations": "x"}}) == (False, 0, 0)


def test_etag_from_header_or_meta() -> None:
    assert etag_of({"ETag": 'W/"2"'}, {"meta": {"version": 'W/"1"'}}) == 'W/"2"'
    assert etag_of({}, {"meta": {"version": 'W/"1"'}}) == 'W/"1"'
    assert etag_of({}, {}) is None
    assert etag_of({}, None) is None


def test_paging_stops_on_total_results_or_short_page() -> None:
    full = {"totalResults": 5, "Resources": [{"id": "1"}, {"id": "2"}], "startIndex": 1}
    page = parse_list_response(full, 1)
    assert next_start_index(page, 1, 2) == 3
    last = parse_list_response({"totalResults": 5, "Resources": [{"id": "5"}]}, 5)
    assert next_start_index(last, 5, 2) is None
    # The server caps count below what was asked: totalResults still drives paging.
    capped = parse_list_response({"totalResults": 300, "Resources": [{}] * 100}, 1)
    assert next_start_index(capped, 1, 200) == 101
    # No totalResults: a short page is the last.
    short = parse_list_response({"Resources": [{}]}, 1)
    assert next_start_index(short, 1, 2) is None
    assert next_start_index(parse_list_response({"Resources": [{}, {}]}, 1), 1, 2) == 3
    empty = parse_list_response({"totalResults": 10, "Resources": []}, 11)
    assert next_start_index(empty, 11, 2) is None
    with pytest.raises(ValueError):
        parse_list_response([], 1)


def test_encode_json_is_compact_utf8() -> None:
    assert encode_json({"a": "é", "b": [1]}) == '{"a":"é","b":[1]}'.encode()
