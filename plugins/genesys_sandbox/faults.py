"""Fault knobs (latency, 503s, connection resets, forced 429s, malformed answers, limits) and
their runtime state."""

import dataclasses
import random
from dataclasses import dataclass
from enum import Enum
from threading import Lock
from typing import Any


@dataclass
class FaultSettings:
    """The knobs, as set at start (CLI flags) or at runtime (``POST /_sandbox/faults``)."""

    latency_ms: int = 0
    error_rate: float = 0.0
    reset_rate: float = 0.0
    force_429: int = 0
    retry_after_seconds: int = 1
    token_lifetime_seconds: int = 86400
    requests_per_minute: int = 300
    max_untrimmed_page_size: int = 25
    expire_tokens: bool = False
    seed: int | None = None
    malformed: int = 0
    malformed_kind: str = "invalid_json"
    rate_limit_per: str = "token"


class Fault(Enum):
    """What the sandbox does to one API request instead of serving it."""

    FORCED_429 = "forced_429"
    RESET = "reset"
    ERROR_503 = "error_503"
    MALFORMED = "malformed"


MALFORMED_KINDS = ("invalid_json", "html_error", "huge_body")
RATE_LIMIT_SCOPES = ("token", "client")
"""What ``requests_per_minute`` counts: each token's requests (Genesys documents the limit per
client-credentials token), or every token of the OAuth client together (processes that each
fetch a token then share one budget: what a shared limiter must keep to)."""
"""What a malformed answer is: a 200 whose JSON is cut short, a proxy's 502 HTML page, or a
502 whose body is 16 MiB."""


RATE_KNOBS = {"error_rate", "reset_rate"}
COUNT_KNOBS = {
    "latency_ms",
    "force_429",
    "retry_after_seconds",
    "max_untrimmed_page_size",
    "malformed",
}
POSITIVE_KNOBS = {"token_lifetime_seconds", "requests_per_minute"}


def check_knob(name: str, value: Any) -> None:
    """Refuse an unknown knob or a value of the wrong type or range.

    :raises ValueError: With a message naming the knob.
    """
    if name not in {f.name for f in dataclasses.fields(FaultSettings)}:
        raise ValueError(f"Unknown fault knob: {name}")
    if name == "expire_tokens":
        if not isinstance(value, bool):
            raise ValueError("expire_tokens must be a boolean")
        return
    if name == "rate_limit_per":
        if value not in RATE_LIMIT_SCOPES:
            raise ValueError(f"rate_limit_per must be one of {', '.join(RATE_LIMIT_SCOPES)}")
        return
    if name == "malformed_kind":
        if value not in MALFORMED_KINDS:
            raise ValueError(f"malformed_kind must be one of {', '.join(MALFORMED_KINDS)}")
        return
    if name == "seed":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError("seed must be an integer or null")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if name in RATE_KNOBS and not 0 <= value <= 1:
        raise ValueError(f"{name} must be between 0 and 1")
    if name in COUNT_KNOBS | POSITIVE_KNOBS and (value != int(value) or value < 0):
        raise ValueError(f"{name} must be a non-negative integer")
    if name in POSITIVE_KNOBS and value < 1:
        raise ValueError(f"{name} must be at least 1")


class Faults:
    """The current knobs, the random generator, and the forced-429 countdown. Thread-safe."""

    def __init__(self, start: FaultSettings) -> None:
        self._start = dataclasses.replace(start, expire_tokens=False)
        self._lock = Lock()
        self.reset()

    def reset(self) -> None:
        """Put every knob back to its start value, and reseed the generator."""
        with self._lock:
            self._settings = dataclasses.replace(self._start)
            self._random = random.Random(self._settings.seed)

    @property
    def settings(self) -> FaultSettings:
        """A copy of the current knobs."""
        with self._lock:
            return dataclasses.replace(self._settings)

    def update(self, changes: dict[str, Any]) -> bool:
        """Set some knobs.

        :return: Whether ``expire_tokens`` was set to true: the caller then
            invalidates the issued tokens. The knob itself does not stay set.
        :raises ValueError: On an unknown knob or an invalid value; nothing is changed.
        """
        for name, value in changes.items():
            check_knob(name, value)
        with self._lock:
            for name, value in changes.items():
                if name == "expire_tokens":
                    continue
                if name in RATE_KNOBS:
                    value = float(value)
                elif name in COUNT_KNOBS | POSITIVE_KNOBS:
                    value = int(value)
                setattr(self._settings, name, value)
                if name == "seed":
                    self._random = random.Random(value)
        return changes.get("expire_tokens") is True

    def draw(self) -> Fault | None:
        """Decide the fault of one API request, if any, and consume a forced 429."""
        with self._lock:
            settings = self._settings
            if settings.force_429 > 0:
                settings.force_429 -= 1
                return Fault.FORCED_429
            if settings.malformed > 0:
                settings.malformed -= 1
                return Fault.MALFORMED
            if settings.reset_rate and self._random.random() < settings.reset_rate:
                return Fault.RESET
            if settings.error_rate and self._random.random() < settings.error_rate:
                return Fault.ERROR_503
            return None
