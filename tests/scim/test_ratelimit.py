"""The shared rate limiter: one per API client and event loop, sized to stay under the limit."""

from __future__ import annotations

import asyncio

import pytest

from genesys_sync.scim.ratelimit import PacedLimiter, limiter_for_rate, shared_limiter


async def test_same_key_same_limiter_in_one_loop() -> None:
    first = shared_limiter("https://login/oauth/token#client", 300)
    assert shared_limiter("https://login/oauth/token#client", 300) is first
    assert shared_limiter("https://other/v2", 300) is not first


def test_successive_event_loops_get_their_own_limiter() -> None:
    async def use(key: str) -> PacedLimiter:
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


class Clock:
    """A clock the test moves; ``sleep`` records what the limiter asked for."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.mark.parametrize("rpm", [1, 2, 30, 59, 60, 61, 300, 1000, 6000])
def test_limiter_never_exceeds_the_rate_in_a_rolling_minute(rpm: int) -> None:
    clock = Clock()
    limiter = PacedLimiter(rpm, clock=clock)
    slots = [clock.now + limiter.reserve() for _ in range(3 * rpm)]  # all asked for at once
    # Worst case in any 60 s window starting at a slot: the slots within [t, t + 60).
    worst = max(sum(1 for s in slots[i:] if s < t + 60) for i, t in enumerate(slots))
    assert worst <= rpm or (rpm == 1 and worst <= 2)


def test_300_per_minute_is_one_request_every_fifth_of_a_second_no_burst() -> None:
    clock = Clock()
    limiter = PacedLimiter(300, clock=clock)
    assert [limiter.reserve() for _ in range(3)] == pytest.approx([0, 60 / 294, 2 * 60 / 294])
    with pytest.raises(ValueError):
        limiter_for_rate(0)


def test_a_late_wake_up_does_not_push_the_schedule_back() -> None:
    """Waiters reserve their slots when they ask: one that wakes late (a busy event loop)
    costs the waiters behind it nothing, and an idle limiter starts again from now."""
    clock = Clock()
    limiter = PacedLimiter(6000, clock=clock)
    interval = limiter.interval
    waits = [limiter.reserve() for _ in range(10)]
    assert waits == pytest.approx([i * interval for i in range(10)])
    clock.now += 5 * interval + 0.003  # the loop was busy: the 6th request wakes 3 ms late
    assert limiter.reserve() == pytest.approx(5 * interval - 0.003)  # the 11th slot holds
    clock.now += 60  # idle: no credit saved up, the next request goes now
    assert limiter.reserve() == 0


async def test_acquire_sleeps_until_its_slot() -> None:
    clock = Clock()
    limiter = PacedLimiter(600, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        await limiter.acquire()
    assert clock.slept == pytest.approx([0.1 / 0.98 * 1, 0.1 / 0.98 * 2])


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
