"""The whole nightly job on Spark: `sales-kpi run --engine spark` (README, "Engines").

The session's two job runs (conftest `engine_runs`, tests/engine_runs.py) run one small
generated sample, with manager target overrides, through the job as an operator would: on
DuckDB (the default) and with `--engine spark` (load and checks as on DuckDB, the dbt build on
Spark — here on a local standalone cluster — the same publisher). Every published mart must be
the same, row by row on its keys: exact for ids, texts, counts, booleans, dates and instants;
amounts and ratios to 1e-9 relative (`dim_leads.inputs_fingerprint` is each engine's own md5
of a contact's inputs: compared for presence and form only). A second Spark night over the
same files is a no-op; a blocking check that fails on the Spark build leaves the published
marts byte for byte as they were; SIGTERM during the Spark build ends Spark's JVM and
publishes nothing; a machine without Java is refused before anything runs. The published tables
are also tables of the Spark catalog (database `published`) that read the published files
through the publisher's link: a Spark reader finds every one and reads exactly what the
published DuckDB file holds (one JVM of its own on a copy of the run's metastore). Those runs of
their own use Spark in-process (`local[2]`), on copies of the shared warehouses.

Without the spark extra or Java 17 the module is skipped with the reason, unless
SALES_KPI_REQUIRE_SPARK=1 (then that is a failure).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import psutil
import pytest
from conftest import run_cli_subprocess, write_delivery
from engine_runs import SPARK_ENV, EngineRuns
from mart_comparison import MART_KEYS, engine_differences, relation_frame
from spark_catalog import read_catalog

from pipelines.publish import (
    PUBLISHED_FILE_TABLES,
    PUBLISHED_TABLES,
    published_database,
    published_parquet,
)
from pipelines.quality.checks import CHECKS
from pipelines.settings import PROJECT_ROOT, Settings
from pipelines.spark_build import PUBLISHED_DATABASE

pytestmark = [pytest.mark.spark, pytest.mark.slow]

# Without the spark extra or Java 17 every test here is skipped, saying why, or fails under
# SALES_KPI_REQUIRE_SPARK=1 (`make test-spark`): conftest.py's hook, before any fixture.

# A delivery after the sample's last one: a won new_business deal in a currency without rates.
FX_GAP_DELIVERY = "2026-11-27T0200"
FX_GAP_DEAL = "DEAL-SPK-0001"


@dataclass(frozen=True)
class JobRun:
    warehouse: Path
    code: int
    stdout: str
    stderr: str
    seconds: float

    def explain(self) -> str:
        return f"exit {self.code}\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"


def _run(extracts: Path, warehouse: Path, *args: str, env: dict[str, str] | None = None
         ) -> JobRun:
    return _shared(warehouse, run_cli_subprocess(
        "--extracts", str(extracts), "--warehouse", str(warehouse), *args, env=env,
    ))


def _shared(warehouse: Path, run: dict[str, Any]) -> JobRun:
    """A run as `run_cli_subprocess` (or the shared runs' record) reports it."""
    return JobRun(warehouse, run["code"], run["stdout"], run["stderr"], run["seconds"])


@pytest.fixture(scope="module")
def extracts(engine_runs: EngineRuns) -> Path:
    """The shared runs' sample (read-only: a test that adds a delivery copies it)."""
    return engine_runs.extracts


@pytest.fixture(scope="module")
def job_env(engine_runs: EngineRuns) -> dict[str, str]:
    """What every run on the sample sets (its target overrides file), with Spark on local[2]."""
    return {**engine_runs.job_env, **SPARK_ENV}


@pytest.fixture(scope="module")
def duckdb_run(engine_runs: EngineRuns) -> JobRun:
    """The default job (DuckDB) on the sample, without the site: the reference; read-only."""
    run = _shared(engine_runs.duckdb_warehouse, engine_runs.duckdb_run)
    assert run.code == 0, run.explain()
    return run


@pytest.fixture(scope="module")
def spark_run(engine_runs: EngineRuns) -> JobRun:
    """`sales-kpi run --engine spark` on the same files (on the cluster), with the site;
    read-only."""
    return _shared(engine_runs.spark_warehouse, engine_runs.spark_run)


def _published(warehouse: Path, table: str) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    with duckdb.connect(str(published_database(warehouse)), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        relation = con.sql(f'select * from "{table}"')
        return relation_frame(relation)


def _validation_results(warehouse: Path, check: str, run_id: str) -> list[dict[str, Any]]:
    """The GX validation results stored for `check` by run `run_id` (GX's file store)."""
    folder = warehouse / "quality" / "validations" / check / run_id
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*/*.json"))]


def _last_run_id(warehouse: Path) -> str:
    runs, _types = _published(warehouse, "runs")
    return str(runs.sort_values("published_at")["run_id"].iloc[-1])


# --- (a) the same published marts --------------------------------------------------------


def test_spark_run_publishes_and_says_where_spark_logs(spark_run: JobRun) -> None:
    assert spark_run.code == 0, spark_run.explain()
    assert "succeeded" in spark_run.stdout
    spark_dir = spark_run.warehouse / "spark"
    # what Spark writes stays under the warehouse: its tables, metastore and log
    assert (spark_dir / "tables" / "marts.db" / "kpi_scorecard").is_dir()
    assert (spark_dir / "metastore_db").is_dir()
    assert (spark_dir / "logs" / "spark.log").is_file()
    assert not (PROJECT_ROOT / "dbt_project" / "metastore_db").exists()
    assert not (PROJECT_ROOT / "dbt_project" / "spark-warehouse").exists()
    # Spark's own console output (log4j lines, the stage progress bar) is not the console's
    assert "WARN" not in spark_run.stdout
    assert "[Stage" not in spark_run.stdout + spark_run.stderr


def test_spark_run_publishes_every_mart_the_duckdb_run_publishes(
    spark_run: JobRun, duckdb_run: JobRun
) -> None:
    assert spark_run.code == 0, spark_run.explain()
    with duckdb.connect(str(published_database(spark_run.warehouse)), read_only=True) as con:
        tables = {name for (name,) in con.execute("select table_name from duckdb_tables()")
                  .fetchall()}
    assert set(PUBLISHED_TABLES) <= tables
    assert set(MART_KEYS) == set(PUBLISHED_TABLES)


@pytest.mark.parametrize("mart", sorted(MART_KEYS))
def test_every_published_mart_is_the_same_from_spark_as_from_duckdb(
    spark_run: JobRun, duckdb_run: JobRun, mart: str
) -> None:
    assert spark_run.code == 0, spark_run.explain()
    on_duckdb = _published(duckdb_run.warehouse, mart)
    assert len(on_duckdb[0]) > 0, f"{mart} is empty on DuckDB: the sample proves nothing"
    assert engine_differences(
        mart, on_duckdb, _published(spark_run.warehouse, mart), MART_KEYS[mart]
    ) is None


def test_published_marts_from_spark_keep_their_descriptions(spark_run: JobRun) -> None:
    assert spark_run.code == 0, spark_run.explain()
    with duckdb.connect(str(published_database(spark_run.warehouse)), read_only=True) as con:
        comment = con.execute(
            "select comment from duckdb_tables() where table_name = 'kpi_scorecard'"
        ).fetchone()[0]
        described = con.execute(
            "select count(*) from duckdb_columns() where table_name = 'dim_leads' "
            "and comment is not null"
        ).fetchone()[0]
    assert comment
    assert described > 5


def test_dashboard_and_explain_read_the_marts_published_from_spark(spark_run: JobRun) -> None:
    assert spark_run.code == 0, spark_run.explain()
    assert (spark_run.warehouse / "site" / "index.html").is_file()
    with duckdb.connect(str(published_database(spark_run.warehouse)), read_only=True) as con:
        contact = con.execute(
            "select min(contact_id) from dim_leads where stage = 'customer'"
        ).fetchone()[0]
    explained = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "explain", contact,
         "--warehouse", str(spark_run.warehouse)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, timeout=120,
    )
    assert explained.returncode == 0, explained.stderr
    assert contact in explained.stdout


def test_on_spark_every_gx_suite_validates_a_spark_dataframe_of_its_query(
    spark_run: JobRun,
) -> None:
    """The audit of a Spark night runs on Spark: each check's suite was validated once, by
    that run, on a Spark DataFrame of its query through GX's Spark data source, and every
    expectation was evaluated."""
    from pipelines.quality.gx_spark import SPARK_DATASOURCE_NAME

    assert spark_run.code == 0, spark_run.explain()
    run_id = _last_run_id(spark_run.warehouse)
    for check in CHECKS:
        results = _validation_results(spark_run.warehouse, check.name, run_id)
        assert len(results) == 1, check.name
        meta = results[0]["meta"]
        assert meta["active_batch_definition"]["datasource_name"] == SPARK_DATASOURCE_NAME
        assert meta["batch_spec"]["batch_data"] == "SparkDataFrame", check.name
        evaluated = results[0]["statistics"]["evaluated_expectations"]
        assert evaluated == len(results[0]["results"]) > 0, check.name


def test_a_second_spark_night_over_the_same_files_is_a_no_op_but_a_switch_of_engine_is_not(
    spark_run: JobRun, extracts: Path, job_env: dict[str, str], tmp_path: Path
) -> None:
    assert spark_run.code == 0, spark_run.explain()
    warehouse = shutil.copytree(spark_run.warehouse, tmp_path / "warehouse", symlinks=True)
    again = _run(extracts, warehouse, "--engine", "spark", env=job_env)
    assert again.code == 0, again.explain()
    assert "nothing new since run" in again.stdout
    # the same files and settings on the other engine rebuild: checked without running it,
    # by the fingerprint a run compares with (pipelines/no_op.py)
    from pipelines.no_op import nothing_new_since

    settings = Settings.from_env({**os.environ, **job_env}).replace(
        extracts_dir=extracts, warehouse_dir=warehouse)
    assert nothing_new_since(settings.replace(engine="spark")) is not None
    assert nothing_new_since(settings.replace(engine="duckdb")) is None


# --- (a') the published tables in the Spark catalog ----------------------------------------

# Every table the publisher writes: the marts, the runs and the history.
EVERY_PUBLISHED_TABLE = sorted(PUBLISHED_FILE_TABLES)


@pytest.fixture(scope="module")
def spark_catalog(
    spark_run: JobRun, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, dict[str, Any]]]:
    """What a Spark reader finds in the database `published` of the Spark run's catalog (one
    Spark session on a copy of the run's metastore, tests/spark_catalog.py): where it wrote
    the rows Spark read, and each table's count, type and location."""
    assert spark_run.code == 0, spark_run.explain()
    out = tmp_path_factory.mktemp("spark_catalog")
    return out, read_catalog(spark_run.warehouse / "spark", PUBLISHED_DATABASE, out)


def test_the_published_marts_are_tables_in_the_spark_catalog(
    spark_run: JobRun, spark_catalog: tuple[Path, dict[str, dict[str, Any]]]
) -> None:
    _out, tables = spark_catalog
    assert sorted(tables) == EVERY_PUBLISHED_TABLE
    assert {(t["type"], t["provider"]) for t in tables.values()} == {("EXTERNAL", "parquet")}


def test_the_spark_catalog_tables_read_the_published_files_through_the_publishers_link(
    spark_run: JobRun, spark_catalog: tuple[Path, dict[str, dict[str, Any]]]
) -> None:
    """The link is what the publisher switches atomically: through it, a publication switches
    what the tables read, and a run that publishes nothing leaves them reading the last one."""
    _out, tables = spark_catalog
    warehouse = spark_run.warehouse.resolve()
    assert published_parquet(warehouse).is_symlink()
    for name, table in tables.items():
        assert table["location"] == f"file:{published_parquet(warehouse, name)}", name


@pytest.mark.parametrize("table", EVERY_PUBLISHED_TABLE)
def test_every_table_in_the_spark_catalog_reads_what_was_published(
    spark_run: JobRun, spark_catalog: tuple[Path, dict[str, dict[str, Any]]], table: str
) -> None:
    out, tables = spark_catalog
    assert _catalog_differences(spark_run.warehouse, out, tables, table) is None


def _catalog_differences(
    warehouse: Path, out: Path, tables: dict[str, dict[str, Any]], table: str
) -> str | None:
    """How `table` as Spark read it through the catalog (`read_catalog` into `out`) differs
    from the published DuckDB file's (None when it does not)."""
    published = _published(warehouse, table)
    if tables[table]["rows"] != len(published[0]):
        return f"{table}: {tables[table]['rows']} rows through Spark, {len(published[0])} published"
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        files = str(out / table / "*.parquet").replace("'", "''")
        read_by_spark = relation_frame(con.sql(f"select * from read_parquet('{files}')"))
    return engine_differences(table, published, read_by_spark, MART_KEYS.get(table))


# --- (b) a blocking check that fails on Spark publishes nothing ---------------------------


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _parquet_fingerprint(warehouse: Path) -> dict[str, str]:
    link = warehouse / "parquet"
    return {"->": str(link.readlink()),
            **{p.name: _sha(p) for p in sorted(link.resolve().iterdir())}}


def _won_deal_in_a_currency_without_rates(extracts: Path) -> dict[str, list[dict[str, Any]]]:
    """A new contact and its won new_business deal in JPY (the sample has no JPY rates), owned
    by an account executive of the sample."""
    first = sorted(p for p in extracts.iterdir() if p.is_dir())[0]
    users = pd.read_csv(first / "users.csv", dtype=str)
    companies = pd.read_csv(first / "companies.csv", dtype=str)
    owner = users.loc[users["role"] == "ae", "user_id"].iloc[0]
    company = companies["company_id"].iloc[0]
    created = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    closed = datetime(2026, 8, 3, 15, 0, tzinfo=UTC)
    contact = {
        "contact_id": "CON-SPK-0001", "company_id": company,
        "email": f"con-spk-0001@{company.lower()}.example", "first_name": "Spark",
        "last_name": "Gap", "job_title": "Directeur", "owner_user_id": owner,
        "created_at": "2026-06-01T09:00:00Z", "updated_at": "2026-06-01T09:00:00Z",
        "is_deleted": "false",
    }
    deal = {
        "deal_id": FX_GAP_DEAL, "contact_id": "CON-SPK-0001", "company_id": company,
        "owner_user_id": owner, "deal_type": "new_business", "stage": "closed_won",
        "amount": "120000.00", "currency": "JPY",
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "closed_at": closed.isoformat().replace("+00:00", "Z"), "lost_reason": "",
        "updated_at": closed.isoformat().replace("+00:00", "Z"), "is_deleted": "false",
    }
    return {"contacts": [contact], "deals": [deal]}


def test_a_blocking_check_failing_on_spark_leaves_the_published_marts_as_they_were(
    duckdb_run: JobRun, extracts: Path, job_env: dict[str, str], tmp_path: Path
) -> None:
    """On a copy of the DuckDB-published warehouse (the engine a warehouse was published
    with does not matter), a delivery with a won deal in a currency without rates: the
    Spark build's `revenue_in_eur` check blocks, the run fails, nothing is published — and
    the tables the Spark build defined in its catalog read the publication as it was (the
    marts without the blocked deal), not the build they were defined from."""
    warehouse = shutil.copytree(duckdb_run.warehouse, tmp_path / "warehouse", symlinks=True)
    landing = shutil.copytree(extracts, tmp_path / "extracts")
    write_delivery(landing, FX_GAP_DELIVERY, _won_deal_in_a_currency_without_rates(landing))
    published = published_database(warehouse)
    before, parquet_before = _sha(published), _parquet_fingerprint(warehouse)

    run = _run(landing, warehouse, "--engine", "spark",
               env={**job_env, "SALES_KPI_WRITE_SITE": "false"})

    assert run.code == 1, run.explain()
    assert "check revenue_in_eur on marts/fct_deals" in run.stderr, run.explain()
    assert FX_GAP_DEAL in run.stderr
    assert "the published marts were left as they were" in run.stderr
    # the blocking result is Spark's: GX validated the Spark DataFrame of the check's query
    from pipelines.quality.gx_spark import SPARK_DATASOURCE_NAME

    stored = (warehouse / "quality" / "validations" / "revenue_in_eur").glob("*/*/*.json")
    blocked = [r for p in stored
               if (r := json.loads(p.read_text(encoding="utf-8")))["success"] is False]
    assert [r["meta"]["active_batch_definition"]["datasource_name"] for r in blocked] == [
        SPARK_DATASOURCE_NAME
    ]
    # and its failed expectation names the deal where the Data Docs page reads offending keys
    # from, as a DuckDB night's does (GX's Spark engine keeps them elsewhere under SUMMARY)
    assert FX_GAP_DEAL in [key["deal_id"] for result in blocked for e in result["results"]
                           if not e["success"]
                           for key in e["result"].get("unexpected_index_list", [])]
    assert _sha(published) == before
    assert _parquet_fingerprint(warehouse) == parquet_before
    # the Spark build itself was made (the check read it), in the warehouse's Spark folder
    assert (warehouse / "spark" / "build.duckdb").is_file()
    with duckdb.connect(str(warehouse / "spark" / "build.duckdb"), read_only=True) as build:
        assert build.execute("select count(*) from marts.fct_deals where deal_id = ?",
                             [FX_GAP_DEAL]).fetchone() == (1,)
    out = tmp_path / "catalog"
    out.mkdir()
    tables = read_catalog(warehouse / "spark", PUBLISHED_DATABASE, out)
    assert sorted(tables) == EVERY_PUBLISHED_TABLE
    assert [d for t in tables if (d := _catalog_differences(warehouse, out, tables, t))] == []


# --- (c) refused without Java, before anything runs ---------------------------------------


def test_engine_spark_without_java_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """PATH without java and no JAVA_HOME: exit 2, one line naming Java 17, nothing written."""
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PATH")}
    env["PATH"] = str(bin_dir)
    assert shutil.which("java", path=env["PATH"]) is None
    warehouse = tmp_path / "warehouse"
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--engine", "spark",
         "--extracts", str(tmp_path / "no-such-landing"), "--warehouse", str(warehouse)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False, timeout=120,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Java 17" in lines[0]
    assert "engine spark" in lines[0]
    assert result.stdout == ""
    assert not warehouse.exists()


# --- a Spark build stopped by SIGTERM ----------------------------------------------------


def test_a_spark_run_stopped_by_sigterm_leaves_no_spark_process_and_publishes_nothing(
    duckdb_run: JobRun, extracts: Path, job_env: dict[str, str], tmp_path: Path
) -> None:
    """SIGTERM while Spark's JVM runs the build: the run ends (128 + 15), Spark's JVM ends
    with it, and the published marts (here: the DuckDB run's) are byte for byte as they were."""
    import signal
    import time

    warehouse = shutil.copytree(duckdb_run.warehouse, tmp_path / "warehouse", symlinks=True)
    published = published_database(warehouse)
    before = _sha(published)
    run = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", "--engine", "spark", "--force",
         "--extracts", str(extracts), "--warehouse", str(warehouse)],
        cwd=PROJECT_ROOT, env={**os.environ, **job_env, "SALES_KPI_WRITE_SITE": "false"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 600
        jvms: list[psutil.Process] = []
        while not jvms and run.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
            # Spark's driver, not the `java -version` the run asks first (require_engine,
            # before its signal handlers: a SIGTERM then ends it as the signal's default does)
            jvms = [p for p in psutil.Process(run.pid).children(recursive=True)
                    if p.name() == "java" and _is_spark_jvm(p)]
        assert jvms, "Spark's JVM never started under the run"
        time.sleep(5)  # well inside the build
        run.send_signal(signal.SIGTERM)
        _stdout, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 128 + signal.SIGTERM, stderr
    assert "the published marts were left as they were" in stderr
    _gone, alive = psutil.wait_procs(jvms, timeout=60)
    assert alive == [], f"Spark JVMs left behind: {[p.pid for p in alive]}"
    assert _sha(published) == before


def _is_spark_jvm(process: psutil.Process) -> bool:
    """Whether a java process is a Spark JVM (its class path names Spark's jars), not a short
    `java -version`; False when it has ended meanwhile."""
    try:
        return any("spark" in part for part in process.cmdline()[1:])
    except psutil.Error:
        return False
