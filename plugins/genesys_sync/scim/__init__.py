"""Async SCIM 2.0 client for Genesys Cloud and RFC 7644 servers (no Airflow imports)."""

from genesys_sync.scim.bulk import bulk_limits, chunk_bulk_operations
from genesys_sync.scim.client import AsyncScimClient, ScimClientStats
from genesys_sync.scim.connection import GENESYS_REGIONS, ScimConnectionConfig
from genesys_sync.scim.errors import (
    ScimAmbiguousMatch,
    ScimAuthError,
    ScimBadRequest,
    ScimConfigError,
    ScimConflict,
    ScimError,
    ScimListingInconsistent,
    ScimNotFound,
    ScimRateLimited,
    ScimServerError,
    ScimTransportError,
    ScimVersionMismatch,
    error_from_response,
)
from genesys_sync.scim.messages import eq_filter, quote_filter_value
from genesys_sync.scim.ratelimit import shared_limiter

__all__ = [
    "GENESYS_REGIONS",
    "AsyncScimClient",
    "ScimAmbiguousMatch",
    "ScimAuthError",
    "ScimBadRequest",
    "ScimClientStats",
    "ScimConfigError",
    "ScimConflict",
    "ScimConnectionConfig",
    "ScimError",
    "ScimListingInconsistent",
    "ScimNotFound",
    "ScimRateLimited",
    "ScimServerError",
    "ScimTransportError",
    "ScimVersionMismatch",
    "bulk_limits",
    "chunk_bulk_operations",
    "eq_filter",
    "error_from_response",
    "quote_filter_value",
    "shared_limiter",
]
