"""``ApplyBatchOperator``: hands one batch job to the triggerer and records how it ended."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator, Context

from genesys_sync import settings
from genesys_sync.hooks.genesys import DEFAULT_CONN_ID
from genesys_sync.triggers.apply_batch import ApplyBatchTrigger


class BatchJobFailed(RuntimeError):
    """The batch job could not reach the target within its retry budget."""


class ApplyBatchOperator(BaseOperator):
    """Apply one batch file of the run's plan through SCIM, deferred (no worker slot held).

    The task's XCom is the job's counts; per-operation results stay in the results file.
    """

    template_fields: Sequence[str] = ("batch_path",)
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        batch_path: str,
        conn_id: str = DEFAULT_CONN_ID,
        job_timeout: timedelta = timedelta(hours=6),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch_path = batch_path
        self.conn_id = conn_id
        self.job_timeout = job_timeout

    def execute(self, context: Context) -> None:
        self.defer(
            trigger=ApplyBatchTrigger(
                self.batch_path,
                self.conn_id,
                start_delay=settings.trigger_start_delay(),
                job_timeout_seconds=self.job_timeout.total_seconds(),
                deadline_at=time.time() + self.job_timeout.total_seconds(),
            ),
            method_name="execute_complete",
            timeout=self.job_timeout,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") != "success":
            reason = event.get("message") or (
                f"the target was unreachable: {event.get('unreachable', 0)} operation(s) "
                "not applied"
            )
            batch = event.get("batch_id") or event.get("batch_path")
            raise BatchJobFailed(f"Batch job {batch} failed: {reason}")
        self.log.info("Batch %s done: %s", event.get("batch_id"), event.get("outcomes"))
        return {k: event.get(k) for k in ("batch_id", "outcomes", "api_calls", "results_path")}
