"""Per-token request rate limit over a sliding 60-second window."""

import math
import time
from collections import deque
from threading import Lock

WINDOW_SECONDS = 60.0


class SlidingWindowLimiter:
    """Count the accepted requests of each key over the last minute. Thread-safe."""

    def __init__(self) -> None:
        self._requests: dict[str, deque[float]] = {}
        self._lock = Lock()

    def acquire(self, key: str, limit: int) -> int | None:
        """Record a request of ``key`` if the limit allows it.

        :return: None when the request is accepted, else the seconds to wait
            before the oldest request of the window leaves it (at least 1).
        """
        now = time.monotonic()
        with self._lock:
            window = self._requests.setdefault(key, deque())
            while window and window[0] <= now - WINDOW_SECONDS:
                window.popleft()
            if len(window) >= limit:
                return max(1, math.ceil(window[0] + WINDOW_SECONDS - now))
            window.append(now)
            return None

    def clear(self) -> None:
        """Forget every recorded request."""
        with self._lock:
            self._requests.clear()
