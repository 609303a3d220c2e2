"""``HrisExportSensor``: deferrable wait for the run's HRIS export, with a deadline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context

from genesys_sync.triggers.export import ExportAvailableTrigger


class ExportMissing(RuntimeError):
    """The export did not land before the deadline."""


class HrisExportSensor(BaseSensorOperator):
    """Waits in the triggerer (no worker slot held) until ``location`` exists.

    Past ``wait_timeout`` the task fails with a message that names the missing file, and the
    DAG's failure alert fires.
    """

    template_fields: Sequence[str] = ("location",)

    def __init__(
        self,
        *,
        location: str,
        wait_timeout: timedelta = timedelta(hours=6),
        poke_interval: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            poke_interval=poke_interval, timeout=wait_timeout.total_seconds(), **kwargs
        )
        self.location = location
        self.wait_timeout = wait_timeout

    def poke(self, context: Context) -> bool:
        from genesys_sync.export import export_exists

        return export_exists(self.location)

    def execute(self, context: Context) -> None:
        if self.poke(context):
            return
        deadline = datetime.now(UTC) + self.wait_timeout
        self.defer(
            trigger=ExportAvailableTrigger(self.location, deadline.isoformat(), self.poke_interval),
            method_name="execute_complete",
            timeout=self.wait_timeout + timedelta(minutes=5),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> None:
        if event.get("status") == "found":
            return
        if event.get("status") == "timeout":
            raise ExportMissing(
                f"HRIS export not found at {self.location} by {event.get('deadline')}: "
                "check that the HR drop ran, or trigger the run again with param 'export' "
                "pointing at the file."
            )
        raise ExportMissing(
            f"Could not check the HRIS export at {self.location}: {event.get('message')}"
        )
