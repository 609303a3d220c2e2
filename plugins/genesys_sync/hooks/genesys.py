"""``GenesysScimHook``: turns the ``genesys_cloud`` Airflow connection into a SCIM client config.

When no such connection exists, the original tutorial's environment variables
(``GENESYS_REGION``, ``GENESYS_CLIENT_ID``, ``GENESYS_CLIENT_SECRET``) are used.
"""

from __future__ import annotations

from typing import Any

from airflow.exceptions import AirflowNotFoundException
from airflow.sdk import BaseHook

from genesys_sync.provider_info import CONNECTION_TYPE
from genesys_sync.scim.connection import ScimConnectionConfig

DEFAULT_CONN_ID = "genesys_cloud"


def form_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """The connection's extra as the form saves it: its fields may carry the
    ``extra__genesys_cloud__`` prefix and come back empty (``None``, ``""``) when left blank."""
    prefix = f"extra__{CONNECTION_TYPE}__"
    return {k.removeprefix(prefix): v for k, v in extra.items() if v not in (None, "")}


def _config_of(conn: Any, extra: dict[str, Any]) -> ScimConnectionConfig:
    return ScimConnectionConfig.from_fields(conn.host, conn.login, conn.password, form_extra(extra))


class GenesysScimHook(BaseHook):
    """Reads the SCIM target's connection; the SCIM calls themselves live in ``genesys_sync.scim``.

    Connection fields: ``host`` = Genesys region domain, ``login``/``password`` = OAuth client
    id/secret; or, for any SCIM 2.0 server, ``extra.base_url`` with ``extra.token_url`` or
    ``extra.bearer_token``. ``extra.requests_per_minute`` defaults to 300.
    """

    conn_name_attr = "genesys_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONNECTION_TYPE
    hook_name = "Genesys Cloud"

    def __init__(self, genesys_conn_id: str = DEFAULT_CONN_ID) -> None:
        super().__init__()
        self.genesys_conn_id = genesys_conn_id

    def get_scim_config(self) -> ScimConnectionConfig:
        """The client config, from the connection or the tutorial's environment variables."""
        try:
            conn = self.get_connection(self.genesys_conn_id)
        except AirflowNotFoundException:
            return ScimConnectionConfig.from_env()
        return _config_of(conn, conn.extra_dejson)

    def test_connection(self) -> tuple[bool, str]:
        """The form's **Test** button: a token and a harmless read, with what is wrong if not."""
        import asyncio

        from genesys_sync.scim.errors import ScimConfigError
        from genesys_sync.scim.probe import probe

        try:
            config = self.get_scim_config()
        except ScimConfigError as exc:
            return False, str(exc)
        return asyncio.run(probe(config))

    async def aget_scim_config(self) -> ScimConnectionConfig:
        """Async variant for triggers (the sync one can stall the triggerer's event loop)."""
        try:
            conn = await self.aget_connection(self.genesys_conn_id)
        except AirflowNotFoundException:
            return ScimConnectionConfig.from_env()
        aextra = getattr(conn, "aextra_dejson", None)
        extra = await aextra() if aextra else conn.extra_dejson
        return _config_of(conn, extra)
