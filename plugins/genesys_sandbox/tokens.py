"""OAuth access tokens issued by the sandbox, with their expiry."""

import secrets
import time
from threading import Lock


class TokenStore:
    """Issue opaque bearer tokens and tell whether one is still valid. Thread-safe."""

    def __init__(self) -> None:
        self._expiries: dict[str, float] = {}
        self._lock = Lock()

    def issue(self, lifetime_seconds: int) -> str:
        """Return a new token valid for ``lifetime_seconds``."""
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._expiries = {t: e for t, e in self._expiries.items() if e > now}
            self._expiries[token] = now + lifetime_seconds
        return token

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
