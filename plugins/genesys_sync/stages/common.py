"""What several stages share: the run's params, the stages' exceptions, small readers."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from genesys_sync.scim.errors import ScimError, ScimRateLimited


class GateBlocked(RuntimeError):
    """The export failed a dataset-level check: nothing was written."""


class SyncFailed(RuntimeError):
    """The run applied its plan, but too much of it failed or the target was unreachable."""


class PlanStopped(RuntimeError):
    """The target could not be read in a way the plan can trust: nothing was written."""


class TargetUnreachable(RuntimeError):
    """A stage before the batch jobs gave up on the target (every retry spent): nothing was
    written. The message names the last error, the attempts and how long it was tried."""


_P = ParamSpec("_P")
_R = TypeVar("_R")


def names_unreachable(stage: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Turn a SCIM error the client gave up retrying into :class:`TargetUnreachable`, so the
    task's failure says "unreachable" rather than a bare transport error."""

    def decorate(func: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(func)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            started = time.monotonic()
            try:
                return func(*args, **kwargs)
            except ScimError as exc:
                if not exc.retryable:
                    raise
                how = "kept answering 429" if isinstance(exc, ScimRateLimited) else "unreachable"
                raise TargetUnreachable(
                    f"{stage}: the target was {how} (last error {exc}, {exc.attempts} "
                    f"attempt(s), tried for {time.monotonic() - started:.0f} s); nothing was "
                    "written"
                ) from exc

        return wrapper

    return decorate


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
