"""How many writes a batch job keeps in flight: enough to hide the round trip at the client's
rate (Little's law), bounded, following the latency the client observes. Exact counts only:
a fake client holds every write until the test lets it answer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from genesys_sync.apply import BatchApplier, BulkBatchApplier, Outcome
from genesys_sync.in_flight import DEFAULT_IN_FLIGHT, MAX_IN_FLIGHT, in_flight_for
from genesys_sync.plan import Change, Kind


@dataclass
class Config:
    requests_per_minute: int


@dataclass
class Stats:
    latencies_ms: list[float] = field(default_factory=list)


class HeldClient:
    """Answers a create only when the test releases it; counts what is in flight at once.
    ``latency_ms``: what it reports as each answered request's round trip from then on."""

    def __init__(self, rate: int | None, latency_ms: float | None = None) -> None:
        if rate is not None:
            self.config = Config(rate)
            self.stats = Stats([latency_ms] * 50 if latency_ms is not None else [])
        self.latency_ms = latency_ms
        self.waiting: list[asyncio.Future[None]] = []
        self.calls = 0
        self.peak = 0

    async def create_user(self, payload):
        self.calls += 1
        answer = asyncio.get_running_loop().create_future()
        self.waiting.append(answer)
        self.peak = max(self.peak, len(self.waiting))
        await answer
        if hasattr(self, "stats") and self.latency_ms is not None:
            self.stats.latencies_ms.append(self.latency_ms)
        return {"id": f"id-{payload['userName']}", "meta": {"version": "1"}}

    async def settle(self) -> int:
        """Let every task run until none can move on; how many writes are then waiting."""
        for _ in range(50):
            await asyncio.sleep(0)
        return len(self.waiting)

    async def answer(self, count: int | None = None) -> None:
        """Answer the ``count`` oldest writes in flight (all when None)."""
        count = len(self.waiting) if count is None else count
        done, self.waiting = self.waiting[:count], self.waiting[count:]
        for future in done:
            future.set_result(None)


def creates(n: int) -> list[Change]:
    return [Change(Kind.CREATE, f"E{i}", body={"userName": f"u{i}@example.com"}) for i in range(n)]


async def run_held(applier: BatchApplier, client: HeldClient, n: int) -> list[int]:
    """Apply ``n`` creates, answering all writes in flight each round; the writes in flight
    at each round."""
    task = asyncio.create_task(applier.apply(creates(n)))
    rounds = []
    while not task.done():
        in_flight = await client.settle()
        if in_flight:
            rounds.append(in_flight)
            await client.answer()
    results = await task
    assert [r.outcome for r in results] == [Outcome.APPLIED] * n
    return rounds


@pytest.mark.parametrize(
    ("rate", "latency_s", "expected"),
    [
        (300, 0.2, 2),  # Genesys: one request every 0.2 s, 200 ms round trips: at least one
        (3000, 0.2, 20),  # the example: at least ten
        (6000, 0.025, 5),
        (6000, 0.067, 14),  # the round trip the 6,000/min benchmark observed
        (1, 0.2, 1),  # never fewer than one
        (100_000, 2.0, MAX_IN_FLIGHT),  # never more than the bound
    ],
)
def test_in_flight_is_rate_times_round_trip_with_headroom(rate, latency_s, expected) -> None:
    assert in_flight_for(rate, latency_s) == expected


@pytest.mark.parametrize(("rate", "latency_ms"), [(300, 200.0), (3000, 200.0), (6000, 67.0)])
async def test_a_batch_keeps_exactly_that_many_writes_in_flight(rate, latency_ms) -> None:
    client = HeldClient(rate, latency_ms)
    applier = BatchApplier(client)
    rounds = await run_held(applier, client, 100)
    limit = in_flight_for(rate, latency_ms / 1000)
    assert client.calls == 100  # one request per create, whatever the concurrency
    assert client.peak == applier.in_flight.peak == limit
    assert rounds[0] == limit
    assert applier.in_flight.active == 0


async def test_before_any_round_trip_it_assumes_a_genesys_like_one() -> None:
    client = HeldClient(3000)  # no latency observed yet
    applier = BatchApplier(client)
    task = asyncio.create_task(applier.apply(creates(100)))
    assert await client.settle() == in_flight_for(3000, 0.2) == 20
    while not task.done():
        await client.answer()
        await client.settle()
    await task


async def test_in_flight_follows_the_latency_the_client_observes() -> None:
    client = HeldClient(3000, latency_ms=20.0)  # 3,000/min at 20 ms: 2 in flight
    applier = BatchApplier(client)
    task = asyncio.create_task(applier.apply(creates(200)))
    assert await client.settle() == 2
    client.latency_ms = 200.0  # the round trips grow tenfold
    for _ in range(50):  # until all of the latest 50 round trips are the slow ones
        await client.answer(1)
        await client.settle()
    assert len(client.waiting) == in_flight_for(3000, 0.2) == 20
    client.latency_ms = 20.0  # and shrink again: the count follows them down
    for _ in range(100):
        await client.answer(1)
        if await client.settle() <= 2:
            break
    assert len(client.waiting) == 2
    await client.answer(1)
    assert await client.settle() == 2  # one answered, one sent: two in flight again
    while not task.done():
        await client.answer()
        await client.settle()
    await task
    assert client.calls == 200
    assert applier.in_flight.peak == 20


async def test_the_window_follows_the_median_round_trip_not_an_outlier() -> None:
    client = HeldClient(3000)
    client.stats.latencies_ms = [20.0] * 30 + [2000.0] * 20  # a few slow answers
    applier = BatchApplier(client)
    assert applier.in_flight.limit() == in_flight_for(3000, 0.02) == 2
    client.stats.latencies_ms += [20.0] * 20 + [60.0] * 30  # a target slowing as it fills
    assert applier.in_flight.limit() == in_flight_for(3000, 0.06) == 6
    client.stats.latencies_ms += [2000.0] * 50  # slow from now on: follow it, up to the bound
    assert applier.in_flight.limit() == in_flight_for(3000, 2.0) == MAX_IN_FLIGHT


async def test_a_client_without_rate_or_latency_gets_the_default() -> None:
    client = HeldClient(rate=None)
    applier = BatchApplier(client)
    rounds = await run_held(applier, client, 20)
    assert rounds[0] == client.peak == DEFAULT_IN_FLIGHT
    assert client.calls == 20


async def test_a_fixed_concurrency_is_kept() -> None:
    client = HeldClient(6000, 200.0)  # would be 40 in flight
    applier = BatchApplier(client, concurrency=3)
    await run_held(applier, client, 30)
    assert client.peak == 3 and client.calls == 30


async def test_the_bulk_applier_replays_with_the_same_window() -> None:
    client = HeldClient(300, 200.0)
    applier = BulkBatchApplier(client, max_operations=10, max_payload=1_000_000)
    assert applier.in_flight.limit() == in_flight_for(300, 0.2) == 2


async def test_writes_waiting_for_their_manager_take_no_slot() -> None:
    """A report's create waits for its manager's create before taking a slot, so a chain of
    managers never holds the window while nothing can be sent."""
    client = HeldClient(300, 200.0)  # 2 in flight
    applier = BatchApplier(client)
    changes = [Change(Kind.CREATE, "M", body={"userName": "m@example.com"})] + [
        Change(
            Kind.CREATE,
            f"R{i}",
            body={"userName": f"r{i}@example.com"},
            manager_employee_id="M",
            after_manager=True,
        )
        for i in range(4)
    ]
    task = asyncio.create_task(applier.apply(changes))
    assert await client.settle() == 1  # only the manager: its reports wait outside the window
    assert applier.in_flight.active == 1
    await client.answer()
    assert await client.settle() == 2  # then the reports, two at a time
    while not task.done():
        await client.answer()
        await client.settle()
    results = await task
    assert client.calls == 5
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 5
