"""The sync's figures as Airflow metrics, under ``genesys_sync.`` names.

Sent through Airflow's own metrics client, so ``[metrics]`` decides where they go: StatsD
(``statsd_on``, ``statsd_host``/``statsd_port``, names prefixed by ``statsd_prefix``, default
``airflow``), OpenTelemetry (``otel_on``; the collector is named by the standard
``OTEL_EXPORTER_OTLP_*`` variables, names prefixed by ``otel_prefix``, default ``airflow``) or
nowhere (the default). The figures are the run report's (``report.json``), which counted them
once from what every stage's client sent and every batch job's results; this module only names
them (``run_points``, pure) and hands them to Airflow (``emit_run_metrics``, which imports
Airflow lazily and never raises). A task process ends without running exit hooks, so
OpenTelemetry's buffered points are pushed at once (``_flush_otel``).

StatsD carries no tags by default, so every dimension is part of the name
(``genesys_sync.requests.method.PATCH``); the same points carry it as a tag too (OpenTelemetry
attributes, InfluxDB/Datadog tags).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "genesys_sync"


@dataclass(frozen=True)
class Point:
    """One metric: a counter increment, a gauge value or a timing (milliseconds)."""

    kind: str  # "incr" | "gauge" | "timing"
    name: str
    value: float
    tags: dict[str, str] = field(default_factory=dict)


def _name(*parts: Any) -> str:
    return ".".join([PREFIX, *(_safe(p) for p in parts)])


def _safe(part: Any) -> str:
    """A name segment StatsD accepts: letters, digits, ``_`` and ``-``."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in str(part))


def run_points(report: Mapping[str, Any]) -> list[Point]:
    """The metrics of one run, from its report: requests (total, by method, by status), 429s,
    retries, token requests, request latency (p50/p95/max), operations by kind and outcome,
    rows read and rejected, removals held, writes, and the run's duration and outcome."""
    status = str(report.get("status") or "unknown")
    dry_run = bool(report.get("dry_run"))
    points = [
        Point("incr", _name("runs", status), 1, {"status": status, "dry_run": str(dry_run)}),
        Point("incr", _name("requests"), int(report.get("api_calls") or 0)),
        Point("incr", _name("http_429"), int(report.get("http_429") or 0)),
        Point("incr", _name("retries"), int(report.get("retries") or 0)),
        Point("incr", _name("token_requests"), int(report.get("token_requests") or 0)),
        Point("incr", _name("rows", "read"), int(report.get("rows") or 0)),
        Point("incr", _name("rows", "rejected"), int(report.get("rejected") or 0)),
        Point("incr", _name("writes"), int(report.get("writes") or 0)),
        Point("gauge", _name("removals_held"), int(report.get("held") or 0)),
    ]
    for method, count in sorted((report.get("api_calls_by_method") or {}).items()):
        points.append(
            Point("incr", _name("requests", "method", method), int(count), {"method": method})
        )
    for code, count in sorted((report.get("api_calls_by_status") or {}).items()):
        points.append(
            Point("incr", _name("requests", "status", code), int(count), {"status": code})
        )
    for quantile, ms in sorted((report.get("latency_ms") or {}).items()):
        points.append(Point("gauge", _name("request_latency_ms", quantile), float(ms or 0)))
    for kind, outcomes in sorted((report.get("operations") or {}).items()):
        for outcome, count in sorted(outcomes.items()):
            tags = {"kind": kind, "outcome": outcome}
            points.append(Point("incr", _name("operations", kind, outcome), int(count), tags))
    duration = report.get("duration_s", report.get("duration_seconds"))
    if duration is not None:
        points.append(Point("timing", _name("run_duration"), float(duration) * 1000))
    return points


def _airflow_stats() -> Any:
    """Airflow's metrics client in this process, set up from ``[metrics]`` if the process has
    not done so (a task run by ``airflow dags test`` runs in the CLI's process)."""
    from airflow.sdk._shared.observability.metrics import stats as shared
    from airflow.sdk.observability import stats

    if getattr(shared, "_factory", None) is None:
        from airflow.sdk.configuration import conf
        from airflow.sdk.observability.metrics.stats_utils import get_stats_factory

        stats.initialize(
            factory=get_stats_factory(),
            export_legacy_names=conf.getboolean("metrics", "legacy_names_on", fallback=False),
        )
    return stats


def emit(points: Iterable[Point], stats: Any = None) -> int:
    """Send ``points`` through ``stats`` (Airflow's metrics client); returns how many."""
    stats = stats or _airflow_stats()
    sent = 0
    for point in points:
        tags = point.tags or None
        if point.kind == "incr":
            if point.value <= 0:
                continue  # a counter that did not move sends nothing
            stats.incr(point.name, count=int(point.value), tags=tags)
        elif point.kind == "gauge":
            stats.gauge(point.name, point.value, tags=tags)
        else:
            stats.timing(point.name, timedelta(milliseconds=point.value), tags=tags)
        sent += 1
    _flush_otel()
    return sent


def _flush_otel() -> None:
    """OpenTelemetry exports periodically: push now, before a short task process ends."""
    try:
        from airflow.sdk.configuration import conf

        if not conf.getboolean("metrics", "otel_on", fallback=False):
            return
        from opentelemetry import metrics as otel_metrics

        provider = otel_metrics.get_meter_provider()
        if hasattr(provider, "force_flush"):
            provider.force_flush(timeout_millis=10_000)
    except Exception as exc:  # metrics never fail a run
        log.debug("OpenTelemetry flush failed: %s", type(exc).__name__)


def emit_run_metrics(report: Mapping[str, Any]) -> int:
    """The run's metrics, sent where ``[metrics]`` says; 0 outside an Airflow process (the
    in-process stage tests) or when sending failed. Never raises: metrics never fail a run."""
    if "airflow" not in sys.modules:
        return 0
    try:
        sent = emit(run_points(report))
    except Exception as exc:
        log.warning("Run metrics not sent: %s", type(exc).__name__)
        return 0
    log.debug("Sent %d genesys_sync metrics", sent)
    return sent
