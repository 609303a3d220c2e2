"""
### genesys_user_sync

Keeps Genesys Cloud's users in sync with the nightly HRIS export.

1. **wait_for_export**: deferrable wait for the run's export (templated by the logical date).
   A param `export` outside `export.allowed_locations` fails here, unread and unretried.
2. **validate**: Great Expectations gate. A dataset-level failure stops the run with no write
   (and is not retried); bad rows are quarantined to the run's rejects file.
3. **plan**: compare the export with Genesys; write the reviewable plan and the batch files.
4. **apply_batch** / **link_managers**: fanned-out batch jobs, each deferred to the triggerer
   (the SCIM calls run there, sharing one rate limiter per connection).
   Deactivations above the safety threshold are held: **approve_removals** asks in the UI
   (unanswered: rejected), then **apply_held** applies them.
5. **report**: run report, state, audit trail (runs whatever happened upstream); an event on
   the organisation's Asset `genesys://<API host>/users` when the run applied something.
   The run's plan, report, rejects and held removals: its **Sync results** tab.
6. **notify_hris**: webhook to the HR system.
7. **outcome**: fails the run when the gate blocked, the target stayed unreachable or too
   many operations failed; per-user problems are reported, not fatal.

Params: `dry_run`, `employee_ids`, `export`, `force`, `approve_deactivations`,
`full_reconcile`, `wait_for_approval`.
Logic lives in `plugins/genesys_sync`; this file only wires it.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param, dag, task

from genesys_sync.assets import GENESYS_USERS, HRIS_EXPORT
from genesys_sync.dag_support import export_location, held_summary
from genesys_sync.notifiers import (
    ApprovalRequestNotifier,
    AuditTaskFailure,
    RunFailureAlert,
    approvers,
    deadline_alert,
)
from genesys_sync.operators.apply_batch import ApplyBatchOperator
from genesys_sync.sensors.export import HrisExportSensor

CONN_ID = "genesys_cloud"
#: The stages in the order they run: the verdict names the earliest one that failed.
STAGE_ORDER = (
    "wait_for_export",
    "validate",
    "plan",
    "apply_batch",
    "manager_links",
    "link_managers",
    "removals_held",
    "approve_removals",
    "held_batches",
    "apply_held",
    "report",
    "notify_hris",
)
EXPORT = "{{ export_location(params.export, dag_run) }}"
# How long held deactivations wait for a human before the request expires to "reject".
APPROVAL_TIMEOUT = timedelta(hours=float(os.environ.get("GENESYS_SYNC_APPROVAL_TIMEOUT_HOURS", 12)))


RUN_SECTION, RISKY_SECTION, APPROVAL_SECTION = "Run", "Risky switches", "Approval"


@dag(
    dag_id="genesys_user_sync",
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["genesys", "scim", "hris"],
    default_args={
        "owner": "data-engineering",
        "retries": 1,
        "retry_delay": timedelta(minutes=1),
        "on_failure_callback": [AuditTaskFailure()],  # the audit event, per task
    },
    # One alert per failed run (the stage that failed first), through the notifiers that
    # alerts: in sync.yaml configures; a deadline alert when a run is not done in time.
    on_failure_callback=RunFailureAlert(),
    deadline=deadline_alert(),
    user_defined_macros={"export_location": export_location, "held_summary": held_summary},
    params={
        # Titles and sections for the trigger form; a "null" type marks a field as optional
        # there (each has a default), risky switches in a section of their own.
        "dry_run": Param(
            False,
            type=["boolean", "null"],
            title="Dry run",
            description="Plan only; write nothing to Genesys Cloud.",
            section=RUN_SECTION,
        ),
        "employee_ids": Param(
            [],
            type=["array", "null"],
            items={"type": "string"},
            title="Only these employee ids",
            description=(
                "Sync only these employees, one id per line (never deactivates others). "
                "Empty: everyone in the export."
            ),
            section=RUN_SECTION,
        ),
        "export": Param(
            None,
            type=["null", "string"],
            title="Export location",
            description=(
                "Read this export instead of the usual one: only a location under "
                "export.allowed_locations (default: the configured export's directory)."
            ),
            section=RUN_SECTION,
        ),
        "full_reconcile": Param(
            False,
            type=["boolean", "null"],
            title="Full reconciliation",
            description="Read every target user, not only those that changed (also weekly).",
            section=RUN_SECTION,
        ),
        "force": Param(
            False,
            type=["boolean", "null"],
            title="Force an older export (backfill)",
            description="Apply an export older than the newest applied one (backfills).",
            section=RISKY_SECTION,
        ),
        "approve_deactivations": Param(
            False,
            type=["boolean", "null"],
            title="Approve deactivations above the threshold",
            description="Apply deactivations/deletions above the safety threshold.",
            section=RISKY_SECTION,
        ),
        "wait_for_approval": Param(
            True,
            type=["boolean", "null"],
            title="Wait for approval of held removals",
            description="Ask for approval in the UI when removals are held (make sync: false).",
            section=APPROVAL_SECTION,
        ),
    },
)
def genesys_user_sync():
    # No retry: the deadline already is the patience; a retry would wait a second period.
    wait = HrisExportSensor(task_id="wait_for_export", location=EXPORT, retries=0)

    @task(inlets=[HRIS_EXPORT])
    def validate(location: str, **context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from genesys_sync.config import load_config
        from genesys_sync.dag_support import run_date, run_lock_owner
        from genesys_sync.hooks.genesys import GenesysScimHook
        from genesys_sync.stages.common import GateBlocked
        from genesys_sync.stages.validate import validate_stage

        holder, run_gone = run_lock_owner(context["ti"])
        try:
            return validate_stage(
                context["run_id"],
                location,
                load_config(),
                GenesysScimHook(CONN_ID).get_scim_config(),
                logical_date=run_date(context["dag_run"]),
                lock_holder=holder,
                run_gone=run_gone,
            )
        except GateBlocked as exc:  # the same export blocks again: no retry
            raise AirflowFailException(str(exc)) from None

    @task
    def plan(gate: dict, **context) -> list[str]:
        from airflow.sdk.exceptions import AirflowFailException

        from genesys_sync.config import load_config
        from genesys_sync.dag_support import run_date
        from genesys_sync.hooks.genesys import GenesysScimHook
        from genesys_sync.plan import CapacityExceeded
        from genesys_sync.stages.common import RunParams
        from genesys_sync.stages.plan import plan_stage

        try:
            planned = plan_stage(
                context["run_id"],
                gate["accepted_path"],
                RunParams.from_mapping(context["params"]),
                load_config(),
                GenesysScimHook(CONN_ID).get_scim_config(),
                logical_date=run_date(context["dag_run"]),
            )
        except CapacityExceeded as exc:  # the licence limit: a retry plans the same
            raise AirflowFailException(str(exc)) from None
        # The batch index (runs.BatchIndex: each phase's batch files) for the later waves; the
        # first wave's files as the return value (a mapped task maps over that one only).
        context["ti"].xcom_push(key="batch_index", value=planned)
        return planned["phase1"]

    @task(trigger_rule="none_failed")
    def manager_links(planned: dict, **context) -> list[str]:
        from genesys_sync.stages.plan import link_batches

        return link_batches(context["run_id"], planned["phase2"])

    @task.short_circuit(trigger_rule="none_failed", ignore_downstream_trigger_rules=False)
    def removals_held(planned: dict, **context) -> bool:
        held = planned["held_batches"]
        return bool(held) and context["params"].get("wait_for_approval") is not False

    approve = ApprovalOperator(
        task_id="approve_removals",
        subject="genesys_user_sync: approve the held deactivations?",
        body="{{ held_summary(run_id) }}",
        defaults="Reject",  # an unanswered request expires to "reject"
        response_timeout=APPROVAL_TIMEOUT,
        notifiers=[ApprovalRequestNotifier()],  # someone is told that approval waits
        assigned_users=approvers(),  # $GENESYS_SYNC_APPROVERS; unset: anyone allowed
    )

    @task
    def held_batches(planned: dict) -> list[str]:
        return planned["held_batches"]

    # An event on the organisation's users asset when the run applied something (not dry).
    @task(trigger_rule="all_done", retries=0, outlets=[GENESYS_USERS])
    def report(**context) -> dict:
        from genesys_sync.assets import emit_users_updated
        from genesys_sync.config import load_config
        from genesys_sync.dag_support import run_date, started_at
        from genesys_sync.hooks.genesys import GenesysScimHook
        from genesys_sync.stages.common import RunParams
        from genesys_sync.stages.finish import finish_stage

        try:  # to read back what a killed batch job's open audit intents did
            scim = GenesysScimHook(CONN_ID).get_scim_config()
        except Exception:  # no connection: those intents are closed as "unknown"
            scim = None
        summary = finish_stage(
            context["run_id"],
            load_config(),
            started_at(context["dag_run"]),
            logical_date=run_date(context["dag_run"]),
            employee_ids=RunParams.from_mapping(context["params"]).employee_ids,
            scim=scim,
        )
        base_url = scim.base_url if scim else None
        emit_users_updated(context["outlet_events"], summary, base_url, context["run_id"])
        return summary

    @task(trigger_rule="all_done")
    def notify_hris(**context) -> None:
        from genesys_sync import runs
        from genesys_sync.hooks.webhook import WebhookHook
        from genesys_sync.webhook import webhook_payload

        report = runs.Run(context["run_id"]).load(runs.Report)
        summary = report.to_dict() if report else {"run_id": context["run_id"], "status": "failed"}
        WebhookHook("hris_webhook").send(webhook_payload(summary))

    @task(trigger_rule="all_done", retries=0)
    def outcome(**context) -> dict:
        from genesys_sync.stages.finish import check_outcome, failed_tasks_of

        ti = context["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[context["run_id"]])
        merged = {task: state for run in states.values() for task, state in run.items()}
        # Only tasks that failed: upstream_failed and skipped ones did not run.
        failed = failed_tasks_of(merged, STAGE_ORDER, exclude=ti.task_id)
        return check_outcome(context["run_id"], failed_tasks=failed)

    gate = validate(EXPORT)
    first_wave = plan(gate)
    planned = first_wave["batch_index"]
    applied = ApplyBatchOperator.partial(task_id="apply_batch", conn_id=CONN_ID).expand(
        batch_path=first_wave
    )
    links = manager_links(planned)
    linked = ApplyBatchOperator.partial(task_id="link_managers", conn_id=CONN_ID).expand(
        batch_path=links
    )
    approved = held_batches(planned)
    held = ApplyBatchOperator.partial(task_id="apply_held", conn_id=CONN_ID).expand(
        batch_path=approved
    )
    wait >> gate
    applied >> links
    applied >> removals_held(planned) >> approve >> approved
    done = report()
    [linked, held] >> done
    done >> notify_hris() >> outcome()


genesys_user_sync()
