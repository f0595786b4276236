"""The engines the dbt project runs on: DuckDB (the default) and Apache Spark (README, "Engines").

The dbt project is one: engine differences live in dispatched macros
(`dbt_project/macros/cross_db/`). For now the Spark raw layer is the DuckDB raw layer,
exported to Parquet (one folder per table) and registered as Spark tables in schema `raw`
by the macro `raw_layer_from_parquet`, so the dbt sources resolve on both engines.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import duckdb

from pipelines.ingest.raw_layer import RAW_SCHEMA

ENGINES = ("duckdb", "spark")
DBT_TARGETS: Mapping[str, str] = {"duckdb": "warehouse", "spark": "spark"}
# Where the Spark target keeps its tables, Derby metastore and logs (profiles.yml).
SPARK_DIR_ENV = "SALES_KPI_SPARK_DIR"
SPARK_MASTER_ENV = "SALES_KPI_SPARK_MASTER"


def spark_available() -> bool:
    """True when pyspark and dbt-spark are installed (the `spark` extra)."""
    try:
        import dbt.adapters.spark  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError:
        return False
    return True


def export_raw_layer(database: Path, out_dir: Path) -> list[str]:
    """Every table of the DuckDB raw layer as Parquet, `<out_dir>/<table>/data.parquet`.

    Instants (TIMESTAMPTZ) are written as UTC-adjusted Parquet timestamps, which Spark reads
    as its (instant) `timestamp`. Returns the table names, sorted.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(database), read_only=True) as con:
        tables = sorted(
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = ? and table_type = 'BASE TABLE'",
                [RAW_SCHEMA],
            ).fetchall()
        )
        for table in tables:
            folder = out_dir / table
            folder.mkdir(exist_ok=True)
            target = str(folder / "data.parquet").replace("'", "''")
            con.execute(
                f'copy (select * from {RAW_SCHEMA}."{table}") to \'{target}\' (format parquet)'
            )
    return tables


def spark_environment(spark_dir: Path, master: str | None = None) -> dict[str, str]:
    """The environment the `spark` dbt target reads (profiles.yml): where Spark writes."""
    env = {SPARK_DIR_ENV: str(spark_dir.resolve())}
    if master:
        env[SPARK_MASTER_ENV] = master
    return env


def dbt_environment(engine: str, **paths: Path) -> dict[str, str]:
    """os.environ plus what the engine's dbt target needs (`spark_dir` for Spark)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    env = dict(os.environ)
    if engine == "spark":
        env.update(spark_environment(paths["spark_dir"]))
    return env
