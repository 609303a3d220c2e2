"""Connection settings: Genesys regions, other SCIM servers, environment, secrets kept out."""

from __future__ import annotations

import pytest

from genesys_sync.scim import GENESYS_REGIONS, ScimConfigError, ScimConnectionConfig
from genesys_sync.scim.connection import normalize_region

SECRET = "s3cr3t-value-never-shown"


def test_from_fields_for_a_genesys_region() -> None:
    config = ScimConnectionConfig.from_fields("mypurecloud.ie", "client-1", SECRET, {})
    assert config.base_url == "https://api.mypurecloud.ie/api/v2/scim/v2"
    assert config.token_url == "https://login.mypurecloud.ie/oauth/token"
    assert config.api_url == "https://api.mypurecloud.ie"
    assert config.client_id == "client-1"
    assert config.client_secret == SECRET
    assert config.flavor == "genesys"
    assert config.users_path == "/users"
    assert config.requests_per_minute == 300
    assert config.uses_oauth
    assert config.limiter_key == "https://login.mypurecloud.ie/oauth/token#client-1"
    assert SECRET not in repr(config)


@pytest.mark.parametrize(
    "host", ["api.usw2.pure.cloud", "https://login.usw2.pure.cloud/", "USW2.PURE.CLOUD"]
)
def test_region_spellings(host: str) -> None:
    config = ScimConnectionConfig.from_fields(host, "id", SECRET, None)
    assert config.base_url == "https://api.usw2.pure.cloud/api/v2/scim/v2"


def test_unknown_region_names_the_valid_ones() -> None:
    with pytest.raises(ScimConfigError) as caught:
        ScimConnectionConfig.from_fields("mygenesys.ca", "id", SECRET, {})
    message = str(caught.value)
    assert "mygenesys.ca" in message
    for region in GENESYS_REGIONS:
        assert region in message
    assert SECRET not in message


def test_normalize_region() -> None:
    assert normalize_region("api.mypurecloud.com.au") == "mypurecloud.com.au"
    with pytest.raises(ScimConfigError):
        normalize_region("")


def test_from_fields_for_any_scim_server_with_client_credentials() -> None:
    extra = {
        "base_url": "http://127.0.0.1:8080/scim/v2/",
        "token_url": "http://127.0.0.1:8080/oauth/token",
        "api_url": "http://127.0.0.1:8080",
        "requests_per_minute": "120",
        "flavor": "genesys",
    }
    config = ScimConnectionConfig.from_fields(None, "client-2", SECRET, extra)
    assert config.base_url == "http://127.0.0.1:8080/scim/v2"
    assert config.token_url == extra["token_url"]
    assert config.api_url == "http://127.0.0.1:8080"
    assert config.requests_per_minute == 120
    assert config.flavor == "genesys" and config.users_path == "/users"
    assert config.client_secret == SECRET


def test_from_fields_with_a_bearer_token_is_generic() -> None:
    extra = {"base_url": "http://localhost:9000/v2", "bearer_token": SECRET}
    config = ScimConnectionConfig.from_fields("", None, None, extra)
    assert not config.uses_oauth
    assert config.bearer_token == SECRET
    assert config.flavor == "generic" and config.users_path == "/Users"
    assert config.api_url is None
    assert config.limiter_key == "http://localhost:9000/v2"
    assert SECRET not in repr(config)


def test_flavor_inferred_from_a_genesys_like_path_and_users_path_overridable() -> None:
    config = ScimConnectionConfig(
        base_url="http://127.0.0.1:1/api/v2/scim/v2", bearer_token="t", users_path="Users"
    )
    assert config.flavor == "genesys"
    assert config.users_path == "/Users"


def test_extra_as_json_text() -> None:
    config = ScimConnectionConfig.from_fields(
        None, None, None, '{"base_url": "http://h/v2", "bearer_token": "x"}'
    )
    assert config.base_url == "http://h/v2"
    with pytest.raises(ScimConfigError, match="not valid JSON"):
        ScimConnectionConfig.from_fields(None, None, None, "{nope")


@pytest.mark.parametrize(
    ("host", "login", "password", "extra", "match"),
    [
        (None, "id", SECRET, {}, "host to the Genesys Cloud region"),
        ("mypurecloud.com", None, SECRET, {}, "client id"),
        ("mypurecloud.com", "id", None, {}, "client id"),
        (None, "id", SECRET, {"base_url": "http://h/v2"}, "token_url"),
        (None, None, None, {"base_url": "http://h/v2", "token_url": "http://h/t"}, "login"),
        (None, "i", SECRET, {"base_url": "ftp://h/v2", "bearer_token": "b"}, "http"),
        (None, "i", SECRET, {"base_url": "http://h", "bearer_token": "b", "flavor": "x"}, "flavor"),
        (
            None,
            "i",
            SECRET,
            {"base_url": "http://h", "bearer_token": "b", "requests_per_minute": "lots"},
            "requests_per_minute",
        ),
        (
            None,
            "i",
            SECRET,
            {"base_url": "http://h", "bearer_token": "b", "requests_per_minute": 0},
            "requests_per_minute",
        ),
    ],
)
def test_actionable_errors_never_echo_the_secret(
    host: str | None, login: str | None, password: str | None, extra: dict, match: str
) -> None:
    with pytest.raises(ScimConfigError, match=match) as caught:
        ScimConnectionConfig.from_fields(host, login, password, extra)
    assert SECRET not in str(caught.value)


def test_from_env() -> None:
    env = {
        "GENESYS_REGION": "mypurecloud.de",
        "GENESYS_CLIENT_ID": "cid",
        "GENESYS_CLIENT_SECRET": SECRET,
    }
    config = ScimConnectionConfig.from_env(env)
    assert config.base_url == "https://api.mypurecloud.de/api/v2/scim/v2"
    assert config.client_id == "cid" and config.client_secret == SECRET


def test_from_env_missing_and_wrong_region() -> None:
    with pytest.raises(ScimConfigError, match="GENESYS_CLIENT_ID, GENESYS_CLIENT_SECRET"):
        ScimConnectionConfig.from_env({"GENESYS_REGION": "mypurecloud.de"})
    env = {
        "GENESYS_REGION": "mygenesys.ca",
        "GENESYS_CLIENT_ID": "cid",
        "GENESYS_CLIENT_SECRET": SECRET,
    }
    with pytest.raises(ScimConfigError, match="mypurecloud.com") as caught:
        ScimConnectionConfig.from_env(env)
    assert SECRET not in str(caught.value)


def test_config_is_frozen() -> None:
    config = ScimConnectionConfig(base_url="http://h/v2", bearer_token="t")
    with pytest.raises(AttributeError):
        config.base_url = "http://other"  # type: ignore[misc]
