"""The job's Spark build on a Spark server: Spark Connect and a Spark Thrift server (README,
"Engines": where Spark runs).

Each server is started on 127.0.0.1 from the jars inside pyspark (tests/spark_servers.py). A
small generated sample is loaded by the normal loader, and the Spark build runs on the server
as the job runs it — with the job's own pieces: its vars (`spark_build_vars`: the sources
exported to Parquet, the time-zone probes its engine is checked against, the published
tables), the dbt environment and
the target it picks for SALES_KPI_SPARK_REMOTE or SALES_KPI_SPARK_THRIFT_HOST
(`spark_dbt_environment`, `spark_target`: `spark_connect`, `spark_thrift`), the `on-run-start`
hook registering the raw layer in the server, the `on-run-end` hook defining the published
tables in the server's catalog, and the DuckDB views the publisher reads
(`write_build_views`) — but on a part of the
project: one staging model and its data tests, `dbt build --select stg_crm__users`. The whole
job through Spark Connect (`sales-kpi run --engine spark`) works and publishes, but took
549 s (dbt build 455 s) at a load average of 13–20 on this 2-core machine (each statement is
a round trip to the server, and dbt sends many), 111 s on a quiet one with the audit through
Connect too: too long for `make test` under its own load (README, "Engines").

The build must succeed and must have run in the server (its log shows the client's session
and at least one execution per node; no Spark driver ran here: no Derby metastore under
<warehouse>/spark), its table must be where the job reads it, and no Spark process may be left
once the server has stopped.

Also here: with the spark extra (pyspark's `connect` dependencies included), importing the
checks — Great Expectations imports pyspark.sql.connect — does not end a `python -c` process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from spark_servers import spark_server

from pipelines.contract import ENTITIES
from pipelines.dbt_project import DBT_PROJECT_DIR, dbt_executable, dbt_vars, prepared_dbt_project
from pipelines.ingest.landing import scan_landing
from pipelines.ingest.loader import load_entity
from pipelines.ingest.raw_layer import ensure_raw_layer
from pipelines.publish import published_parquet
from pipelines.sample import generate_sample
from pipelines.settings import PROJECT_ROOT, Settings
from pipelines.spark_build import (
    PUBLISHED_DATABASE,
    read_manifest,
    spark_build_vars,
    spark_dbt_environment,
    spark_target,
    write_build_views,
)

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SELECTED = "stg_crm__users"
SCALE, SEED = 0.05, 23
DBT_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class ServerBuild:
    kind: str
    settings: Settings
    target: str
    returncode: int
    output: str
    seconds: float
    nodes: int
    sessions: int
    executions: int
    server_processes: set[int]
    left_after_stop: set[int]
    published: dict[str, str]  # the server catalog's published tables → their locations
    # what a session opened with the target's settings runs with (name → value)
    session_settings: dict[str, str]


def load_raw_layer(root: Path) -> None:
    """A small generated sample through the normal loader into `root/warehouse.duckdb`: the
    raw layer as the job's load leaves it, without running the job."""
    extracts = root / "extracts"
    generate_sample(extracts, scale=SCALE, seed=SEED)
    settings = Settings(extracts_dir=extracts, warehouse_dir=root)
    files, _notes = scan_landing(extracts)
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        ensure_raw_layer(con)
        for entity in ENTITIES:
            load_entity(con, entity, files, settings, run_id="servers")


def _manifest() -> dict[str, Any]:
    return read_manifest(prepared_dbt_project().manifest_path.parent)


@pytest.fixture(scope="module", params=["connect", "thrift"])
def server_build(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> ServerBuild:
    """The Spark build of SELECTED on a Spark Connect or Thrift server, as the job runs it;
    the server's account taken before it stops."""
    kind = request.param
    root = tmp_path_factory.mktemp(f"spark_{kind}")
    load_raw_layer(root)
    manifest = _manifest()
    target = root / "dbt_target"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALES_KPI_SPARK_")}
    base = {"SALES_KPI_ENGINE": "spark", "SALES_KPI_WAREHOUSE_DIR": str(root),
            "SALES_KPI_SPARK_SHUFFLE_PARTITIONS": "2"}
    tables = Settings.from_env(base).spark_dir / "tables"
    with spark_server(kind, root / "server", tables) as server:
        settings = Settings.from_env({**base, **server.env})  # as the job reads them
        variables = dbt_vars(settings) | spark_build_vars(settings, manifest)
        started = time.monotonic()
        completed = subprocess.run(
            [dbt_executable(), "build", "--select", SELECTED, "--exclude", "test_type:unit",
             # its own data tests, not the relationship tests of models not built here
             "--indirect-selection", "cautious",
             "--vars", json.dumps(variables), "--target", spark_target(settings),
             "--profiles-dir", str(DBT_PROJECT_DIR), "--project-dir", str(DBT_PROJECT_DIR),
             "--target-path", str(target), "--log-path", str(target / "logs")],
            env={**env, **spark_dbt_environment(settings), "DBT_USE_COLORS": "false"},
            capture_output=True, text=True, check=False, timeout=DBT_TIMEOUT_SECONDS,
        )
        seconds = time.monotonic() - started
        if completed.returncode == 0:
            write_build_views(settings, read_manifest(target))
        results = target / "run_results.json"
        nodes = len(json.loads(results.read_text())["results"]) if results.exists() else 0
        sessions, executions = server.sessions(), server.executions()
        running = server.process_ids()
        published = (server.catalog_locations(PUBLISHED_DATABASE)
                     if completed.returncode == 0 else {})
        environment = {**env, **spark_dbt_environment(settings)}
        session_settings = (
            _thrift_session_settings(server.port, environment) if kind == "thrift"
            else _connect_session_settings(environment)
        )
    return ServerBuild(kind, settings, spark_target(settings), completed.returncode,
                       completed.stdout + completed.stderr, seconds, nodes, sessions,
                       executions, running, server.process_ids(), published, session_settings)


SESSION_SETTINGS = ("spark.sql.session.timeZone", "spark.sql.ansi.enabled",
                    "spark.sql.parquet.outputTimestampType")


def _thrift_session_settings(port: int, environment: dict[str, str]) -> dict[str, str]:
    """SESSION_SETTINGS as a session of the Thrift server sees them when it is opened as
    dbt-spark's `thrift` method and the Thrift audit open theirs: with the rendered
    `spark_thrift` target's `server_side_parameters` as the session's configuration."""
    from pyhive import hive

    from pipelines.quality.gx_spark import dbt_target, session_parameters

    target = dbt_target(str(DBT_PROJECT_DIR), "spark_thrift", environment)
    connection = hive.connect("127.0.0.1", port=port, username=target["user"],
                              configuration=session_parameters(target))
    try:
        cursor = connection.cursor()
        found = {}
        for name in SESSION_SETTINGS:
            cursor.execute(f"set {name}")
            found[name] = str(cursor.fetchall()[0][1])
        return found
    finally:
        connection.close()


def test_the_spark_build_runs_on_the_spark_server_the_settings_name(
    server_build: ServerBuild,
) -> None:
    """SALES_KPI_SPARK_REMOTE picks the `spark_connect` target, SALES_KPI_SPARK_THRIFT_HOST
    the `spark_thrift` one; the build (the model and its data tests) passes, and the server
    ran it: its log shows the client's session and at least one execution per node, and no
    Spark driver ran in dbt's process."""
    assert server_build.returncode == 0, server_build.output[-5000:]
    assert server_build.target == {"connect": "spark_connect", "thrift": "spark_thrift"}[
        server_build.kind]
    assert f"target='{server_build.target}'" in server_build.output
    assert server_build.nodes > 1  # the model and its data tests
    assert server_build.sessions > 0, "the server served no session"
    assert server_build.executions >= server_build.nodes
    spark_dir = server_build.settings.spark_dir
    assert not (spark_dir / "metastore_db").exists()
    assert not (spark_dir / "derby.log").exists()


def test_the_server_build_is_read_where_the_job_reads_a_spark_build(
    server_build: ServerBuild,
) -> None:
    """The server wrote its table under <warehouse>/spark/tables, and the view the checks and
    the publisher read (build.duckdb) holds one row per user, as the raw layer has them."""
    assert server_build.returncode == 0, server_build.output[-5000:]
    settings = server_build.settings
    with duckdb.connect(str(settings.raw_database), read_only=True) as raw:
        (users,) = raw.execute("select count(distinct user_id) from raw.users").fetchone()
    node = next(n for n in _manifest()["nodes"].values() if n["name"] == SELECTED)
    assert (settings.spark_dir / "tables" / f"{node['schema']}.db" / SELECTED).is_dir()
    with duckdb.connect(str(settings.build_database), read_only=True) as build:
        (built,) = build.execute(
            f'select count(*) from "{node["schema"]}"."{SELECTED}"'
        ).fetchone()
        types = dict(build.execute(
            "select column_name, data_type from duckdb_columns() "
            "where schema_name = ? and table_name = ?", [node["schema"], SELECTED],
        ).fetchall())
    assert built == users > 0
    # the session settings reached the server: instants written as UTC-adjusted Parquet
    # timestamps (a server left to its defaults writes legacy INT96, read as naive times)
    assert types["updated_at"] == "TIMESTAMP WITH TIME ZONE", types


# Prints SESSION_SETTINGS (argv[1], JSON) as a Spark Connect session opened as the job opens
# one sees them; the job's environment is this process's.
_CONNECT_SESSION_SETTINGS = """
import json, sys
from pipelines.dbt_project import DBT_PROJECT_DIR
from pipelines.quality.gx_spark import open_spark_session, spark_session_parameters
session = open_spark_session(spark_session_parameters(str(DBT_PROJECT_DIR), "spark_connect"))
print(json.dumps({name: str(session.conf.get(name)) for name in json.loads(sys.argv[1])}))
session.stop()
"""


def _connect_session_settings(environment: dict[str, str]) -> dict[str, str]:
    """SESSION_SETTINGS as a Spark Connect session sees them when it is opened as
    dbt-spark's `session` method and the audit on Spark open theirs: the rendered
    `spark_connect` target's `server_side_parameters` given to the session builder. In a
    process of its own: pyspark's Connect mode marks the process it runs in (as for
    `SparkServer.catalog_locations`)."""
    completed = subprocess.run(
        [sys.executable, "-c", _CONNECT_SESSION_SETTINGS, json.dumps(SESSION_SETTINGS)],
        env=environment, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_a_server_session_runs_with_the_jobs_settings_not_the_servers(
    server_build: ServerBuild,
) -> None:
    """The server's own defaults are another timezone and ANSI mode on
    (tests/spark_servers.py); a session opened with the `spark_thrift` or `spark_connect`
    target's settings runs in UTC, ANSI off, writing UTC-adjusted Parquet instants, as the
    in-process sessions do."""
    assert server_build.session_settings == {
        "spark.sql.session.timeZone": "UTC", "spark.sql.ansi.enabled": "false",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    }


def test_the_server_build_defines_the_published_tables_in_the_servers_catalog(
    server_build: ServerBuild,
) -> None:
    """The build's `on-run-end` hook defines the published tables in the server's catalog,
    at their published files (through the link). Only `runs` here: the other published tables
    take their columns from marts this part of the build does not make."""
    assert server_build.returncode == 0, server_build.output[-5000:]
    runs = published_parquet(server_build.settings.warehouse_dir.resolve(), "runs")
    assert server_build.published == {"runs": f"file:{runs}"}


def test_no_spark_process_is_left_once_the_server_has_stopped(
    server_build: ServerBuild,
) -> None:
    assert server_build.server_processes, "the server's processes were not found while it ran"
    assert server_build.left_after_stop == set()


def test_a_python_c_process_that_imports_the_checks_is_not_ended_by_pyspark() -> None:
    """With pyspark's `connect` dependencies missing, importing pyspark.sql.connect (as
    Great Expectations does) decides that a `python -c` process is running pyspark's doctests
    and ends it with status 0; the spark extra brings them (`pyspark[connect]`), so the
    process goes on. pyspark's pandas-3 warning is filtered by the package."""
    result = subprocess.run(
        [sys.executable, "-c", "import pipelines.quality.checks; print('alive')"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, timeout=120,
    )
    assert (result.returncode, result.stdout) == (0, "alive\n"), result.stderr
    assert "FutureWarning" not in result.stderr

