"""Benchmark: generate a sample at a scale, run the nightly job on it, report the numbers.

Each stage runs in its own process, sampled with psutil for its peak resident memory (RSS,
children included); per-step wall times come from Dagster's own step statistics. The report
is written as JSON to bench/results/scale-<N>.json (and printed).

    python bench/run_bench.py --scale 1
    python bench/run_bench.py --scale 100 --workdir /big/disk/bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
STAGE_SCRIPT = HERE / "stage.py"


def measure(command: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run `command`, returning its wall time and peak RSS (process tree, sampled at 20 Hz)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env)
    watched = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            tree = [watched, *watched.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    if process.returncode != 0:
        raise SystemExit(f"stage failed ({process.returncode}): {' '.join(command)}")
    seconds = round(time.perf_counter() - started, 3)
    return {"seconds": seconds, "peak_rss_mb": round(peak / 2**20, 1)}


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "processor": platform.processor() or platform.machine(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the sample and warehouse go (default: a temp folder)")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sales-kpi-bench-"))
    extracts, warehouse = workdir / "extracts", workdir / "warehouse"
    for folder in (extracts, warehouse):
        shutil.rmtree(folder, ignore_errors=True)
    steps_file = workdir / "steps.json"
    python = sys.executable

    print(f"[bench] scale {args.scale}: generating into {extracts}", flush=True)
    generate = measure([python, "-m", "pipelines.cli", "generate", "--out", str(extracts),
                        "--scale", str(args.scale), "--seed", str(args.seed)])
    print(f"[bench] running the nightly job into {warehouse}", flush=True)
    run = measure([python, str(STAGE_SCRIPT), str(extracts), str(warehouse), str(steps_file)])
    stage = json.loads(steps_file.read_text())

    rows = stage["rows_loaded"]
    input_bytes = sum(f.stat().st_size for f in extracts.rglob("*") if f.is_file())
    report = {
        "scale": args.scale,
        "seed": args.seed,
        "machine": machine(),
        "input": {"files": stage["files"], "bytes": input_bytes, "rows": rows},
        "generate": {**generate, "rows_per_second": round(rows / generate["seconds"])},
        "run": {**run, "rows_per_second": round(rows / run["seconds"])},
        "steps": stage["steps"],
        "peak_rss_mb": max(generate["peak_rss_mb"], run["peak_rss_mb"]),
        "warehouse_bytes": sum(f.stat().st_size for f in warehouse.rglob("*") if f.is_file()),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"scale-{args.scale:g}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"[bench] report: {out}")
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
