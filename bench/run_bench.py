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
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
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


class Sampler:
    """Samples a process tree's RSS and CPU at 20 Hz, and optionally processes that are not
    its children (a Spark standalone cluster's master, workers and executors: daemons of
    their own, found by `extra_pids`).

    RSS is summed over every live process per sample, and also kept per part (`job` the
    Python processes of the job, `driver_jvm` Java in the job's tree — Spark's driver in
    dbt's process —, `cluster_daemons`, `executors`): which part sets the peak. CPU seconds
    (user + system) are the last value seen of each process, summed: this reaches the JVMs,
    which `getrusage(RUSAGE_CHILDREN)` misses when nobody waits for them (pyspark's driver
    JVM, the cluster's executors); up to one sampling interval per process is lost, and the
    CPU a process had already used when sampling began is subtracted (the cluster's idle
    daemons)."""

    def __init__(self, extra_pids: Callable[[], set[int]] | None = None,
                 daemon_pids: set[int] | None = None) -> None:
        self.extra_pids = extra_pids
        self.daemon_pids = daemon_pids or set()
        self.peak = 0
        self.part_peaks: dict[str, int] = {}
        self.cpu_seen: dict[int, float] = {}
        self.cpu_before: dict[int, float] = {}
        self.cpu_by_part: dict[int, str] = {}
        if extra_pids is not None:
            for pid in extra_pids():
                with suppress(psutil.Error):
                    times = psutil.Process(pid).cpu_times()
                    self.cpu_before[pid] = times.user + times.system

    def _part(self, process: psutil.Process, in_job: bool) -> str:
        if not in_job:
            return "cluster_daemons" if process.pid in self.daemon_pids else "executors"
        with suppress(psutil.Error):
            if process.name() == "java":
                return "driver_jvm"
        return "job"

    def sample(self, root: psutil.Process) -> int:
        """One sample: returns the total RSS in bytes."""
        processes: list[tuple[psutil.Process, bool]] = []
        with suppress(psutil.Error):
            processes += [(root, True)] + [(p, True) for p in root.children(recursive=True)]
        if self.extra_pids is not None:
            for pid in self.extra_pids():
                with suppress(psutil.Error):
                    processes.append((psutil.Process(pid), False))
        total = 0
        parts: dict[str, int] = {}
        for process, in_job in processes:
            try:
                with process.oneshot():
                    rss = process.memory_info().rss
                    times = process.cpu_times()
            except psutil.Error:
                continue
            # not remembered per PID: spark-submit's shell script becomes the driver JVM
            # under the same PID (exec)
            part = self.cpu_by_part[process.pid] = self._part(process, in_job)
            parts[part] = parts.get(part, 0) + rss
            total += rss
            self.cpu_seen[process.pid] = times.user + times.system
        for part, rss in parts.items():
            self.part_peaks[part] = max(self.part_peaks.get(part, 0), rss)
        self.peak = max(self.peak, total)
        return total

    def cpu_by_parts(self) -> dict[str, float]:
        cpu: dict[str, float] = {}
        for pid, seconds in self.cpu_seen.items():
            part = self.cpu_by_part[pid]
            cpu[part] = cpu.get(part, 0.0) + seconds - self.cpu_before.get(pid, 0.0)
        return {part: round(seconds, 1) for part, seconds in sorted(cpu.items())}


def measure(
    command: list[str], env: dict[str, str] | None = None, stdout: int | None = None,
    timeline: list[tuple[float, int]] | None = None, sampler: Sampler | None = None,
    timeout: float | None = None,
) -> dict[str, object]:
    """Run `command`, returning its wall time, peak RSS (process tree, sampled at 20 Hz) and
    CPU seconds (user + system of the process and the children it waited for: on a busy
    machine a steadier measure of work than wall time). `timeline`, when given, receives
    every sample as (epoch seconds, RSS bytes), so that a peak can be laid against the
    job's steps. `sampler` adds processes outside the tree (a Spark cluster) and the CPU of
    JVMs nobody waits for. Past `timeout` seconds the command's process group is killed and
    the result says `timed_out` (a bench run is timeboxed, not left to run for hours)."""
    sampler = sampler or Sampler()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    # its own process group: a timeout kills the job and everything it started, nothing else
    process = subprocess.Popen(command, env=env, stdout=stdout, cwd=ROOT,
                               start_new_session=True)
    watched = psutil.Process(process.pid)
    timed_out = False
    while process.poll() is None:
        rss = sampler.sample(watched)
        if timeline is not None:
            timeline.append((time.time(), rss))
        if timeout is not None and time.perf_counter() - started > timeout:
            timed_out = True
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            break
        time.sleep(0.05)
    seconds = round(time.perf_counter() - started, 3)
    if process.returncode != 0 and not timed_out:
        raise SystemExit(f"stage failed ({process.returncode}): {' '.join(command)}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    by_part = sampler.cpu_by_parts()
    result: dict[str, object] = {
        "seconds": seconds, "cpu_seconds": round(cpu, 1),
        "peak_rss_mb": round(sampler.peak / 2**20, 1),
    }
    if sampler.extra_pids is not None or "driver_jvm" in by_part:
        result |= {
            "cpu_seconds_sampled": round(sum(by_part.values()), 1),
            "cpu_seconds_sampled_by_part": by_part,
            "peak_rss_mb_by_part": {part: round(rss / 2**20, 1)
                                    for part, rss in sorted(sampler.part_peaks.items())},
        }
    if timed_out:
        result["timed_out"] = True
    return result


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


CLUSTER_MODULE = ROOT / "tests" / "spark_cluster.py"
TIMEOUT_MINUTES = 45


@contextmanager
def standalone_cluster(folder: Path) -> Iterator[object]:
    """The tests' standalone cluster (a master and two workers on 127.0.0.1,
    tests/spark_cluster.py, imported by path: the bench is not a test), stopped on the way
    out whatever happened, leaving no Java process."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_spark_cluster", CLUSTER_MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    with module.spark_cluster(folder) as cluster:
        yield cluster


def stage_breakdown(stage: dict[str, object]) -> dict[str, float]:
    """Wall seconds per stage of the job, from Dagster's step spans: the raw load (first
    start to last end of the `raw__*` steps: the landing, the entities, the overrides), the
    dbt step — on Spark split into the raw layer's export to Parquet, dbt's own elapsed time
    (Spark's start, the on-run-start hook, every node) and the rest (dbt's parse, the DuckDB
    views over Spark's tables, row counts) —, the checks, publish and the site."""
    spans: dict[str, list[float]] = stage["step_spans"]  # type: ignore[assignment]
    steps: dict[str, float] = stage["steps"]  # type: ignore[assignment]
    out: dict[str, float] = {}
    raw = [span for key, span in spans.items() if key.startswith("raw__")]
    if raw:
        out["load"] = round(max(e for _, e in raw) - min(s for s, _ in raw), 1)
    for key, seconds in steps.items():
        if key.startswith("raw__"):
            continue
        name = "dbt_step" if "dbt" in key else key
        out[name] = round(seconds, 1)
    dbt_key = next((key for key in spans if "dbt" in key), None)
    exported = stage.get("spark_build_started")
    elapsed = (stage.get("dbt") or {}).get("elapsed")  # type: ignore[union-attr]
    if dbt_key and isinstance(exported, float):
        out["of_dbt_step:export_to_parquet"] = round(exported - spans[dbt_key][0], 1)
    if dbt_key and isinstance(elapsed, float):
        out["of_dbt_step:dbt_elapsed"] = round(elapsed, 1)
        out["of_dbt_step:other"] = round(
            steps[dbt_key] - elapsed - out.get("of_dbt_step:export_to_parquet", 0.0), 1)
    return out


def result_suffix(engine: str, mode: str | None) -> str:
    """`scale-<N>.json` for DuckDB (as before); `-spark-local` or `-spark-cluster` on Spark."""
    if engine != "spark":
        return ""
    return "-spark-cluster" if mode == "cluster" else "-spark-local" if mode == "local[*]" \
        else "-spark-" + "".join(c if c.isalnum() else "-" for c in str(mode))


def scale_label(args: argparse.Namespace) -> str:
    """`<scale>` in a report's name, `<scale>-staff-<staff scale>` for a sales organisation
    sized apart from the contacts."""
    staff = f"-staff-{args.staff_scale:g}" if args.staff_scale is not None else ""
    return f"{args.scale:g}{staff}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--staff-scale", type=float, default=None,
                        help="the sales organisation's scale apart from the contacts' "
                        "(sales-kpi generate --staff-scale): e.g. --scale 18 --staff-scale 66, "
                        "≈ 1,400 users over 180k contacts, the shape of issue 14's extract")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the sample and warehouse go (default: a temp folder)")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the extract already generated in --workdir (same scale)")
    parser.add_argument("--compare", type=int, default=0, metavar="N",
                        help="N interleaved rounds against the plain DuckDB reference")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                        help="where the job's dbt build runs (SALES_KPI_ENGINE)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--spark-master", default=None,
                       help="with --engine spark: Spark's master (default local[*])")
    where.add_argument("--cluster", action="store_true",
                       help="with --engine spark: start a standalone master and two workers "
                            "on 127.0.0.1 for the run (tests/spark_cluster.py), stop them after")
    parser.add_argument("--timeout-minutes", type=float, default=TIMEOUT_MINUTES,
                        help="kill the run (its process group) after this long")
    args = parser.parse_args()
    if args.engine != "spark" and (args.cluster or args.spark_master):
        parser.error("--spark-master and --cluster need --engine spark")

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
         "--scale", str(args.scale), "--seed", str(args.seed),
         *(["--staff-scale", str(args.staff_scale)] if args.staff_scale is not None else [])]
    )
    if args.compare:
        report = {
            "scale": args.scale, "staff_scale": args.staff_scale, "seed": args.seed,
            "machine": machine(),
            "generate": generate, **compare(args, workdir, extracts),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        args.results.mkdir(parents=True, exist_ok=True)
        out = args.results / f"compare-scale-{scale_label(args)}.json"
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps({k: report[k] for k in ("median_seconds", "ratio", "median_cpu_seconds",
                                                 "cpu_ratio", "marts_match")},
                         indent=2))
        print(f"[bench] report: {out}")
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        return 0
    mode = ("cluster" if args.cluster else args.spark_master or "local[*]") \
        if args.engine == "spark" else None
    env = {**os.environ, "SALES_KPI_ENGINE": args.engine}
    if args.spark_master:
        env["SALES_KPI_SPARK_MASTER"] = args.spark_master
    print(f"[bench] running the nightly job into {warehouse} (engine {args.engine}"
          f"{f', {mode}' if mode else ''})", flush=True)
    timeline: list[tuple[float, int]] = []
    command = [python, str(STAGE_SCRIPT), str(extracts), str(warehouse), str(steps_file)]
    timeout = args.timeout_minutes * 60
    load = load_average()
    cluster_info: dict[str, object] = {}
    if args.cluster:
        cluster_folder = workdir / "cluster"
        shutil.rmtree(cluster_folder, ignore_errors=True)
        cluster_started = time.perf_counter()
        with standalone_cluster(cluster_folder) as cluster:
            cluster_info["start_seconds"] = round(time.perf_counter() - cluster_started, 1)
            daemons = {p.pid for p in cluster.processes.values()}  # type: ignore[attr-defined]
            sampler = Sampler(extra_pids=cluster.process_ids,  # type: ignore[attr-defined]
                              daemon_pids=daemons)
            run = measure(command, env={**env, **cluster.env},  # type: ignore[attr-defined]
                          timeline=timeline, sampler=sampler, timeout=timeout)
            cluster_info["finished_tasks"] = cluster.finished_tasks()  # type: ignore[attr-defined]
            cluster_info["master"] = cluster.master_url  # type: ignore[attr-defined]
        cluster_info["left_running"] = sorted(
            p.pid for p in psutil.process_iter(["cmdline"])
            if str(cluster_folder) in " ".join(p.info["cmdline"] or [])
        )
    else:
        run = measure(command, env=env, timeline=timeline, timeout=timeout)
    run["load_average_before"] = load
    run["load_average_after"] = load_average()
    if run.get("timed_out"):
        report = {"scale": args.scale, "staff_scale": args.staff_scale, "engine": args.engine,
                  "mode": mode, "machine": machine(), "run": run, "cluster": cluster_info or None,
                  "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        args.results.mkdir(parents=True, exist_ok=True)
        out = args.results / f"scale-{scale_label(args)}{result_suffix(args.engine, mode)}.json"
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report, indent=2))
        print(f"[bench] timed out after {args.timeout_minutes:g} min; report: {out}")
        return 1
    stage = json.loads(steps_file.read_text())
    stage["dbt"] = dbt_timings(warehouse)

    rows = stage["rows_loaded"]
    input_bytes = sum(f.stat().st_size for f in extracts.rglob("*") if f.is_file())
    report = {
        "scale": args.scale, "staff_scale": args.staff_scale,
        "seed": args.seed,
        "engine": args.engine,
        "mode": mode,
        "write_site": env.get("SALES_KPI_WRITE_SITE", "true"),
        "machine": machine(),
        "input": {"files": stage["files"], "bytes": input_bytes, "rows": rows},
        "generate": {**generate, "rows_per_second": (
            round(rows / generate["seconds"]) if generate["seconds"] else None)},
        "run": {**run, "rows_per_second": round(rows / run["seconds"])},
        "steps": stage["steps"],
        "stages_seconds": stage_breakdown(stage),
        "dbt": stage["dbt"],
        "cluster": cluster_info or None,
        "peak_rss_mb_by_step": peak_by_step(timeline, stage.get("step_spans", {})),
        "peak_rss_mb": max(generate["peak_rss_mb"], run["peak_rss_mb"]),
        "warehouse_bytes": sum(f.stat().st_size for f in warehouse.rglob("*") if f.is_file()),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"scale-{scale_label(args)}{result_suffix(args.engine, mode)}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"[bench] report: {out}")
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
