"""One request-rate budget per API client, shared by every SCIM client in the process.

Genesys Cloud allows 300 requests per minute per OAuth client. The apply stage runs several
batches at once as triggers in one triggerer process (one event loop), so their clients must
draw from one limiter: :func:`shared_limiter` hands out the same :class:`AsyncLimiter` for the
same key.

Event loops: an ``AsyncLimiter`` binds to the loop it first runs in (its waiters are futures of
that loop). ``airflow dags test`` runs triggers one after another, each possibly in a new loop,
so the registry keeps one limiter per (running loop, key), held weakly by the loop: a limiter
never outlives its loop and is never used from another one. A new loop lets one request
through at once; the pacing below leaves room for it within the limit.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from aiolimiter import AsyncLimiter

__all__ = ["limiter_for_rate", "reset_shared_limiters", "shared_limiter"]

log = logging.getLogger(__name__)

_LIMITERS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, tuple[AsyncLimiter, int]]
] = weakref.WeakKeyDictionary()


#: The share of the configured rate the limiter paces at: the rest absorbs the jitter between
#: sending a request and its arrival, which a sliding-window limit (Genesys) counts.
PACING = 0.98


def limiter_for_rate(requests_per_minute: int) -> AsyncLimiter:
    """A limiter that spaces requests evenly, never more than ``requests_per_minute`` in any
    rolling minute.

    One request at a time, one every ``60 / rate`` seconds, at :data:`PACING` of the rate (and
    at most ``rate - 1`` a minute, so that even the one request a new limiter lets through at
    once keeps a rolling minute within the limit). No bucket of a second's worth: a burst at
    the start is exactly what trips a sliding-window limit.
    """
    if requests_per_minute < 1:
        raise ValueError("requests_per_minute must be at least 1")
    if requests_per_minute == 1:
        return AsyncLimiter(1, 60)
    paced = min(requests_per_minute * PACING, requests_per_minute - 1)
    return AsyncLimiter(1, 60 / paced)


def shared_limiter(key: str, requests_per_minute: int) -> AsyncLimiter:
    """The limiter of ``key`` in the running event loop, created on first use.

    Call it from a coroutine. The first caller's ``requests_per_minute`` sizes the limiter;
    a later caller asking a different rate for the same key gets the existing limiter.
    """
    loop = asyncio.get_running_loop()
    limiters = _LIMITERS.setdefault(loop, {})
    if key not in limiters:
        limiters[key] = (limiter_for_rate(requests_per_minute), requests_per_minute)
    limiter, rate = limiters[key]
    if rate != requests_per_minute:
        log.warning(
            "Rate limiter already set up for this API client at %s requests/minute; "
            "ignoring the request for %s.",
            rate,
            requests_per_minute,
        )
    return limiter


def reset_shared_limiters() -> None:
    """Forget every shared limiter (for tests)."""
    _LIMITERS.clear()
