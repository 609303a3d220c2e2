"""The Great Expectations gate of the HRIS export; import-light (pandas and GX load on call)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from genesys_sync.validation.result import Catalogue, GateResult, RuleFailure

if TYPE_CHECKING:
    import pandas as pd

    from genesys_sync.config import SyncConfig

__all__ = ["Catalogue", "GateResult", "RuleFailure", "gate_export", "run_gate"]


def run_gate(
    df: pd.DataFrame,
    *,
    config: SyncConfig,
    run_dir: Path,
    previous_row_count: int | None = None,
    catalogue: Catalogue | None = None,
) -> GateResult:
    """Gate an export already read with ``export.read_export`` (see ``gate.run_gate``)."""
    from genesys_sync.validation import gate

    return gate.run_gate(
        df,
        config=config,
        run_dir=run_dir,
        previous_row_count=previous_row_count,
        catalogue=catalogue,
    )


def gate_export(
    location: str,
    *,
    config: SyncConfig,
    run_dir: Path,
    previous_row_count: int | None = None,
    catalogue: Catalogue | None = None,
) -> GateResult:
    """Read the export at ``location`` and gate it (see ``gate.gate_export``)."""
    from genesys_sync.validation import gate

    return gate.gate_export(
        location,
        config=config,
        run_dir=run_dir,
        previous_row_count=previous_row_count,
        catalogue=catalogue,
    )
