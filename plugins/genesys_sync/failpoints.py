"""Fail points for crash tests: ``GENESYS_SYNC_FAILPOINT=<name>`` makes the process SIGKILL itself
when it reaches the point of that name, so a test can kill a run between two exact steps (the
state written but not the report, say) instead of guessing a moment. Unset, a fail point costs
one dictionary look-up. The points: ``report.after_state`` and ``report.before_file``."""

from __future__ import annotations

import os
import signal

ENV = "GENESYS_SYNC_FAILPOINT"


def failpoint(name: str) -> None:
    """Die here, as a SIGKILL would kill the process, when ``$GENESYS_SYNC_FAILPOINT`` names
    this point."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
