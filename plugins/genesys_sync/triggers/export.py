"""``ExportAvailableTrigger``: waits in the triggerer until the HRIS export exists or a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class ExportAvailableTrigger(BaseTrigger):
    def __init__(
        self, location: str, deadline: str, poke_interval: float = 60.0, start_delay: float = 2.0
    ) -> None:
        super().__init__()
        self.location = location
        self.deadline = deadline
        self.poke_interval = poke_interval
        self.start_delay = start_delay

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "location": self.location,
                "deadline": self.deadline,
                "poke_interval": self.poke_interval,
                "start_delay": self.start_delay,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from genesys_sync.export import export_exists

        deadline = datetime.fromisoformat(self.deadline)
        # See ApplyBatchTrigger: never fire within the first moments after deferral.
        await asyncio.sleep(min(self.poke_interval, self.start_delay))
        while True:
            try:
                found = await asyncio.to_thread(export_exists, self.location)
            except Exception as exc:
                yield TriggerEvent(
                    {
                        "status": "error",
                        "location": self.location,
                        "message": f"{type(exc).__name__}: {exc}",
                    }
                )
                return
            if found:
                yield TriggerEvent({"status": "found", "location": self.location})
                return
            if datetime.now(UTC) >= deadline:
                yield TriggerEvent(
                    {"status": "timeout", "location": self.location, "deadline": self.deadline}
                )
                return
            await asyncio.sleep(self.poke_interval)
