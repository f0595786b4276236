"""One dbt project, two engines: Spark builds the same marts as DuckDB, row by row.

A small generated sample is loaded with the normal (DuckDB) loader, with a few manager target
overrides; the dbt project is built on DuckDB (`warehouse` target) and, from the same raw
layer exported to Parquet, on Spark (`spark` target, in-process pyspark): seeds and models.
Every mart is then compared on its keys: exact for ids, texts, counts, booleans, dates and
instants; amounts and ratios to 1e-9 relative. Then the data tests and the dbt unit tests run
on Spark (last: on a busy 2-core machine they take the longest; select the comparison alone
with `-k "not data_tests and not unit_test"`).

Spark tables are Parquet files under the run's Spark folder; they are read back with DuckDB,
so the comparison itself does not depend on Spark.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from mart_comparison import ColumnKinds, compare

from pipelines.contract import ENTITIES
from pipelines.dbt_project import DBT_DATABASE_ENV, DBT_PROJECT_DIR, dbt_executable
from pipelines.engines import (
    DBT_TARGETS,
    dbt_environment,
    export_raw_layer,
    spark_available,
)
from pipelines.ingest.landing import scan_landing
from pipelines.ingest.loader import load_entity
from pipelines.ingest.raw_layer import ensure_raw_layer
from pipelines.sample import generate_sample
from pipelines.settings import Settings

pytestmark = [pytest.mark.spark, pytest.mark.slow]

if not spark_available():
    pytest.skip(
        "pyspark and dbt-spark are not installed (pip install -e '.[spark]')",
        allow_module_level=True,
    )
if shutil.which("java") is None:
    pytest.skip("Spark needs Java 17 on PATH", allow_module_level=True)

SCALE, SEED, SAMPLE_END = 0.1, 5, date(2026, 11, 26)
FLOAT_REL_TOLERANCE = 1e-9
# Sums of EUR amounts added in another order may differ in the last bits, so a growth
# numerator (current − previous) that is 0 on one engine may be ~1e-12 on the other.
FLOAT_ABS_TOLERANCE = 1e-9
SHOWN = 10
# A small sample on a small machine: two local cores, few shuffle partitions.
SPARK_TEST_ENV = {"SALES_KPI_SPARK_MASTER": "local[2]", "SALES_KPI_SPARK_SHUFFLE_PARTITIONS": "2"}

MART_KEYS: dict[str, tuple[str, ...]] = {
    "dim_reps": ("user_id",),
    "dim_leads": ("contact_id",),
    "fct_funnel_stages": ("contact_id", "stage"),
    "fct_activities": ("activity_id",),
    "fct_deals": ("deal_id",),
    "fct_marketing_event_judgements": ("event_id",),
    "label_consistency": ("labeller",),
    "kpi_registry": ("kpi_id",),
    "kpi_values": ("kpi_id", "scope", "scope_id", "period_start"),
    "kpi_baselines": ("kpi_id", "scope", "scope_id"),
    "kpi_scorecard": ("kpi_id", "scope", "scope_id", "period_start"),
}
# An md5 of each engine's own rendering of a contact's input rows (macro row_fingerprint):
# compared for presence and form, not value.
ENGINE_SPECIFIC = {"dim_leads": {"inputs_fingerprint"}}


@dataclass(frozen=True)
class Builds:
    duckdb_database: Path
    spark_tables: Path
    spark_dir: Path
    spark_target: Path
    duckdb_build: subprocess.CompletedProcess[str]
    spark_build: subprocess.CompletedProcess[str]


def _dbt(
    *args: str, engine: str, target: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [dbt_executable(), *args, "--target", DBT_TARGETS[engine],
         "--profiles-dir", str(DBT_PROJECT_DIR), "--project-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(target), "--log-path", str(target / "logs")],
        env=env, capture_output=True, text=True, check=False,
    )


def _load_sample(root: Path) -> Path:
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


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    root = tmp_path_factory.mktemp("engine_parity")
    database = _load_sample(root)
    build = ("build", "--resource-type", "seed", "--resource-type", "model")

    duckdb_env = dbt_environment("duckdb")
    duckdb_env[DBT_DATABASE_ENV] = str(database)
    duckdb_build = _dbt(*build, engine="duckdb", target=root / "dbt_duckdb", env=duckdb_env)

    spark_dir = root / "spark"
    spark_env = dbt_environment("spark", spark_dir=spark_dir)
    spark_env.update(SPARK_TEST_ENV)
    tables = export_raw_layer(database, root / "raw_parquet")
    spark_target = root / "dbt_spark"
    registered = _dbt(
        "run-operation", "raw_layer_from_parquet", "--args",
        f"{{parquet_dir: '{root / 'raw_parquet'}', tables: [{', '.join(tables)}]}}",
        engine="spark", target=spark_target, env=spark_env,
    )
    assert registered.returncode == 0, registered.stdout[-3000:]
    spark_build = _dbt(*build, engine="spark", target=spark_target, env=spark_env)
    return Builds(
        duckdb_database=database,
        spark_tables=spark_dir / "tables",
        spark_dir=spark_dir,
        spark_target=spark_target,
        duckdb_build=duckdb_build,
        spark_build=spark_build,
    )


def _summary(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stdout.splitlines() if "ERROR" in line or "FAIL" in line]
    return "\n".join(lines[:40]) + "\n" + result.stdout[-2000:]


def test_every_seed_and_model_builds_on_duckdb_and_on_spark(builds: Builds) -> None:
    assert builds.duckdb_build.returncode == 0, _summary(builds.duckdb_build)
    result = builds.spark_build
    assert result.returncode == 0, _summary(result)
    assert " ERROR=0 " in result.stdout
    # the same nodes were built on both engines
    assert _totals(result) == _totals(builds.duckdb_build)


def _totals(result: subprocess.CompletedProcess[str]) -> str:
    done = [line for line in result.stdout.splitlines() if "Done. PASS=" in line]
    assert done, result.stdout[-2000:]
    return done[-1].split("Done. ")[1]


def _duckdb_mart(builds: Builds, table: str) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    with duckdb.connect(str(builds.duckdb_database), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        relation = con.sql(f"select * from marts.{table}")
        return relation.df(), list(zip(relation.columns, map(str, relation.types), strict=True))


def _spark_mart(builds: Builds, table: str) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    files = builds.spark_tables / "marts.db" / table
    assert any(files.glob("*.parquet")), f"Spark wrote no Parquet for marts.{table} in {files}"
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        relation = con.sql(f"select * from read_parquet('{files}/*.parquet')")
        return relation.df(), list(zip(relation.columns, map(str, relation.types), strict=True))


def _kinds(schema: Sequence[tuple[str, str]]) -> ColumnKinds:
    def named(*prefixes: str) -> frozenset[str]:
        return frozenset(c for c, t in schema if t.upper().startswith(prefixes))

    return ColumnKinds(
        rel_tol=FLOAT_REL_TOLERANCE,
        abs_tol=FLOAT_ABS_TOLERANCE,
        timestamps=named("TIMESTAMP WITH TIME ZONE"),
        dates=named("DATE"),
        floats=named("DOUBLE", "FLOAT", "DECIMAL"),
        ints=named("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT"),
        bools=named("BOOLEAN"),
    )


@pytest.mark.parametrize("mart", sorted(MART_KEYS))
def test_every_mart_is_the_same_on_spark_as_on_duckdb(builds: Builds, mart: str) -> None:
    assert builds.duckdb_build.returncode == 0, _summary(builds.duckdb_build)
    assert builds.spark_build.returncode == 0, _summary(builds.spark_build)
    expected, duckdb_schema = _duckdb_mart(builds, mart)
    actual, spark_schema = _spark_mart(builds, mart)
    # the same columns, in the same order, with the same types (read back as DuckDB types)
    assert spark_schema == duckdb_schema
    assert len(expected) > 0, f"{mart} is empty on DuckDB: the sample proves nothing"
    assert len(actual) == len(expected)

    engine_specific = ENGINE_SPECIFIC.get(mart, set())
    columns = [c for c, _ in duckdb_schema if c not in engine_specific]
    differences = compare(
        _kinds(duckdb_schema), actual, expected, MART_KEYS[mart], columns
    )
    assert not differences, (
        f"{mart}: {len(differences.mismatching)} rows differ, {len(differences.missing)} only "
        f"on DuckDB, {len(differences.extra)} only on Spark\n"
        + "\n".join(
            differences.mismatching[:SHOWN] + differences.missing[:SHOWN]
            + differences.extra[:SHOWN]
        )
    )
    key = list(MART_KEYS[mart])
    for column in engine_specific:
        both = expected[[*key, column]].merge(
            actual[[*key, column]], on=key, suffixes=("_duckdb", "_spark")
        )
        assert len(both) == len(expected)
        present = both[f"{column}_duckdb"].notna()
        assert (present == both[f"{column}_spark"].notna()).all(), column
        assert both[f"{column}_spark"].dropna().str.fullmatch(r"[0-9a-f]{32}").all(), column


def _spark_test(builds: Builds, *selection: str) -> subprocess.CompletedProcess[str]:
    assert builds.spark_build.returncode == 0, _summary(builds.spark_build)
    env = dbt_environment("spark", spark_dir=builds.spark_dir)
    env.update(SPARK_TEST_ENV)
    return _dbt("test", *selection, engine="spark", target=builds.spark_target, env=env)


def test_every_data_test_gives_the_same_outcome_on_spark_as_on_duckdb(builds: Builds) -> None:
    spark = _spark_test(builds, "--exclude", "test_type:unit")
    assert spark.returncode == 0, _summary(spark)
    duckdb_env = dbt_environment("duckdb")
    duckdb_env[DBT_DATABASE_ENV] = str(builds.duckdb_database)
    on_duckdb = _dbt(
        "test", "--exclude", "test_type:unit",
        engine="duckdb", target=builds.duckdb_database.parent / "dbt_duckdb", env=duckdb_env,
    )
    assert on_duckdb.returncode == 0, _summary(on_duckdb)
    # the same tests passed, and the same ones warned, on both engines
    assert _totals(spark) == _totals(on_duckdb)
    assert _warned(spark) == _warned(on_duckdb)


def _warned(result: subprocess.CompletedProcess[str]) -> list[tuple[str, str]]:
    """(test, number of failing rows) of every test that warned."""
    return sorted(
        (match[2], match[1]) for match in re.finditer(r"\d+ of \d+ WARN (\d+) (\S+)", result.stdout)
    )


def test_every_dbt_unit_test_passes_on_spark(builds: Builds) -> None:
    result = _spark_test(builds, "--select", "test_type:unit")
    assert result.returncode == 0, _summary(result)
    passed = int(result.stdout.split(" PASS=")[1].split()[0])
    assert passed >= 30, result.stdout[-2000:]
