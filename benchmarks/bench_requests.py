"""Benchmark what a sync costs in requests, and how close its writes come to the rate limit.

# Usage: .venv/bin/python benchmarks/bench_requests.py [--employees 1000] [--rate 1200]
#        [--latency-ms 50] [--pacing-rate 300] [--pacing-employees 200] [--no-record]
Runs the DAG's stages in-process (``tests/pipeline/harness.py``: validate, plan, the batch
jobs, the manager links, the report) against a local Genesys sandbox that enforces a sliding
60 s window of ``--rate`` requests per token and answers after ``--latency-ms``. Scenarios, in
one run so the ratios are fair: the initial load of ``--employees`` active employees with a
management tree, the night after with nothing changed, 10 changes (4 updates, 3 terminations,
3 new hires), and a pacing sample at ``--pacing-rate`` (Genesys's 300/min). Request counts are
the sandbox's ``/_sandbox/stats`` (token requests apart); the write rate is the requests sent
while the batch jobs ran over their wall time, against the limit. Appends a table to
``benchmarks/RESULTS-requests.md``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).resolve().parent / "RESULTS-requests.md"

from benchmarks.generate_export import generate_rows  # noqa: E402
from tests.fixtures.expect import write_rows  # noqa: E402
from tests.fixtures.sandbox import start_sandbox  # noqa: E402
from tests.pipeline import harness  # noqa: E402

#: Role names the sandbox's catalogue knows (the generator's agent roles include others).
ROLES = "employee;User"


@dataclasses.dataclass
class BenchTarget:
    """The harness's target face, at the benchmark's request budget (not the tests' fast one)."""

    handle: Any
    rate: int
    name: str = "sandbox"
    genesys: bool = True

    def scim_config(self):
        from genesys_sync.scim.connection import ScimConnectionConfig

        conn = json.loads(self.handle.connection_json())
        conn["extra"]["requests_per_minute"] = self.rate
        return ScimConnectionConfig.from_fields(
            conn.get("host"), conn.get("login"), conn.get("password"), conn.get("extra")
        )


class ApplyClock:
    """Wraps the harness's batch job to time the apply window (first start to last end)."""

    def __init__(self) -> None:
        self.original = harness.apply_batch_file
        self.start: float | None = None
        self.end: float | None = None

    def reset(self) -> None:
        self.start = self.end = None

    async def __call__(self, scim, path):
        now = time.monotonic()
        self.start = now if self.start is None else self.start
        try:
            return await self.original(scim, path)
        finally:
            self.end = time.monotonic()

    @property
    def seconds(self) -> float:
        return (self.end - self.start) if self.start is not None and self.end else 0.0


def employees(n: int) -> list[dict[str, str]]:
    """``n`` active employees with a management tree (CEO, directors, team leads, staff)."""
    rows = []
    for row in generate_rows(n, seed=20261202, defect_rate=0.0):
        row["status"] = "active"
        if "Quality Evaluator" not in row["roles"]:
            row["roles"] = ROLES
        rows.append(row)
    return rows


def ten_changes(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """4 title updates, 3 terminations (staff with no reports), 3 new hires."""
    changed = copy.deepcopy(rows)
    managers = {r["manager_employee_id"] for r in changed}
    staff = [r for r in changed if r["employee_id"] not in managers]
    for row in staff[:4]:
        row["title"] = f"Senior {row['title']}"
    for row in staff[4:7]:
        row["status"] = "terminated"
    template = staff[10]
    for n in range(1, 4):
        hire = dict(template)
        hire.update(
            employee_id=f"E9{n:05d}",
            email=f"new.hire.{n}@example.com",
            display_name=f"New Hire {n}",
            first_name="New",
            last_name=f"Hire {n}",
        )
        changed.append(hire)
    return changed


def api_requests(stats: dict[str, Any]) -> int:
    return int(stats["requests"]) - int(stats["token_requests"])


def scenario(key, name, handle, home, export, target, clock, limit) -> dict[str, Any]:
    before = handle.stats()
    clock.reset()
    started = time.monotonic()
    result = harness.run_stages(home, export, target)
    wall = time.monotonic() - started
    after = handle.stats()
    if not result.ok:
        raise SystemExit(f"{name}: the run failed: {result.error}")
    requests = api_requests(after) - api_requests(before)
    by_method = {
        m: after["by_method"].get(m, 0) - before["by_method"].get(m, 0)
        for m in after["by_method"]
        if after["by_method"].get(m, 0) - before["by_method"].get(m, 0)
    }
    tokens = after["token_requests"] - before["token_requests"]  # POSTs to the login host
    if by_method.get("POST"):
        by_method["POST"] -= tokens
        by_method = {m: v for m, v in by_method.items() if v}
    writes = sum(result.report["applied"].values())
    apply_requests = sum(v for m, v in by_method.items() if m in ("POST", "PATCH", "DELETE"))
    rate = apply_requests / clock.seconds * 60 if clock.seconds else 0.0
    return {
        "key": key,
        "scenario": name,
        "changed users": writes,
        "requests": requests,
        "by method": ", ".join(f"{m} {v}" for m, v in sorted(by_method.items())) or "none",
        "requests per changed user": round(requests / writes, 3) if writes else None,
        "429s": after["rate_limited"] - before["rate_limited"],
        "limit/min": limit,
        "write rate/min": round(rate),
        "write rate / limit": round(rate / limit, 3) if clock.seconds else None,
        "apply s": round(clock.seconds, 1),
        "run s": round(wall, 1),
    }


#: Issue 10's measurements of the previous version (generic SCIM target, 1,000 employees).
BEFORE = {"initial": "2,002", "quiet": "42", "ten": "25"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=1200, help="requests/minute (limit)")
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--pacing-rate", type=int, default=300)
    parser.add_argument("--pacing-employees", type=int, default=200)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    import logging

    logging.disable(logging.WARNING)  # the stages' progress lines are not the benchmark's
    clock = ApplyClock()
    harness.apply_batch_file = clock
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-requests-") as tmp:
        tmp_path = Path(tmp)
        os.environ.setdefault("GENESYS_SYNC_HOME", str(tmp_path / "unused-home"))
        with start_sandbox(
            tmp_path / "sandbox",
            data_file=None,
            requests_per_minute=args.rate,
            latency_ms=args.latency_ms,
            log_level="WARNING",
        ) as handle:
            target = BenchTarget(handle, args.rate)
            home = tmp_path / "home"
            home.mkdir()
            staff = employees(args.employees)
            first = write_rows(tmp_path / "initial.csv", staff)
            n = f"{args.employees:,}"
            rows.append(
                scenario(
                    "initial",
                    f"initial load, {n} new employees with managers",
                    handle,
                    home,
                    first,
                    target,
                    clock,
                    args.rate,
                )
            )
            rows.append(
                scenario(
                    "quiet",
                    "second run, nothing changed",
                    handle,
                    home,
                    write_rows(tmp_path / "quiet.csv", staff),
                    target,
                    clock,
                    args.rate,
                )
            )
            changed = ten_changes(staff)
            rows.append(
                scenario(
                    "ten",
                    "10 changes (4 updates, 3 terminations, 3 new hires)",
                    handle,
                    home,
                    write_rows(tmp_path / "ten.csv", changed),
                    target,
                    clock,
                    args.rate,
                )
            )
            handle.reset()
            handle.set_faults(requests_per_minute=args.pacing_rate)
            pacing_home = tmp_path / "pacing-home"
            pacing_home.mkdir()
            pacing = employees(args.pacing_employees)
            rows.append(
                scenario(
                    "pacing",
                    f"pacing sample: initial load of {args.pacing_employees} at "
                    f"{args.pacing_rate}/min",
                    handle,
                    pacing_home,
                    write_rows(tmp_path / "pacing.csv", pacing),
                    BenchTarget(handle, args.pacing_rate),
                    clock,
                    args.pacing_rate,
                )
            )
    harness.apply_batch_file = clock.original
    table = render(rows, args)
    print(table)
    if not args.no_record:
        header = "" if RESULTS.exists() else HEADER
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write(header + table + "\n")


HEADER = """# Request benchmark results

`benchmarks/bench_requests.py` (`make bench`) runs the DAG's stages in-process against the local
Genesys sandbox (sliding 60 s window per token, fixed latency per call, no Bulk, pages of 25),
from an initial load through a quiet night and 10 changes, then a pacing sample at Genesys's
300 requests/minute. Requests are the sandbox's counters (token requests apart). The write rate
is the requests the batch jobs sent over the apply window's wall time; the batch jobs run one
after another, as under `airflow dags test`. "Before" is issue 10's measurement of the previous
version (generic SCIM target, same scenario sizes).

"""


def render(rows: list[dict[str, Any]], args) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {stamp}: nproc={os.cpu_count()}, Python {sys.version.split()[0]}, "
        f"limit {args.rate}/min, latency {args.latency_ms} ms",
        "",
        "| scenario | changed users | requests | before | by method | requests / changed user "
        "| 429s | write rate / limit | apply s | run s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        before = BEFORE.get(row["key"], "") if args.employees == 1000 else ""
        share = row["write rate / limit"]
        rate = (
            f"{row['write rate/min']}/{row['limit/min']} = {share:.1%}"
            if share is not None
            else "-"
        )
        lines.append(
            f"| {row['scenario']} | {row['changed users']} | {row['requests']} | {before} "
            f"| {row['by method']} | {row['requests per changed user'] or '-'} | {row['429s']} "
            f"| {rate} | {row['apply s']} | {row['run s']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
