"""What the gate decided: the result, its failures, and the explanation a data engineer reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Catalogue:
    """Role and division names the tenant knows (empty sets: names are not checked)."""

    roles: frozenset[str] = frozenset()
    divisions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RuleFailure:
    """A failed dataset-level rule: how many rows (or columns) and up to 5 employee ids."""

    rule: str
    message: str
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "count": self.count,
            "examples": list(self.examples),
        }


@dataclass
class GateResult:
    """The gate's outcome for one export (``passed`` is the dataset-level verdict)."""

    passed: bool
    row_count: int
    accepted_count: int
    rejected_count: int
    dataset_failures: list[RuleFailure]
    row_failures_by_rule: dict[str, int]
    accepted_path: Path
    rejects_path: Path
    data_docs_path: Path | None = None
    rows_with_rejected_manager: int = 0
    source: str | None = None
    quarantined_path: Path | None = None  # quarantined employee ids, for the planner

    def to_dict(self) -> dict[str, Any]:
        """Counts, rule names, employee-id examples and paths: JSON-able, no personal data."""
        return {
            "passed": self.passed,
            "row_count": self.row_count,
            "accepted_count": self.accepted_count,
            "rejected_count": self.rejected_count,
            "dataset_failures": [failure.to_dict() for failure in self.dataset_failures],
            "row_failures_by_rule": dict(self.row_failures_by_rule),
            "rows_with_rejected_manager": self.rows_with_rejected_manager,
            "accepted_path": str(self.accepted_path),
            "rejects_path": str(self.rejects_path),
            "data_docs_path": str(self.data_docs_path) if self.data_docs_path else None,
            "source": self.source,
            "quarantined_path": str(self.quarantined_path) if self.quarantined_path else None,
        }

    def explanation(self) -> str:
        """One paragraph saying what happened and what to do (one line for a pass)."""
        quarantine = _rule_counts(self.row_failures_by_rule)
        if self.passed:
            line = (
                f"Gate passed: {self.accepted_count} of {self.row_count} rows accepted, "
                f"{self.rejected_count} quarantined"
            )
            line += f" ({quarantine}; see {self.rejects_path})." if self.rejected_count else "."
            if self.rows_with_rejected_manager:
                line += (
                    f" {self.rows_with_rejected_manager} accepted row(s) report to a quarantined "
                    "manager; their manager reference is dropped for this run."
                )
            return line
        parts = [
            f"Gate blocked the HRIS export{f' {self.source}' if self.source else ''} "
            f"({self.row_count} rows): nothing is written to Genesys Cloud in this run."
        ]
        for failure in self.dataset_failures:
            detail = f"{failure.rule}: {failure.message}"
            if failure.examples:
                detail += f" (e.g. {', '.join(failure.examples)})"
            parts.append(detail.rstrip(".") + ".")
        if self.rejected_count:
            parts.append(
                f"Besides, {self.rejected_count} row(s) fail row-level rules ({quarantine}); "
                f"see {self.rejects_path}."
            )
        parts.append(
            "Fix the export (or the config, if the export is right) and re-run the DAG; "
            "the previous sync state is untouched."
        )
        if self.data_docs_path:
            parts.append(f"Data Docs: {self.data_docs_path}.")
        return " ".join(parts)


def _rule_counts(counts: dict[str, int]) -> str:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{rule}: {count}" for rule, count in ordered)
