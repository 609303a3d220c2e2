"""The rate limit of one API client shared by every process, kept in Redis.

Several triggerers (or ``make sync`` next to a deployment) calling Genesys with the same OAuth
client must share its 300 requests a minute. Each request reserves the next free slot of the
client's schedule in Redis, atomically, with a small Lua script (GCRA, the "generic cell rate
algorithm": one value per client, its *theoretical arrival time*), then sleeps until that slot.
Slots are :func:`~genesys_sync.scim.ratelimit.pacing_interval` apart whoever reserves them, on
Redis's clock (``TIME``), so the processes' clocks need not agree: evenly paced, no burst, which
is what a sliding-window limit such as Genesys's needs.

Why not the ``limits`` library: its strategies answer "allowed or not" for a window counted in
whole seconds (``hit``/``test``), so a caller would poll and retry, and a window of N per second
lets N through at once; pacing needs a reservation that says *when*, which is this script.

Redis unreachable: fail safe. No request is sent without a reservation; the acquire raises
:class:`RateLimitRedisUnavailable`, a retryable
:class:`~genesys_sync.scim.errors.ScimTransportError` whose message names Redis (its URL
without the password), so the client's retry policy waits and tries again, and a batch whose
retries run out fails as when the target itself is unreachable (the rerun sends only what has
no result yet). There is no fallback to an in-process limiter: a process cannot know how many
others share the client while Redis is away, and guessing wrong is a burst of 429s.

The Redis key is ``GENESYS_SYNC_RATE_LIMIT_KEY_PREFIX`` (default ``genesys_sync:ratelimit:``)
plus a hash of the limiter key (OAuth token URL and client id, or the SCIM base URL): never a
secret, and it expires once its schedule is in the past. Redis 5 or newer (the script reads
``TIME`` before it writes, which needs effects replication).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError

from genesys_sync.scim.errors import ScimConfigError, ScimTransportError
from genesys_sync.scim.ratelimit import pacing_interval

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "KEY_PREFIX_ENV",
    "RateLimitRedisUnavailable",
    "RedisLimiter",
    "redacted_url",
    "redis_key",
]

log = logging.getLogger(__name__)

KEY_PREFIX_ENV = "GENESYS_SYNC_RATE_LIMIT_KEY_PREFIX"
DEFAULT_KEY_PREFIX = "genesys_sync:ratelimit:"

#: Seconds to connect to Redis, and to wait for one answer: a reservation is one round trip.
REDIS_TIMEOUT_SECONDS = 5.0

# KEYS[1]: the client's theoretical arrival time (TAT), in microseconds of Redis's clock.
# ARGV[1]: microseconds between two requests.
# Reserves the slot max(TAT, now), moves the TAT one interval past it, and returns how many
# microseconds the caller waits for its slot. The key expires a second after its TAT.
_RESERVE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(tat, now)
local next_tat = slot + interval
local ttl_ms = math.ceil((next_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', string.format('%d', ttl_ms))
return string.format('%d', slot - now)
"""


class RateLimitRedisUnavailable(ScimTransportError):
    """The shared rate limiter's Redis did not answer: no request was sent."""


def redacted_url(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:***@" if parts.username else "***@"
    host = parts.hostname or ""
    netloc = f"{user}{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def redis_key(limiter_key: str, prefix: str | None = None) -> str:
    """The Redis key of an API client's schedule: the prefix and a hash of ``limiter_key``."""
    if prefix is None:
        prefix = os.environ.get(KEY_PREFIX_ENV) or DEFAULT_KEY_PREFIX
    digest = hashlib.sha256(limiter_key.encode()).hexdigest()[:32]
    return f"{prefix}{digest}"


class RedisLimiter:
    """Evenly paced requests of one API client across processes (see the module docstring).

    One per (event loop, API client), handed out by
    :func:`~genesys_sync.scim.ratelimit.shared_limiter`; its connections are opened on first
    use and closed when the last client using it leaves.
    """

    def __init__(
        self,
        url: str,
        limiter_key: str,
        requests_per_minute: int,
        *,
        key_prefix: str | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.url = redacted_url(url)
        self.key = redis_key(limiter_key, key_prefix)
        self.interval = pacing_interval(requests_per_minute)
        self._interval_us = max(1, round(self.interval * 1_000_000))
        self._sleep = sleep if sleep is not None else asyncio.sleep
        try:
            self._redis = Redis.from_url(
                url,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
            )
        except ValueError as exc:
            raise ScimConfigError(
                f"GENESYS_SYNC_RATE_LIMIT_REDIS_URL is not a Redis URL ({self.url}): {exc}"
            ) from None
        self._reserve = self._redis.register_script(_RESERVE)
        self._users = 0

    def __repr__(self) -> str:
        return f"RedisLimiter({self.url!r}, key={self.key!r}, interval={self.interval:.4f}s)"

    async def reserve(self) -> float:
        """Reserve the next slot; return the seconds until it (0: now)."""
        try:
            wait_us = int(await self._reserve(keys=[self.key], args=[self._interval_us]))
        except (RedisError, OSError) as exc:
            raise RateLimitRedisUnavailable(
                f"The shared rate limiter's Redis ({self.url}) did not answer "
                f"({type(exc).__name__}); no request sent",
                retryable=True,
            ) from exc
        return max(0, wait_us) / 1_000_000

    async def acquire(self) -> None:
        """Wait for this process's next slot in the API client's shared schedule."""
        wait = await self.reserve()
        if wait > 0:
            await self._sleep(wait)

    def join(self) -> None:
        """One more client uses this limiter."""
        self._users += 1

    async def leave(self) -> None:
        """One client is done; the last one closes the connections (reopened on next use)."""
        self._users = max(0, self._users - 1)
        if self._users == 0:
            await self._redis.connection_pool.disconnect()

    async def aclose(self) -> None:
        """Close the connections whoever still uses the limiter."""
        self._users = 0
        await self._redis.aclose(close_connection_pool=True)
