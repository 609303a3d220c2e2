"""What several stages share: the run's params, the stages' exceptions, small readers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genesys_sync import report as reporting


class GateBlocked(RuntimeError):
    """The export failed a dataset-level check: nothing was written."""


class SyncFailed(RuntimeError):
    """The run applied its plan, but too much of it failed or the target was unreachable."""


class PlanStopped(RuntimeError):
    """The target could not be read in a way the plan can trust: nothing was written."""


@dataclass(frozen=True)
class RunParams:
    """The run's params (the DAG's ``params`` / ``make sync CONF=...``)."""

    dry_run: bool = False
    employee_ids: tuple[str, ...] = ()
    export: str | None = None
    force: bool = False
    approve_removals: bool = False
    full_reconcile: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any] | None) -> RunParams:
        params = dict(params or {})
        ids = params.get("employee_ids") or ()
        if isinstance(ids, str):
            ids = [i for i in ids.replace(",", " ").split() if i]
        return cls(
            dry_run=bool(params.get("dry_run", False)),
            employee_ids=tuple(str(i).strip() for i in ids),
            export=params.get("export") or None,
            force=bool(params.get("force", False)),
            approve_removals=bool(params.get("approve_deactivations", False)),
            full_reconcile=bool(params.get("full_reconcile", False)),
        )


def client_calls(client: Any) -> int:
    """The requests a SCIM client sent (its own count)."""
    return client.stats.total


def client_stats(client: Any) -> dict[str, Any]:
    """What a SCIM client sent, as plain values (``ScimClientStats.as_dict()``): the stage
    writes it into its artifact (``api_stats``) and the report sums them."""
    return client.stats.as_dict()


def read_optional(path: Path) -> Any:
    """A JSON artifact, or None when it is not there."""
    try:
        return reporting.read_json(path)
    except FileNotFoundError:
        return None
