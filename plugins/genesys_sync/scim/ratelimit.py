"""One request-rate budget per API client: in the process by default, across processes through
Redis when ``GENESYS_SYNC_RATE_LIMIT_REDIS_URL`` is set.

Genesys Cloud allows 300 requests per minute per OAuth client. The apply stage runs several
batches at once as triggers in one triggerer process (one event loop), so their clients must
draw from one limiter: :func:`shared_limiter` hands out the same limiter for the same key.

Embedded default (no configuration): a :class:`PacedLimiter` per key and event loop, the same
schedule as the Redis limiter (GCRA) kept in the process. ``airflow dags test`` runs triggers
one after another, each possibly in a new loop, so the registry keeps one limiter per (running
loop, key), held weakly by the loop: a limiter never outlives its loop. A new loop lets one
request through at once; the pacing below leaves room for it within the limit.

Why not a leaky bucket such as ``aiolimiter`` with a capacity of one (what this module used
before): it lets the next request through once the bucket has drained, counted from when the
waiter wakes, so every late wake-up of a busy event loop is time lost for good. A schedule of
reserved slots keeps the rate whatever the wake-ups (a 3,000-user load at 6,000/min, one run
each: 79.9% of the limit with the leaky bucket, 81.2% with the schedule; the rest of the gap
is elsewhere, see ``benchmarks/RESULTS.md``).

Several triggerers, or ``make sync`` next to a deployment, calling the same API client: set
``GENESYS_SYNC_RATE_LIMIT_REDIS_URL`` and every process paces against one schedule kept in that
Redis (:mod:`genesys_sync.scim.shared_ratelimit`), at the same even spacing. If that Redis
stops answering, no request is sent (fail safe: the request fails with an error naming Redis,
and is retried like a timeout).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = [
    "PACING",
    "REDIS_URL_ENV",
    "PacedLimiter",
    "RateLimiter",
    "configured_redis_url",
    "limiter_for_rate",
    "pacing_interval",
    "release_limiter",
    "reset_shared_limiters",
    "shared_limiter",
]

log = logging.getLogger(__name__)

#: Where the limiter shared by all processes lives (``redis://``, ``rediss://``, ``unix://``);
#: unset or empty: the in-process limiter.
REDIS_URL_ENV = "GENESYS_SYNC_RATE_LIMIT_REDIS_URL"

#: The share of the configured rate the limiter paces at: the rest absorbs the jitter between
#: sending a request and its arrival, which a sliding-window limit (Genesys) counts.
PACING = 0.98


class RateLimiter(Protocol):
    """What the SCIM client needs of a limiter: wait until the next request may be sent."""

    async def acquire(self) -> None: ...


_LIMITERS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str], tuple[RateLimiter, int]]
] = weakref.WeakKeyDictionary()


def pacing_interval(requests_per_minute: int) -> float:
    """Seconds between two requests: ``60 / rate`` at :data:`PACING` of the rate, and at most
    ``rate - 1`` a minute (so that one request let through at once by a new limiter still keeps
    a rolling minute within the limit); one a minute at a rate of 1."""
    if requests_per_minute < 1:
        raise ValueError("requests_per_minute must be at least 1")
    if requests_per_minute == 1:
        return 60.0
    paced = min(requests_per_minute * PACING, requests_per_minute - 1)
    return 60 / paced


class PacedLimiter:
    """Requests on a schedule of slots :func:`pacing_interval` apart: each ``acquire`` takes
    the next free slot (now, or the slot after the last one taken) and sleeps until it.

    The generic cell rate algorithm in one process. Slots are reserved when asked for, so a
    request that wakes late does not push the schedule back: the waiters behind it keep their
    slots. No two slots are closer than the interval, so at most ``60 / interval + 1``
    requests fall in any rolling minute, which :func:`pacing_interval` keeps within the rate.
    Holds no future and no loop: nothing binds it to an event loop.
    """

    def __init__(
        self,
        requests_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.interval = pacing_interval(requests_per_minute)
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")

    def reserve(self) -> float:
        """Take the next free slot; the seconds until it (0: now)."""
        now = self._clock()
        slot = max(self._next, now)
        self._next = slot + self.interval
        return slot - now

    async def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            await self._sleep(wait)


def limiter_for_rate(requests_per_minute: int) -> PacedLimiter:
    """An in-process limiter that spaces requests evenly, never more than
    ``requests_per_minute`` in any rolling minute. No bucket of a second's worth: a burst at
    the start is exactly what trips a sliding-window limit."""
    return PacedLimiter(requests_per_minute)


def configured_redis_url() -> str | None:
    """The shared limiter's Redis URL from ``GENESYS_SYNC_RATE_LIMIT_REDIS_URL``, or None."""
    return (os.environ.get(REDIS_URL_ENV) or "").strip() or None


def shared_limiter(key: str, requests_per_minute: int) -> RateLimiter:
    """The limiter of ``key`` in the running event loop, created on first use.

    Call it from a coroutine, and :func:`release_limiter` once done with it. With
    ``GENESYS_SYNC_RATE_LIMIT_REDIS_URL`` set, the limiter paces against the schedule of
    ``key`` in that Redis, shared by every process; else it paces this process alone. The first
    caller's ``requests_per_minute`` sizes the limiter; a later caller asking a different rate
    for the same key gets the existing limiter.
    """
    loop = asyncio.get_running_loop()
    redis_url = configured_redis_url()
    limiters = _LIMITERS.setdefault(loop, {})
    slot = (key, redis_url or "")
    if slot not in limiters:
        limiter: RateLimiter
        if redis_url:
            # Imported only when configured: the embedded default needs no Redis client.
            from genesys_sync.scim.shared_ratelimit import RedisLimiter

            limiter = RedisLimiter(redis_url, key, requests_per_minute)
        else:
            limiter = limiter_for_rate(requests_per_minute)
        limiters[slot] = (limiter, requests_per_minute)
    limiter, rate = limiters[slot]
    if rate != requests_per_minute:
        log.warning(
            "Rate limiter already set up for this API client at %s requests/minute; "
            "ignoring the request for %s.",
            rate,
            requests_per_minute,
        )
    join = getattr(limiter, "join", None)  # a Redis limiter counts its clients
    if join is not None:
        join()
    return limiter


async def release_limiter(limiter: RateLimiter | None) -> None:
    """Tell the limiter one client is done with it: a Redis limiter closes its connections
    when its last client leaves (and opens new ones if another joins later)."""
    leave = getattr(limiter, "leave", None)
    if leave is not None:
        await leave()


def reset_shared_limiters() -> None:
    """Forget every shared limiter (for tests)."""
    _LIMITERS.clear()
