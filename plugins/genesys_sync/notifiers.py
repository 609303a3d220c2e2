"""Alerts through Airflow's standard notifiers, and the audit event of a failed task.

What is sent, and when:

- ``RunFailureAlert`` (the DAG's ``on_failure_callback``): exactly one alert per failed run,
  naming the stage that failed first, the reason and a link to that stage's log;
- ``ApprovalRequestNotifier`` (the approval task's ``notifiers``): held removals wait for a
  human, with a link to the run's Required Actions;
- ``deadline_missed`` (the DAG's ``DeadlineAlert`` callback, run by the triggerer): the run has
  not finished ``$GENESYS_SYNC_DEADLINE_HOURS`` after it was queued;
- ``AuditTaskFailure`` (every task's ``on_failure_callback``): the audit trail's
  ``TASK_FAILED`` event, per task; it sends nothing.

Where alerts go is configuration, not code (``alerts:`` in sync.yaml, and the environment):
``HttpNotifier`` to the ``sync_alerts`` http connection (or ``$ALERT_WEBHOOK_URL``),
``SmtpNotifier`` to ``alerts.email.to``, Slack's notifiers where that provider is installed.
A message holds stage names, counts, the reason the sync wrote (employee ids at most, never an
e-mail, a phone number or a secret) and links; it is cut at a word boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from genesys_sync import audit, runs

log = logging.getLogger(__name__)

DAG_ID = "genesys_user_sync"
ALERT_CONN_ID = "sync_alerts"
#: Hours after a run was queued by which it must have finished (0: no deadline alert).
DEFAULT_DEADLINE_HOURS = 8.0


class _BuiltNotifier(BaseNotifier):
    """A notifier whose message is built from the run's files, not rendered from a template:
    nothing to render (a DAG callback under ``dags test`` gets a DAG with no template
    environment, and no value of a run is ever evaluated as Jinja)."""

    template_fields = ()

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        return None


# --- the message ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """One alert, channel-neutral: the HTTP body, the e-mail and the chat message derive from it."""

    event: str  # SYNC_RUN_FAILED | SYNC_APPROVAL_REQUESTED | SYNC_DEADLINE_MISSED
    dag_id: str
    run_id: str | None
    title: str
    text: str
    stage: str | None = None
    failed_tasks: tuple[str, ...] = ()
    reason: str | None = None
    link: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The JSON body (``text`` makes it readable by chat webhooks as it is)."""
        body = asdict(self)
        body["failed_tasks"] = list(self.failed_tasks)
        body.update(body.pop("details"))
        return body

    def html(self) -> str:
        """The e-mail body, every value escaped."""
        rows = [f"<p>{html.escape(line)}</p>" for line in self.text.splitlines() if line]
        if self.link:
            link = html.escape(self.link, quote=True)
            rows.append(f'<p><a href="{link}">{link}</a></p>')
        return "\n".join(rows)


_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+\d[\d ().-]{5,}\d")
_SCHEME_SECRET = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{6,}")
_KEY_SECRET = re.compile(r"(?i)\b(\w*(?:token|secret|password))(\s*[=:]\s*)[^\s,;]+")


def scrub(text: str) -> str:
    """Take e-mail addresses, international phone numbers and credentials out of a text (a
    safety net: the sync's own reasons never hold them)."""
    text = _EMAIL.sub("<email>", text)
    text = _PHONE.sub("<phone>", text)
    for pattern in (_SCHEME_SECRET, _KEY_SECRET):
        text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}<redacted>", text)
    return text


def cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, cut at the last whitespace before the limit
    (so never inside a path or an id), ending with `` ...`` when something was left out."""
    text = text.strip()
    if len(text) <= limit:
        return text
    room = max(limit - 4, 1)
    head = text[: room + 1]
    boundary = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
    kept = head[:boundary] if boundary > 0 else text[:room]
    return kept.rstrip(" ,;:") + " ..."


# --- where alerts go -----------------------------------------------------------------------


@dataclass(frozen=True)
class Channels:
    """The configured channels (``alerts:`` plus the environment)."""

    http_conn_id: str | None = ALERT_CONN_ID
    http_endpoint: str | None = None
    http_url: str | None = None  # $ALERT_WEBHOOK_URL, used when the connection is missing
    email_to: tuple[str, ...] = ()
    email_from: str | None = None
    smtp_conn_id: str | None = None
    slack_webhook_conn_id: str | None = None
    slack_conn_id: str | None = None
    slack_channel: str | None = None
    base_url: str | None = None
    max_message_chars: int = 600


def channels(env: Mapping[str, str] | None = None) -> Channels:
    """The channels from ``alerts:`` in the config file and the environment (read when an
    alert is sent, never at DAG parse time)."""
    from genesys_sync.config import AlertsConfig, ConfigError, load_config

    env = os.environ if env is None else env
    try:
        alerts = load_config(env.get("GENESYS_SYNC_CONFIG") or None).alerts
    except ConfigError as exc:  # a broken config must not swallow the alert itself
        log.warning("Alert settings not read (%s); using the defaults", exc)
        alerts = AlertsConfig()
    email_to = tuple(a.strip() for a in (env.get("GENESYS_SYNC_ALERT_EMAIL_TO") or "").split(","))
    return Channels(
        http_conn_id=alerts.http_conn_id,
        http_endpoint=alerts.http_endpoint,
        http_url=env.get("ALERT_WEBHOOK_URL") or None,
        email_to=tuple(a for a in email_to if a) or alerts.email_to,
        email_from=alerts.email_from,
        smtp_conn_id=alerts.smtp_conn_id,
        slack_webhook_conn_id=env.get("GENESYS_SYNC_ALERT_SLACK_CONN_ID")
        or alerts.slack_webhook_conn_id,
        slack_conn_id=alerts.slack_conn_id,
        slack_channel=alerts.slack_channel,
        base_url=alerts.base_url,
        max_message_chars=alerts.max_message_chars,
    )


def _connection_exists(conn_id: str) -> bool:
    from airflow.sdk import BaseHook

    try:
        BaseHook.get_connection(conn_id)
    except Exception:  # AirflowNotFoundException (SDK or core), or no way to ask
        return False
    return True


def _standin_env(chosen: Channels) -> dict[str, str]:
    """``$ALERT_WEBHOOK_URL`` as the missing ``sync_alerts`` http connection, in Airflow's
    ``AIRFLOW_CONN_*`` form (empty when the connection exists or no URL is given)."""
    conn_id = chosen.http_conn_id
    if not conn_id or not chosen.http_url or _connection_exists(conn_id):
        return {}
    conn = json.dumps({"conn_type": "http", "host": chosen.http_url})
    return {f"AIRFLOW_CONN_{conn_id.upper()}": conn}


_standins: dict[str, int] = {}  # AIRFLOW_CONN_* name -> notifiers using it right now
_standins_lock = threading.Lock()


@contextlib.contextmanager
def _standin_connection(env: dict[str, str]):
    """The stand-in connection exists only while the notifiers run: the process environment is
    restored afterwards, so no later alert (nor a child process) finds a stale URL. Concurrent
    alerts in one triggerer share it; the last one out removes it."""
    with _standins_lock:
        for name, value in env.items():
            _standins[name] = _standins.get(name, 0) + 1
            os.environ[name] = value
    try:
        yield
    finally:
        with _standins_lock:
            for name in env:
                _standins[name] -= 1
                if not _standins[name]:
                    del _standins[name]
                    os.environ.pop(name, None)


def standard_notifiers(alert: Alert, chosen: Channels) -> list[tuple[str, BaseNotifier]]:
    """Airflow's notifiers for one alert, one per configured channel: ``(name, notifier)``."""
    out: list[tuple[str, BaseNotifier]] = []
    if chosen.http_conn_id and (chosen.http_url or _connection_exists(chosen.http_conn_id)):
        from airflow.providers.http.notifications.http import HttpNotifier

        notifier = HttpNotifier(
            http_conn_id=chosen.http_conn_id,
            endpoint=chosen.http_endpoint,
            json=alert.payload(),
            headers={"Content-Type": "application/json"},
            extra_options={"timeout": 30},
        )
        out.append(("http", notifier))
    if chosen.email_to:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        notifier = SmtpNotifier(
            to=list(chosen.email_to),
            from_email=chosen.email_from,
            smtp_conn_id=chosen.smtp_conn_id,
            subject=alert.title,
            html_content=alert.html(),
        )
        out.append(("email", notifier))
    if chosen.slack_webhook_conn_id or (chosen.slack_conn_id and chosen.slack_channel):
        out.extend(_slack_notifiers(alert, chosen))
    return out


def _slack_notifiers(alert: Alert, chosen: Channels) -> list[tuple[str, BaseNotifier]]:
    text = alert.title + "\n" + alert.text + (f"\n<{alert.link}|log>" if alert.link else "")
    out: list[tuple[str, BaseNotifier]] = []
    try:
        if chosen.slack_webhook_conn_id:
            from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

            notifier = SlackWebhookNotifier(
                slack_webhook_conn_id=chosen.slack_webhook_conn_id, text=text
            )
            out.append(("slack_webhook", notifier))
        if chosen.slack_conn_id and chosen.slack_channel:
            from airflow.providers.slack.notifications.slack import SlackNotifier

            notifier = SlackNotifier(
                slack_conn_id=chosen.slack_conn_id, channel=chosen.slack_channel, text=text
            )
            out.append(("slack", notifier))
    except ImportError:
        log.warning("Slack alerts configured, but apache-airflow-providers-slack is not installed")
    return out


def send(alert: Alert, context: Mapping[str, Any] | None = None, chosen: Channels | None = None):
    """Deliver ``alert`` through every configured notifier; returns the channels it reached.

    The notifiers' ``notify`` is called directly: the alert is already text, so nothing in it
    is rendered as a template. A channel that fails is logged (error type only) and never
    raises: an alert must not mask the failure it reports."""
    chosen = chosen or channels()
    notifiers = standard_notifiers(alert, chosen)
    if not notifiers:
        log.info("No alert channel configured (alerts: in sync.yaml): %s not sent", alert.event)
        return []
    reached = []
    with _standin_connection(_standin_env(chosen)):
        for name, notifier in notifiers:
            try:
                notifier.notify(dict(context or {}))
            except Exception as exc:
                log.warning("Alert %s via %s failed: %s", alert.event, name, type(exc).__name__)
            else:
                reached.append(name)
    log.info("Alert %s sent via %s", alert.event, ", ".join(reached) or "no channel")
    return reached


async def asend(alert: Alert, chosen: Channels | None = None) -> list[str]:
    """``send`` for the triggerer: each notifier's ``async_notify`` where it has one."""
    chosen = chosen or await asyncio.to_thread(channels)
    notifiers = await asyncio.to_thread(standard_notifiers, alert, chosen)
    standin = await asyncio.to_thread(_standin_env, chosen)
    reached = []
    with _standin_connection(standin):
        for name, notifier in notifiers:
            try:
                try:
                    await notifier.async_notify({})
                except NotImplementedError:
                    await asyncio.to_thread(notifier.notify, {})
            except Exception as exc:
                log.warning("Alert %s via %s failed: %s", alert.event, name, type(exc).__name__)
            else:
                reached.append(name)
    log.info("Alert %s sent via %s", alert.event, ", ".join(reached) or "no channel")
    return reached


# --- links ---------------------------------------------------------------------------------


def ui_base_url(chosen: Channels | None = None) -> str:
    if chosen and chosen.base_url:
        return chosen.base_url.rstrip("/")
    try:
        from airflow.sdk.configuration import conf

        return conf.get("api", "base_url", fallback="http://localhost:8080/").rstrip("/")
    except Exception:  # pragma: no cover - no Airflow configuration at all
        return "http://localhost:8080"


def task_url(base: str, dag_id: str, run_id: str, task_id: str | None = None) -> str:
    """The UI page of a run, or of one of its tasks (where its log is)."""
    url = f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"
    return url + (f"/tasks/{quote(task_id)}" if task_id else "")


# --- the run's failure ---------------------------------------------------------------------


def failure_alert(
    dag_id: str,
    run_id: str,
    verdict: Mapping[str, Any] | None,
    report: Mapping[str, Any] | None,
    last_task: str | None = None,
    chosen: Channels | None = None,
    stage_failure: Mapping[str, Any] | None = None,
) -> Alert:
    """The alert of a failed run: the earliest failed stage (the verdict's, else the task that
    failed last), the reason (that stage's own error, else the verdict's, else the report's)
    and that stage's log link."""
    chosen = chosen or Channels()
    verdict = verdict or {}
    failed = tuple(verdict.get("failed_tasks") or ())
    stage = verdict.get("stage") or (failed[0] if failed else None) or last_task or "outcome"
    own = dict(stage_failure or {})
    reason = (
        (f"{own['error_type']}: {own['message']}" if own.get("message") else None)
        or verdict.get("reason")
        or (report or {}).get("failure_reason")
        or f"the run failed at {stage} (see its log)"
    )
    limit = chosen.max_message_chars
    reason = cut(scrub(str(reason)), limit)
    link = task_url(ui_base_url(chosen), dag_id, run_id, stage.split(".")[-1])
    text = f"{dag_id} run {run_id} failed at stage {stage}: {reason}"
    return Alert(
        event="SYNC_RUN_FAILED",
        dag_id=dag_id,
        run_id=run_id,
        title=f"{dag_id}: run failed at {stage}",
        text=cut(text, limit + 200),
        stage=stage,
        failed_tasks=failed,
        reason=reason,
        link=link,
        details={
            "log_url": link,
            "status": (report or {}).get("status", "failed"),
            "writes": (report or {}).get("writes"),
            "failed": (report or {}).get("failed"),
            "error_type": own.get("error_type"),
            "report_reason": cut(scrub(str(report["failure_reason"])), limit)
            if (report or {}).get("failure_reason")
            else None,
        },
    )


def _read_run_file(run_id: str, name: str) -> dict[str, Any] | None:
    from genesys_sync.runs import Run

    try:
        return Run(run_id).read(name)
    except Exception:  # unreadable: the alert goes out without it
        return None


class RunFailureAlert(_BuiltNotifier):
    """The DAG's ``on_failure_callback``: one alert per failed run, whichever task failed.

    Runs once per run (Airflow calls a DAG's failure callback when the run fails, in the DAG
    processor or in ``dags test``), so a gate failure seen by ``validate`` and then by
    ``outcome`` is one alert. The stage and reason come from the verdict ``outcome`` recorded
    (``verdict.json``), else from the report and the task that failed last."""

    def notify(self, context: Any) -> None:
        dag = context.get("dag")
        dag_id = getattr(dag, "dag_id", None) or DAG_ID
        run_id = context.get("run_id") or getattr(context.get("dag_run"), "run_id", None)
        ti = context.get("ti") or context.get("task_instance")
        if not run_id:
            log.warning("Run failure alert without a run id: not sent")
            return
        chosen = channels()
        verdict = _read_run_file(run_id, runs.VERDICT)
        last_task = getattr(ti, "task_id", None)
        stage = (verdict or {}).get("stage") or last_task or "outcome"
        alert = failure_alert(
            dag_id,
            run_id,
            verdict,
            _read_run_file(run_id, runs.REPORT),
            last_task=last_task,
            chosen=chosen,
            stage_failure=task_failure(run_id, stage),
        )
        send(alert, context, chosen)


class AuditTaskFailure(_BuiltNotifier):
    """Every task's ``on_failure_callback``: the audit trail's ``TASK_FAILED`` event (task id
    and error type), and the task's reason kept for the run's alert (``failures/<task>.json``,
    scrubbed). The alert itself is the run's (``RunFailureAlert``)."""

    def notify(self, context: Any) -> None:
        ti = context.get("ti") or context.get("task_instance")
        dag_run = context.get("dag_run")
        exc = context.get("exception")
        run_id = getattr(dag_run, "run_id", None) or context.get("run_id")
        task_id, map_index = getattr(ti, "task_id", None), getattr(ti, "map_index", None)
        try:
            audit.audit(
                "TASK_FAILED",
                run_id,
                task_id=task_id,
                map_index=map_index,
                try_number=getattr(ti, "try_number", None),
                error_type=type(exc).__name__ if exc else None,
            )
        except Exception as err:  # the task's own failure is what matters
            log.warning("TASK_FAILED not audited: %s", type(err).__name__)
        if run_id and task_id:
            record_task_failure(run_id, task_id, map_index, exc)


def record_task_failure(run_id: str, task_id: str, map_index: Any, exc: BaseException | None):
    """Keep why a task failed (error type, scrubbed message) for the run's failure alert."""
    from genesys_sync.runs import Run

    message = scrub(str(exc))[:4000] if exc else None
    data = {
        "task_id": task_id,
        "map_index": map_index,
        "error_type": type(exc).__name__ if exc else None,
        "message": message,
    }
    try:
        Run(run_id).write_failure(task_id, map_index, data)
    except OSError as err:
        log.warning("Task failure not recorded for the alert: %s", type(err).__name__)


def task_failure(run_id: str, stage: str) -> dict[str, Any] | None:
    """What ``record_task_failure`` kept for ``stage`` (its first mapped instance if mapped)."""
    from genesys_sync.runs import Run

    try:
        return Run(run_id).failure(stage.split(".")[-1])
    except Exception:
        return None


# --- approval requested --------------------------------------------------------------------


def approval_alert(
    dag_id: str,
    run_id: str,
    plan: Mapping[str, Any] | None,
    link: str,
    expires_at: str | None = None,
    chosen: Channels | None = None,
) -> Alert:
    """The approval request's alert: how many removals wait, until when, and where to answer."""
    chosen = chosen or Channels()
    changes = (plan or {}).get("changes") or []
    held = [c for c in changes if c.get("held")]
    kinds: dict[str, int] = {}
    for change in held:
        kinds[str(change.get("kind"))] = kinds.get(str(change.get("kind")), 0) + 1
    what = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "removals"
    text = (
        f"{dag_id} run {run_id}: {len(held)} removal(s) held for approval ({what}), above the "
        f"safety threshold of {(plan or {}).get('removal_threshold', '?')}. Approve or reject "
        f"under Required actions"
        + (f"; unanswered, the request expires to Reject at {expires_at}." if expires_at else ".")
    )
    return Alert(
        event="SYNC_APPROVAL_REQUESTED",
        dag_id=dag_id,
        run_id=run_id,
        title=f"{dag_id}: approval needed for {len(held)} held removal(s)",
        text=cut(text, chosen.max_message_chars + 200),
        stage="approve_removals",
        link=link,
        details={"held": len(held), "held_by_kind": kinds, "expires_at": expires_at},
    )


class ApprovalRequestNotifier(_BuiltNotifier):
    """The approval task's ``notifiers``: tells the configured channels that held removals
    wait for a human (counts only), with a link to the run's Required Actions page."""

    def notify(self, context: Any) -> None:
        ti = context.get("ti") or context.get("task_instance")
        run_id = context.get("run_id") or getattr(ti, "run_id", None)
        dag_id = getattr(ti, "dag_id", None) or DAG_ID
        task = context.get("task")
        chosen = channels()
        base = ui_base_url(chosen)
        link = task_url(base, dag_id, run_id, getattr(ti, "task_id", "approve_removals"))
        link += "/required_actions"
        if getattr(ti, "map_index", -1) not in (None, -1):
            link += f"?map_index={ti.map_index}"
        expires = (getattr(task, "hitl_summary_extra", None) or {}).get("timeout_datetime")
        alert = approval_alert(
            dag_id, run_id, _read_run_file(run_id, "plan.json"), link, expires, chosen
        )
        send(alert, context, chosen)


def approvers(env: Mapping[str, str] | None = None) -> list[dict[str, str]] | None:
    """``assigned_users`` of the approval task, from ``$GENESYS_SYNC_APPROVERS``
    (comma-separated user ids, ``id`` or ``id:name``); unset: everyone the auth manager lets
    answer the DAG's required actions. Read at DAG parse time: no I/O."""
    raw = (os.environ if env is None else env).get("GENESYS_SYNC_APPROVERS") or ""
    users = []
    for item in (part.strip() for part in raw.split(",")):
        if item:
            user_id, _, name = item.partition(":")
            users.append({"id": user_id.strip(), "name": (name or user_id).strip()})
    return users or None


# --- the deadline --------------------------------------------------------------------------


def deadline_interval(env: Mapping[str, str] | None = None) -> timedelta | None:
    """How long after being queued a run must have finished (``$GENESYS_SYNC_DEADLINE_HOURS``,
    default 8 h); ``None`` when set to 0. Read at DAG parse time: no I/O."""
    raw = (os.environ if env is None else env).get("GENESYS_SYNC_DEADLINE_HOURS")
    try:
        hours = DEFAULT_DEADLINE_HOURS if raw in (None, "") else float(raw)
    except ValueError:
        log.warning("GENESYS_SYNC_DEADLINE_HOURS=%r is not a number: using %s", raw, 8)
        hours = DEFAULT_DEADLINE_HOURS
    return timedelta(hours=hours) if hours > 0 else None


def deadline_alert(env: Mapping[str, str] | None = None) -> Any:
    """The DAG's ``deadline``: a ``DeadlineAlert`` on the run's queued time whose callback,
    ``deadline_missed``, runs in the triggerer; ``None`` when turned off, and under
    ``airflow dags test`` (``make sync``), whose 3.3.2 run loop fails on any DAG deadline
    once the run succeeds (it looks the deadline up by its serialized form, not its id)."""
    interval = deadline_interval(env)
    if interval is None or _in_dags_test():
        return None
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=interval,
        callback=AsyncCallback(deadline_missed, kwargs={"hours": interval.total_seconds() / 3600}),
        name="genesys_user_sync not finished",
    )


def _in_dags_test(argv: list[str] | None = None) -> bool:
    """Whether this process is ``airflow dags test`` (which parses the DAG itself)."""
    args = sys.argv if argv is None else argv
    return (
        len(args) >= 3 and os.path.basename(args[0]) == "airflow" and args[1:3] == ["dags", "test"]
    )


def deadline_missed_alert(
    context: Mapping[str, Any] | None, hours: float | None, chosen: Channels | None = None
) -> Alert:
    """The deadline alert from the scheduler's simple context (``dag_run``, ``deadline``)."""
    chosen = chosen or Channels()
    dag_run = dict((context or {}).get("dag_run") or {})
    deadline = dict((context or {}).get("deadline") or {})
    dag_id = str(dag_run.get("dag_id") or DAG_ID)
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id")
    state = dag_run.get("state") or "running"
    limit = f"{hours:g} h after it was queued" if hours else "its deadline"
    text = (
        f"{dag_id} run {run_id} has not finished {limit} (deadline "
        f"{deadline.get('deadline_time') or '?'}, state {state}): see the run for the stage "
        "it is waiting in."
    )
    link = task_url(ui_base_url(chosen), dag_id, str(run_id)) if run_id else ui_base_url(chosen)
    return Alert(
        event="SYNC_DEADLINE_MISSED",
        dag_id=dag_id,
        run_id=str(run_id) if run_id else None,
        title=f"{dag_id}: run not finished by its deadline",
        text=cut(text, chosen.max_message_chars + 200),
        link=link,
        details={"deadline_time": str(deadline.get("deadline_time") or ""), "state": state},
    )


async def deadline_missed(context: dict[str, Any] | None = None, hours: float | None = None):
    """``AsyncCallback`` of the DAG's deadline (imported by path in the triggerer, so it lives
    in ``plugins/``): alerts that the run is still not finished."""
    chosen = await asyncio.to_thread(channels)
    alert = deadline_missed_alert(context, hours, chosen)
    reached = await asend(alert, chosen)
    # Airflow keeps a callback's return value as text (callback.output, a Text column: a dict
    # there fails the triggerer's database update on PostgreSQL), so the outcome is a sentence.
    return f"{alert.event} sent via {', '.join(reached) or 'no channel'}"
