"""OAuth access tokens issued by the sandbox, with their expiry."""

import secrets
import time
from collections import deque
from threading import Lock


class TokenStore:
    """Issue opaque bearer tokens and tell whether one is still valid. Thread-safe."""

    #: How many issued tokens :meth:`issued` remembers (a leak check's list, not a validity one).
    HISTORY = 10_000

    def __init__(self) -> None:
        self._expiries: dict[str, float] = {}
        self._history: deque[str] = deque(maxlen=self.HISTORY)
        self._lock = Lock()

    def issue(self, lifetime_seconds: int) -> str:
        """Return a new token valid for ``lifetime_seconds``."""
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._expiries = {t: e for t, e in self._expiries.items() if e > now}
            self._expiries[token] = now + lifetime_seconds
            self._history.append(token)
        return token

    def issued(self) -> list[str]:
        """Every token issued so far (the last ``HISTORY``), expired or not: tests look for
        them where no token may appear (logs, events, files)."""
        with self._lock:
            return list(self._history)

    def is_valid(self, token: str | None) -> bool:
        """Tell whether a token was issued here and has not expired."""
        if not token:
            return False
        with self._lock:
            expiry = self._expiries.get(token)
        return expiry is not None and expiry > time.monotonic()

    def expire_all(self) -> None:
        """Make every issued token invalid now."""
        with self._lock:
            self._expiries.clear()
