"""Benchmark what a sync costs in requests and time against a Genesys-like sandbox, side by side.

# Usage: .venv/bin/python benchmarks/bench_requests.py [--employees 10000] [--rate 6000]
#        [--latency-ms 25] [--pacing-rate 300] [--pacing-latency-ms 200]
#        [--pacing-employees 600] [--compare-employees 1000] [--json PATH]
Runs the DAG's stages in-process (``tests/pipeline/harness.py``: validate, plan, the batch
jobs one after another as under ``airflow dags test``, the manager links, the report) against
one local Genesys sandbox that enforces a sliding 60 s window of ``--rate`` requests per token
and answers after ``--latency-ms``; no Bulk (Genesys has none), pages of at most 25 users when
the expensive attributes are returned. In one run, so the ratios are fair:

1. the initial load of ``--employees`` active employees with a management tree (CEO,
   directors, team leads, staff: ``generate_export.py``);
2. the night after, nothing changed; then nights of 1% churn, one per change kind (title
   updates, manager moves, terminations, new hires), and one mixed 1% night;
3. a full reconciliation (owned attributes, the largest page the target allows);
4. side by side on a ``--compare-employees`` tenant (the same sandbox and limit): this
   project, the tutorial's approach and the look-up-then-write approach
   (``alternatives.py``), each an initial load then a 1% night; on this tenant also a full
   reconciliation and the previous full read (every attribute, pages of 25);
5. a pacing sample at ``--pacing-rate`` (Genesys's 300/min) and ``--pacing-latency-ms``: an
   initial load long enough (2-3 minutes) for the rate to be steady.

Request counts are the sandbox's ``/_sandbox/stats`` (token requests apart): exact. The write
rate is the requests sent while the batch jobs ran over their wall time, against the limit.
Prints the figures as JSON (``--json`` writes them; ``bench.py`` renders them in RESULTS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT))

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


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of this process, or of process ``pid`` (the sandbox)."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Clock:
    """Wraps a harness stage to time its calls (first start to last end), and the CPU this
    process and the sandbox (``pid``) spent over that window."""

    def __init__(self, name: str, pid: int | None = None) -> None:
        self.name = name
        self.pid = pid
        self.original = getattr(harness, name)
        self.start: float | None = None
        self.end: float | None = None
        self.total = 0.0
        self.calls = 0
        self.cpu: dict[str, float] = {}
        setattr(harness, name, self)

    def reset(self) -> None:
        self.start = self.end = None
        self.total = 0.0
        self.calls = 0
        self.cpu = {}

    def _cpu(self) -> dict[str, float]:
        return {"client": cpu_seconds(), "sandbox": cpu_seconds(self.pid) if self.pid else 0.0}

    def _begin(self) -> float:
        now = time.monotonic()
        if self.start is None:
            self.start = now
            self.cpu_start = self._cpu()
        return now

    def _finish(self, began: float) -> None:
        self.end = time.monotonic()
        self.total += self.end - began
        self.calls += 1
        now = self._cpu()
        self.cpu = {k: round(v - self.cpu_start[k], 1) for k, v in now.items()}

    def __call__(self, *args, **kwargs):
        if asyncio.iscoroutinefunction(self.original):
            return self._async(*args, **kwargs)
        began = self._begin()
        try:
            return self.original(*args, **kwargs)
        finally:
            self._finish(began)

    async def _async(self, *args, **kwargs):
        began = self._begin()
        try:
            return await self.original(*args, **kwargs)
        finally:
            self._finish(began)

    @property
    def seconds(self) -> float:
        return (self.end - self.start) if self.start is not None and self.end else 0.0

    def restore(self) -> None:
        setattr(harness, self.name, self.original)


def employees(n: int, prefix: str = "") -> list[dict[str, str]]:
    """``n`` active employees with a management tree (CEO, directors, team leads, staff)."""
    rows = []
    for row in generate_rows(n, seed=20261202, defect_rate=0.0):
        row["status"] = "active"
        if "Quality Evaluator" not in row["roles"]:
            row["roles"] = ROLES
        rows.append(row)
    return rows


def _staff_and_leads(rows: list[dict[str, str]]) -> tuple[list[dict], list[str]]:
    """Active employees nobody reports to, and the employee ids of active managers."""
    managers = {r["manager_employee_id"] for r in rows if r["status"] == "active"}
    active = [r for r in rows if r["status"] == "active"]
    staff = [r for r in active if r["employee_id"] not in managers]
    leads = sorted(m for m in managers if m and any(r["employee_id"] == m for r in active))
    return staff, leads


def churn(rows: list[dict[str, str]], kind: str, count: int, offset: int, tag: str) -> list[dict]:
    """``rows`` with ``count`` changes of ``kind``, on staff from ``offset`` on."""
    rows = copy.deepcopy(rows)
    staff, leads = _staff_and_leads(rows)
    chosen = staff[offset : offset + count]
    if kind == "update":
        for row in chosen:
            row["title"] = f"Senior {row['title'] or 'Agent'}"
    elif kind == "manager":
        for n, row in enumerate(chosen):
            others = [m for m in leads if m != row["manager_employee_id"]]
            row["manager_employee_id"] = others[(offset + n * 7) % len(others)]
    elif kind == "terminate":
        for row in chosen:
            row["status"] = "terminated"
    elif kind == "hire":
        template = staff[0]
        for n in range(count):
            hire = dict(template)
            hire.update(
                employee_id=f"H{tag}{n:05d}",
                email=f"new.hire.{tag}.{n}@example.com",
                display_name=f"New Hire {tag} {n}",
                first_name="New",
                last_name=f"Hire {tag} {n}",
                manager_employee_id=leads[(n * 13) % len(leads)],
            )
            rows.append(hire)
    else:
        raise ValueError(kind)
    return rows


def mixed(rows: list[dict[str, str]], count: int, offset: int, tag: str) -> list[dict]:
    """A night with ``count`` changes: a quarter of each kind."""
    quarter = count // 4
    for n, kind in enumerate(("update", "manager", "terminate")):
        rows = churn(rows, kind, quarter, offset + n * quarter, tag)
    return churn(rows, "hire", count - 3 * quarter, 0, tag)


def api_requests(stats: dict[str, Any]) -> int:
    return int(stats["requests"]) - int(stats["token_requests"])


class Bench:
    """The sandbox, the clocks and the rows measured so far."""

    def __init__(self, handle, tmp: Path, config) -> None:
        self.handle = handle
        self.tmp = tmp
        self.config = config
        self.apply = Clock("apply_batch_file", handle.pid)
        self.plan = Clock("plan_stage")
        self.runs = 0

    def home(self, name: str) -> Path:
        home = self.tmp / name
        home.mkdir()
        return home

    def delta(self, before: dict[str, Any]) -> dict[str, Any]:
        after = self.handle.stats()
        by_method = {
            m: after["by_method"].get(m, 0) - before["by_method"].get(m, 0)
            for m in after["by_method"]
        }
        # Token requests are POSTs to the login host.
        by_method["POST"] = by_method.get("POST", 0) - (
            after["token_requests"] - before["token_requests"]
        )
        return {
            "requests": api_requests(after) - api_requests(before),
            "by_method": {m: v for m, v in sorted(by_method.items()) if v},
            "429s": after["rate_limited"] - before["rate_limited"],
        }

    def run(self, key: str, home: Path, rows, rate: int, conf=None) -> dict[str, Any]:
        """One DAG run through the stages; its requests, rate and times."""
        self.runs += 1
        export = write_rows(self.tmp / f"{key}-{self.runs}.csv", rows)
        before = self.handle.stats()
        self.apply.reset()
        self.plan.reset()
        started = time.monotonic()
        result = harness.run_stages(
            home,
            export,
            BenchTarget(self.handle, rate),
            conf=conf,
            approve_held=True,
            config=self.config,
        )
        wall = time.monotonic() - started
        if not result.ok:
            raise SystemExit(f"{key}: the run failed: {result.error}")
        figures = self.delta(before)
        applied = {k: v for k, v in result.report["applied"].items() if v}
        writes = sum(applied.values())
        apply_requests = sum(
            v for m, v in figures["by_method"].items() if m in ("POST", "PATCH", "PUT", "DELETE")
        )
        rate_now = apply_requests / self.apply.seconds * 60 if self.apply.seconds else None
        return {
            "key": key,
            "employees": len(rows),
            "changed": writes,
            "applied": applied,
            **figures,
            "requests_per_changed": round(figures["requests"] / writes, 4) if writes else None,
            "limit": rate,
            "write_rate": round(rate_now, 1) if rate_now else None,
            "write_rate_share": round(rate_now / rate, 4) if rate_now else None,
            "apply_s": round(self.apply.seconds, 1),
            "apply_cpu_s": self.apply.cpu,
            "batch_jobs": self.apply.calls,
            # The apply window's time outside every batch job (one job ends, the next starts).
            "between_jobs_s": round(self.apply.seconds - self.apply.total, 2),
            "plan_s": round(self.plan.total, 2),
            "run_s": round(wall, 1),
            "target_read": result.plan.get("target_read"),
        }

    def alternative(self, key: str, approach, rows, rate: int) -> dict[str, Any]:
        """One run of an alternative approach (``alternatives.py``) on ``rows``."""
        from genesys_sync.mapping import desired_users

        users = desired_users(rows, self.config.sync.phone_types)
        before = self.handle.stats()
        started = time.monotonic()
        outcomes = asyncio.run(approach(BenchTarget(self.handle, rate).scim_config(), users))
        wall = time.monotonic() - started
        return {
            "key": key,
            "employees": len(rows),
            "outcomes": dict(outcomes),
            **self.delta(before),
            "run_s": round(wall, 1),
        }

    def old_full_read(self, rate: int) -> dict[str, Any]:
        """The previous full read: every attribute, pages of 25, active and inactive."""
        from genesys_sync.scim.client import AsyncScimClient

        async def read() -> int:
            async with AsyncScimClient(BenchTarget(self.handle, rate).scim_config()) as client:
                return len(await client.list_all_users())

        before = self.handle.stats()
        started = time.monotonic()
        users = asyncio.run(read())
        wall = time.monotonic() - started
        return {"key": "full_old", "users": users, **self.delta(before), "run_s": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=6000, help="requests/minute (limit)")
    parser.add_argument("--latency-ms", type=int, default=25)
    parser.add_argument("--churn", type=float, default=0.01)
    parser.add_argument("--pacing-rate", type=int, default=300)
    parser.add_argument("--pacing-latency-ms", type=int, default=200)
    parser.add_argument("--pacing-employees", type=int, default=600)
    parser.add_argument("--compare-employees", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    import logging

    from alternatives import look_up_then_write, tutorial

    logging.disable(logging.WARNING)  # the stages' progress lines are not the benchmark's
    config = harness.stage_config(max_tenant_users=1_000_000)
    out: dict[str, Any] = {"args": vars(args) | {"json": str(args.json)}, "rows": []}
    rows_out = out["rows"]

    def note(row: dict[str, Any]) -> None:
        rows_out.append(row)
        print(json.dumps(row), flush=True)

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
            bench = Bench(handle, tmp_path, config)
            rate = args.rate
            # 1-2. A tenant of --employees: initial load, a quiet night, 1% nights by kind.
            home = bench.home("home")
            rows = employees(args.employees)
            note(bench.run("initial", home, rows, rate))
            note(bench.run("quiet", home, rows, rate))
            count = max(4, round(args.employees * args.churn))
            offset = 0
            for kind in ("update", "manager", "terminate", "hire"):
                rows = churn(rows, kind, count, offset, tag=kind[0])
                offset += count
                note(bench.run(f"night_{kind}", home, rows, rate))
            rows = mixed(rows, count, offset, tag="m")
            note(bench.run("night_mixed", home, rows, rate))
            # 3. A full reconciliation.
            note(bench.run("full", home, rows, rate, conf={"full_reconcile": True}))
            # 4. Side by side on a smaller tenant: initial load, then a 1% night.
            small = employees(args.compare_employees)
            small_night = mixed(small, max(4, round(len(small) * args.churn)), 0, tag="c")
            handle.reset()
            cmp_home = bench.home("compare-home")
            note(bench.run("ours_initial", cmp_home, small, rate))
            note(bench.run("ours_night", cmp_home, small_night, rate))
            # ... with a full reconciliation of it, and the previous way of reading it all.
            note(bench.run("ours_full", cmp_home, small_night, rate, conf={"full_reconcile": True}))
            note(bench.old_full_read(rate))
            for name, approach in (("tutorial", tutorial), ("lookup", look_up_then_write)):
                handle.reset()
                note(bench.alternative(f"{name}_initial", approach, small, rate))
                note(bench.alternative(f"{name}_night", approach, small_night, rate))
            # 5. The pacing sample at Genesys's rate and latency.
            handle.reset()
            handle.set_faults(
                requests_per_minute=args.pacing_rate, latency_ms=args.pacing_latency_ms
            )
            pacing_home = bench.home("pacing-home")
            note(
                bench.run("pacing", pacing_home, employees(args.pacing_employees), args.pacing_rate)
            )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2), encoding="utf-8")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
