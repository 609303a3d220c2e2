"""Where and how to reach a SCIM server: Genesys Cloud by region, or any SCIM base URL."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from genesys_sync.scim.errors import ScimConfigError

__all__ = [
    "GENESYS_REGIONS",
    "ScimConnectionConfig",
    "genesys_urls",
    "normalize_region",
]

GENESYS_REGIONS: tuple[str, ...] = (
    "mypurecloud.com",
    "mypurecloud.ie",
    "mypurecloud.com.au",
    "mypurecloud.jp",
    "mypurecloud.de",
    "usw2.pure.cloud",
    "cac1.pure.cloud",
    "apne2.pure.cloud",
    "euw2.pure.cloud",
    "aps1.pure.cloud",
    "use2.us-gov-pure.cloud",
    "sae1.pure.cloud",
    "mec1.pure.cloud",
    "apne3.pure.cloud",
    "euc2.pure.cloud",
    "mxc1.pure.cloud",
    "apse1.pure.cloud",
    "edee1.eusc-pure.cloud",
)
"""The Genesys Cloud region domains (``purecloud_region_hosts.py`` of the official SDK)."""

FLAVORS = ("genesys", "generic")
_USERS_PATHS = {"genesys": "/users", "generic": "/Users"}


def normalize_region(value: str) -> str:
    """The region domain of ``mypurecloud.ie``, ``api.mypurecloud.ie`` or ``https://login...``.

    Raises :class:`ScimConfigError` naming the valid regions when the domain is unknown.
    """
    text = (value or "").strip().lower()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    text = text.strip("/").split("/")[0]
    for prefix in ("api.", "login.", "apps."):
        if text.startswith(prefix) and text[len(prefix) :] in GENESYS_REGIONS:
            text = text[len(prefix) :]
    if text not in GENESYS_REGIONS:
        raise ScimConfigError(
            f"Unknown Genesys Cloud region {value!r}: use one of {', '.join(GENESYS_REGIONS)} "
            "(the domain of your organisation's login page, without 'login.' or 'https://')."
        )
    return text


def genesys_urls(region: str) -> dict[str, str]:
    """SCIM base URL, OAuth token URL and Public API base URL of a Genesys Cloud region."""
    region = normalize_region(region)
    return {
        "base_url": f"https://api.{region}/api/v2/scim/v2",
        "token_url": f"https://login.{region}/oauth/token",
        "api_url": f"https://api.{region}",
    }


def _looks_like_genesys(base_url: str) -> bool:
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if host.startswith("api.") and host[4:] in GENESYS_REGIONS:
        return True
    return parts.path.rstrip("/").endswith("/api/v2/scim/v2")


def _check_url(name: str, value: str | None) -> None:
    if value is None:
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ScimConfigError(f"{name} must be an http(s) URL with a host, got {value!r}.")


def _number(extra: Mapping[str, Any], key: str, default: float, kind: type) -> Any:
    value = extra.get(key)
    if value is None or value == "":
        return default
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ScimConfigError(f"extra.{key} must be a {kind.__name__}, got {value!r}.") from None


@dataclass(frozen=True)
class ScimConnectionConfig:
    """Everything the client needs to reach one SCIM server with one set of credentials.

    Authentication is OAuth client credentials (``token_url`` + ``client_id`` +
    ``client_secret``, sent with HTTP Basic) or a static ``bearer_token``. ``flavor``
    ``"genesys"`` means lower-case paths, no ``/Bulk``, and unfiltered lists that only return
    active users; it is inferred from the base URL when not given. Secrets never appear in the
    ``repr``.
    """

    base_url: str
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    api_url: str | None = None
    requests_per_minute: int = 300
    timeout_seconds: float = 30
    max_attempts: int = 6
    max_backoff_seconds: float = 60
    flavor: str | None = None
    users_path: str | None = None
    backoff_base_seconds: float = 0.5

    def __post_init__(self) -> None:
        base_url = (self.base_url or "").strip().rstrip("/")
        _check_url("base_url", base_url)
        object.__setattr__(self, "base_url", base_url)
        if self.api_url is not None:
            api_url = self.api_url.strip().rstrip("/") or None
            _check_url("api_url", api_url)
            object.__setattr__(self, "api_url", api_url)
        _check_url("token_url", self.token_url)

        flavor = self.flavor or ("genesys" if _looks_like_genesys(base_url) else "generic")
        if flavor not in FLAVORS:
            raise ScimConfigError(f"flavor must be one of {', '.join(FLAVORS)}, got {flavor!r}.")
        object.__setattr__(self, "flavor", flavor)
        users_path = self.users_path or _USERS_PATHS[flavor]
        object.__setattr__(self, "users_path", "/" + users_path.strip("/"))

        if self.token_url:
            if not self.client_id or not self.client_secret:
                raise ScimConfigError(
                    "OAuth client credentials need both a client id and a client secret "
                    "(the connection's login and password)."
                )
        elif not self.bearer_token:
            raise ScimConfigError(
                "No credentials: give token_url with a client id and secret (OAuth client "
                "credentials), or a bearer_token."
            )
        if self.requests_per_minute < 1:
            raise ScimConfigError("requests_per_minute must be at least 1.")
        if self.max_attempts < 1:
            raise ScimConfigError("max_attempts must be at least 1.")
        if self.timeout_seconds <= 0 or self.max_backoff_seconds < 0:
            raise ScimConfigError(
                "timeout_seconds must be positive and max_backoff_seconds not negative."
            )

    @property
    def uses_oauth(self) -> bool:
        """Whether the client fetches tokens with client credentials (else a static token)."""
        return bool(self.token_url)

    @property
    def limiter_key(self) -> str:
        """What shares one rate budget: the OAuth client at its token URL, else the base URL."""
        if self.token_url:
            return f"{self.token_url}#{self.client_id}"
        return self.base_url

    @classmethod
    def for_region(
        cls, region: str, client_id: str, client_secret: str, **options: Any
    ) -> ScimConnectionConfig:
        """A Genesys Cloud connection from a region domain and OAuth client credentials."""
        urls = genesys_urls(region)
        options["flavor"] = options.get("flavor") or "genesys"
        return cls(
            base_url=urls["base_url"],
            token_url=urls["token_url"],
            api_url=options.pop("api_url", None) or urls["api_url"],
            client_id=client_id,
            client_secret=client_secret,
            **options,
        )

    @classmethod
    def from_fields(
        cls,
        host: str | None,
        login: str | None,
        password: str | None,
        extra: Mapping[str, Any] | str | None = None,
    ) -> ScimConnectionConfig:
        """The config of an Airflow connection's fields.

        Genesys Cloud: ``host`` is the region domain (``mypurecloud.ie``), ``login`` and
        ``password`` the OAuth client id and secret. Any other SCIM server (or the local
        sandbox): ``extra.base_url`` and either ``extra.token_url`` (client credentials from
        ``login``/``password``) or ``extra.bearer_token``; ``extra.api_url`` is optional.
        Optional extras for both: ``requests_per_minute`` (300), ``timeout_seconds``,
        ``max_attempts``, ``max_backoff_seconds``, ``flavor``, ``users_path``.
        """
        if isinstance(extra, str):
            try:
                extra = json.loads(extra) if extra.strip() else {}
            except ValueError:
                raise ScimConfigError("The connection's extra is not valid JSON.") from None
        extra = dict(extra or {})
        if not isinstance(extra, dict):
            raise ScimConfigError("The connection's extra must be a JSON object.")
        options: dict[str, Any] = {
            "requests_per_minute": _number(extra, "requests_per_minute", 300, int),
            "timeout_seconds": _number(extra, "timeout_seconds", 30, float),
            "max_attempts": _number(extra, "max_attempts", 6, int),
            "max_backoff_seconds": _number(extra, "max_backoff_seconds", 60, float),
            "flavor": extra.get("flavor") or None,
            "users_path": extra.get("users_path") or None,
            "api_url": extra.get("api_url") or None,
        }
        base_url = extra.get("base_url")
        if base_url:
            token_url = extra.get("token_url") or None
            bearer_token = extra.get("bearer_token") or None
            if not token_url and not bearer_token:
                raise ScimConfigError(
                    "A connection with extra.base_url needs extra.token_url (with the OAuth "
                    "client id as login and the secret as password) or extra.bearer_token."
                )
            if token_url and (not login or not password):
                raise ScimConfigError(
                    "extra.token_url is set: put the OAuth client id in the connection's login "
                    "and the client secret in its password."
                )
            return cls(
                base_url=base_url,
                token_url=token_url,
                client_id=login if token_url else None,
                client_secret=password if token_url else None,
                bearer_token=None if token_url else bearer_token,
                **options,
            )
        region = host or extra.get("region")
        if not region:
            raise ScimConfigError(
                "Set the connection's host to the Genesys Cloud region domain (for example "
                "mypurecloud.ie), or extra.base_url for another SCIM server."
            )
        if not login or not password:
            raise ScimConfigError(
                "Put the Genesys OAuth client id (client credentials grant) in the connection's "
                "login and its secret in the password."
            )
        return cls.for_region(region, login, password, **options)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ScimConnectionConfig:
        """A Genesys Cloud config from ``GENESYS_REGION``, ``GENESYS_CLIENT_ID`` and
        ``GENESYS_CLIENT_SECRET``."""
        env = os.environ if environ is None else environ
        names = ("GENESYS_REGION", "GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET")
        missing = [name for name in names if not (env.get(name) or "").strip()]
        if missing:
            raise ScimConfigError(f"Set the environment variable(s) {', '.join(missing)}.")
        return cls.for_region(
            env["GENESYS_REGION"],
            env["GENESYS_CLIENT_ID"].strip(),
            env["GENESYS_CLIENT_SECRET"].strip(),
        )
