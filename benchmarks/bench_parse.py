"""Benchmark DAG parsing: how long a DAG processor needs to parse dags/ (goal: under 2 s)."""

# Usage: .venv/bin/python benchmarks/bench_parse.py [--repeat 5] [--no-record]
# Each repetition parses the DAG folder with Airflow's DagBag in a fresh process (Airflow
# itself already imported, as in a DAG processor) and reports the DagBag's own parse duration.

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "RESULTS-dag-parse.md"
BUDGET_SECONDS = 2.0
PROBE = """
import json, sys, time
import airflow.sdk  # noqa: F401
from airflow.dag_processing.dagbag import DagBag
start = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - start, "dags": len(bag.dags),
                  "errors": len(bag.import_errors)}))
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--json", type=Path, help="write the figures here (bench.py)")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="bench-parse-")
    env = {
        **os.environ,
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "GENESYS_SYNC_HOME": home,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "dags")]),
    }
    runs = []
    for _ in range(args.repeat):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(ROOT / "dags")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    seconds = [r["seconds"] for r in runs]
    median, worst = statistics.median(seconds), max(seconds)
    ok = worst < BUDGET_SECONDS and all(r["errors"] == 0 for r in runs)
    print(
        f"DAG parse: median {median:.3f} s, worst {worst:.3f} s over {len(runs)} runs "
        f"({runs[0]['dags']} DAG(s)); budget {BUDGET_SECONDS} s: {'ok' if ok else 'OVER'}"
    )
    if args.json:
        figures = {"runs": len(runs), "median_s": median, "worst_s": worst, "ok": ok}
        args.json.write_text(json.dumps(figures), encoding="utf-8")
    if not args.no_record:
        if not RESULTS.exists():
            RESULTS.write_text(
                "# DAG parse benchmark\n\n`benchmarks/bench_parse.py`: DagBag parse of `dags/` "
                "in a fresh process with Airflow already imported. Budget: under 2 s.\n\n"
                "| date | nproc | runs | median s | worst s | within budget |\n"
                "|---|---|---|---|---|---|\n"
            )
        with RESULTS.open("a") as fh:
            fh.write(
                f"| {datetime.now(UTC):%Y-%m-%d %H:%M} UTC | {os.cpu_count()} | {len(runs)} | "
                f"{median:.3f} | {worst:.3f} | {'yes' if ok else 'no'} |\n"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
