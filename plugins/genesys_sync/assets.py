"""The sync's Airflow Assets: the HRIS export it reads and, per Genesys organisation, the users
it writes.

* ``HRIS_EXPORT`` (``hris://export/employees``, name ``hris_export``): the inlet of the
  ``validate`` task.
* ``genesys://<API host>/users``, one per organisation (Genesys Cloud: the region's API host,
  e.g. ``genesys://api.mypurecloud.ie/users``; another SCIM server: its host and port): an event
  each time a run **applied** something there (not on a dry run, not when nothing was written).
  The ``report`` task emits it through the asset alias ``genesys_users`` (the organisation is
  known from the connection at run time only), so a downstream DAG schedules on
  ``Asset("genesys://api.mypurecloud.ie/users")``. The event's extra holds counts, never people.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import Asset, AssetAlias

log = logging.getLogger(__name__)

HRIS_EXPORT = Asset(name="hris_export", uri="hris://export/employees", group="hris")
GENESYS_USERS = AssetAlias(name="genesys_users", group="genesys")
#: What the asset event's extra carries from the run's summary (counts and paths, no one's data).
EXTRA_KEYS = ("status", "writes", "failed", "held", "api_calls")


def users_asset_uri(base_url: str) -> str:
    """``genesys://<host[:port]>/users`` of the organisation behind a SCIM base URL."""
    host = urlsplit(base_url).netloc.rpartition("@")[2].lower()
    if not host:
        raise ValueError(f"not a URL: {base_url!r}")
    return f"genesys://{host}/users"


def users_asset(base_url: str) -> Asset:
    uri = users_asset_uri(base_url)
    return Asset(name=uri, uri=uri, group="genesys")


def applied_something(summary: Mapping[str, Any]) -> bool:
    """Whether a run changed the organisation's users: not a dry run, and at least one write."""
    return not summary.get("dry_run") and int(summary.get("writes") or 0) > 0


def emit_users_updated(
    outlet_events: Any, summary: Mapping[str, Any], base_url: str | None, run_id: str
) -> Asset | None:
    """Add the organisation's users asset to the ``genesys_users`` alias when the run applied
    something (``summary``: what ``finish_stage`` returned); no event otherwise."""
    if not applied_something(summary):
        log.info("No asset event: the run wrote nothing to Genesys (dry run or no change)")
        return None
    if not base_url:
        log.warning("No asset event: the connection's SCIM base URL could not be read")
        return None
    try:
        asset = users_asset(base_url)
    except ValueError:  # the run's outcome does not hinge on its lineage
        log.warning("No asset event: the connection's SCIM base URL is not a URL")
        return None
    extra = {"run_id": run_id, **{k: summary.get(k) for k in EXTRA_KEYS}}
    outlet_events[GENESYS_USERS].add(asset, extra=extra)
    log.info("Asset event: %s (%s writes)", asset.uri, summary.get("writes"))
    return asset
