"""A CRM export mapped by `--source` publishes the same marts on Spark as on DuckDB.

`--source` maps a vendor's export onto the canonical extract before the load (README, "Exports
of other CRMs"); the load, its contract and quarantine are the same for both engines, and from
there the dbt build runs on the engine the settings name. So `sales-kpi run --source salesforce
--engine spark` over the hand-written Salesforce Data Export of tests/fixtures/vendor (its
shape as Salesforce documents it: the fixture's README cites the pages) must publish, row by
row on the contract keys, what `sales-kpi run --source salesforce` publishes on DuckDB —
exact for ids, texts, counts, dates and instants, 1e-9 relative for amounts and ratios
(tests/mart_comparison.py `engine_differences`, as for the generated sample in
test_spark_job.py). The HubSpot and YAML mappings take the same path into the load
(pipelines/adapters): one export proves the wiring of `--source` into a Spark run; what each
mapping itself yields is test_vendor_exports.py's and test_adapters.py's.

Both runs go through the CLI in a subprocess, as an operator starts them, without the site;
Spark in-process on `local[2]` (tests/engine_runs.py SPARK_ENV). They run side by side: the
DuckDB run ends while Spark's JVM is still starting.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from conftest import run_cli_subprocess, session_settings
from engine_runs import SPARK_ENV
from mart_comparison import MART_KEYS, engine_differences, relation_frame

from pipelines.publish import published_database

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SALESFORCE_EXPORT = Path(__file__).parent / "fixtures" / "vendor" / "salesforce_data_export"
RUN_TIMEOUT_SECONDS = 1800


@dataclass(frozen=True)
class MappedRun:
    warehouse: Path
    outcome: dict[str, Any]

    def explain(self) -> str:
        return (f"exit {self.outcome['code']}\n{self.outcome['stdout'][-3000:]}\n"
                f"{self.outcome['stderr'][-3000:]}")


@pytest.fixture(scope="module")
def mapped_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, MappedRun]:
    """The Salesforce export through the whole job on each engine (read-only)."""
    folder = tmp_path_factory.mktemp("salesforce_on_both_engines")

    def run(engine: str) -> MappedRun:
        warehouse = folder / f"warehouse-{engine}"
        outcome = run_cli_subprocess(
            "--source", "salesforce", "--extracts", str(SALESFORCE_EXPORT),
            "--warehouse", str(warehouse), "--engine", engine,
            env={"SALES_KPI_WRITE_SITE": "false", **(SPARK_ENV if engine == "spark" else {})},
            drop=session_settings(), timeout=RUN_TIMEOUT_SECONDS,
        )
        return MappedRun(warehouse, outcome)

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(("spark", "duckdb"), pool.map(run, ("spark", "duckdb")), strict=True))
    return runs


def _published(warehouse: Path, table: str) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    with duckdb.connect(str(published_database(warehouse)), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        return relation_frame(con.sql(f'select * from "{table}"'))


def test_a_salesforce_export_runs_the_whole_job_on_spark(
    mapped_runs: dict[str, MappedRun],
) -> None:
    spark, on_duckdb = mapped_runs["spark"], mapped_runs["duckdb"]
    assert on_duckdb.outcome["code"] == 0, on_duckdb.explain()
    assert spark.outcome["code"] == 0, spark.explain()
    console = spark.outcome["stdout"]
    # the mapping's report, and the build on Spark
    assert "source Salesforce export (salesforce.yaml)" in console, console[-3000:]
    assert "the build on Spark" in console, console[-3000:]
    assert (spark.warehouse / "spark" / "build.duckdb").is_file()


@pytest.mark.parametrize("mart", sorted(MART_KEYS))
def test_every_mart_of_a_mapped_export_is_the_same_from_spark_as_from_duckdb(
    mapped_runs: dict[str, MappedRun], mart: str
) -> None:
    spark, on_duckdb = mapped_runs["spark"], mapped_runs["duckdb"]
    assert on_duckdb.outcome["code"] == 0, on_duckdb.explain()
    assert spark.outcome["code"] == 0, spark.explain()
    expected = _published(on_duckdb.warehouse, mart)
    assert len(expected[0]) > 0, f"{mart} is empty on DuckDB: the export proves nothing"
    assert engine_differences(
        mart, expected, _published(spark.warehouse, mart), MART_KEYS[mart]
    ) is None
