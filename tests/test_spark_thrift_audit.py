"""The audit through a Spark Thrift server runs in the server's Spark, with the outcomes the
DuckDB audit has on the same build (README, "Engines": the audit on Spark).

A Thrift server serves SQL only, so on `--engine spark` with SALES_KPI_SPARK_THRIFT_HOST the
GX suites are validated through GX's SQL data source over PyHive (pipelines/quality/gx_thrift.py):
each check's query, and GX's metric queries around it, run in the server. Here a DuckDB job
run over the session's generated sample (conftest `sample_extracts`, where a check warns: its
careless labellers) leaves a build and its audit's staged tables; every table of
the schemas the check queries read is handed to a Thrift server on 127.0.0.1 (Parquet,
registered in its catalog by the same names, where a Spark build on the server would have
written them), and the audit of that build is run both ways: through the server, and on
DuckDB. Every check must come out the same — passed or not, rows evaluated, failing
expectations, offending rows and the first of them — and the server must have run them (its
log counts the statements clients had it run; no Spark driver ran here). The connection URL
stays out of GX's files.

A whole job on the server (`sales-kpi run --engine spark` with SALES_KPI_SPARK_THRIFT_HOST)
builds every model there, a statement per round trip: minutes on this machine, where the build
on a server is test_spark_servers.py's (a part of the project) and the job on Spark
test_spark_job.py's.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from spark_servers import spark_server

from pipelines.job_runner import run_nightly_job
from pipelines.quality.checks import CHECKS, CheckOutcome
from pipelines.quality.gx_thrift import THRIFT_DATASOURCE_NAME, URL_VARIABLE, thrift_url
from pipelines.quality.run_checks import run_quality_checks
from pipelines.settings import Settings
from pipelines.sql_text import quote_ident, sql_literal

pytestmark = [pytest.mark.spark, pytest.mark.slow]

# The build's schemas the check queries read (expectations/queries); `audit` is the audit's
# own, staged by the job and registered by the audit itself.
BUILD_SCHEMAS = ("staging", "intermediate", "marts", "definitions")


@dataclass(frozen=True)
class Audits:
    on_duckdb: dict[str, CheckOutcome]
    on_thrift: dict[str, CheckOutcome]
    executions: int  # statements clients had the server run
    thrift_warehouse: Path
    server_url: str


def _hand_to_server(build: Path, folder: Path) -> list[str]:
    """Every table and view of BUILD_SCHEMAS in `build` as a Parquet folder under `folder`,
    and the Spark SQL registering each in a server's catalog under its own name."""
    statements = []
    with duckdb.connect(str(build), read_only=True) as con:
        relations = con.execute(
            "select schema_name, table_name from duckdb_tables() where schema_name in "
            f"({', '.join(sql_literal(s) for s in BUILD_SCHEMAS)}) union "
            "select schema_name, view_name from duckdb_views() where not internal and "
            f"schema_name in ({', '.join(sql_literal(s) for s in BUILD_SCHEMAS)})"
        ).fetchall()
        for schema in sorted({schema for schema, _ in relations}):
            statements.append(f"create database if not exists {schema}")
        for schema, name in sorted(relations):
            location = folder / schema / name
            location.mkdir(parents=True)
            con.execute(f"copy (select * from {quote_ident(schema)}.{quote_ident(name)}) "
                        f"to {sql_literal(str(location / 'part-0.parquet'))} (format parquet)")
            statements.append(f"create table {schema}.{name} using parquet "
                              f"location '{location}'")
    return statements


@pytest.fixture(scope="module")
def audits(sample_extracts: Path, tmp_path_factory: pytest.TempPathFactory) -> Audits:
    root = tmp_path_factory.mktemp("thrift_audit")
    duckdb_warehouse = root / "duckdb"
    on_duckdb = Settings(extracts_dir=sample_extracts, warehouse_dir=duckdb_warehouse,
                         write_site=False)
    outcome = run_nightly_job(on_duckdb, log_level="WARNING")
    assert outcome.success, outcome.failures
    duckdb_audit = {o.check.name: o for o in run_quality_checks(on_duckdb, "duckdb")}

    thrift_warehouse = root / "thrift"
    base = Settings.from_env({"SALES_KPI_ENGINE": "spark",
                              "SALES_KPI_WAREHOUSE_DIR": str(thrift_warehouse),
                              "SALES_KPI_SPARK_SHUFFLE_PARTITIONS": "2"})
    # the job's build database on Spark holds the audit's staged tables (pipelines/audit.py)
    base.build_database.parent.mkdir(parents=True)
    shutil.copyfile(on_duckdb.build_database, base.build_database)
    registering = _hand_to_server(on_duckdb.build_database, root / "handed")
    with spark_server("thrift", root / "server", base.spark_dir / "tables") as server:
        from pyhive import hive

        connection = hive.connect("127.0.0.1", port=server.port, username="sales_kpi")
        try:
            cursor = connection.cursor()
            for statement in registering:
                cursor.execute(statement)
        finally:
            connection.close()
        on_thrift = Settings.from_env({"SALES_KPI_ENGINE": "spark",
                                       "SALES_KPI_WAREHOUSE_DIR": str(thrift_warehouse),
                                       **server.env})
        before = server.executions()
        thrift_audit = {o.check.name: o for o in run_quality_checks(on_thrift, "thrift")}
        executions = server.executions() - before
    return Audits(duckdb_audit, thrift_audit, executions, thrift_warehouse,
                  f"127.0.0.1:{server.port}")


def test_through_a_thrift_server_every_check_is_validated_by_the_servers_spark(
    audits: Audits,
) -> None:
    assert set(audits.on_thrift) == {check.name for check in CHECKS}
    # a query per expectation batch and per offender lookup at least: far more than checks
    assert audits.executions >= len(CHECKS), audits.executions
    # no Spark driver ran in the job's process: no Derby metastore of its own
    assert not (audits.thrift_warehouse / "spark" / "metastore_db").exists()


@pytest.mark.parametrize("check", [check.name for check in CHECKS])
def test_a_check_through_a_thrift_server_has_the_outcome_it_has_on_duckdb(
    audits: Audits, check: str,
) -> None:
    on_duckdb, on_thrift = audits.on_duckdb[check], audits.on_thrift[check]
    assert (on_thrift.passed, on_thrift.evaluated_rows, on_thrift.failing_expectations,
            on_thrift.offending_rows, on_thrift.first_offenders) == (
        on_duckdb.passed, on_duckdb.evaluated_rows, on_duckdb.failing_expectations,
        on_duckdb.offending_rows, on_duckdb.first_offenders), (
        on_thrift.describe(), on_duckdb.describe())


def test_the_sample_fails_a_check_so_that_offenders_are_compared(audits: Audits) -> None:
    assert any(outcome.first_offenders for outcome in audits.on_duckdb.values())


def test_every_check_result_through_a_thrift_server_names_the_thrift_data_source(
    audits: Audits,
) -> None:
    """GX's stored results of the Thrift audit: one per check, from the `spark_thrift`
    source, every expectation evaluated (not validated elsewhere and merely counted)."""
    validations = audits.thrift_warehouse / "quality" / "validations"
    for check in CHECKS:
        stored = sorted((validations / check.name).glob("*/*/*.json"))
        assert len(stored) == 1, (check.name, stored)
        result = json.loads(stored[0].read_text(encoding="utf-8"))
        assert result["meta"]["active_batch_definition"]["datasource_name"] == (
            THRIFT_DATASOURCE_NAME), check.name
        assert result["statistics"]["evaluated_expectations"] == len(result["results"]) > 0


def test_the_thrift_url_carries_user_password_and_auth_as_pyhive_reads_them() -> None:
    """Whatever characters a user or password holds, PyHive's dialect reads back what the
    dbt target says, and `auth` reaches its `hive.connect`; no password, none sent."""
    from pyhive.sqlalchemy_hive import HiveDialect
    from sqlalchemy.engine import make_url

    target = {"host": "10.0.0.5", "port": 10001, "user": "etl@corp",
              "password": "p@ss:/%$\\${X}#", "auth": "LDAP"}
    _, read = HiveDialect().create_connect_args(make_url(thrift_url(target)))
    assert read == {"host": "10.0.0.5", "port": 10001, "username": "etl@corp",
                    "password": target["password"], "database": "default", "auth": "LDAP"}
    _, read = HiveDialect().create_connect_args(make_url(thrift_url(
        {"host": "h", "port": 10000, "user": "sales_kpi", "password": None, "auth": None})))
    assert read["password"] is None and "auth" not in read


def test_the_thrift_url_stays_out_of_gx_files(audits: Audits) -> None:
    quality = audits.thrift_warehouse / "quality"
    texts = [p.read_text(encoding="utf-8", errors="replace")
             for p in quality.rglob("*") if p.is_file() and p.suffix in (".yml", ".json", ".html")]
    assert any(f"${{{URL_VARIABLE}}}" in text for text in texts)
    assert not any(audits.server_url in text for text in texts)
