"""Benchmark read_export + run_gate on a synthetic 100,000-row export; record the result."""

# Usage: .venv/bin/python benchmarks/bench_gate.py [--rows 100000] [--no-record]
# Generates the export, then reads and gates it in a fresh child process (so the peak RSS is the
# gate's own), prints wall time per phase and peak RSS, and appends a line to RESULTS-gate.md.
# Budget: under 20 s and 1.5 GB on a 2-core machine.

from __future__ import annotations

import argparse
import json
import os
import platform
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
RESULTS = HERE / "RESULTS-gate.md"
BUDGET_SECONDS = 20.0
BUDGET_MB = 1536.0


def measure(export: Path, run_dir: Path) -> dict:
    """Read and gate ``export`` in this process; return timings (s) and peak RSS (MB)."""
    sys.path.insert(0, str(ROOT / "plugins"))
    started = time.perf_counter()
    from genesys_sync.config import load_config
    from genesys_sync.export import read_export

    config = load_config()
    # The synthetic tenant is bigger than the default licence limit: lift it, so the run
    # exercises the whole path (a blocked run would skip writing the accepted rows).
    config = replace(config, gate=replace(config.gate, max_tenant_users=1_000_000))
    frame = read_export(str(export), config.export)
    read_done = time.perf_counter()
    import great_expectations  # noqa: F401  (timed on its own: ~5 s of the total)

    imported = time.perf_counter()
    from genesys_sync.validation import Catalogue, run_gate

    names = json.loads((ROOT / "include/sandbox/catalogue.json").read_text(encoding="utf-8"))
    catalogue = Catalogue(frozenset(names["roles"]), frozenset(names["divisions"]))
    result = run_gate(
        frame,
        config=config,
        run_dir=run_dir,
        previous_row_count=len(frame),
        catalogue=catalogue,
    )
    finished = time.perf_counter()
    return {
        "rows": result.row_count,
        "passed": result.passed,
        "accepted": result.accepted_count,
        "rejected": result.rejected_count,
        "read_s": round(read_done - started, 2),
        "gx_import_s": round(imported - read_done, 2),
        "gate_s": round(finished - imported, 2),
        "total_s": round(finished - started, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"nproc={os.cpu_count()}, {model}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS-gate.md")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, Path(os.environ["BENCH_RUN_DIR"]))))
        return

    sys.path.insert(0, str(HERE))
    from generate_export import write_export

    with tempfile.TemporaryDirectory(prefix="genesys-bench-") as tmp:
        export = write_export(Path(tmp) / "hris_export.csv", rows=args.rows)
        env = dict(
            os.environ,
            GENESYS_SYNC_HOME=str(Path(tmp) / "home"),
            BENCH_RUN_DIR=str(Path(tmp) / "run"),
        )
        child = subprocess.run(
            [sys.executable, __file__, "--measure", str(export)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode:
            sys.exit(f"benchmark failed:\n{child.stderr}")
        numbers = json.loads(child.stdout.strip().splitlines()[-1])

    within = numbers["total_s"] < BUDGET_SECONDS and numbers["peak_rss_mb"] < BUDGET_MB
    print(json.dumps(numbers, indent=2))
    print(f"budget {BUDGET_SECONDS:g} s / {BUDGET_MB:g} MB: {'OK' if within else 'OVER'}")
    if not args.no_record:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        line = (
            f"| {stamp} | {machine()} | {numbers['rows']:,} | {numbers['total_s']} | "
            f"{numbers['read_s']} | {numbers['gx_import_s']} | {numbers['gate_s']} | "
            f"{numbers['peak_rss_mb']} | {numbers['accepted']:,} / {numbers['rejected']:,} | "
            f"{'yes' if within else 'NO'} |\n"
        )
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write(line)
        print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
