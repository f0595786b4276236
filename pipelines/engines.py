"""The engines the dbt project runs on: DuckDB (the default) and Apache Spark (README, "Engines").

The dbt project is one: engine differences live in dispatched macros
(`dbt_project/macros/cross_db/`). For now the Spark raw layer is the DuckDB raw layer,
exported to Parquet (one folder per table) and registered as Spark tables in schema `raw`
by the macro `raw_layer_from_parquet`, so the dbt sources resolve on both engines.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

from pipelines.ingest.raw_layer import RAW_SCHEMA
from pipelines.settings import ENGINES, ENV_PREFIX, Settings, SettingsError, printable
from pipelines.sql_text import quote_ident, sql_literal

__all__ = ["ENGINES"]

DBT_TARGETS: Mapping[str, str] = {"duckdb": "warehouse", "spark": "spark"}
# Where the Spark target keeps its tables, Derby metastore and logs (profiles.yml).
SPARK_DIR_ENV = "SALES_KPI_SPARK_DIR"
SPARK_MASTER_ENV = "SALES_KPI_SPARK_MASTER"
SPARK_SHUFFLE_PARTITIONS_ENV = "SALES_KPI_SPARK_SHUFFLE_PARTITIONS"
SPARK_DRIVER_MEMORY_ENV = "SALES_KPI_SPARK_DRIVER_MEMORY"
SPARK_THREADS_ENV = "SALES_KPI_SPARK_THREADS"
# Spark 4 runs on Java 17 and 21.
JAVA_MAJOR_REQUIRED = 17
INSTALL_SPARK_EXTRA = 'pip install -e ".[spark]"'


class EngineUnavailable(SettingsError):
    """The engine the settings ask for cannot run on this machine (a missing extra or Java):
    refused before the run touches anything, in one line that says how to get it."""


def spark_available() -> bool:
    """True when pyspark and dbt-spark are installed (the `spark` extra). Found, not
    imported: importing pyspark costs a second and a warning, and the check runs first
    thing in `sales-kpi run --engine spark`."""
    try:
        return all(
            importlib.util.find_spec(name) is not None
            for name in ("pyspark", "dbt.adapters.spark")
        )
    except ImportError:  # a parent package (dbt.adapters) missing altogether
        return False


def java_major_version(environ: Mapping[str, str] | None = None) -> int | None:
    """The major version of the Java Spark would start (`$JAVA_HOME/bin/java`, else `java` on
    PATH, as pyspark's launcher picks it), or None when there is none."""
    environ = os.environ if environ is None else environ
    home = environ.get("JAVA_HOME", "").strip()
    java = str(Path(home) / "bin" / "java") if home else shutil.which(
        "java", path=environ.get("PATH", "")
    )
    if not java or not Path(java).exists():
        return None
    try:
        shown = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    # `openjdk version "17.0.15"`, `java version "1.8.0_402"` (Java 8 says 1.8)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', shown.stderr + shown.stdout)
    if match is None:
        return None
    major = int(match[1])
    return int(match[2] or 0) if major == 1 else major


def require_engine(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Refuse (EngineUnavailable) an engine this machine cannot run: for Spark, the `spark`
    extra (pyspark, dbt-spark) and, when the driver runs here (not on a Spark Connect or
    Thrift server), Java 17 or later. DuckDB needs nothing more."""
    if settings.engine != "spark":
        return
    if not spark_available():
        raise EngineUnavailable(
            "engine spark: pyspark and dbt-spark are not installed; install the spark extra "
            f"with `{INSTALL_SPARK_EXTRA}` (Spark also needs Java {JAVA_MAJOR_REQUIRED})"
        )
    if settings.spark_connection != "session":
        # the server runs Spark's JVM; this machine only sends it SQL — if it answers
        if (problem := spark_server_problem(settings)) is not None:
            raise EngineUnavailable(problem)
        return
    major = java_major_version(environ)
    if major is None or major < JAVA_MAJOR_REQUIRED:
        found = "no Java found (JAVA_HOME or java on PATH)" if major is None else (
            f"found Java {major}"
        )
        raise EngineUnavailable(
            f"engine spark: Spark needs Java {JAVA_MAJOR_REQUIRED} or later and {found}; "
            f"install Java {JAVA_MAJOR_REQUIRED} (e.g. `apt-get install openjdk-17-jre-headless`)"
            " and put it on PATH or set JAVA_HOME"
        )


def export_raw_layer(
    database: Path, out_dir: Path, only: Iterable[str] | None = None
) -> list[str]:
    """The tables of the DuckDB raw layer as Parquet, `<out_dir>/<table>/data.parquet`: every
    one, or those named in `only` (what the dbt sources read).

    Instants (TIMESTAMPTZ) are written as UTC-adjusted Parquet timestamps, which Spark reads
    as its (instant) `timestamp`. Returns the table names, sorted. A folder is replaced
    whole, so a table never mixes two exports.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = None if only is None else set(only)
    with duckdb.connect(str(database), read_only=True) as con:
        con.execute("set enable_progress_bar = false")
        tables = sorted(
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = ? and table_type = 'BASE TABLE'",
                [RAW_SCHEMA],
            ).fetchall()
            if wanted is None or name in wanted
        )
        for table in tables:
            folder = out_dir / table
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            con.execute(
                f"copy (select * from {RAW_SCHEMA}.{quote_ident(table)}) "
                f"to {sql_literal(str(folder / 'data.parquet'))} (format parquet)"
            )
    return tables


def spark_environment(
    spark_dir: Path, master: str | None = None, shuffle_partitions: int | None = None,
    driver_memory: str | None = None, threads: int | None = None,
) -> dict[str, str]:
    """The environment the `spark` dbt target reads (profiles.yml): where Spark writes, and
    (when given) the master, the shuffle partitions, the driver's heap and dbt's threads."""
    env = {SPARK_DIR_ENV: str(spark_dir.resolve())}
    if master:
        env[SPARK_MASTER_ENV] = master
    if shuffle_partitions:
        env[SPARK_SHUFFLE_PARTITIONS_ENV] = str(shuffle_partitions)
    if driver_memory:
        env[SPARK_DRIVER_MEMORY_ENV] = driver_memory
    if threads:
        env[SPARK_THREADS_ENV] = str(threads)
    return env


def dbt_environment(engine: str, **paths: Path) -> dict[str, str]:
    """os.environ plus what the engine's dbt target needs (`spark_dir` for Spark)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    env = dict(os.environ)
    if engine == "spark":
        env.update(spark_environment(paths["spark_dir"]))
    return env


# How long the run waits for a Spark server to accept a connection before it is refused: a
# Spark Connect client retries a dead port for many minutes, and a night would wait on it.
SERVER_CONNECT_SECONDS = 10.0
SPARK_CONNECT_DEFAULT_PORT = 15002


def spark_server_problem(settings: Settings) -> str | None:
    """Why the Spark Connect or Thrift server the settings name cannot be reached (nothing
    accepts a TCP connection at its host and port within SERVER_CONNECT_SECONDS), or None
    (reached, or no server: a session runs Spark here)."""
    if settings.spark_connection == "connect":
        kind, setting = "Spark Connect server", "SPARK_REMOTE"
        split = urlsplit("http://" + str(settings.spark_remote).removeprefix("sc://"))
        try:
            host, port = split.hostname, split.port or SPARK_CONNECT_DEFAULT_PORT
        except ValueError:  # a port that is no number (sc://host:abc, sc://host:15002;…)
            host = None
        if not host:
            return (
                f"engine spark: {ENV_PREFIX}{setting} {printable(settings.spark_remote)} names no "
                "host and port a connection can be made to; write it sc://host:15002 (with "
                "/;param=value after the port)"
            )
    elif settings.spark_connection == "thrift":
        kind, setting = "Spark Thrift server", "SPARK_THRIFT_HOST / _PORT"
        host, port = settings.spark_thrift_host, settings.spark_thrift_port
    else:
        return None
    try:
        with socket.create_connection((str(host), port), timeout=SERVER_CONNECT_SECONDS):
            return None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__  # e.g. "Connection refused", timeout
        shown = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
        return (
            f"engine spark: the {kind} {printable(shown)} cannot be reached "
            f"({reason}); start it, or set {ENV_PREFIX}{setting} to one that runs"
        )
