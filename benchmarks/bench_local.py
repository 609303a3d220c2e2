"""Benchmark the local part of a night: read + gate + plan of N rows against a state of N users.

# Usage: .venv/bin/python benchmarks/bench_local.py [--rows 10000 50000 100000] [--json PATH]
For each size, in fresh processes: generate an export (``generate_export.py``, ~0.2% row
defects), build a state of the same size as a previous sync would have left it (every accepted
employee managed, with its fingerprint, last-applied values and ETag, discovery cached, a
recent full read), change 1% of the rows (titles), then time the validate stage (read the
export, run the gate) and the plan stage (incremental: the changes planned from the state, no
request) in one child process, and report its peak RSS. Budget at 100k: under 20 s, 1.5 GB.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUDGET_SECONDS = 20.0
BUDGET_MB = 1536.0
NOWHERE = "http://127.0.0.1:9/api/v2/scim/v2"  # the plan must send no request


def _config():
    from genesys_sync.config import load_config

    config = load_config()
    gate = replace(config.gate, max_tenant_users=1_000_000, data_docs=False)
    return replace(config, gate=gate)


def _scim():
    from genesys_sync.scim.connection import ScimConnectionConfig

    return ScimConnectionConfig.from_fields(
        None, None, None, {"base_url": NOWHERE, "bearer_token": "none", "flavor": "genesys"}
    )


def build_state(export: Path) -> dict:
    """The state a sync of ``export`` leaves: every valid employee managed and in sync."""
    import sqlalchemy as sa

    from genesys_sync.export import read_export
    from genesys_sync.mapping import MANAGED_PATHS, desired_users
    from genesys_sync.plan import _desired_values, applied_values, fingerprint
    from genesys_sync.stages.plan import DISCOVERY, LAST_FULL_READ
    from genesys_sync.state import StateStore, _applied_json, managed_users

    config = _config()
    frame = read_export(str(export), config.export)
    desired = desired_users(frame.to_dict("records"), config.sync.phone_types)
    ids = {eid: f"id-{eid}" for eid in desired}
    now = datetime.now(UTC)
    rows = []
    for eid, user in desired.items():
        manager_id = ids.get(user.manager_employee_id or "")
        values = _desired_values(user, MANAGED_PATHS, manager_id)
        rows.append(
            {
                "employee_id": eid,
                "target_id": ids[eid],
                "etag": 'W/"1"',
                "active": user.active,
                "deactivated_at": None if user.active else now,
                "updated_at": now,
                "fingerprint": fingerprint(user, manager_id),
                "applied": _applied_json(applied_values(values, user.active)),
            }
        )
    store = StateStore()
    try:
        # What adopt_matched, record_verified and record_applied leave, in one executemany
        # (they write row by row: minutes at 100k, and not what this benchmark measures).
        with store.engine.begin() as conn:
            conn.execute(sa.insert(managed_users), rows)
        store.set_meta(LAST_FULL_READ, datetime.now(UTC).isoformat())
        store.set_document(DISCOVERY, {"base_url": _scim().base_url, "spc": {}, "schemas": []})
    finally:
        store.close()
    return {"managed": len(desired)}


def measure(export: Path) -> dict:
    """Validate and plan ``export`` in this process; timings (s) and peak RSS (MB)."""
    from genesys_sync.stages.common import RunParams
    from genesys_sync.stages.plan import plan_stage
    from genesys_sync.stages.validate import validate_stage

    config, scim = _config(), _scim()
    run_id = "bench_local"
    started = time.perf_counter()
    gate = validate_stage(run_id, str(export), config, None)
    validated = time.perf_counter()
    planned = plan_stage(run_id, gate["accepted_path"], RunParams.from_mapping({}), config, scim)
    finished = time.perf_counter()
    plan = json.loads(Path(planned["plan_path"]).read_text())
    return {
        "rows": gate["rows"],
        "accepted": gate["accepted"],
        "validate_s": round(validated - started, 2),
        "plan_s": round(finished - validated, 2),
        "total_s": round(finished - started, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "updates": plan["counts"].get("update", 0),
        "api_calls": plan["api_calls"],
        "target_read": plan["target_read"],
    }


def _one_percent(source: Path, out: Path) -> None:
    """The next night's export: every 100th row's title changed."""
    with source.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for n, row in enumerate(rows):
        if n % 100 == 50:
            row["title"] = f"Senior {row['title'] or 'Agent'}"
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _child(mode: str, export: Path, env: dict) -> dict:
    child = subprocess.run(
        [sys.executable, __file__, f"--{mode}", str(export)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode:
        sys.exit(f"bench_local {mode} failed:\n{child.stderr[-4000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def run(rows: int) -> dict:
    """One size: generate, build the state, then measure in a fresh process."""
    sys.path.insert(0, str(HERE))
    from generate_export import write_export

    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        tmp_path = Path(tmp)
        before = write_export(tmp_path / "before.csv", rows=rows)
        tonight = tmp_path / "tonight.csv"
        _one_percent(before, tonight)
        env = dict(os.environ, GENESYS_SYNC_HOME=str(tmp_path / "home"))
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "plugins"), env.get("PYTHONPATH", "")])
        state = _child("build-state", before, env)
        numbers = _child("measure", tonight, env)
    numbers["state_users"] = state["managed"]
    numbers["within"] = numbers["total_s"] < BUDGET_SECONDS and numbers["peak_rss_mb"] < BUDGET_MB
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--build-state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_state or args.measure:
        sys.path.insert(0, str(ROOT / "plugins"))
        import logging

        logging.disable(logging.WARNING)
        result = build_state(args.build_state) if args.build_state else measure(args.measure)
        print(json.dumps(result))
        return
    results = []
    for rows in args.rows:
        numbers = run(rows)
        print(json.dumps(numbers), flush=True)
        results.append(numbers)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
