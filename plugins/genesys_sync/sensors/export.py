"""``HrisExportSensor``: deferrable wait for the run's HRIS export, with a deadline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from genesys_sync.triggers.export import ExportAvailableTrigger

if TYPE_CHECKING:
    import jinja2


class ExportMissing(RuntimeError):
    """The export did not land before the deadline."""


class HrisExportSensor(BaseSensorOperator):
    """Waits in the triggerer (no worker slot held) until ``location`` exists.

    Past ``wait_timeout`` the task fails with a message that names the missing file, and the
    DAG's failure alert fires. A run param ``export`` outside the allow-list (the
    ``export_location`` macro raises ``ExportNotAllowed`` while ``location`` renders) fails the
    task at once, without retry and without touching the location. Left unset, the deadline
    and the poke interval come from the config file (``export.wait_timeout_minutes``,
    ``export.poke_interval_seconds``), read when the task runs, never at parse time.
    """

    template_fields: Sequence[str] = ("location",)

    def __init__(
        self,
        *,
        location: str,
        wait_timeout: timedelta | None = None,
        poke_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval or 60.0, **kwargs)
        self.location = location
        self.wait_timeout = wait_timeout
        self.configured_poke_interval = poke_interval

    def render_template_fields(
        self, context: Context, jinja_env: jinja2.Environment | None = None
    ) -> None:
        from genesys_sync.export import ExportNotAllowed

        try:
            super().render_template_fields(context, jinja_env)
        except ExportNotAllowed as exc:  # deterministic: a retry would be refused the same way
            raise AirflowFailException(str(exc)) from None

    def poke(self, context: Context) -> bool:
        from genesys_sync.export import export_exists

        return export_exists(self.location)

    def execute(self, context: Context) -> None:
        if self.poke(context):
            return
        wait_timeout, interval = self.wait_timeout, self.configured_poke_interval
        if wait_timeout is None or interval is None:
            from genesys_sync.config import load_config

            export = load_config().export
            wait_timeout = wait_timeout or timedelta(minutes=export.wait_timeout_minutes)
            interval = interval or export.poke_interval_seconds
        deadline = datetime.now(UTC) + wait_timeout
        self.log.info("Waiting for the HRIS export at %s until %s", self.location, deadline)
        from genesys_sync.settings import trigger_start_delay

        self.defer(
            trigger=ExportAvailableTrigger(
                self.location,
                deadline.isoformat(),
                interval,
                start_delay=trigger_start_delay(default=2.0),
            ),
            method_name="execute_complete",
            timeout=wait_timeout + timedelta(minutes=5),
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
