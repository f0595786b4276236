"""The audit through a Spark Thrift server: the GX suites validated by the server's Spark.

A Thrift server (HiveServer2) serves SQL, not DataFrames, so GX's Spark data source has nothing
to validate there; GX's SQL data source has: through PyHive's SQLAlchemy dialect (`hive://`,
the client dbt-spark's `thrift` method uses too) each check's query, and every metric query
GX wraps around it, runs in the server's Spark over the build's tables in the server's
catalog — the tables the build has just written there, by the names the check queries use
(`marts.dim_leads`, `staging.…`). The rules, severities, query files and result formats are
those of the other engines (pipelines/quality/checks.py); the results and Data Docs go under
`<warehouse>/quality` as on DuckDB.

The audit's own tables (`audit.current_run`, `audit.previous_run`, `audit.previous_dim_leads`:
the last publication, staged by pipelines/audit.py in the job's build database) are exported
to Parquet under `<warehouse>/spark/audit/tables` and registered as tables of database
`audit` in the server's catalog, as the in-process audit registers them in its session: the
server reads the job's folder, as it reads the raw layer the job exports for its build.

How the server is reached is the dbt target's (`spark_thrift` in `dbt_project/profiles.yml`,
rendered by dbt: host, port, user, auth, password, and the session settings — timezone UTC
among them — sent with every session). The URL, which carries the password under LDAP or
CUSTOM auth, reaches GX only in memory: its config names `${SALES_KPI_GX_THRIFT_URL}`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from great_expectations.core import ExpectationSuiteValidationResult
from great_expectations.datasource.fluent.sql_datasource import SQLDatasource

from pipelines.quality.checks import (
    CheckOutcome,
    QualityCheck,
    expectation_parameters,
    staged_gx_project,
    validate_checks,
)
from pipelines.quality.gx_duckdb import open_gx_context, query_batch_definition, run_validation
from pipelines.quality.gx_spark import dbt_target, session_parameters
from pipelines.quality.spark_audit import audit_table_statements, export_audit_tables
from pipelines.settings import Settings

THRIFT_DATASOURCE_NAME = "spark_thrift"
URL_VARIABLE = "SALES_KPI_GX_THRIFT_URL"


def thrift_url(target: Mapping[str, Any]) -> str:
    """The SQLAlchemy URL of the server a rendered `thrift` dbt target names (PyHive's
    dialect; its `auth` passed on as PyHive's)."""
    auth = target.get("auth")
    return sa.engine.URL.create(
        "hive", username=target.get("user"), password=target.get("password") or None,
        host=str(target["host"]), port=int(target["port"]), database="default",
        query={"auth": str(auth)} if auth else {},
    ).render_as_string(hide_password=False)


def run_checks_on_thrift(
    settings: Settings, run_name: str | None, checks: tuple[QualityCheck, ...]
) -> list[CheckOutcome]:
    """Validate `checks` in the Thrift server the settings name, over the build it holds;
    their outcomes, in the order of `checks`."""
    from pipelines.dbt_project import DBT_PROJECT_DIR, dbt_environment_values
    from pipelines.spark_build import spark_target

    # rendered with the build's environment handed to dbt, not set in this process's (a
    # subprocess another thread starts meanwhile would inherit the password)
    target = dbt_target(str(DBT_PROJECT_DIR), spark_target(settings),
                        {**os.environ, **dbt_environment_values(settings)})
    # absolute: the server resolves a table's location in its own folder
    audit_dir = export_audit_tables(
        settings.build_database, (settings.spark_dir / "audit" / "tables").resolve()
    )
    results_dir = settings.quality_dir
    context = open_gx_context(
        staged_gx_project(results_dir), settings.build_database, results_dir,
        variables={URL_VARIABLE: thrift_url(target)},
    )
    datasource = context.data_sources.add_or_update_sql(
        name=THRIFT_DATASOURCE_NAME, connection_string=f"${{{URL_VARIABLE}}}",
        create_temp_table=False,
        kwargs={"connect_args": {"configuration": session_parameters(target)}},
    )
    # GX keeps one execution engine per data source (and, from its connection test, an engine
    # of the data source's own): both are disposed of, their Thrift sessions closed, at the end
    engine = datasource.get_execution_engine()
    try:
        with engine.get_connection() as connection:
            for statement in audit_table_statements(audit_dir):
                connection.execute(sa.text(statement))
        parameters = expectation_parameters(settings)

        def validate(check: QualityCheck) -> ExpectationSuiteValidationResult:
            return _validate(datasource, context, check, parameters, run_name)

        def rows(query: str) -> list[tuple[Any, ...]]:
            with engine.get_connection() as connection:
                return [tuple(row) for row in connection.execute(sa.text(query)).fetchall()]

        return validate_checks(context, checks, results_dir, validate=validate, rows=rows)
    finally:
        engine.engine.dispose()
        datasource.get_engine().dispose()


def _validate(
    datasource: SQLDatasource, context: Any, check: QualityCheck,
    parameters: Mapping[str, Any], run_name: str | None,
) -> ExpectationSuiteValidationResult:
    """The check's suite against its query's rows, as a query asset of the Thrift source."""
    return run_validation(
        context, check.name, check.name,
        query_batch_definition(datasource, check.name, check.sql),
        result_format=check.result_format, expectation_parameters=parameters, run_name=run_name,
    )
