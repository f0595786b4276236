"""The session's one pair of job runs, one per engine (conftest: `engine_runs`): the Spark run
on a standalone cluster started for it.

One small generated sample, with a target overrides file a sales manager could have written
(three manager targets: a rep's, a team's, the company's), goes through the nightly job twice,
as an operator would run it: `sales-kpi run` (DuckDB, without the site) and `sales-kpi run
--engine spark` with SALES_KPI_SPARK_MASTER naming a Spark standalone master with two workers
on 127.0.0.1 (tests/spark_cluster.py), started for that run and stopped after it. The job's
Spark build runs its driver in dbt's process and its executors on the workers.

Each run leaves what the engine parity tests read (test_engine_parity.py): its build
(`warehouse.duckdb` on DuckDB; `spark/build.duckdb` on Spark, views over every model's and
seed's Parquet folder), its dbt artifacts (`dbt_runs/<run id>/run_results.json`,
`manifest.json`) and the published marts (test_spark_job.py). The job leaves dbt's unit tests
to the test suite, so they run once on Spark over the Spark run's tables, in-process
(`local[2]`) once the cluster has stopped: `dbt test --select test_type:unit --target spark`.

What the runs saw is kept beside them as JSON (`record(folder, name)`): each command's exit
code, output and seconds, and the cluster's own account (workers, the master's apps, tasks
per worker, the processes left after it stopped). A failed run is recorded, not raised, so
every test that reads it reports it, and the next test file that asks does not run it again.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import psutil
from conftest import run_cli_subprocess
from spark_cluster import ClusterError, SparkCluster, spark_cluster

from pipelines.dbt_project import DBT_PROJECT_DIR, dbt_executable
from pipelines.engines import DBT_TARGETS
from pipelines.ingest.landing import scan_landing
from pipelines.ingest.loader import load_entity
from pipelines.ingest.raw_layer import ensure_raw_layer
from pipelines.sample import generate_sample
from pipelines.settings import Settings
from pipelines.spark_build import spark_dbt_environment
from pipelines.targets import COLUMNS, current_reps_and_teams

# The smallest sample whose every published mart has rows (the parity tests check that).
SCALE, SEED = 0.05, 23
# A small sample on a small machine: two cores, few shuffle partitions. The shared Spark run
# names the cluster's master; the other Spark runs of the suite run in-process on local[2].
SPARK_ENV = {"SALES_KPI_SPARK_MASTER": "local[2]", "SALES_KPI_SPARK_SHUFFLE_PARTITIONS": "2"}
# A Spark job run on a loaded 2-core machine takes minutes; a hung one fails, recorded.
JOB_TIMEOUT_SECONDS = 1800
DBT_TIMEOUT_SECONDS = 1200


def write_target_overrides(extracts: Path, path: Path) -> Path:
    """Three manager targets for the sample, in the file the job reads
    (SALES_KPI_TARGET_OVERRIDES_FILE): one for a current rep, one for that rep's team, one
    for the company; the rep and the team are current ones as the job's validation sees them
    (pipelines.targets.current_reps_and_teams over the loaded users)."""
    files, _notes = scan_landing(extracts)
    with duckdb.connect() as con:
        ensure_raw_layer(con)
        load_entity(con, "users", files, Settings(extracts_dir=extracts,
                                                  warehouse_dir=path.parent / "unused"))
        reps, teams = current_reps_and_teams(con)
        # the first active account executive in a team, as the latest version of users says
        rep, team = min(
            (user, team) for user, team in con.execute(
                "select user_id, team from raw.users where role = 'ae' and is_active "
                "qualify row_number() over (partition by user_id order by updated_at desc) = 1"
            ).fetchall()
            if user in reps and team in teams
        )
    rows = [
        ("cold_emails", "rep", rep, date(2025, 9, 1), 1.0),
        ("new_revenue", "team", team, date(2026, 3, 1), 250000.0),
        ("sales_conversations", "company", "all", date(2026, 2, 2), 0.0),
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


def _write(folder: Path, name: str, value: Any) -> None:
    (folder / f"{name}.json").write_text(json.dumps(value, indent=1), encoding="utf-8")


def record(folder: Path, name: str) -> Any:
    """What the runs kept as `<folder>/<name>.json`."""
    return json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))


def _job(extracts: Path, warehouse: Path, *args: str, env: dict[str, str]) -> dict[str, Any]:
    """`sales-kpi run` in a new interpreter, as an operator starts it (not forked from the
    warm CLI: these runs are the Spark path's reference); a run that hangs is a failed
    run."""
    try:
        return run_cli_subprocess("--extracts", str(extracts), "--warehouse", str(warehouse),
                                  *args, env=env, timeout=JOB_TIMEOUT_SECONDS, cold=True)
    except subprocess.TimeoutExpired as timeout:
        return {"code": None, "stdout": str(timeout.stdout or ""),
                "stderr": f"timed out after {JOB_TIMEOUT_SECONDS} s", "seconds": None}


def processes_mentioning(text: str) -> list[str]:
    """Running processes whose command line mentions `text` (a cluster's folder)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or ())
        if text in cmdline:
            found.append(f"{process.info['pid']}: {cmdline[:200]}")
    return found


def _cluster_account(cluster: SparkCluster) -> dict[str, Any]:
    state = cluster.state()
    return {
        "master_url": cluster.master_url,
        "workers": [
            {"id": w["id"], "host": w["host"], "cores": w["cores"], "state": w["state"]}
            for w in state["workers"]
        ],
        "completed_apps": [
            {"id": app["id"], "name": app["name"], "cores": app["cores"]}
            for app in state["completedapps"]
        ],
        "finished_tasks": cluster.finished_tasks(),
        "pids": sorted(cluster.process_ids()),
    }


def _unit_tests_on_spark(warehouse: Path, target: Path, env: dict[str, str]) -> dict[str, Any]:
    """dbt's unit tests on Spark, over the Spark run's metastore and tables (which give the
    tested models' parents their column types), with the job's own Spark environment."""
    settings = Settings(warehouse_dir=warehouse, engine="spark",
                        spark_master=env["SALES_KPI_SPARK_MASTER"],
                        spark_shuffle_partitions=int(env["SALES_KPI_SPARK_SHUFFLE_PARTITIONS"]))
    started = time.monotonic()
    completed = subprocess.run(
        [dbt_executable(), "test", "--select", "test_type:unit",
         "--target", DBT_TARGETS["spark"],
         "--profiles-dir", str(DBT_PROJECT_DIR), "--project-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(target), "--log-path", str(target / "logs")],
        env={**env, **spark_dbt_environment(settings)}, capture_output=True, text=True,
        check=False, timeout=DBT_TIMEOUT_SECONDS,
    )
    return {"code": completed.returncode, "stdout": completed.stdout,
            "stderr": completed.stderr[-20000:], "seconds": time.monotonic() - started}


def run_both_engines(folder: Path) -> None:
    """Generate the sample and its overrides, run the job on DuckDB, then on Spark on a fresh
    standalone cluster, then the unit tests on Spark; keep every outcome as JSON beside them
    (see the module's docstring)."""
    folder.mkdir(parents=True)
    runs = EngineRuns(folder)
    generate_sample(runs.extracts, scale=SCALE, seed=SEED)
    write_target_overrides(runs.extracts, runs.overrides_file)
    _write(folder, "duckdb_run", _job(runs.extracts, runs.duckdb_warehouse,
                                      env={**runs.job_env, "SALES_KPI_WRITE_SITE": "false"}))
    account: dict[str, Any]
    try:
        with spark_cluster(runs.cluster_folder) as cluster:
            env = {**runs.job_env, **SPARK_ENV, **cluster.env}
            _write(folder, "spark_run",
                   _job(runs.extracts, runs.spark_warehouse, "--engine", "spark", env=env))
            account = _cluster_account(cluster)
    except ClusterError as error:
        account = {"error": str(error), "pids": []}
    account["left_after_stop"] = [pid for pid in account["pids"] if psutil.pid_exists(pid)]
    account["mentioning_folder_after_stop"] = processes_mentioning(str(runs.cluster_folder))
    _write(folder, "cluster", account)
    # in-process (local[2]) once the cluster is gone: 36 small queries, each a few Spark
    # jobs whose tasks cost more shipped to executors than run in the driver (measured:
    # 223–273 s on the cluster in CI, about 60 s on local[2] under load 3–5)
    _write(folder, "spark_unit_tests", _unit_tests_on_spark(
        runs.spark_warehouse, folder / "spark_unit_tests",
        {**os.environ, **runs.job_env, **SPARK_ENV}))


@dataclass(frozen=True)
class EngineRuns:
    """The session's two job runs (read-only): where each put its warehouse, and what each
    run printed and left."""

    folder: Path

    @property
    def extracts(self) -> Path:
        return self.folder / "extracts"

    @property
    def overrides_file(self) -> Path:
        return self.folder / "overrides.csv"

    @property
    def job_env(self) -> dict[str, str]:
        """What both runs (and any other run on this sample) set: the overrides file."""
        return {"SALES_KPI_TARGET_OVERRIDES_FILE": str(self.overrides_file)}

    @property
    def duckdb_warehouse(self) -> Path:
        return self.folder / "duckdb"

    @property
    def spark_warehouse(self) -> Path:
        # a quote and a space in its path: the Spark build's JVM options, its SQL literals and
        # the build's views take the path as it is (Hadoop's pattern characters are refused:
        # test_settings.py)
        return self.folder / "spark o'neil"

    @property
    def cluster_folder(self) -> Path:
        return self.folder / "cluster"

    @property
    def duckdb_run(self) -> dict[str, Any]:
        return record(self.folder, "duckdb_run")

    @property
    def spark_run(self) -> dict[str, Any]:
        """The Spark run; a cluster that did not come up shows here as its error."""
        if (self.folder / "spark_run.json").exists():
            return record(self.folder, "spark_run")
        return {"code": None, "stdout": "",
                "stderr": self.cluster.get("error", "the Spark run did not run"), "seconds": None}

    @property
    def spark_unit_tests(self) -> dict[str, Any]:
        if (self.folder / "spark_unit_tests.json").exists():
            return record(self.folder, "spark_unit_tests")
        return {"code": None, "stdout": "", "stderr": "the unit tests did not run"}

    @property
    def cluster(self) -> dict[str, Any]:
        return record(self.folder, "cluster")

    def build_database(self, engine: str) -> Path:
        """The DuckDB file the job's checks and publisher read the engine's build from."""
        warehouse = self.spark_warehouse if engine == "spark" else self.duckdb_warehouse
        return Settings(warehouse_dir=warehouse, engine=engine).build_database

    def dbt_artifacts(self, engine: str) -> Path:
        """The run's dbt target folder (`<warehouse>/dbt_runs/<run id>`): its manifest and
        run results."""
        warehouse = self.spark_warehouse if engine == "spark" else self.duckdb_warehouse
        (target,) = (path for path in (warehouse / "dbt_runs").iterdir() if path.is_dir())
        return target

    def run_results(self, engine: str) -> dict[str, Any]:
        return json.loads((self.dbt_artifacts(engine) / "run_results.json").read_text(
            encoding="utf-8"))

    def manifest(self, engine: str) -> dict[str, Any]:
        return json.loads((self.dbt_artifacts(engine) / "manifest.json").read_text(
            encoding="utf-8"))

    def unit_test_results(self) -> dict[str, Any]:
        return json.loads((self.folder / "spark_unit_tests" / "run_results.json").read_text(
            encoding="utf-8"))

    def unit_tests_in_project(self) -> set[str]:
        manifest = self.folder / "spark_unit_tests" / "manifest.json"
        return set(json.loads(manifest.read_text(encoding="utf-8"))["unit_tests"])
