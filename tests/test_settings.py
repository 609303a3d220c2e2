"""``genesys_sync.settings``: where local state lives and the knobs read from the environment."""

from __future__ import annotations

import pytest

from genesys_sync import settings


def test_trigger_start_delay_defaults_and_reads_the_environment(monkeypatch):
    monkeypatch.delenv(settings.TRIGGER_START_DELAY_ENV, raising=False)
    assert settings.trigger_start_delay() == 5.0
    assert settings.trigger_start_delay(default=2.0) == 2.0
    monkeypatch.setenv(settings.TRIGGER_START_DELAY_ENV, "0")
    assert settings.trigger_start_delay() == 0.0
    monkeypatch.setenv(settings.TRIGGER_START_DELAY_ENV, "-3")
    assert settings.trigger_start_delay() == 0.0
    monkeypatch.setenv(settings.TRIGGER_START_DELAY_ENV, "soon")
    with pytest.raises(ValueError):
        settings.trigger_start_delay()
