"""The run's figures as Airflow metrics (``genesys_sync.metrics``): the names, what a real
local StatsD listener (a UDP socket) receives when ``[metrics] statsd_on`` is set, and what a
real local OTLP/HTTP receiver receives when ``[metrics] otel_on`` is set."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

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


class OtlpReceiver:
    """A minimal OTLP/HTTP collector on 127.0.0.1: keeps every metrics export it is sent,
    decoded from protobuf, and answers 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, ExportMetricsServiceRequest]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                export = ExportMetricsServiceRequest()
                export.ParseFromString(body)
                receiver.requests.append((self.path, export))
                answer = ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def metrics(self) -> dict[str, tuple[str, list]]:
        """Every metric received, by name: its data type (``sum``, ``gauge``,
        ``exponential_histogram``, ...) and its data points, from the latest export. A sum
        that is not monotonic (not a counter) is reported as ``up_down_sum``."""
        found: dict[str, tuple[str, list]] = {}
        for _, export in self.requests:
            for resource in export.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        kind = metric.WhichOneof("data")
                        data = getattr(metric, kind)
                        if kind == "sum" and not data.is_monotonic:
                            kind = "up_down_sum"
                        found[metric.name] = (kind, list(data.data_points))
        return found


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


# A task process as Airflow ends it: the task runner leaves with os._exit(), so no atexit hook
# (Airflow's own OTel flush among them) runs; what arrives is what emit_run_metrics pushed.
TASK_PROCESS = """
import json, os, sys
import airflow  # metrics are sent from Airflow processes only
from genesys_sync import metrics
print(metrics.emit_run_metrics(json.loads(sys.argv[1])), flush=True)
os._exit(0)
"""


def _point(metric) -> tuple[str, float, dict[str, str]]:
    """A metric of one data point as (data type, value, attributes); a histogram's value is
    its sum."""
    kind, (point,) = metric
    if kind == "exponential_histogram":
        value = point.sum
    else:
        value = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
    return kind, value, {a.key: a.value.string_value for a in point.attributes}


@pytest.mark.parametrize(
    "endpoint",
    [
        # Airflow 3.2+: the standard OpenTelemetry variables say where (the exporter adds
        # /v1/metrics to OTEL_EXPORTER_OTLP_ENDPOINT; http/protobuf is the default protocol).
        pytest.param(
            lambda port: {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"},
            id="otel-env",
        ),
        # The [metrics] otel_host / otel_port options: deprecated since 3.2, still honoured.
        pytest.param(
            lambda port: {
                "AIRFLOW__METRICS__OTEL_HOST": "127.0.0.1",
                "AIRFLOW__METRICS__OTEL_PORT": str(port),
            },
            id="airflow-options",
        ),
    ],
)
def test_an_otlp_collector_receives_the_genesys_sync_metrics(otlp_receiver, endpoint):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AIRFLOW__METRICS__"))}
    env |= {
        "PYTHONPATH": os.pathsep.join(["plugins", "dags"]),
        "AIRFLOW__METRICS__OTEL_ON": "True",
        "OTEL_SERVICE_NAME": "genesys-sync-test",
        **endpoint(otlp_receiver.port),
    }
    child = subprocess.run(
        [sys.executable, "-c", TASK_PROCESS, json.dumps(REPORT)],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    assert int(child.stdout.split()[-1]) > 0, child.stderr

    assert otlp_receiver.requests, f"nothing reached the collector: {child.stderr}"
    assert {path for path, _ in otlp_receiver.requests} == {"/v1/metrics"}
    resource = otlp_receiver.requests[0][1].resource_metrics[0].resource
    assert {a.key: a.value.string_value for a in resource.attributes}[
        "service.name"
    ] == "genesys-sync-test"

    got = otlp_receiver.metrics()
    prefix = "airflow.genesys_sync."
    ours = {name.removeprefix(prefix): m for name, m in got.items() if name.startswith(prefix)}
    assert [name for name in got if "genesys_sync" in name] == [prefix + name for name in ours]
    assert len(ours) == len(metrics.run_points(REPORT))  # every point, none left behind

    # Counters are monotonic sums. OpenTelemetry lowercases instrument names (.get, .post);
    # the tags keep the case, as attributes.
    assert _point(ours["requests"]) == ("sum", 56, {})
    assert _point(ours["requests.method.get"]) == ("sum", 6, {"method": "GET"})
    assert _point(ours["requests.method.post"]) == ("sum", 50, {"method": "POST"})
    assert _point(ours["requests.status.429"]) == ("sum", 2, {"status": "429"})
    assert _point(ours["http_429"]) == ("sum", 2, {})
    assert _point(ours["retries"]) == ("sum", 2, {})
    assert _point(ours["token_requests"]) == ("sum", 1, {})
    assert _point(ours["rows.read"]) == ("sum", 60, {})
    assert _point(ours["rows.rejected"]) == ("sum", 2, {})
    assert _point(ours["writes"]) == ("sum", 50, {})
    create_applied = {"kind": "create", "outcome": "applied"}
    assert _point(ours["operations.create.applied"]) == ("sum", 49, create_applied)
    assert _point(ours["operations.create.failed"])[1] == 1
    assert _point(ours["operations.update.unchanged"])[1] == 4
    run = {"status": "success", "dry_run": "False"}
    assert _point(ours["runs.success"]) == ("sum", 1, run)
    assert _point(ours["request_latency_ms.p50"]) == ("gauge", 48.1, {})
    assert _point(ours["request_latency_ms.p95"]) == ("gauge", 160.2, {})
    assert _point(ours["request_latency_ms.max"]) == ("gauge", 402.7, {})
    assert _point(ours["removals_held"]) == ("gauge", 3, {})
    # A timing is a histogram in milliseconds: one run of 26 s.
    kind, (duration,) = ours["run_duration"]
    assert (kind, duration.count, duration.sum) == ("exponential_histogram", 1, 26000)
