"""The shared rate limiter: one per API client and event loop, sized to stay under the limit."""

from __future__ import annotations

import asyncio

import pytest
from aiolimiter import AsyncLimiter

from genesys_sync.scim.ratelimit import limiter_for_rate, shared_limiter


async def test_same_key_same_limiter_in_one_loop() -> None:
    first = shared_limiter("https://login/oauth/token#client", 300)
    assert shared_limiter("https://login/oauth/token#client", 300) is first
    assert shared_limiter("https://other/v2", 300) is not first


def test_successive_event_loops_get_their_own_limiter() -> None:
    async def use(key: str) -> AsyncLimiter:
        limiter = shared_limiter(key, 600)
        for _ in range(3):
            await limiter.acquire()
        return limiter

    first = asyncio.run(use("k"))
    # A new loop (as in `airflow dags test`) gets a fresh limiter, not the dead loop's one.
    with_new_loop = asyncio.run(use("k"))
    assert with_new_loop is not first


def test_shared_limiter_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        shared_limiter("k", 300)


@pytest.mark.parametrize("rpm", [1, 2, 30, 59, 60, 61, 300, 1000, 6000])
def test_limiter_never_exceeds_the_rate_in_a_rolling_minute(rpm: int) -> None:
    limiter = limiter_for_rate(rpm)
    # Worst case in any 60 s window: a full bucket, then 60 s of draining.
    worst = limiter.max_rate + 60 * limiter.max_rate / limiter.time_period
    assert worst <= rpm + 1e-9 or (rpm == 1 and worst <= 2)
    assert limiter.max_rate >= 1


def test_300_per_minute_is_one_request_every_fifth_of_a_second_no_burst() -> None:
    limiter = limiter_for_rate(300)
    assert limiter.max_rate == 1  # no bucket: evenly spaced
    assert limiter.time_period == pytest.approx(60 / (300 * 0.98))
    with pytest.raises(ValueError):
        limiter_for_rate(0)


def test_requests_are_evenly_spaced_from_the_start() -> None:
    async def stamps() -> list[float]:
        limiter = limiter_for_rate(6000)  # one every ~10.2 ms
        loop = asyncio.get_running_loop()
        out = []
        for _ in range(21):
            await limiter.acquire()
            out.append(loop.time())
        return out

    times = asyncio.run(stamps())
    # 20 intervals of 60/5880 s: no burst at the start
    assert times[-1] - times[0] >= 20 * 60 / 5880 * 0.95
