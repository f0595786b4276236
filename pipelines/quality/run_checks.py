"""Where the audit's GX suites run: on the engine of the build.

One entry for the asset and the tests. On DuckDB, GX reads the build database. On Spark in
process or through Spark Connect, GX's Spark data source validates Spark DataFrames of the same
queries, in a process of its own (pipelines/quality/spark_audit.py); through a Thrift server,
which serves SQL only, GX's SQL data source has the server's Spark run them
(pipelines/quality/gx_thrift.py).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable

from pipelines.quality.checks import (
    CHECKS,
    CheckOutcome,
    QualityCheck,
    expectation_parameters,
    staged_gx_project,
    validate_checks,
)
from pipelines.run_guard import stop_reason
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
        # needs only the checks' names. A run imports it ahead while dbt builds
        # (`import_audit_ahead`); a resumed run or a test, here.
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


# The module the audit of each kind of build imports (GX with it), for `import_audit_ahead`.
# A Spark session's audit runs in a process of its own, which imports GX there.
_AUDIT_MODULES = {"duckdb": "pipelines.quality.gx_duckdb", "thrift": "pipelines.quality.gx_thrift"}


def audit_module(settings: Settings) -> str | None:
    """The module `run_quality_checks` imports in this process for the run's engine."""
    if checks_run_on_spark(settings):
        return None
    return _AUDIT_MODULES["thrift" if checks_run_on_thrift(settings) else "duckdb"]


class AuditImport:
    """The audit's module (and Great Expectations) being imported on a thread of its own."""

    def __init__(self, module: str | None) -> None:
        self._thread: threading.Thread | None = None
        if module is not None:
            self._thread = threading.Thread(
                target=self._import, args=(module,), name="audit-import", daemon=True
            )
            self._thread.start()

    @staticmethod
    def _import(module: str) -> None:
        try:
            importlib.import_module(module)
        except Exception:  # the checks' own import raises it again, where it is needed
            return

    def wait(self) -> None:
        """Until the import has ended (at once when there is none), or the run is asked to
        stop: a stopped run has seconds to wind down and report the stop (run_guard), which an
        import of several seconds on a busy machine would take from it; nothing imports after
        a stop (seen with an import tracer), and the checks would wait for the module."""
        while self._thread is not None and self._thread.is_alive() and stop_reason() is None:
            self._thread.join(0.1)


def import_audit_ahead(settings: Settings) -> AuditImport:
    """Import the audit's GX module while dbt builds, off the run's path: ≈ 2–3 s of a
    single-threaded import the checks step would otherwise start with.

    Why a thread is safe here, when one during the load was not (a concurrent import of the
    same package, sqlalchemy by Dagster's event log, once handed a thread a partially
    initialised module): while the dbt step streams dbt's output, the run's process imports
    no module at all (seen with an import tracer over a whole run), so nothing else takes the
    import locks this thread takes. The caller waits for it before the step ends, so the import
    never overlaps another step's (a stop aside: see `AuditImport.wait`). An import that fails
    is left for the checks to raise."""
    return AuditImport(audit_module(settings))
