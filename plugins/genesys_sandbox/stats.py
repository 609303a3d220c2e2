"""Request counters of the sandbox, for tests. Thread-safe."""

from collections import Counter
from threading import Lock
from typing import Any


class Stats:
    """Count the requests, their methods and statuses, writes, token requests and 429s."""

    def __init__(self) -> None:
        self._lock = Lock()
        self.clear()

    def clear(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self._requests = 0
            self._by_method: Counter[str] = Counter()
            self._by_status: Counter[str] = Counter()
            self._writes = 0
            self._token_requests = 0
            self._rate_limited = 0
            self._resets = 0

    def record(self, method: str, status: int | None) -> None:
        """Count one answered request, or one reset connection when ``status`` is None."""
        with self._lock:
            self._requests += 1
            self._by_method[method] += 1
            if status is None:
                self._resets += 1
                return
            self._by_status[str(status)] += 1
            if status == 429:
                self._rate_limited += 1

    def count_writes(self, count: int = 1) -> None:
        """Count user writes: POST/PUT/PATCH/DELETE on users, or the operations of a bulk."""
        with self._lock:
            self._writes += count

    def count_token_request(self) -> None:
        """Count one request to the token endpoint."""
        with self._lock:
            self._token_requests += 1

    def snapshot(self) -> dict[str, Any]:
        """Return the counters as JSON."""
        with self._lock:
            return {
                "requests": self._requests,
                "by_method": dict(self._by_method),
                "by_status": dict(self._by_status),
                "writes": self._writes,
                "token_requests": self._token_requests,
                "rate_limited": self._rate_limited,
                "connection_resets": self._resets,
            }
