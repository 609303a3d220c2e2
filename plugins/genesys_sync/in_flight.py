"""How many writes a batch job keeps in flight: enough to hide the round trip at the client's
rate, and no more.

At a rate of ``r`` requests a second and a round trip of ``t`` seconds, a job keeps the
limiter busy only with ``r * t`` requests under way (Little's law): 300/min at Genesys's
~200 ms needs one, 3,000/min ten, 6,000/min at 67 ms seven. A fixed window is wrong at both
ends: four in flight cap a 67 ms target at 3,600/min, and forty in flight on a slow target
only queue requests behind the rate limiter. :class:`InFlight` sizes the window from the
client's configured rate and the round trips it observes, with twice that as headroom (a
round trip is not constant, and a request waiting for the limiter holds its slot), at most
:data:`MAX_IN_FLIGHT`.

The round trip it uses is the median of the latest :data:`RECENT` ones: it follows a target
that slows down as it fills (the sandbox's round trips grow from 30 ms to 55 ms over a
10,000-user load; sized from the fastest, the window fell short and the rate with it), and one
slow answer does not move it. A target that answers late because too many requests wait
cannot widen the window without bound: the limiter paces the requests whatever the window,
and :data:`MAX_IN_FLIGHT` caps it.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from typing import Any

__all__ = ["DEFAULT_IN_FLIGHT", "MAX_IN_FLIGHT", "InFlight", "in_flight_for"]

#: For a client that tells neither its rate nor its round trips.
DEFAULT_IN_FLIGHT = 4
#: The most writes one batch job keeps in flight.
MAX_IN_FLIGHT = 32
#: The round trip assumed before any is observed (Genesys Cloud's, roughly).
ASSUMED_ROUND_TRIP_S = 0.2
#: How many of the latest round trips the window follows.
RECENT = 50
HEADROOM = 2.0


def in_flight_for(requests_per_minute: float, round_trip_s: float) -> int:
    """Writes in flight for ``requests_per_minute`` at ``round_trip_s``: twice Little's law,
    rounded up, between 1 and :data:`MAX_IN_FLIGHT`."""
    needed = HEADROOM * requests_per_minute / 60 * round_trip_s
    return max(1, min(MAX_IN_FLIGHT, math.ceil(needed - 1e-9)))


class InFlight:
    """A window of writes in flight, sized anew each time a write asks for a slot.

    ``client``: read for ``config.requests_per_minute`` and ``stats.latencies_ms`` (the SCIM
    client's); ``fixed``: a fixed window instead. ``active`` is what is in flight now,
    ``peak`` the most at once.
    """

    def __init__(self, client: Any, fixed: int | None = None) -> None:
        self._client = client
        self._fixed = fixed
        self._changed = asyncio.Condition()
        self._sized: tuple[tuple[float, int], int] | None = None  # (rate, round trips seen), size
        self.active = 0
        self.peak = 0

    def limit(self) -> int:
        if self._fixed is not None:
            return self._fixed
        rate = getattr(getattr(self._client, "config", None), "requests_per_minute", None)
        if not rate:
            return DEFAULT_IN_FLIGHT
        latencies = getattr(getattr(self._client, "stats", None), "latencies_ms", None) or ()
        seen = (rate, len(latencies))
        if self._sized is None or self._sized[0] != seen:  # a waiter woken again: no new median
            recent = latencies[-RECENT:]
            round_trip = statistics.median(recent) / 1000 if recent else ASSUMED_ROUND_TRIP_S
            self._sized = (seen, in_flight_for(rate, round_trip))
        return self._sized[1]

    async def __aenter__(self) -> InFlight:
        async with self._changed:
            await self._changed.wait_for(lambda: self.active < self.limit())
            self.active += 1
            self.peak = max(self.peak, self.active)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        async with self._changed:
            self.active -= 1
            self._changed.notify_all()  # the window may have grown: more than one may enter
