"""The audit on Spark: GX's Spark data source validates the check queries' rows as Spark
DataFrames, in a process of its own (README, "Engines").

Why a process of its own: an in-process Spark session is a JVM that lives as long as the
Python process that started it, and holds the build's Derby metastore while it lives. Here it
ends with the checks, and it is started through the run's guard, so a killed run leaves no
JVM behind (PR_SET_PDEATHSIG on the child; pyspark's JVM ends when its Python's pipe closes).

What it reads: the build's tables through the Spark catalog, by the names the check queries
use (`marts.dim_leads`, `staging.…`), in a session configured from the dbt profile as the
build's (pipelines/quality/gx_spark.py); and the audit's own tables (`audit.current_run`,
`audit.previous_run`, `audit.previous_dim_leads`: the last publication staged by
pipelines/audit.py in the build database), exported to Parquet under
`<warehouse>/spark/audit/tables` and registered as Spark tables of database `audit`. What it
writes: the validation results and Data Docs under `<warehouse>/quality` (as on DuckDB), the
outcomes as JSON for the job (`<warehouse>/spark/audit/outcomes.json`); its output goes, with
the run's secrets redacted, to `<warehouse>/spark/logs/checks.log`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from pipelines.audit import AUDIT_SCHEMA, AUDIT_TABLES
from pipelines.quality.checks import (
    CheckOutcome,
    QualityCheck,
    expectation_parameters,
    staged_gx_project,
    validate_checks,
)
from pipelines.run_guard import guarded_executable
from pipelines.settings import PROJECT_ROOT, Settings, printable, redact_secrets
from pipelines.sql_text import sql_literal

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult

LOG_FILE = "checks.log"
# how Python names the exception that ended a process: `pkg.module.SomeError: why`
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b[^:]*: ")


class SparkAuditError(RuntimeError):
    """The audit's Spark process failed (not a check: the checks could not be run)."""


def run_checks_in_spark_process(
    settings: Settings, run_name: str | None, checks: tuple[QualityCheck, ...]
) -> list[CheckOutcome]:
    """Validate `checks` on the Spark build of `settings` in a guarded child process; its
    outcomes, in the order of `checks`."""
    from pipelines.dbt_project import DBT_PROJECT_DIR, dbt_environment_values
    from pipelines.spark_build import spark_target

    work = settings.spark_dir / "audit"
    audit_dir = export_audit_tables(settings.build_database, work / "tables")
    outcome_file = work / "outcomes.json"
    outcome_file.unlink(missing_ok=True)
    request = {
        "profiles_dir": str(DBT_PROJECT_DIR),
        "target": spark_target(settings),
        "build_database": str(settings.build_database),
        "results_dir": str(settings.quality_dir),
        "audit_dir": str(audit_dir),
        "outcome_file": str(outcome_file),
        "run_name": run_name,
        "parameters": expectation_parameters(settings),
        "checks": [dataclasses.asdict(check) for check in checks],
    }
    log_path = settings.spark_dir / "logs" / LOG_FILE
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # the dbt build's environment: the profile's env vars, Spark's log configuration
    environment = {**os.environ, **dbt_environment_values(settings)}
    completed = subprocess.run(
        [guarded_executable(sys.executable), "-m", __name__],
        input=json.dumps(request).encode(), capture_output=True,
        env=environment, cwd=PROJECT_ROOT, check=False,
    )
    # its output, with the run's secrets (the Connect URL's token) redacted, into its log;
    # Spark's JVM logs into spark.log beside it (SPARK_CONF_DIR)
    output = redact_secrets(
        (completed.stdout + completed.stderr).decode("utf-8", errors="replace")
    )
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"--- checks of run {run_name or '(unnamed)'}: exit {completed.returncode}\n")
        log.write(output)
    if completed.returncode != 0 or not outcome_file.exists():
        raise SparkAuditError(
            f"the checks could not run on Spark (exit {completed.returncode}): "
            f"{printable(_last_error(output))} (full output: {log_path})"
        )
    by_name = {check.name: check for check in checks}
    return [
        CheckOutcome(**{**found, "check": by_name[found["check"]]})
        for found in json.loads(outcome_file.read_text(encoding="utf-8"))
    ]


def export_audit_tables(build_database: Path, folder: Path) -> Path:
    """The audit tables of the build database as Parquet, one folder per table (a Spark
    table's location is a folder); instants as UTC Parquet timestamps."""
    with duckdb.connect(str(build_database), read_only=True) as con:
        for table in AUDIT_TABLES:
            target = folder / table
            target.mkdir(parents=True, exist_ok=True)
            for stale in target.glob("*.parquet"):
                stale.unlink()
            con.execute(
                f"copy {AUDIT_SCHEMA}.{table} to {sql_literal(str(target / 'part-0.parquet'))} "
                "(format parquet)"
            )
    return folder


def audit_table_statements(folder: Path) -> list[str]:
    """Spark SQL registering the exported audit tables (`export_audit_tables`) as tables of
    database `audit`, replacing those of an earlier run."""
    statements = [f"create database if not exists {AUDIT_SCHEMA}"]
    for table in AUDIT_TABLES:
        statements += [
            f"drop table if exists {AUDIT_SCHEMA}.{table}",
            f"create table {AUDIT_SCHEMA}.{table} using parquet "
            f"location '{_spark_literal(folder / table)}'",
        ]
    return statements


def _spark_literal(path: Path) -> str:
    """A path inside a Spark SQL string literal (backslash escapes, as the dbt macros do)."""
    return str(path).replace("\\", "\\\\").replace("'", "\\'")


def _last_error(output: str) -> str:
    """The line that says why the child failed: the last exception line of its output (Python
    prints `module.SomeError: message`; pyspark's exceptions carry Spark's reason there),
    else its last line naming an error, else its last line."""
    lines = [line for line in output.splitlines() if line.strip()]
    raised = [line for line in lines if _EXCEPTION_LINE.match(line)]
    errors = [line for line in lines if "rror" in line]
    return (raised or errors or lines or ["no output"])[-1][:500]


def _main() -> None:
    """The child: validate the requested checks on Spark; write their outcomes as JSON."""
    from pipelines.quality.gx_duckdb import open_gx_context
    from pipelines.quality.gx_spark import (
        open_spark_session,
        spark_datasource,
        spark_session_parameters,
        validate_dataframe,
    )

    request: dict[str, Any] = json.loads(sys.stdin.read())
    checks = tuple(
        QualityCheck(**{**check, "keys": tuple(check["keys"])}) for check in request["checks"]
    )
    spark = open_spark_session(
        spark_session_parameters(request["profiles_dir"], request["target"])
    )
    try:
        for statement in audit_table_statements(Path(request["audit_dir"])):
            spark.sql(statement)
        results_dir = Path(request["results_dir"])
        context = open_gx_context(
            staged_gx_project(results_dir), Path(request["build_database"]), results_dir
        )
        spark_datasource(context)

        def validate(check: QualityCheck) -> ExpectationSuiteValidationResult:
            dataframe = spark.sql(check.sql)
            try:
                return validate_dataframe(
                    context, check.name, dataframe,
                    expectation_parameters=request["parameters"],
                    run_name=request["run_name"],
                    # GX's Spark engine collects *every* offending key under COMPLETE (its SQL
                    # engine stops at partial_unexpected_count): SUMMARY keeps that bound
                    result_format={**check.result_format, "result_format": "SUMMARY"},
                )
            finally:
                dataframe.unpersist()  # GX caches the DataFrame it validates

        outcomes = validate_checks(
            context, checks, results_dir, validate=validate,
            rows=lambda query: [tuple(row) for row in spark.sql(query).collect()],
        )
    finally:
        with suppress(Exception):  # a failure to stop must not hide the checks' own error
            spark.stop()
    Path(request["outcome_file"]).write_text(json.dumps([
        {**dataclasses.asdict(outcome), "check": outcome.check.name} for outcome in outcomes
    ]), encoding="utf-8")


if __name__ == "__main__":
    _main()
