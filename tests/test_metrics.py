"""The run's figures as Airflow metrics (``genesys_sync.metrics``): the names, and what a real
local StatsD listener (a UDP socket) receives when ``[metrics] statsd_on`` is set."""

from __future__ import annotations

import socket

import pytest

from genesys_sync import metrics

REPORT = {
    "status": "success",
    "dry_run": False,
    "rows": 60,
    "rejected": 2,
    "held": 3,
    "writes": 50,
    "api_calls": 56,
    "api_calls_by_method": {"GET": 6, "POST": 50},
    "api_calls_by_status": {"200": 4, "201": 50, "429": 2},
    "http_429": 2,
    "retries": 2,
    "token_requests": 1,
    "latency_ms": {"p50": 48.1, "p95": 160.2, "max": 402.7},
    "operations": {"create": {"applied": 49, "failed": 1}, "update": {"unchanged": 4}},
    "duration_s": 26.0,
}


@pytest.fixture
def statsd_listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    yield sock
    sock.close()


def received(sock: socket.socket) -> dict[str, str]:
    """Every ``name:value|type`` line received until the socket stays quiet."""
    lines: dict[str, str] = {}
    try:
        while True:
            data, _ = sock.recvfrom(65535)
            for line in data.decode().splitlines():
                name, _, value = line.partition(":")
                lines[name] = value
            sock.settimeout(0.5)
    except TimeoutError:
        return lines


@pytest.fixture
def fresh_stats(monkeypatch):
    """This process's Airflow metrics client as a new task process has it: not set up yet."""
    from airflow.sdk._shared.observability.metrics import stats as shared

    monkeypatch.setattr(shared, "_factory", None)
    monkeypatch.setattr(shared, "_backend", None)


def test_the_points_name_every_figure_of_the_report():
    points = {p.name: p for p in metrics.run_points(REPORT)}

    assert points["genesys_sync.requests"].value == 56
    assert points["genesys_sync.requests.method.POST"].value == 50
    assert points["genesys_sync.requests.method.POST"].tags == {"method": "POST"}
    assert points["genesys_sync.requests.status.429"].value == 2
    assert points["genesys_sync.http_429"].value == 2
    assert points["genesys_sync.retries"].value == 2
    assert points["genesys_sync.request_latency_ms.p95"].kind == "gauge"
    assert points["genesys_sync.request_latency_ms.p95"].value == 160.2
    assert points["genesys_sync.operations.create.failed"].value == 1
    assert points["genesys_sync.operations.create.applied"].tags == {
        "kind": "create",
        "outcome": "applied",
    }
    assert points["genesys_sync.rows.rejected"].value == 2
    assert points["genesys_sync.removals_held"].value == 3
    assert points["genesys_sync.run_duration"].kind == "timing"
    assert points["genesys_sync.run_duration"].value == 26000
    assert points["genesys_sync.runs.success"].value == 1


def test_statsd_receives_the_genesys_sync_names(statsd_listener, monkeypatch, fresh_stats):
    port = statsd_listener.getsockname()[1]
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(port))
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PREFIX", "airflow")

    assert metrics.emit_run_metrics(REPORT) > 0

    got = received(statsd_listener)
    assert got["airflow.genesys_sync.requests"] == "56|c"
    assert got["airflow.genesys_sync.requests.method.GET"] == "6|c"
    assert got["airflow.genesys_sync.requests.status.201"] == "50|c"
    assert got["airflow.genesys_sync.http_429"] == "2|c"
    assert got["airflow.genesys_sync.retries"] == "2|c"
    assert got["airflow.genesys_sync.request_latency_ms.max"] == "402.7|g"
    assert got["airflow.genesys_sync.operations.create.applied"] == "49|c"
    assert got["airflow.genesys_sync.operations.update.unchanged"] == "4|c"
    assert got["airflow.genesys_sync.rows.rejected"] == "2|c"
    assert got["airflow.genesys_sync.removals_held"] == "3|g"
    assert float(got["airflow.genesys_sync.run_duration"].removesuffix("|ms")) == 26000
    assert got["airflow.genesys_sync.runs.success"] == "1|c"
    assert all(name.startswith("airflow.genesys_sync.") for name in got)


def test_nothing_is_sent_while_metrics_are_off(statsd_listener, monkeypatch, fresh_stats):
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "False")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(statsd_listener.getsockname()[1]))

    metrics.emit_run_metrics(REPORT)

    assert received(statsd_listener) == {}


def test_a_broken_report_never_raises(monkeypatch, fresh_stats):
    assert metrics.emit_run_metrics({"api_calls": "many"}) == 0
