"""``BatchProgress``: the batch job's progress lines at a steady cadence (a fake clock), and
``describe_exception``'s PII-free lines."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from genesys_sync.progress import BatchProgress, describe_exception
from genesys_sync.scim.errors import ScimError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _result(outcome: str) -> SimpleNamespace:
    return SimpleNamespace(outcome=outcome)


async def test_logs_every_tenth_of_the_operations(caplog) -> None:
    clock = Clock()
    seen: list[str] = []
    progress = BatchProgress(
        "phase1-0003",
        100,
        lambda kind, change, result=None: seen.append(kind),
        lambda: 1,
        clock=clock,
    )
    with caplog.at_level(logging.INFO, logger="genesys_sync.progress"):
        for i in range(40):
            clock.now += 0.2  # 300/min: never 10 s between two results
            await progress("intent", None)
            await progress("result", None, _result("failed" if i in (5, 30) else "applied"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4  # at 10, 20, 30 and 40 of 100
    assert lines[-1] == "batch phase1-0003: 40/100 done, 2 failed, 1 retried, paced at 300/min"
    assert seen.count("intent") == 40 and seen.count("result") == 40  # forwarded to the inner hook


async def test_logs_every_ten_seconds_when_slower(caplog) -> None:
    clock = Clock()
    progress = BatchProgress("phase1-0001", 1000, clock=clock)
    with caplog.at_level(logging.INFO, logger="genesys_sync.progress"):
        for _ in range(6):
            clock.now += 4.0  # 15/min: 10 s pass long before 10% (100 operations)
            await progress("result", None, _result("applied"))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "batch phase1-0001: 3/1000 done, 0 failed, 0 retried, paced at 15/min",
        "batch phase1-0001: 6/1000 done, 0 failed, 0 retried, paced at 15/min",
    ]


async def test_ticker_logs_while_no_operation_finishes(caplog) -> None:
    import asyncio

    progress = BatchProgress("phase2-0001", 5, interval=0.05)
    with caplog.at_level(logging.INFO, logger="genesys_sync.progress"):
        async with progress:
            await asyncio.sleep(0.18)  # waiting out a Retry-After, say
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) >= 2
    assert all(line.startswith("batch phase2-0001: 0/5 done, 0 failed") for line in lines)


def test_exception_lines_keep_safe_messages_and_withhold_others() -> None:
    assert describe_exception(ScimError("HTTP 503 to GET /api/v2/scim/v2/Users")) == (
        "ScimError: HTTP 503 to GET /api/v2/scim/v2/Users"
    )
    try:
        {"E1": 1}["ada.lovelace@example.com"]
    except KeyError as exc:
        line = describe_exception(exc)
    assert line.startswith("KeyError at test_progress.py:")
    assert "ada" not in line and "@" not in line
