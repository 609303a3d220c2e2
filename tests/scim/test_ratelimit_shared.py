"""The rate limit shared through Redis: one even schedule per API client across processes.

Real Redis (the machine's, under a key prefix of this test run, deleted afterwards; or a
``redis-server`` of the test's own where the test stops it), real sandbox processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from genesys_sync.scim import AsyncScimClient, ScimConfigError, ScimConnectionConfig
from genesys_sync.scim.ratelimit import (
    REDIS_URL_ENV,
    PacedLimiter,
    pacing_interval,
    release_limiter,
    shared_limiter,
)
from genesys_sync.scim.shared_ratelimit import (
    KEY_PREFIX_ENV,
    RateLimitRedisUnavailable,
    RedisLimiter,
    redacted_url,
)
from tests.fixtures.sandbox import (
    PLUGINS_DIR,
    SandboxHandle,
    free_port,
    start_sandbox,
    stop_process,
)

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """A key prefix of this test alone; its keys are deleted afterwards."""
    prefix = f"genesys_sync:test:{uuid.uuid4().hex}:"
    yield prefix
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture
def shared(monkeypatch: pytest.MonkeyPatch, key_prefix: str) -> str:
    """This process configured for the shared limiter in the machine's Redis."""
    monkeypatch.setenv(REDIS_URL_ENV, REDIS_URL)
    monkeypatch.setenv(KEY_PREFIX_ENV, key_prefix)
    return key_prefix


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own (with a password), to stop mid-run."""
    port = free_port()
    log = (tmp_path / "redis.log").open("wb")
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            "pa55word",
        ],  # fmt: skip
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"redis://:pa55word@127.0.0.1:{port}/0"
    try:
        for _ in range(100):
            try:
                with redis.Redis.from_url(url, socket_connect_timeout=0.2) as client:
                    client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None:
                    raise RuntimeError((tmp_path / "redis.log").read_text()) from None
                time.sleep(0.05)
        yield url, process
    finally:
        stop_process(process)
        log.close()


def bearer_config(sandbox: SandboxHandle, token: str, **options: object) -> ScimConnectionConfig:
    """Clients that share one sandbox token: the sandbox limits per token, so it counts them
    together, and their limiter key is the SCIM base URL."""
    return ScimConnectionConfig(
        base_url=sandbox.scim_base_url, bearer_token=token, flavor="genesys", **options
    )


# -- configuration ---------------------------------------------------------------------------


async def test_without_configuration_the_limiter_is_in_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(REDIS_URL_ENV, raising=False)
    assert isinstance(shared_limiter("https://login/oauth/token#client", 300), PacedLimiter)


async def test_clients_of_one_api_client_share_one_redis_limiter(shared: str) -> None:
    config = ScimConnectionConfig(
        base_url="https://api.example.test/api/v2/scim/v2",
        token_url="https://login.example.test/oauth/token",
        client_id="client-of-the-sync",
        client_secret="s3cret-of-the-sync",
    )
    other = ScimConnectionConfig(
        base_url=config.base_url,
        token_url=config.token_url,
        client_id="another-client",
        client_secret="s3cret-of-the-sync",
    )
    async with (
        AsyncScimClient(config) as first,
        AsyncScimClient(config) as second,
        AsyncScimClient(other) as third,
    ):
        assert isinstance(first._limiter, RedisLimiter)
        assert first._limiter is second._limiter
        assert third._limiter is not first._limiter
        key = first._limiter.key
        assert key.startswith(shared)
        assert "s3cret" not in key and "client-of-the-sync" not in key
        assert key != third._limiter.key


async def test_a_bad_redis_url_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REDIS_URL_ENV, "http://127.0.0.1:6379")
    with pytest.raises(ScimConfigError, match="GENESYS_SYNC_RATE_LIMIT_REDIS_URL"):
        shared_limiter("k", 300)


def test_the_redis_password_never_shows() -> None:
    assert redacted_url("redis://:pw@h:6380/1") == "redis://***@h:6380/1"
    assert redacted_url("rediss://user:pw@h/0") == "rediss://user:***@h/0"
    assert redacted_url("redis://h:6379/0") == "redis://h:6379/0"


# -- the schedule ----------------------------------------------------------------------------


async def test_each_reservation_is_one_interval_after_the_last(key_prefix: str) -> None:
    limiter = RedisLimiter(REDIS_URL, "https://api/v2", 600, key_prefix=key_prefix)
    try:
        assert await limiter.reserve() == 0  # an idle client's first request goes now
        with redis.Redis.from_url(REDIS_URL) as client:
            first_slot = int(client.get(limiter.key)) - limiter._interval_us
            waits = [await limiter.reserve() for _ in range(4)]
            # Back to back, each reservation takes the slot after the last: no two share one.
            assert int(client.get(limiter.key)) == first_slot + 5 * limiter._interval_us
            assert client.pttl(limiter.key) > 0  # the schedule expires once it is past
        assert waits == sorted(waits) and waits[0] > 0
        assert limiter.interval == pacing_interval(600)
    finally:
        await limiter.aclose()


# -- Redis unreachable -----------------------------------------------------------------------


async def test_redis_gone_mid_run_fails_safe_and_sends_nothing_unreserved(
    sandbox: SandboxHandle,
    own_redis: tuple[str, subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, process = own_redis
    monkeypatch.setenv(REDIS_URL_ENV, url)
    token = sandbox.access_token()
    config = bearer_config(
        sandbox, token, requests_per_minute=6000, max_attempts=2, max_backoff_seconds=0.1
    )
    async with AsyncScimClient(config) as client:
        for _ in range(3):
            await client.service_provider_config()
        sent_before = sandbox.stats()["by_method"].get("GET", 0)
        stop_process(process)
        with pytest.raises(RateLimitRedisUnavailable) as failed:
            await client.service_provider_config()
    message = str(failed.value)
    assert "Redis" in message and "pa55word" not in message
    assert failed.value.retryable and failed.value.attempts == 2  # the client tried again
    assert sent_before == 3
    assert sandbox.stats()["by_method"].get("GET", 0) == 3  # nothing sent without a slot


# -- two processes, one API client -----------------------------------------------------------

# A client process: ``count`` discovery GETs, 4 at a time, as fast as its limiter lets them go;
# no retry, so every 429 stays a 429. Prints what it sent and what was refused.
_WORKER = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from genesys_sync.scim import AsyncScimClient, ScimConnectionConfig, ScimRateLimited

    async def main():
        config = ScimConnectionConfig(
            base_url=os.environ["WORKER_BASE_URL"],
            bearer_token=os.environ["WORKER_TOKEN"],
            flavor="genesys",
            requests_per_minute=int(os.environ["WORKER_RPM"]),
            max_attempts=1,
        )
        todo = iter(range(int(os.environ["WORKER_COUNT"])))
        refused = 0

        async def one_at_a_time(client):
            nonlocal refused
            for _ in todo:
                try:
                    await client.service_provider_config()
                except ScimRateLimited:
                    refused += 1

        async with AsyncScimClient(config) as client:
            await asyncio.gather(*(one_at_a_time(client) for _ in range(4)))
        print(json.dumps({"sent": client.stats.total, "refused": refused}))

    asyncio.run(main())
    """
)


def _start_worker(
    sandbox: SandboxHandle, token: str, rpm: int, count: int, env: dict[str, str], out: Path
) -> subprocess.Popen[bytes]:
    """Start a client process; its output goes to ``out`` (no pipe to fill up)."""
    environment = {
        **{k: v for k, v in os.environ.items() if k not in (REDIS_URL_ENV, KEY_PREFIX_ENV)},
        **env,
        "PYTHONPATH": str(PLUGINS_DIR),
        "WORKER_BASE_URL": sandbox.scim_base_url,
        "WORKER_TOKEN": token,
        "WORKER_RPM": str(rpm),
        "WORKER_COUNT": str(count),
    }
    with out.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-c", _WORKER], env=environment, stdout=output, stderr=output
        )


def test_two_processes_share_the_limit_where_two_in_process_limiters_exceed_it(
    tmp_path: Path, key_prefix: str
) -> None:
    """Two client processes, same API client, the target allowing 300 requests a minute.

    With the shared Redis limiter the sandbox refuses nothing; with each process's own limiter
    (the same test otherwise, run at the same time against a second sandbox) it refuses some:
    the control that shows this test can fail. 2 x 160 requests: more than a minute's worth, so
    the target's sliding window is full and counted. The sandbox limits per token (Genesys per
    OAuth client), so the two processes of each pair share one token, and with it one limiter
    key (the SCIM base URL) and one sandbox window.
    """
    rpm, per_process = 300, 160
    shared_env = {REDIS_URL_ENV: REDIS_URL, KEY_PREFIX_ENV: key_prefix}
    with (
        start_sandbox(tmp_path / "shared", requests_per_minute=rpm, data_file=None) as one,
        start_sandbox(tmp_path / "apart", requests_per_minute=rpm, data_file=None) as other,
    ):
        tokens = {"shared": one.access_token(), "apart": other.access_token()}
        before = {"shared": one.stats(), "apart": other.stats()}
        handles = {"shared": (one, shared_env), "apart": (other, {})}
        workers = {
            (name, i): _start_worker(
                handle, tokens[name], rpm, per_process, env, tmp_path / f"{name}-{i}.out"
            )
            for name, (handle, env) in handles.items()
            for i in range(2)
        }
        results: dict[str, list[dict[str, int]]] = {"shared": [], "apart": []}
        try:
            for (name, i), process in workers.items():
                process.wait(timeout=240)
                output = (tmp_path / f"{name}-{i}.out").read_text()
                assert process.returncode == 0, output
                (line,) = [x for x in output.splitlines() if x.startswith('{"sent"')]
                results[name].append(json.loads(line))
        finally:
            for process in workers.values():
                stop_process(process)
        after = {"shared": one.stats(), "apart": other.stats()}

    def api_requests(name: str) -> int:
        get = after[name]["by_method"].get("GET", 0) - before[name]["by_method"].get("GET", 0)
        return get

    # Every request arrived, once: counts are exact.
    assert [r["sent"] for r in results["shared"]] == [per_process, per_process]
    assert [r["sent"] for r in results["apart"]] == [per_process, per_process]
    assert api_requests("shared") == 2 * per_process
    assert api_requests("apart") == 2 * per_process
    # Shared: the target's own sliding-window limiter refused nothing.
    assert after["shared"]["rate_limited"] == before["shared"]["rate_limited"] == 0
    assert sum(r["refused"] for r in results["shared"]) == 0
    # Apart: two limiters, each within the limit, together over it.
    refused = after["apart"]["rate_limited"] - before["apart"]["rate_limited"]
    assert refused > 0
    assert sum(r["refused"] for r in results["apart"]) == refused


def test_release_keeps_the_limiter_usable() -> None:
    async def use_twice() -> None:
        limiter = RedisLimiter(
            REDIS_URL, "k", 6000, key_prefix=f"genesys_sync:test:{uuid.uuid4().hex}:"
        )
        try:
            limiter.join()
            await limiter.acquire()
            await release_limiter(limiter)  # last user: connections closed
            limiter.join()
            await limiter.acquire()  # reopened
            await release_limiter(limiter)
        finally:
            with redis.Redis.from_url(REDIS_URL) as client:
                client.delete(limiter.key)
            await limiter.aclose()

    asyncio.run(use_twice())
