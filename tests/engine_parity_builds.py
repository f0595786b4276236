"""The parity sample built on both engines, once per test session (conftest:
`engine_parity_builds`), the Spark build on a standalone cluster.

A small generated sample is loaded with the normal (DuckDB) loader, with a few manager target
overrides; the dbt project is built on DuckDB (`warehouse` target) and, from the same raw
layer exported to Parquet, on Spark (`spark` target): one `dbt build` each — seeds, models,
data tests and unit tests. The Spark build's
driver is dbt's own process; its executors run on a Spark standalone master with two workers
on 127.0.0.1 (tests/spark_cluster.py), so the one Spark build of the suite proves both parity
(test_engine_parity.py) and the cluster path (test_spark_cluster.py).

What the build saw is kept beside it as JSON (`record(folder, name)`): each dbt command's
exit code and output, and the cluster's own account (tasks per worker, the master's apps,
the processes left after it stopped). A failed build is recorded, not raised, so the tests
report it and the next file that asks does not build again.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import psutil
from spark_cluster import ClusterError, SparkCluster, spark_cluster

from pipelines.contract import ENTITIES
from pipelines.dbt_project import DBT_DATABASE_ENV, DBT_PROJECT_DIR, dbt_executable
from pipelines.engines import DBT_TARGETS, dbt_environment, export_raw_layer
from pipelines.ingest.landing import scan_landing
from pipelines.ingest.loader import load_entity
from pipelines.ingest.raw_layer import ensure_raw_layer
from pipelines.sample import generate_sample
from pipelines.settings import Settings

SCALE, SEED, SAMPLE_END = 0.1, 5, date(2026, 11, 26)
# A small sample on a small machine: two cores, few shuffle partitions; the build runs on the
# cluster (its environment names the master), a Spark command without one on local[2].
SPARK_TEST_ENV = {"SALES_KPI_SPARK_MASTER": "local[2]", "SALES_KPI_SPARK_SHUFFLE_PARTITIONS": "2"}
# Everything, on both engines: seeds, models, data tests and the dbt unit tests (each model's
# unit tests just before it) — one dbt command and one Spark session instead of three.
BUILD = ("build",)
DBT_TIMEOUT_SECONDS = 1800


def dbt(
    *args: str, engine: str, target: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """One dbt command on `engine`, its target folder and logs under `target`."""
    return subprocess.run(
        [dbt_executable(), *args, "--target", DBT_TARGETS[engine],
         "--profiles-dir", str(DBT_PROJECT_DIR), "--project-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(target), "--log-path", str(target / "logs")],
        env=env, capture_output=True, text=True, check=False, timeout=DBT_TIMEOUT_SECONDS,
    )


def spark_env(spark_dir: Path) -> dict[str, str]:
    """The environment of a Spark dbt command on the built tables (in-process, local[2])."""
    env = dbt_environment("spark", spark_dir=spark_dir)
    env.update(SPARK_TEST_ENV)
    return env


def duckdb_env(database: Path) -> dict[str, str]:
    env = dbt_environment("duckdb")
    env[DBT_DATABASE_ENV] = str(database)
    return env


def load_sample(root: Path) -> Path:
    """The generated sample through the normal loader, plus three target overrides."""
    extracts = root / "extracts"
    generate_sample(extracts, scale=SCALE, seed=SEED, end=SAMPLE_END)
    database = root / "warehouse.duckdb"
    settings = Settings(extracts_dir=extracts, warehouse_dir=root)
    files, _notes = scan_landing(extracts)
    with duckdb.connect(str(database)) as con:
        ensure_raw_layer(con)
        for entity in ENTITIES:
            load_entity(con, entity, files, settings, run_id="parity")
        rep, team = con.execute(
            "select user_id, team from raw.users where role = 'ae' and is_active "
            "order by user_id limit 1"
        ).fetchone()
        con.executemany(
            "insert into raw.target_overrides values (?, ?, ?, ?, ?, 'overrides.csv', ?)",
            [
                ("cold_emails", "rep", rep, date(2025, 9, 1), 1.0, 2),
                ("new_revenue", "team", team, date(2026, 3, 1), 250000.0, 3),
                ("sales_conversations", "company", "all", date(2026, 2, 2), 0.0, 4),
            ],
        )
    return database


def _result(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return {"returncode": completed.returncode, "stdout": completed.stdout,
            "stderr": completed.stderr[-20000:]}


def _write(folder: Path, name: str, value: Any) -> None:
    (folder / f"{name}.json").write_text(json.dumps(value, indent=1), encoding="utf-8")


def record(folder: Path, name: str) -> Any:
    """What the build kept as `<folder>/<name>.json`."""
    return json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))


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


def processes_mentioning(text: str) -> list[str]:
    """Running processes whose command line mentions `text` (a cluster's folder)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or ())
        if text in cmdline:
            found.append(f"{process.info['pid']}: {cmdline[:200]}")
    return found


def build_both_engines(folder: Path) -> None:
    """Load the sample, build it on DuckDB, then on Spark on a fresh standalone cluster; keep
    every outcome as JSON beside it (see the module's docstring)."""
    folder.mkdir(parents=True)
    database = load_sample(folder)
    _write(folder, "duckdb_build",
           _result(dbt(*BUILD, engine="duckdb", target=folder / "dbt_duckdb",
                       env=duckdb_env(database))))

    tables = export_raw_layer(database, folder / "raw_parquet")
    cluster_folder = folder / "cluster"
    try:
        with spark_cluster(cluster_folder) as cluster:
            account = _build_on_spark(folder, tables, cluster)
    except ClusterError as error:
        account = {"error": str(error), "pids": []}
    account["left_after_stop"] = [pid for pid in account["pids"] if psutil.pid_exists(pid)]
    account["mentioning_folder_after_stop"] = processes_mentioning(str(cluster_folder))
    _write(folder, "cluster", account)


def _build_on_spark(folder: Path, tables: list[str], cluster: SparkCluster) -> dict[str, Any]:
    """Register the exported raw layer and build on the cluster; the cluster's account."""
    target = folder / "dbt_spark"
    env = {**spark_env(folder / "spark"), **cluster.env}
    registered = dbt(
        "run-operation", "raw_layer_from_parquet", "--args",
        f"{{parquet_dir: '{folder / 'raw_parquet'}', tables: [{', '.join(tables)}]}}",
        engine="spark", target=target, env=env,
    )
    _write(folder, "spark_register", _result(registered))
    if registered.returncode == 0:
        _write(folder, "spark_build", _result(dbt(*BUILD, engine="spark", target=target, env=env)))
    return _cluster_account(cluster)


@dataclass(frozen=True)
class Builds:
    """The session's parity builds (read-only): where each engine's tables are, and what each
    build printed."""

    folder: Path

    @property
    def duckdb_database(self) -> Path:
        return self.folder / "warehouse.duckdb"

    @property
    def spark_dir(self) -> Path:
        return self.folder / "spark"

    @property
    def spark_tables(self) -> Path:
        return self.spark_dir / "tables"

    @property
    def duckdb_build(self) -> dict[str, Any]:
        return record(self.folder, "duckdb_build")

    @property
    def spark_build(self) -> dict[str, Any]:
        """The Spark build; a cluster that did not come up shows here as its error."""
        for step in ("spark_build", "spark_register"):
            if (self.folder / f"{step}.json").exists():
                return record(self.folder, step)
        return {"returncode": None, "stdout": "",
                "stderr": self.cluster.get("error", "the Spark build did not run")}

    @property
    def cluster(self) -> dict[str, Any]:
        return record(self.folder, "cluster")
