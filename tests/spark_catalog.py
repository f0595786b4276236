"""What a Spark reader finds in a Spark build's catalog: one Spark session (one JVM, in a
process of its own, so none outlives the call) on a copy of the build's Derby metastore, that
reads every table of a database through the catalog (`spark.table`, by name only).

For each table it reports Spark's `count(*)`, the table's type and location (`describe table
extended`), and writes the rows Spark read as Parquet (`<out>/<table>/`; instants as UTC
Parquet timestamps, as the job's Spark build writes them), for DuckDB to compare with the
published file. The metastore is copied because the shared run is read-only, and Derby keeps
lock files in the folder it opens; the tables' locations are absolute, so the copy reads the
same files.

Run as a script: `python tests/spark_catalog.py <spark dir> <database> <out dir>`; prints JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

# A cold JVM and a dozen small tables on a loaded 2-core machine.
READ_TIMEOUT_SECONDS = 600


def read_catalog(spark_dir: Path, database: str, out: Path) -> dict[str, dict[str, Any]]:
    """Every table of `database` in the metastore under `spark_dir`, as Spark reads it
    through the catalog: table → {rows, type, location, provider}; rows written to
    `<out>/<table>/`."""
    metastore = out / "metastore_db"
    shutil.copytree(spark_dir / "metastore_db", metastore,
                    ignore=shutil.ignore_patterns("*.lck"))
    (out / "logs").mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        [sys.executable, __file__, str(out), database, str(out)],
        env={**os.environ, "SALES_KPI_SPARK_DIR": str(out),
             "SPARK_CONF_DIR": str(Path(__file__).parents[1] / "dbt_project" / "spark_conf")},
        capture_output=True, text=True, check=False, timeout=READ_TIMEOUT_SECONDS,
    )
    if completed.returncode != 0:
        raise AssertionError(f"reading the Spark catalog failed:\n{completed.stderr[-5000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _read(spark_dir: Path, database: str, out: Path) -> dict[str, dict[str, Any]]:
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.warehouse.dir", str(spark_dir / "tables"))
        .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={spark_dir / 'metastore_db'};create=false")
        .config("spark.driver.extraJavaOptions", f'-Dderby.system.home="{spark_dir}"')
        .enableHiveSupport()
        .getOrCreate()
    )
    try:
        found: dict[str, dict[str, Any]] = {}
        for row in spark.sql(f"show tables in {database}").collect():
            name = f"{database}.{row.tableName}"
            details = {r.col_name: r.data_type for r in
                       spark.sql(f"describe table extended {name}").collect()}
            table = spark.table(name)
            table.write.parquet(str(out / row.tableName))
            found[row.tableName] = {
                "rows": spark.sql(f"select count(*) as n from {name}").collect()[0].n,
                "type": details.get("Type"), "provider": details.get("Provider"),
                "location": details.get("Location"),
            }
        return found
    finally:
        spark.stop()


if __name__ == "__main__":
    print(json.dumps(_read(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))))
