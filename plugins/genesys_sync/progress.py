"""Progress of a running batch job, logged at a steady cadence, and PII-free exception lines.

``BatchProgress`` wraps a batch applier's ``on_event`` hook (see ``genesys_sync.apply``): it
counts the operations that have a result and logs "batch <id>: 40/100 done, 2 failed,
1 retried, paced at 298/min" every ``interval`` seconds or every ``step`` of the operations,
whichever comes first. The line carries counts only, never employee data.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import time
import traceback
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

OnEvent = Callable[..., Any]


class BatchProgress:
    """An ``on_event`` hook that forwards to ``inner`` and logs the batch's progress.

    ``retries`` returns the requests re-sent so far (the client's ``stats.retries``);
    ``clock`` is ``time.monotonic`` unless a test gives its own. Use it as an async context
    manager to also log while no operation finishes (a long ``Retry-After``)."""

    def __init__(
        self,
        batch_id: str,
        total: int,
        inner: OnEvent | None = None,
        retries: Callable[[], int] = lambda: 0,
        interval: float = 10.0,
        step: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self.batch_id = batch_id
        self.total = total
        self.inner = inner
        self.retries = retries
        self.interval = interval
        self.every = max(1, math.ceil(total * step))  # operations between two lines
        self.clock = clock
        self.log = logger
        self.done = 0
        self.failed = 0
        self.started = clock()
        self._last_at = self.started
        self._last_done = 0
        self._ticker: asyncio.Task[None] | None = None

    async def __call__(self, kind: str, change: Any, result: Any = None) -> None:
        if self.inner is not None:
            outcome = self.inner(kind, change, result)
            if inspect.isawaitable(outcome):
                await outcome
        if kind != "result":
            return
        self.done += 1
        if str(getattr(result, "outcome", "")) == "failed":
            self.failed += 1
        now = self.clock()
        if self.done - self._last_done >= self.every or now - self._last_at >= self.interval:
            self.emit(now)

    def line(self, now: float | None = None) -> str:
        """The progress line (counts and pace only)."""
        now = self.clock() if now is None else now
        minutes = (now - self.started) / 60
        pace = round(self.done / minutes) if minutes > 0 else 0
        return (
            f"batch {self.batch_id}: {self.done}/{self.total} done, {self.failed} failed, "
            f"{self.retries()} retried, paced at {pace}/min"
        )

    def emit(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        self.log.info("%s", self.line(now))
        self._last_at, self._last_done = now, self.done

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.clock() - self._last_at >= self.interval:
                self.emit()

    async def __aenter__(self) -> BatchProgress:
        self._ticker = asyncio.ensure_future(self._tick())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker


def describe_exception(exc: BaseException) -> str:
    """An exception as a log line without personal data: its type, and where it was raised.

    The SCIM client's and the audit trail's own errors are written to be safe (method, path
    without query, status, code) and keep their message; any other exception's text may quote
    a record, so only its type and the innermost frame (file:line) are shown."""
    from genesys_sync.audit import AuditUnavailable
    from genesys_sync.scim.errors import ScimError

    name = type(exc).__name__
    if isinstance(exc, ScimError | AuditUnavailable):
        return f"{name}: {str(exc)[:300]}"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{name}{where} (message withheld: it may quote personal data)"
