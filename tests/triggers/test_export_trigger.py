"""``ExportAvailableTrigger``: serialisation and one test per event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from genesys_sync.triggers.export import ExportAvailableTrigger


async def _first_event(trigger):
    async for event in trigger.run():
        return event.payload
    raise AssertionError("no event")


def test_serialization_round_trip():
    trigger = ExportAvailableTrigger("/data/x.csv", "2026-11-27T08:00:00+00:00", 30)
    path, kwargs = trigger.serialize()
    assert path == "genesys_sync.triggers.export.ExportAvailableTrigger"
    assert ExportAvailableTrigger(**kwargs).serialize() == (path, kwargs)


async def test_found_when_the_file_lands(tmp_path):
    export = tmp_path / "export.csv"
    export.write_text("employee_id\n")
    deadline = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    event = await _first_event(ExportAvailableTrigger(str(export), deadline, 0.05))
    assert event == {"status": "found", "location": str(export)}


async def test_timeout_names_the_missing_file(tmp_path):
    missing = tmp_path / "never.csv"
    deadline = (datetime.now(UTC) + timedelta(seconds=0.2)).isoformat()
    event = await _first_event(ExportAvailableTrigger(str(missing), deadline, 0.05))
    assert event["status"] == "timeout" and event["location"] == str(missing)
