"""When and how long the client waits before sending a failed request again (tenacity)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from genesys_sync.scim.errors import ScimError

__all__ = ["is_retryable", "retrying", "wait_retry_after_or_jitter"]


def is_retryable(exc: BaseException) -> bool:
    """Whether the same request may succeed if sent again (429, 5xx, timeouts, resets)."""
    return isinstance(exc, ScimError) and exc.retryable


class wait_retry_after_or_jitter(wait_base):
    """The server's ``Retry-After`` when it gave one, whatever its length, else exponential
    backoff with full jitter capped at ``max_backoff`` seconds. ``deadline`` (a
    ``time.monotonic()`` value, the job's deadline) caps both: no wait runs past it."""

    def __init__(self, base: float, max_backoff: float, deadline: float | None = None) -> None:
        self.max_backoff = max_backoff
        self.deadline = deadline
        self._jitter = wait_random_exponential(multiplier=base, max=max_backoff)

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, ScimError) and exc.retry_after is not None:
            wait = exc.retry_after
        else:
            wait = self._jitter(retry_state)
        if self.deadline is not None:
            wait = max(0.0, min(wait, self.deadline - time.monotonic()))
        return wait


class _past(stop_base):
    """Stop once the job's deadline (``time.monotonic()``) has passed."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return time.monotonic() >= self.deadline


def retrying(
    *,
    max_attempts: int,
    base: float,
    max_backoff: float,
    sleep: Callable[[float], Awaitable[None]],
    before_sleep: Callable[[RetryCallState], Any] | None = None,
    deadline: float | None = None,
) -> AsyncRetrying:
    """The retry loop of one request; it re-raises the last typed error when done (or when
    ``deadline``, a ``time.monotonic()`` value, has passed)."""
    stop = stop_after_attempt(max_attempts)
    if deadline is not None:
        stop = stop | _past(deadline)
    return AsyncRetrying(
        stop=stop,
        wait=wait_retry_after_or_jitter(base, max_backoff, deadline),
        retry=retry_if_exception(is_retryable),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
