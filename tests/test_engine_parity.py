"""One dbt project, two engines: the job's Spark build makes every model and seed DuckDB's
build makes, row by row, with the same data-test outcomes, and dbt's unit tests pass on Spark.

The session's two job runs (conftest `engine_runs`, tests/engine_runs.py): `sales-kpi run`
and `sales-kpi run --engine spark` (on a local standalone cluster) over one small generated
sample with manager target overrides. Each run leaves its build where the job's checks and
publisher read it (`Settings.build_database`): on DuckDB the warehouse file; on Spark
`spark/build.duckdb`, views over each model's and seed's Parquet folder — so the comparison
itself does not depend on Spark. Every model and seed of the project is compared: the
published marts on their contract keys, the others as multisets of rows (a view, which has no
files on Spark, through the tables that read it); exact for ids, texts,
counts, booleans, dates and instants, amounts and ratios to 1e-9 relative
(mart_comparison.engine_differences). Every data test of the job's build has the same outcome
on both engines (its run_results.json); every dbt unit test (which the job leaves to the test
suite) passes on Spark, run once over the Spark run's tables.

Without the spark extra or Java 17 these tests are skipped, saying why — and fail instead
under SALES_KPI_REQUIRE_SPARK=1 (`make test`; conftest.py, `spark_missing`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from engine_runs import EngineRuns
from mart_comparison import MART_KEYS, Schema, engine_differences, relation_frame

from pipelines.settings import PROJECT_ROOT

pytestmark = [pytest.mark.spark, pytest.mark.slow]

DBT_PROJECT = PROJECT_ROOT / "dbt_project"
# every model and seed of the project, by name (their schema comes from the run's manifest)
NODES = sorted(
    [("model", path.stem) for path in (DBT_PROJECT / "models").rglob("*.sql")]
    + [("seed", path.stem) for path in (DBT_PROJECT / "seeds").rglob("*.csv")]
)


def _explain(run: Mapping[str, Any]) -> str:
    return f"exit {run['code']}\n{run['stdout'][-3000:]}\n{run['stderr'][-3000:]}"


@pytest.fixture(scope="module")
def runs(engine_runs: EngineRuns) -> EngineRuns:
    """The two runs, both of which must have succeeded for anything here to be compared."""
    for run in (engine_runs.duckdb_run, engine_runs.spark_run):
        assert run["code"] == 0, _explain(run)
    return engine_runs


def _nodes(results: Mapping[str, Any], kinds: tuple[str, ...]) -> dict[str, str]:
    """Each node's outcome in a dbt run's results (for tests, with its failing rows)."""
    return {
        result["unique_id"]: (
            f"{result['status']} {result['failures']}"
            if result["status"] in ("warn", "fail") else result["status"]
        )
        for result in results["results"]
        if result["unique_id"].split(".")[0] in kinds
    }


def test_every_seed_and_model_builds_on_duckdb_and_on_spark(runs: EngineRuns) -> None:
    on_duckdb = _nodes(runs.run_results("duckdb"), ("model", "seed"))
    on_spark = _nodes(runs.run_results("spark"), ("model", "seed"))
    assert len(on_duckdb) == len(NODES)
    assert set(on_duckdb.values()) == {"success"}
    assert on_spark == on_duckdb


def _relation(con: duckdb.DuckDBPyConnection, manifest: Mapping[str, Any], kind: str,
              name: str) -> tuple[pd.DataFrame, Schema]:
    node = manifest["nodes"][f"{kind}.sales_kpi.{name}"]
    relation = f'"{node["schema"]}"."{node.get("alias") or node["name"]}"'
    return relation_frame(con.sql(f"select * from {relation}"))


def _read(database: Path, manifest: Mapping[str, Any], kind: str, name: str
          ) -> tuple[pd.DataFrame, Schema]:
    with duckdb.connect(str(database), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        return _relation(con, manifest, kind, name)


@pytest.mark.parametrize(("kind", "name"), NODES, ids=[name for _, name in NODES])
def test_every_model_and_seed_is_the_same_on_spark_as_on_duckdb(
    runs: EngineRuns, kind: str, name: str
) -> None:
    manifest = runs.manifest("duckdb")
    node = manifest["nodes"][f"{kind}.sales_kpi.{name}"]
    if node["config"]["materialized"] == "view":
        # a view has no files on Spark (build.duckdb reads each table's Parquet): its rows
        # are compared where a table compared here reads them
        readers = [uid for uid in manifest["child_map"][node["unique_id"]]
                   if uid.startswith("model.")
                   and manifest["nodes"][uid]["config"]["materialized"] == "table"]
        assert readers, f"the view {name} has no table reading it: its rows are never compared"
        return
    on_duckdb = _read(runs.build_database("duckdb"), manifest, kind, name)
    on_spark = _read(runs.build_database("spark"), runs.manifest("spark"), kind, name)
    if name in MART_KEYS:
        assert len(on_duckdb[0]) > 0, f"{name} is empty on DuckDB: the sample proves nothing"
    assert engine_differences(name, on_duckdb, on_spark, MART_KEYS.get(name)) is None


def test_the_sample_carries_manager_target_overrides(runs: EngineRuns) -> None:
    """The overrides file reached both builds (an override replaces a derived target)."""
    for engine in ("duckdb", "spark"):
        overrides, _schema = _read(
            runs.build_database(engine), runs.manifest(engine), "model", "stg_targets__overrides"
        )
        assert len(overrides) == 3, engine


def test_every_data_test_gives_the_same_outcome_on_spark_as_on_duckdb(runs: EngineRuns) -> None:
    on_duckdb = _nodes(runs.run_results("duckdb"), ("test",))
    on_spark = _nodes(runs.run_results("spark"), ("test",))
    # every data test of the project ran (not a count: consolidating tests changes it)
    declared = {uid for uid, node in runs.manifest("duckdb")["nodes"].items()
                if node["resource_type"] == "test"}
    assert declared and set(on_duckdb) == declared, sorted(declared ^ set(on_duckdb))[:10]
    # the same tests ran on both engines, and each passed, or warned on as many rows, on both
    differing = {
        name: (on_duckdb.get(name), on_spark.get(name))
        for name in on_duckdb.keys() | on_spark.keys()
        if on_duckdb.get(name) != on_spark.get(name)
    }
    assert differing == {}, f"(DuckDB, Spark) outcome per test: {differing}"


def test_every_dbt_unit_test_passes_on_spark(engine_runs: EngineRuns) -> None:
    run = engine_runs.spark_unit_tests
    assert run["code"] == 0, _explain(run)
    on_spark = _nodes(engine_runs.unit_test_results(), ("unit_test",))
    assert len(on_spark) >= 30, sorted(on_spark)
    assert {name for name, outcome in on_spark.items() if outcome != "pass"} == set()
    # every unit test of the project ran
    assert on_spark.keys() == engine_runs.unit_tests_in_project()
