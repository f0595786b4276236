"""The audit step: GX suites run as Dagster asset checks on the marts they guard.

Blocking checks (severity ERROR) keep `published_marts` from running, so a failed check leaves
the published file exactly as it was; warnings (WARN) are shown and the marts still publish.
While the checks run, the publication's copy of the marts is written beside them
(pipelines/publication_ahead.py) and discarded when a blocking check fails.
"""

from collections.abc import Callable, Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    Failure,
    MetadataValue,
    multi_asset_check,
)
from dagster_duckdb import DuckDBResource

from pipelines.assets.warehouse_lock import hold_warehouse
from pipelines.audit import stage_previous_publication
from pipelines.no_op import RESUME_JOB, NothingToResume, require_complete_build
from pipelines.publication_ahead import start_publication_ahead
from pipelines.quality.checks import CHECKS, data_docs_index
from pipelines.quality.run_checks import run_quality_checks
from pipelines.resources import PipelineSettings, build_connection
from pipelines.settings import Settings

MARTS_PREFIX = "marts"


def mart_key(table: str) -> AssetKey:
    return AssetKey([MARTS_PREFIX, table])


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            check.name,
            asset=mart_key(check.asset),
            blocking=check.blocking,
            description=f"{check.description} ({'blocking' if check.blocking else 'warning'})",
        )
        for check in CHECKS
    ],
    name="quality_checks",
    description=(
        "Great Expectations suites (expectations/suites) validated on the build: as SQL on "
        "DuckDB; on Spark as Spark DataFrames through GX's Spark data source, or as SQL the "
        "Thrift server runs."
    ),
)
def quality_checks(
    context: AssetCheckExecutionContext, warehouse: DuckDBResource, pipeline: PipelineSettings
) -> Iterator[AssetCheckResult]:
    settings = pipeline.settings()
    if context.run.job_name == RESUME_JOB:
        start_resumed_step(context.log.info, settings, same_inputs=True)
    with build_connection(warehouse, settings) as con:
        previous = stage_previous_publication(
            con, settings.warehouse_dir, context.run.run_id, settings.run_settings()
        )
    context.log.info(
        "comparing with published run "
        + (previous["run_id"] if previous else "none (first publication)")
    )
    # the publication's copy is written while the checks read the same build
    ahead = start_publication_ahead(settings, context.run.run_id)
    try:
        outcomes = run_quality_checks(
            settings, run_name=context.run.run_id, log=context.log.info
        )
    except BaseException:
        ahead.discard()
        raise
    blocked = any(outcome.check.blocking and not outcome.passed for outcome in outcomes)
    ahead.finish(keep=not blocked, log=context.log.info)
    docs = data_docs_index(settings)
    for outcome in outcomes:
        check = outcome.check
        yield AssetCheckResult(
            check_name=check.name,
            asset_key=mart_key(check.asset),
            passed=outcome.passed,
            severity=AssetCheckSeverity.ERROR if check.blocking else AssetCheckSeverity.WARN,
            description=outcome.describe(),
            metadata={
                "rows_evaluated": outcome.evaluated_rows,
                "offending_rows": outcome.offending_rows,
                "first_offending_keys": MetadataValue.json(outcome.first_offenders),
                "failing_expectations": MetadataValue.json(outcome.failing_expectations),
                "seconds": round(outcome.seconds, 3),
                "data_docs": MetadataValue.path(str(docs)),
            },
        )


def start_resumed_step(
    log: Callable[[str], None], settings: Settings, *, same_inputs: bool
) -> None:
    """A step of a resumed run (pipelines/no_op.py) — its checks, and its publication, which
    `dagster dev` may re-execute alone: it holds the warehouse's lock, as the load does for a
    whole run, and finds the complete build it resumes from (`require_complete_build`), or
    fails saying there is none."""
    hold_warehouse(settings.warehouse_dir)
    try:
        built = require_complete_build(settings, same_inputs=same_inputs)
    except NothingToResume as exc:
        raise Failure(description=str(exc), allow_retries=False) from exc
    log(f"resuming from the complete build of run {built[:8]}")
