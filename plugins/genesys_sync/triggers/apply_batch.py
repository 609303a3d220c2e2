"""``ApplyBatchTrigger``: runs one batch job's SCIM calls in the triggerer and reports its status.

Genesys Cloud has no asynchronous bulk jobs, so the *job* is this trigger: it drives the
batch's calls with the shared, per-connection rate limiter, writes per-operation results next
to the batch file and yields one small event (status, counts, paths). Running it twice is safe:
every operation is idempotent (see ``genesys_sync.apply``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from genesys_sync.hooks.genesys import DEFAULT_CONN_ID, GenesysScimHook
from genesys_sync.progress import describe_exception
from genesys_sync.stages.apply import apply_batch_file


class ApplyBatchTrigger(BaseTrigger):
    def __init__(
        self,
        batch_path: str,
        conn_id: str = DEFAULT_CONN_ID,
        start_delay: float = 5.0,
        job_timeout_seconds: float | None = None,
        deadline_at: float | None = None,
    ) -> None:
        super().__init__()
        self.batch_path = batch_path
        self.conn_id = conn_id
        self.start_delay = start_delay
        self.job_timeout_seconds = job_timeout_seconds
        # The job's deadline as a wall-clock time (epoch seconds), fixed when the task deferred:
        # a trigger restarted (triggerer restart, another triggerer) keeps it, not a new one.
        self.deadline_at = deadline_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "batch_path": self.batch_path,
                "conn_id": self.conn_id,
                "start_delay": self.start_delay,
                "job_timeout_seconds": self.job_timeout_seconds,
                "deadline_at": self.deadline_at,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # Airflow 3.3.2 can kill a task whose trigger fires before the deferring worker process
        # has exited; a pause before the first call makes that race rare (the task's retry and
        # idempotent operations cover the rest).
        await asyncio.sleep(self.start_delay)
        deadline = None  # a Retry-After is honoured up to the job's deadline, not past it
        if self.deadline_at is not None:
            deadline = time.monotonic() + max(0.0, self.deadline_at - time.time())
        elif self.job_timeout_seconds:  # a trigger serialized before deadline_at existed
            deadline = time.monotonic() + self.job_timeout_seconds
        try:
            config = await GenesysScimHook(self.conn_id).aget_scim_config()
            outcome = await apply_batch_file(config, self.batch_path, deadline=deadline)
        except Exception as exc:  # an exception in run() would lose the event: report it
            described = describe_exception(exc)  # type, and a message free of personal data
            self.log.error("Batch job %s could not run: %s", self.batch_path, described)
            yield TriggerEvent(
                {
                    "status": "error",
                    "batch_path": self.batch_path,
                    "message": f"batch job could not run: {described}",
                }
            )
            return
        status = "error" if outcome.get("unreachable") else "success"
        yield TriggerEvent({"status": status, "batch_path": self.batch_path, **outcome})
