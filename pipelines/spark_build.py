"""The nightly job's Spark build (README, "Engines"): what goes in, and how the rest of the job
reads what comes out.

In: the raw layer stays loaded and validated by the DuckDB loader (contract, quarantine); the
tables the dbt sources read are exported to Parquet under `<warehouse>/spark/raw/<table>/`
and registered as Spark tables by the dbt project's own `on-run-start` hook (macro
`raw_layer_from_var`), inside the one Spark session of `dbt build --target spark`.

Out: Spark's tables are Parquet folders (`<warehouse>/spark/tables/<schema>.db/<table>/`).
`<warehouse>/spark/build.duckdb` holds one DuckDB view per dbt model and seed over its folder,
in the same schema under the same name, carrying the dbt descriptions as comments (as
`persist_docs` does on DuckDB). The row counts and the publisher read that file exactly as
they read the DuckDB build: one reader, two engines. The GX checks read the build through
Spark itself: DataFrames in a session of their own (pipelines/quality/spark_audit.py), or SQL
run by the Thrift server (pipelines/quality/gx_thrift.py); the audit's staged tables live in
that file and are handed to Spark from there.

Published: besides the DuckDB file and the Parquet files every engine publishes, the Spark
catalog has each published table (the marts, `runs` and the history tables) as an external
Parquet table of the database `published` (PUBLISHED_DATABASE), located at
`<warehouse>/parquet/<table>.parquet` — through the link the publisher swaps, so the
publisher's atomic switch is what switches the tables too, and a run that publishes nothing
leaves them reading the previous publication. The build defines them, in its own Spark session
(the `on-run-end` hook `published_tables_from_var`), from the columns of the marts it has just
built: so the definitions do not need the files, which the publisher writes later.

Every Spark build starts from an empty `<warehouse>/spark` (its logs aside): all its tables are
rebuilt anyway, and the Derby metastore records absolute paths (`reset_spark_build`); the
`published` tables are defined again by every build.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import tzdata

from pipelines import PYSPARK_PANDAS_WARNING
from pipelines.engines import DBT_TARGETS, export_raw_layer, spark_environment
from pipelines.ingest.raw_layer import RAW_SCHEMA
from pipelines.local_time import PROBES_EARLIEST, PROBES_SINCE, write_time_zone_probes
from pipelines.publish import (
    HISTORY_COLUMNS,
    MARTS_SCHEMA,
    PUBLISHED_TABLES,
    RUNS_TYPES,
    published_parquet,
)
from pipelines.settings import PROJECT_ROOT, Settings
from pipelines.sql_text import comment_literal, quote_ident, sql_literal

# log4j2.properties for Spark's JVM (its logs go to <warehouse>/spark/logs/spark.log)
SPARK_CONF_DIR = PROJECT_ROOT / "dbt_project" / "spark_conf"
# the dbt vars the `raw_layer_from_var` hook reads (not definitions: set per Spark build)
RAW_PARQUET_DIR_VAR = "raw_parquet_dir"
RAW_PARQUET_TABLES_VAR = "raw_parquet_tables"
# where the job reads the build's tables; a Spark server writing elsewhere is refused
SPARK_TABLES_DIR_VAR = "spark_tables_dir"
# the business timezone's instants and their wall time by DuckDB's rules, which Spark's must
# give too (`time_zone_probes`; macro `time_zone_rules_from_var`)
TIME_ZONE_PROBES_VAR = "time_zone_probes"
TIME_ZONE_PROBES_FILE = "time_zone_probes.parquet"
PROBES_AHEAD = timedelta(days=2 * 366)
# The Spark database whose tables are the published marts (README, "Engines"), and the dbt var
# that asks the build's `published_tables_from_var` hook to define them.
PUBLISHED_DATABASE = "published"
PUBLISHED_CATALOG_VAR = "published_catalog"
# Spark's names for the DuckDB types of the publisher's own `runs` table (publish.RUNS_TYPES).
_SPARK_TYPES = {
    "varchar": "string", "timestamptz": "timestamp", "bigint": "bigint", "boolean": "boolean",
}


# The dbt target of each way to reach Spark (profiles.yml; Settings.spark_connection).
SPARK_TARGETS: Mapping[str, str] = {
    "session": DBT_TARGETS["spark"], "connect": "spark_connect", "thrift": "spark_thrift",
}
# Where the `spark_connect` and `spark_thrift` targets read their credentials: dbt scrubs the
# values of DBT_ENV_SECRET_* variables from everything it logs.
SPARK_REMOTE_ENV = "DBT_ENV_SECRET_SALES_KPI_SPARK_REMOTE"
SPARK_THRIFT_PASSWORD_ENV = "DBT_ENV_SECRET_SALES_KPI_SPARK_THRIFT_PASSWORD"
# Over Spark Connect, dbt-spark's session method still asks for Hive support: a static
# setting the server refuses, with a warning on every query. The server's catalog is its own.
CONNECT_STATIC_CONF_WARNING = "Failed to set spark.sql.catalogImplementation"


def spark_target(settings: Settings) -> str:
    """The dbt target the Spark build runs on: in-process, Connect or Thrift."""
    return SPARK_TARGETS[settings.spark_connection]


def spark_dbt_environment(settings: Settings) -> dict[str, str]:
    """What the Spark dbt targets read from the environment (profiles.yml): where Spark
    writes, where it runs (the master, the Connect URL or the Thrift server, credentials
    under DBT_ENV_SECRET_* names), the shuffle partitions, the driver's heap (an in-process
    driver only); and Spark's log configuration (an in-process JVM logs into
    `<warehouse>/spark/logs/spark.log`, not onto the console)."""
    (settings.spark_dir / "logs").mkdir(parents=True, exist_ok=True)
    env = {
        **spark_environment(
            settings.spark_dir, settings.spark_master, settings.spark_shuffle_partitions,
            settings.spark_driver_memory, settings.spark_threads,
        ),
        "SPARK_CONF_DIR": str(SPARK_CONF_DIR),
        "PYTHONWARNINGS": ",".join(
            w for w in (os.environ.get("PYTHONWARNINGS"),
                        f"ignore:{PYSPARK_PANDAS_WARNING}:FutureWarning",
                        f"ignore:{CONNECT_STATIC_CONF_WARNING}:UserWarning") if w
        ),
    }
    if settings.spark_remote:
        env[SPARK_REMOTE_ENV] = connect_url(settings)
    if settings.spark_thrift_host:
        # only what is set: the profile's defaults stand for the rest (an empty secret
        # variable would still render as dbt's secret placeholder, i.e. a password)
        env |= {name: value for name, value in (
            ("SALES_KPI_SPARK_THRIFT_HOST", settings.spark_thrift_host),
            ("SALES_KPI_SPARK_THRIFT_PORT", str(settings.spark_thrift_port)),
            ("SALES_KPI_SPARK_THRIFT_USER", settings.spark_thrift_user),
            ("SALES_KPI_SPARK_THRIFT_AUTH", settings.spark_thrift_auth),
            (SPARK_THRIFT_PASSWORD_ENV, settings.spark_thrift_password),
        ) if value}
    return env


def connect_url(settings: Settings) -> str:
    """The Spark Connect URL dbt connects with: `spark_remote`, plus `;token=` when the
    server takes one (`sc://host:15002/;token=...`; pyspark then speaks TLS)."""
    url = settings.spark_remote or ""
    if not settings.spark_remote_token:
        return url
    if ";" not in url:
        url = url.rstrip("/") + "/"
    return f"{url};token={settings.spark_remote_token}"


def master_for_logs(master: str) -> str:
    """The master as logs may show it: without user info (`spark://user:secret@host`) or
    Spark Connect parameters (`sc://host:15002/;token=...`), which can carry credentials."""
    return re.sub(r"//[^/@]*@", "//", master).split(";")[0]


def spark_for_logs(settings: Settings) -> str:
    """Where the Spark build runs, as the run's log says it (no credentials)."""
    if settings.spark_remote:
        return f"Spark Connect server {master_for_logs(settings.spark_remote)}"
    if settings.spark_thrift_host:
        return (f"Spark Thrift server {settings.spark_thrift_host}:"
                f"{settings.spark_thrift_port}")
    return master_for_logs(settings.spark_master or "local[*]")


def raw_parquet_dir(settings: Settings) -> Path:
    return settings.spark_dir / "raw"


def spark_tables_dir(settings: Settings) -> Path:
    """spark.sql.warehouse.dir of the `spark` target (profiles.yml)."""
    return settings.spark_dir / "tables"


def source_tables(manifest: Mapping[str, Any]) -> list[str]:
    """The raw tables the dbt sources read: all the Spark build needs of the raw layer."""
    return sorted(
        source.get("identifier") or source["name"]
        for source in manifest["sources"].values()
        if source["schema"] == RAW_SCHEMA
    )


def reset_spark_build(settings: Settings) -> None:
    """Start every Spark build from nothing but Spark's logs: the build rebuilds every table
    anyway, and Derby's metastore records absolute locations, so a metastore kept across
    builds would, in a copied or moved warehouse, drop or shadow the tables of the folder it
    was made in. No earlier build's table outlives the build that replaced it."""
    for part in ("metastore_db", "tables", "raw", "derby.log", "build.duckdb",
                 TIME_ZONE_PROBES_FILE):
        path = settings.spark_dir / part
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def export_sources(settings: Settings, manifest: Mapping[str, Any]) -> dict[str, object]:
    """The raw tables the sources read, as Parquet for Spark; the dbt vars that register
    them and check where Spark writes its tables (the `raw_layer_from_var` hook)."""
    folder = raw_parquet_dir(settings)
    tables = export_raw_layer(settings.raw_database, folder, only=source_tables(manifest))
    return {RAW_PARQUET_DIR_VAR: str(folder.resolve()), RAW_PARQUET_TABLES_VAR: tables,
            SPARK_TABLES_DIR_VAR: str(spark_tables_dir(settings).resolve())}


def probes_since(raw_database: Path) -> datetime:
    """Since when the engines' time-zone rules must agree: PROBES_SINCE, or a day before the
    raw layer's earliest instant where that is older (an engine's rules differ most in the
    past: Java 17's and IANA 2026f's São Paulo of 1966 an hour apart, which moved a marketing
    lead into another month on Spark alone), not before PROBES_EARLIEST."""
    with duckdb.connect(str(raw_database), read_only=True) as con:
        columns = con.execute(
            "select table_name, column_name from duckdb_columns() where schema_name = ? "
            "and data_type = 'TIMESTAMP WITH TIME ZONE' order by all", [RAW_SCHEMA],
        ).fetchall()
        # bounded in SQL: an instant of year 0 is one no Python datetime holds
        earliest = con.execute(
            "select case when min(earliest) is not null then greatest(min(earliest), ?) end "
            "from ("
            + " union all ".join(
                f"select min({quote_ident(column)}) as earliest "
                f"from {RAW_SCHEMA}.{quote_ident(table)}"
                for table, column in columns
            )
            + ")",
            [PROBES_EARLIEST + timedelta(days=1)],
        ).fetchone()[0] if columns else None  # type: ignore[index]
    if earliest is None or earliest - timedelta(days=1) >= PROBES_SINCE:
        return PROBES_SINCE
    return earliest - timedelta(days=1)


def time_zone_probes(settings: Settings) -> dict[str, object]:
    """The dbt var with which the Spark build compares its engine's time-zone rules with
    DuckDB's before it builds anything (macro `time_zone_rules_from_var`): the business
    timezone's probes from 2000 (or the data's earliest instant, `probes_since`) to two years
    past now (or `as_of`, if later), as a Parquet file beside the raw layer
    (pipelines/local_time.py)."""
    path = settings.spark_dir / TIME_ZONE_PROBES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    latest = max(now, settings.as_of or now)
    write_time_zone_probes(settings.business_timezone, latest + PROBES_AHEAD, path,
                           since=probes_since(settings.raw_database))
    # the same var every night (dbt parses the whole project again when a var changes)
    return {TIME_ZONE_PROBES_VAR: {"path": str(path.resolve()),
                                   "rules": f"IANA {tzdata.IANA_VERSION}"}}


def spark_build_vars(settings: Settings, manifest: Mapping[str, Any]) -> dict[str, object]:
    """What a Spark build of the job is given besides the definitions' vars: the raw layer
    as Parquet (`export_sources`), the probes its engine's time-zone rules are checked
    against first (`time_zone_probes`), and the published tables of its catalog
    (`published_catalog`)."""
    return export_sources(settings, manifest) | time_zone_probes(settings) | published_catalog(
        settings
    )


def published_catalog(settings: Settings) -> dict[str, object]:
    """The dbt var that has the build's Spark session define every published table in the
    database `published` (macro `published_tables_from_var`): each table's Parquet file,
    through the publisher's link, and its columns — a mart's own (`mart`, all or only
    `mart_columns`, in that order) after those the publisher adds (`columns`, name and Spark
    type): the history tables are a `run_id` and some of a mart's columns; `runs` is the
    publisher's alone."""
    warehouse = settings.warehouse_dir.resolve()  # not the link under it: that must stay one
    run_id = [["run_id", _spark_type(RUNS_TYPES["run_id"])]]
    tables: dict[str, dict[str, Any]] = {name: {"mart": name} for name in PUBLISHED_TABLES}
    for history, (mart, columns) in HISTORY_COLUMNS.items():
        tables[history] = {"columns": run_id, "mart": mart,
                           "mart_columns": [c.strip() for c in columns.split(",")]}
    tables["runs"] = {"columns": [[c, _spark_type(t)] for c, t in RUNS_TYPES.items()]}
    for name, table in tables.items():
        table["location"] = str(published_parquet(warehouse, name))
    return {PUBLISHED_CATALOG_VAR: {"database": PUBLISHED_DATABASE, "marts_schema": MARTS_SCHEMA,
                                    "tables": tables}}


def _spark_type(duckdb_type: str) -> str:
    return _SPARK_TYPES[duckdb_type.split()[0]]


def write_build_views(
    settings: Settings, manifest: Mapping[str, Any], built: Collection[str] | None = None
) -> Path:
    """`<warehouse>/spark/build.duckdb`: a view per dbt model and seed over its Spark table's
    Parquet folder, with the dbt descriptions as comments. Written beside and swapped in, so
    a reader never meets half a file. Returns its path.

    `built`: the unique ids of the models and seeds the build made (`built_nodes`): a table of
    one of them that is not where the job reads it is an error (SparkBuildError). A node the
    build did not make (a selection built by hand) is left out."""
    target = settings.build_database
    staging = target.with_name(f".build-{uuid.uuid4().hex}.duckdb")
    tables = spark_tables_dir(settings).resolve()
    try:
        with duckdb.connect(str(staging)) as con:
            con.execute("set enable_progress_bar = false")
            for node in manifest["nodes"].values():
                if node["resource_type"] not in ("model", "seed"):
                    continue
                _create_view(con, node, tables,
                             required=built is not None and node["unique_id"] in built)
            con.execute("checkpoint")
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
        Path(f"{staging}.wal").unlink(missing_ok=True)
    return target


class SparkBuildError(RuntimeError):
    """The Spark build's tables are not where the job reads them."""


def built_nodes(target: Path) -> set[str]:
    """The models and seeds a dbt invocation made (its `run_results.json` in `target`)."""
    results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))["results"]
    return {
        result["unique_id"] for result in results
        if result["status"] == "success" and result["unique_id"].split(".")[0] in ("model", "seed")
    }


def _create_view(
    con: duckdb.DuckDBPyConnection, node: Mapping[str, Any], tables: Path, *, required: bool
) -> None:
    schema, name = node["schema"], node.get("alias") or node["name"]
    if node["config"].get("materialized") not in ("table", "incremental", "seed"):
        return  # a view (or an ephemeral model) has no files of its own to read
    folder = tables / f"{schema}.db" / name
    if not folder.is_dir():
        if not required:
            return  # not made by this build (a selection built by hand): nothing to read
        # a table the build made that is not where the job reads it was written elsewhere — a
        # server whose schema `schema` already had another location in its metastore — and
        # must not go unread in silence
        raise SparkBuildError(
            f"the Spark build left no table files for {schema}.{name} in {folder}: its schema "
            "lives elsewhere in the Spark server's metastore (start the server with a "
            "metastore of its own for this warehouse: README, \"Engines\")"
        )
    relation = f"{quote_ident(schema)}.{quote_ident(name)}"
    con.execute(f"create schema if not exists {quote_ident(schema)}")
    # the build's files by name, not a glob: a warehouse path may hold `[`, `?` or `*`, which
    # DuckDB would take as a pattern (a view takes no parameters: literals)
    files = ", ".join(sql_literal(str(path)) for path in sorted(folder.glob("*.parquet")))
    con.execute(f"create or replace view {relation} as select * from read_parquet([{files}])")
    if node.get("description"):
        con.execute(f"comment on view {relation} is {comment_literal(node['description'])}")
    existing = {c for (c,) in con.execute(
        "select column_name from duckdb_columns() where schema_name = ? and table_name = ?",
        [schema, name],
    ).fetchall()}
    for column, spec in (node.get("columns") or {}).items():
        if spec.get("description") and column in existing:
            con.execute(
                f"comment on column {relation}.{quote_ident(column)} "
                f"is {comment_literal(spec['description'])}"
            )


def read_manifest(target_path: Path) -> dict[str, Any]:
    return json.loads((target_path / "manifest.json").read_text(encoding="utf-8"))
