"""RFC 7644 Bulk: the server's advertised limits, and splitting operations into requests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from genesys_sync.scim.messages import bulk_message, encode_json

__all__ = ["BULK_ID_PREFIX", "bulk_limits", "chunk_bulk_operations"]

#: A value ``"bulkId:<id>"`` in a Bulk operation stands for the resource that the operation
#: with that ``bulkId`` creates in the same request (RFC 7644 3.7.2).
BULK_ID_PREFIX = "bulkId:"

# Room for a ``"failOnErrors":<int>`` member added to a chunk after it was measured.
_FAIL_ON_ERRORS_ROOM = len(encode_json({"failOnErrors": 2**31 - 1})) - 1


def bulk_limits(spc: Mapping[str, Any]) -> tuple[bool, int, int]:
    """``(supported, maxOperations, maxPayloadSize)`` from a ServiceProviderConfig.

    Missing or malformed values count as unsupported / 0. Genesys Cloud has no ``/Bulk``.
    """
    bulk = spc.get("bulk") if isinstance(spc, Mapping) else None
    if not isinstance(bulk, Mapping):
        return False, 0, 0

    def number(key: str) -> int:
        value = bulk.get(key)
        try:
            return max(0, int(value)) if value is not None and not isinstance(value, bool) else 0
        except (TypeError, ValueError):
            return 0

    supported = bulk.get("supported") is True
    return supported, number("maxOperations"), number("maxPayloadSize")


def chunk_bulk_operations(
    operations: Sequence[Mapping[str, Any]], max_operations: int, max_payload_size: int
) -> list[list[dict[str, Any]]]:
    """Split operations, in order, into BulkRequests within both server limits.

    The size counted is that of the whole BulkRequest body as the client sends it (compact
    JSON, with room for ``failOnErrors``). Operations referring to another's ``bulkId`` should
    be kept in one chunk by the caller, or sent after the chunk that creates the target.
    Raises ``ValueError`` when one operation alone is over ``max_payload_size``.
    """
    if max_operations < 1 or max_payload_size < 1:
        raise ValueError("max_operations and max_payload_size must be positive")
    envelope = len(encode_json(bulk_message([]))) + _FAIL_ON_ERRORS_ROOM
    chunks: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = envelope
    for index, operation in enumerate(operations):
        op_size = len(encode_json(operation))
        if envelope + op_size > max_payload_size:
            raise ValueError(
                f"Bulk operation #{index} is {op_size} bytes, over the server's "
                f"maxPayloadSize of {max_payload_size} bytes"
            )
        added = op_size + (1 if current else 0)  # the comma between operations
        if current and (len(current) >= max_operations or size + added > max_payload_size):
            chunks.append(current)
            current, size, added = [], envelope, op_size
        current.append(dict(operation))
        size += added
    if current:
        chunks.append(current)
    return chunks
