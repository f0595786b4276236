"""Where the audit's GX suites run: on the engine of the build.

One entry for the asset and the tests. On DuckDB, GX reads the build database. On Spark in
process or through Spark Connect, GX's Spark data source validates Spark DataFrames of the same
queries, in a process of its own (pipelines/quality/spark_audit.py); through a Thrift server,
which serves SQL only, GX's SQL data source has the server's Spark run them
(pipelines/quality/gx_thrift.py).
"""

from __future__ import annotations

from collections.abc import Callable

from pipelines.quality.checks import (
    CHECKS,
    CheckOutcome,
    QualityCheck,
    expectation_parameters,
    staged_gx_project,
    validate_checks,
)
from pipelines.settings import Settings


def run_quality_checks(
    settings: Settings,
    run_name: str | None = None,
    checks: tuple[QualityCheck, ...] = CHECKS,
    log: Callable[[str], None] = lambda _: None,
) -> list[CheckOutcome]:
    """Validate every check against the build on its engine; the Data Docs are brought up
    to date afterwards, and each outcome is logged."""
    if checks_run_on_spark(settings):
        from pipelines.quality.spark_audit import run_checks_in_spark_process

        outcomes = run_checks_in_spark_process(settings, run_name, checks)
    elif checks_run_on_thrift(settings):
        from pipelines.quality.gx_thrift import run_checks_on_thrift

        outcomes = run_checks_on_thrift(settings, run_name, checks)
    else:
        # GX is imported here, not with the definitions: its import is the largest of the
        # job's (≈3 s of CPU; more with pyspark installed, which GX then imports too), and
        # loading the definitions (`dagster dev`, the schedule's and sensors' ticks, the CLI)
        # needs only the checks' names. Not imported ahead on a thread during the load: a
        # concurrent import of the same package (sqlalchemy, by Dagster's event log) can hand
        # one thread a partially initialised module — seen in a test run, it failed the load.
        from pipelines.quality.gx_duckdb import open_gx_context, query_rows, validate_query

        results_dir = settings.quality_dir
        context = open_gx_context(
            staged_gx_project(results_dir), settings.build_database, results_dir
        )
        parameters = expectation_parameters(settings)
        outcomes = validate_checks(
            context, checks, results_dir,
            validate=lambda check: validate_query(
                context, check.name, check.sql, expectation_parameters=parameters,
                run_name=run_name, result_format=check.result_format,
            ),
            rows=lambda query: query_rows(context, query),
        )
    for outcome in outcomes:
        log(outcome.describe())
    return outcomes


def checks_run_on_spark(settings: Settings) -> bool:
    """Whether GX validates Spark DataFrames: the Spark engine with a session of our own
    (in process, or a Spark Connect client)."""
    return settings.engine == "spark" and settings.spark_connection != "thrift"


def checks_run_on_thrift(settings: Settings) -> bool:
    """Whether GX validates SQL run by a Spark Thrift server (the build's server)."""
    return settings.engine == "spark" and settings.spark_connection == "thrift"
