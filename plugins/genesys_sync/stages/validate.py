"""The validate stage: take the run lock, read the export, run the gate (and the catalogue)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from genesys_sync import audit, run_lock, runs
from genesys_sync import report as reporting
from genesys_sync.config import SyncConfig
from genesys_sync.runs import Run
from genesys_sync.scim.connection import ScimConnectionConfig
from genesys_sync.stages.common import GateBlocked, client_stats, names_unreachable
from genesys_sync.state import StateStore

log = logging.getLogger(__name__)


async def _fetch_catalogue(scim: ScimConnectionConfig) -> tuple[Any, dict[str, Any]]:
    from genesys_sync.scim.client import AsyncScimClient
    from genesys_sync.validation import Catalogue

    async with AsyncScimClient(scim) as client:
        roles = await client.list_roles()
        divisions = await client.list_divisions()
        catalogue = Catalogue(roles=frozenset(roles), divisions=frozenset(divisions))
        return catalogue, client_stats(client)


CATALOGUE = "catalogue"
CATALOGUE_MISSES = "catalogue_misses"
CATALOGUE_RULES = ("unknown_role", "unknown_division")


def _cached_catalogue(store: StateStore, scim: ScimConnectionConfig, config: SyncConfig) -> Any:
    """The role and division names as last read, while younger than
    ``sync.reconcile_every_days`` (None: read them)."""
    from genesys_sync.validation import Catalogue

    cached = store.get_document(CATALOGUE)
    if not isinstance(cached, dict) or cached.get("api_url") != scim.api_url:
        return None
    try:
        age = datetime.now(UTC) - datetime.fromisoformat(cached["read_at"])
    except (KeyError, TypeError, ValueError):
        return None
    if age.total_seconds() > config.sync.reconcile_every_days * 86400:
        return None
    return Catalogue(
        roles=frozenset(cached.get("roles") or ()),
        divisions=frozenset(cached.get("divisions") or ()),
    )


def _store_catalogue(store: StateStore, scim: ScimConnectionConfig, catalogue: Any) -> None:
    store.set_document(
        CATALOGUE,
        {
            "api_url": scim.api_url,
            "read_at": datetime.now(UTC).isoformat(),
            "roles": sorted(catalogue.roles),
            "divisions": sorted(catalogue.divisions),
        },
    )


def _catalogue_misses(result: Any) -> int:
    """Rows the gate refused for a role or division name the catalogue lacks."""
    by_rule = getattr(result, "row_failures_by_rule", None) or {}
    return sum(int(by_rule.get(rule) or 0) for rule in CATALOGUE_RULES)


def _catalogue_misses_before(store: StateStore) -> int:
    try:
        return int(store.get_meta(CATALOGUE_MISSES) or 0)
    except ValueError:
        return 0


@names_unreachable("validate")
def validate_stage(
    run_id: str,
    location: str,
    config: SyncConfig,
    scim: ScimConnectionConfig | None,
    logical_date: date | None = None,
    lock_holder: str | None = None,
    run_gone: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """Take the run lock, read the export and run the Great Expectations gate.

    Raises ``RunLocked`` while another run holds the lock (``lock_holder``: who takes it,
    default this process; ``run_gone(run_id)``: whether an Airflow run that holds it has
    ended) and ``GateBlocked`` on a block.
    """
    from genesys_sync.validation import gate_export
    from genesys_sync.validation.gx_runner import keep_run_pages

    run = Run(run_id)
    store = StateStore()
    try:
        stale = run_lock.acquire(
            store.engine,
            run_id,
            lock_holder,
            max_age=timedelta(hours=config.sync.run_lock_hours),
            run_gone=run_gone,
        )
        if stale:
            log.warning("Took over the run lock of a run that is gone (%s)", stale.describe())
        previous_rows = store.previous_row_count(exclude_run_id=run_id)

        def gate(catalogue: Any, run_dir: Path) -> Any:
            # An unreadable file (encoding, delimiter, shape) is a dataset-level block like any
            # other.
            return gate_export(
                location,
                config=config,
                run_dir=run_dir,
                previous_row_count=previous_rows,
                catalogue=catalogue,
            )

        api_stats: list[dict[str, Any]] = []  # every catalogue read's requests

        def refreshed_catalogue() -> tuple[Any, int]:
            catalogue, stats = asyncio.run(_fetch_catalogue(scim))  # type: ignore[arg-type]
            _store_catalogue(store, scim, catalogue)  # type: ignore[arg-type]
            api_stats.append(stats)
            return catalogue, sum(s["total"] for s in api_stats)

        catalogue, calls, cached = None, 0, False
        if scim is not None and scim.api_url and scim.flavor == "genesys":
            catalogue = _cached_catalogue(store, scim, config)
            cached = catalogue is not None
            if catalogue is None:
                catalogue, calls = refreshed_catalogue()
        with run.workspace() as run_dir:  # the gate's files, then kept in the run
            result = gate(catalogue, run_dir)
            if cached and _catalogue_misses(result) > _catalogue_misses_before(store):
                # A name the cached catalogue lacks: perhaps created since; read it again.
                catalogue, calls = refreshed_catalogue()
                result = gate(catalogue, run_dir)
            if run.remote and result.data_docs_path:  # its pages go with the run's files
                result = dataclasses.replace(
                    result,
                    data_docs_path=keep_run_pages(
                        result.data_docs_path, run_dir.name, run_dir / runs.DATA_DOCS
                    ),
                )
        if catalogue is not None and scim is not None and scim.flavor == "genesys":
            store.set_meta(CATALOGUE_MISSES, str(_catalogue_misses(result)))
        result = run.kept(result, run_dir)
        run.save(
            runs.GateSummary(
                **result.to_dict(),
                api_calls=calls,
                api_stats=reporting.merge_client_stats(api_stats),
                export_location=location,
            )
        )
        if not result.passed:
            audit.audit(
                "GATE_BLOCKED",
                run_id,
                export_location=location,
                rules=[f.rule for f in result.dataset_failures],
                rows=result.row_count,
            )
            raise GateBlocked(result.explanation())
        store.record_export(
            run_id, logical_date, result.row_count, result.accepted_count, applied=False
        )
        audit.audit(
            "GATE_PASSED",
            run_id,
            export_location=location,
            rows=result.row_count,
            accepted=result.accepted_count,
            rejected=result.rejected_count,
        )
        log.info("%s", result.explanation())
        return {
            "accepted_path": str(result.accepted_path),
            "rows": result.row_count,
            "accepted": result.accepted_count,
            "rejected": result.rejected_count,
            "rejects_path": str(result.rejects_path),
            "quarantined_path": str(result.quarantined_path) if result.quarantined_path else None,
            "data_docs_path": str(result.data_docs_path) if result.data_docs_path else None,
        }
    finally:
        store.close()
