"""Benchmark planning: diff a 100,000-employee export against a 100,000-user target."""

# Usage: .venv/bin/python benchmarks/bench_plan.py [--users 100000] [--no-record]
# Builds desired users and a target where 2% of the users differ, then times mapping and
# plan_sync and reports peak RSS. A nightly run at Genesys's 300 requests/minute is bound by
# the API, not by planning; this checks planning stays a small part of a run.

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))
RESULTS = Path(__file__).resolve().parent / "RESULTS-plan.md"

from genesys_sync.mapping import MANAGED_PATHS, create_payload, desired_users  # noqa: E402
from genesys_sync.plan import PlanOptions, plan_sync  # noqa: E402


def rows(n: int) -> list[dict[str, str]]:
    out = []
    for i in range(n):
        out.append(
            {
                "employee_id": f"E{i:06d}",
                "email": f"user{i}@example.com",
                "display_name": f"User {i}",
                "first_name": "User",
                "last_name": str(i),
                "title": "Agent",
                "department": "Support",
                "division": "Home",
                "manager_employee_id": f"E{i // 10:06d}" if i >= 10 else "",
                "status": "active",
                "hire_date": "2024-01-02",
                "work_phone": f"+1202555{i % 10000:04d}",
                "mobile_phone": "",
                "roles": "employee;User",
                "skills": "Billing:4",
                "languages": "English:5",
            }
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    data = rows(args.users)
    started = time.perf_counter()
    desired = desired_users(data)
    mapped = time.perf_counter() - started
    target = []
    ids = {eid: f"id-{eid}" for eid in desired}
    for eid, user in desired.items():
        body = create_payload(user, MANAGED_PATHS, ids.get(user.manager_employee_id or ""))
        body.update(id=ids[eid], meta={"version": f'W/"{eid}"'})
        if int(eid[1:]) % 50 == 0:
            body["title"] = "Old title"
        target.append(body)
    started = time.perf_counter()
    plan = plan_sync(desired, target, PlanOptions(paths=MANAGED_PATHS), managed=ids)
    planned = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = plan.counts()
    print(
        f"{args.users} users: mapping {mapped:.2f} s, plan {planned:.2f} s, "
        f"peak RSS {rss_mb:.0f} MB; updates {counts['update']}, unchanged {counts['unchanged']}"
    )
    if not args.no_record:
        if not RESULTS.exists():
            RESULTS.write_text(
                "# Plan benchmark\n\n`benchmarks/bench_plan.py`: map N export rows and plan them "
                "against N target users (2% differ).\n\n| date | nproc | users | mapping s | "
                "plan s | peak RSS MB | updates |\n|---|---|---|---|---|---|---|\n"
            )
        with RESULTS.open("a") as fh:
            fh.write(
                f"| {datetime.now(UTC):%Y-%m-%d %H:%M} UTC | {os.cpu_count()} | "
                f"{args.users} | {mapped:.2f} | {planned:.2f} | {rss_mb:.0f} | "
                f"{counts['update']} |\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
