"""Write ``rejects.csv``: one line per failed rule per quarantined row, safe to open in Excel."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REJECT_COLUMNS = ("employee_id", "rule", "message", "sync")
#: What the run does with a quarantined row's employee: present in the export, so an existing
#: user is left exactly as it is (never deactivated), and nothing is written for it.
QUARANTINED = "quarantined, not synced"
_FORMULA_START = r"^[=+\-@\t\r]"


@dataclass(frozen=True)
class Rejection:
    """Rows (positions in the export) that failed one rule, with the message to write."""

    rule: str
    message: str
    positions: np.ndarray


def neutralise_formulas(values: pd.Series) -> pd.Series:
    """Prefix ``'`` to cells a spreadsheet would run as a formula (= + - @, tab, CR)."""
    values = values.astype(str)
    return values.where(~values.str.contains(_FORMULA_START), "'" + values)


def write_rejects(path: Path, rejections: list[Rejection], labels: np.ndarray) -> int:
    """Write the rejects file (in export order) and return its number of lines."""
    pieces = [
        pd.DataFrame({"position": r.positions, "rule": r.rule, "message": r.message})
        for r in rejections
        if len(r.positions)
    ]
    if pieces:
        lines = pd.concat(pieces, ignore_index=True).sort_values("position", kind="stable")
        lines.insert(0, "employee_id", labels[lines["position"].to_numpy()])
        lines = lines.drop(columns="position").assign(sync=QUARANTINED)
    else:
        lines = pd.DataFrame(columns=list(REJECT_COLUMNS))
    for column in REJECT_COLUMNS:
        lines[column] = neutralise_formulas(lines[column])
    path.parent.mkdir(parents=True, exist_ok=True)
    lines.to_csv(path, index=False, columns=list(REJECT_COLUMNS), encoding="utf-8")
    return len(lines)
