"""Benchmark: generate a sample at a scale, run the nightly job on it, report the numbers.

Each stage runs in its own process, sampled with psutil for its peak resident memory (RSS,
children included); per-step wall times come from Dagster's own step statistics. The report
is written as JSON to bench/results/scale-<N>.json (and printed).

    python bench/run_bench.py --scale 1
    python bench/run_bench.py --scale 100 --workdir /big/disk/bench
    python bench/run_bench.py --scale 30 --compare 3

`--compare N` times the data path side by side with a plain DuckDB reference
(bench/plain_duckdb.py) on the same generated files: N rounds, each running `sales-kpi run`
(a fresh warehouse, `write_site=false`: the dashboard step is not the data path) and the
reference, in alternating order so that a busy machine weighs on both alike; it reports the
median of each, their ratio, and whether the reference's marts match the published ones
(row counts of every mart, and kpi_values row for row). Written to
bench/results/compare-scale-<N>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
STAGE_SCRIPT = HERE / "stage.py"
REFERENCE_SCRIPT = HERE / "plain_duckdb.py"
ROOT = HERE.parent
# The published marts the reference computes too; kpi_values is compared row for row.
COMPARED_MARTS = (
    "dim_reps", "dim_leads", "fct_funnel_stages", "fct_activities", "fct_deals", "kpi_values",
    "kpi_baselines", "kpi_scorecard", "label_consistency",
)
KPI_VALUES_KEY = "kpi_id, grain, period_start, scope, scope_id"


def measure(
    command: list[str], env: dict[str, str] | None = None, stdout: int | None = None,
    timeline: list[tuple[float, int]] | None = None,
) -> dict[str, float]:
    """Run `command`, returning its wall time, peak RSS (process tree, sampled at 20 Hz) and
    CPU seconds (user + system of the process and the children it waited for: on a busy
    machine a steadier measure of work than wall time). `timeline`, when given, receives
    every sample as (epoch seconds, RSS bytes), so that a peak can be laid against the
    job's steps."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=stdout, cwd=ROOT)
    watched = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            tree = [watched, *watched.children(recursive=True)]
            rss = sum(p.memory_info().rss for p in tree if p.is_running())
            peak = max(peak, rss)
            if timeline is not None:
                timeline.append((time.time(), rss))
        except psutil.Error:
            pass
        time.sleep(0.05)
    if process.returncode != 0:
        raise SystemExit(f"stage failed ({process.returncode}): {' '.join(command)}")
    seconds = round(time.perf_counter() - started, 3)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"seconds": seconds, "cpu_seconds": round(cpu, 1),
            "peak_rss_mb": round(peak / 2**20, 1)}


def peak_by_step(
    timeline: list[tuple[float, int]], spans: dict[str, list[float]]
) -> dict[str, float]:
    """The process tree's peak RSS while each step ran (steps that overlap share samples),
    and outside every step (start-up, definitions, the summary): which step sets the peak."""
    peaks: dict[str, float] = {}
    outside = 0
    for moment, rss in timeline:
        inside = [key for key, (start, end) in spans.items() if start <= moment <= end]
        for key in inside:
            peaks[key] = max(peaks.get(key, 0.0), rss / 2**20)
        if not inside:
            outside = max(outside, rss)
    peaks["(outside any step)"] = outside / 2**20
    return {key: round(value, 1) for key, value in peaks.items()}


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "processor": platform.processor() or platform.machine(),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def marts_match(published: Path, reference: Path) -> dict[str, object]:
    """Row counts of every compared mart in both, and kpi_values rows that differ (rounded
    values, both directions): the comparison is fair only if both compute the same marts."""
    import duckdb

    with duckdb.connect() as con:
        con.execute(f"attach '{published}' as ours (read_only)")
        con.execute(f"attach '{reference}' as ref (read_only)")
        counts = {
            mart: [
                con.execute(f"select count(*) from ours.main.{mart}").fetchone()[0],  # type: ignore[index]
                con.execute(f"select count(*) from ref.marts.{mart}").fetchone()[0],  # type: ignore[index]
            ]
            for mart in COMPARED_MARTS
        }
        # rounded: sums of doubles differ in the last bits with the order of addition
        columns = (f"{KPI_VALUES_KEY}, round(value, 9) as value, round(numerator, 6) as n, "
                   "round(denominator, 6) as d")
        differing = con.execute(
            f"""
            select count(*) from (
                (select {columns} from ours.main.kpi_values
                 except all select {columns} from ref.marts.kpi_values)
                union all
                (select {columns} from ref.marts.kpi_values
                 except all select {columns} from ours.main.kpi_values)
            )
            """
        ).fetchone()[0]  # type: ignore[index]
    return {
        "row_counts": counts,
        "row_counts_equal": all(a == b for a, b in counts.values()),
        "kpi_values_rows_differing": differing,
    }


def compare(args: argparse.Namespace, workdir: Path, extracts: Path) -> dict[str, object]:
    """N interleaved rounds of `sales-kpi run` and the plain reference on the same files."""
    python = sys.executable
    env = {**os.environ, "SALES_KPI_WRITE_SITE": "false"}
    ours_runs: list[dict[str, object]] = []
    reference_runs: list[dict[str, object]] = []
    match: dict[str, object] = {}
    for round_number in range(args.compare):
        warehouse, reference_dir = workdir / "warehouse", workdir / "reference"
        order = ("ours", "reference") if round_number % 2 == 0 else ("reference", "ours")
        if round_number == 0:
            order = ("ours", "reference")  # the reference runs the SQL of our build's manifest
        for who in order:
            if who == "ours":
                shutil.rmtree(warehouse, ignore_errors=True)
                print(f"[bench] round {round_number + 1}: sales-kpi run", flush=True)
                load = load_average()
                result = measure(
                    [python, "-m", "pipelines.cli", "run", "--extracts", str(extracts),
                     "--warehouse", str(warehouse)], env=env, stdout=subprocess.DEVNULL,
                )
                ours_runs.append({**result, "load_average_before": load,
                                  "dbt": dbt_timings(warehouse)})
            else:
                shutil.rmtree(reference_dir, ignore_errors=True)
                print(f"[bench] round {round_number + 1}: plain DuckDB reference", flush=True)
                load = load_average()
                out = workdir / "reference.json"
                with out.open("w") as handle:
                    result = measure(
                        [python, str(REFERENCE_SCRIPT), str(extracts), str(reference_dir),
                         str(latest_dbt_run(warehouse))], stdout=handle.fileno(),
                    )
                reference_runs.append({**result, "load_average_before": load,
                                       **json.loads(out.read_text())})
        if round_number == 0:
            match = marts_match(warehouse / "marts.duckdb", reference_dir / "warehouse.duckdb")
            print(f"[bench] marts match: {json.dumps(match)}", flush=True)
    ours = statistics.median(float(r["seconds"]) for r in ours_runs)  # type: ignore[arg-type]
    reference = statistics.median(
        float(r["seconds"]) for r in reference_runs  # type: ignore[arg-type]
    )
    ours_cpu = statistics.median(float(r["cpu_seconds"]) for r in ours_runs)  # type: ignore[arg-type]
    reference_cpu = statistics.median(
        float(r["cpu_seconds"]) for r in reference_runs  # type: ignore[arg-type]
    )
    return {
        "rounds": args.compare,
        "median_seconds": {"sales_kpi_run": ours, "plain_duckdb": reference},
        "ratio": round(ours / reference, 3),
        "median_cpu_seconds": {"sales_kpi_run": ours_cpu, "plain_duckdb": reference_cpu},
        "cpu_ratio": round(ours_cpu / reference_cpu, 3),
        "marts_match": match,
        "sales_kpi_run": ours_runs,
        "plain_duckdb": reference_runs,
    }


def latest_dbt_run(warehouse: Path) -> Path:
    runs = sorted(
        (p for p in (warehouse / "dbt_runs").iterdir() if p.is_dir()),
        key=lambda p: p.stat().st_mtime,
    )
    return runs[-1]


def dbt_timings(warehouse: Path) -> dict[str, object]:
    """The build's own timings (run_results.json): wall, and thread-seconds per node kind."""
    try:
        results = json.loads((latest_dbt_run(warehouse) / "run_results.json").read_text())
    except (OSError, IndexError, ValueError):
        return {}
    by_kind: dict[str, float] = {}
    for result in results["results"]:
        kind = result["unique_id"].split(".")[0]
        by_kind[kind] = round(by_kind.get(kind, 0.0) + result["execution_time"], 2)
    return {"elapsed": round(results["elapsed_time"], 2), "thread_seconds": by_kind,
            "nodes": len(results["results"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the sample and warehouse go (default: a temp folder)")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the extract already generated in --workdir (same scale)")
    parser.add_argument("--compare", type=int, default=0, metavar="N",
                        help="N interleaved rounds against the plain DuckDB reference")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sales-kpi-bench-"))
    extracts, warehouse = workdir / "extracts", workdir / "warehouse"
    reuse = args.reuse and extracts.is_dir()
    for folder in (warehouse,) if reuse else (extracts, warehouse):
        shutil.rmtree(folder, ignore_errors=True)
    steps_file = workdir / "steps.json"
    python = sys.executable

    print(f"[bench] scale {args.scale}: generating into {extracts}", flush=True)
    generate = {"seconds": 0.0, "peak_rss_mb": 0.0} if reuse else measure(
        [python, "-m", "pipelines.cli", "generate", "--out", str(extracts),
         "--scale", str(args.scale), "--seed", str(args.seed)]
    )
    if args.compare:
        report = {
            "scale": args.scale, "seed": args.seed, "machine": machine(),
            "generate": generate, **compare(args, workdir, extracts),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        args.results.mkdir(parents=True, exist_ok=True)
        out = args.results / f"compare-scale-{args.scale:g}.json"
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps({k: report[k] for k in ("median_seconds", "ratio", "median_cpu_seconds",
                                                 "cpu_ratio", "marts_match")},
                         indent=2))
        print(f"[bench] report: {out}")
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        return 0
    print(f"[bench] running the nightly job into {warehouse}", flush=True)
    timeline: list[tuple[float, int]] = []
    run = measure([python, str(STAGE_SCRIPT), str(extracts), str(warehouse), str(steps_file)],
                  timeline=timeline)
    stage = json.loads(steps_file.read_text())

    rows = stage["rows_loaded"]
    input_bytes = sum(f.stat().st_size for f in extracts.rglob("*") if f.is_file())
    report = {
        "scale": args.scale,
        "seed": args.seed,
        "machine": machine(),
        "input": {"files": stage["files"], "bytes": input_bytes, "rows": rows},
        "generate": {**generate, "rows_per_second": (
            round(rows / generate["seconds"]) if generate["seconds"] else None)},
        "run": {**run, "rows_per_second": round(rows / run["seconds"])},
        "steps": stage["steps"],
        "peak_rss_mb_by_step": peak_by_step(timeline, stage.get("step_spans", {})),
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
