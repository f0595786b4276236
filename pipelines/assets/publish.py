"""Publishing: after a green dbt build and the blocking checks, the marts are copied to where
readers find them (write–audit–publish; see pipelines/publish.py)."""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset
from dagster_duckdb import DuckDBResource

from pipelines.assets.dbt import sales_kpi_dbt_models
from pipelines.assets.owners import WITH_SALES_MANAGEMENT
from pipelines.assets.quality import start_resumed_step
from pipelines.assets.warehouse_lock import hold_warehouse
from pipelines.no_op import RESUME_JOB, mark_published
from pipelines.publish import PUBLISHED_TABLES, RunRecord, publish_marts
from pipelines.resources import PipelineSettings, build_connection, warehouse_connection

MART_KEYS: list[AssetKey] = sorted(
    key
    for key, group in sales_kpi_dbt_models.group_names_by_key.items()
    if group == "marts" and key.path[-1] in PUBLISHED_TABLES
)


@asset(
    key=["published_marts"],
    group_name="publish",
    owners=list(WITH_SALES_MANAGEMENT),
    deps=MART_KEYS,
    kinds={"duckdb", "parquet"},
    description=(
        "The marts as dashboards and auditors read them: `<warehouse>/marts.duckdb` (tables "
        "by bare name, swapped in atomically), `<warehouse>/parquet/<table>.parquet`, and the "
        "history of every published run (`runs`, `dim_leads_history`, `kpi_scorecard_history`)."
    ),
)
def published_marts(
    context: AssetExecutionContext, warehouse: DuckDBResource, pipeline: PipelineSettings
) -> MaterializeResult:
    settings = pipeline.settings()
    if context.run.job_name == RESUME_JOB:
        start_resumed_step(context.log.info, settings, same_inputs=False)
    else:
        hold_warehouse(settings.warehouse_dir)  # the publication materialized alone, too
    with build_connection(warehouse, settings) as con:
        as_of = con.execute("select as_of from intermediate.int_as_of").fetchone()[0]  # type: ignore[index]
        version = con.execute(
            "select any_value(definitions_version) from marts.dim_leads"
        ).fetchone()[0]  # type: ignore[index]
    with warehouse_connection(warehouse) as con:
        files = con.execute(
            "select count(*) from raw.load_manifest where status = 'loaded'"
        ).fetchone()[0]  # type: ignore[index]
    run = RunRecord(
        run_id=context.run_id,
        as_of=as_of,
        definitions_version=version or "unknown",
        settings=settings.run_settings(),
        source_files=int(files),
    )
    context.log.info(
        f"publishing run {context.run_id[:8]}: a new marts file is built beside "
        f"{settings.warehouse_dir / 'marts.duckdb'} and swapped in when complete"
    )
    published = publish_marts(
        settings.build_database, settings.warehouse_dir, run, settings.duckdb_memory_limit,
        history_runs_kept=settings.history_runs_kept,
    )
    mark_published(settings, context.run.run_id)
    context.log.info(
        f"published {len(published.tables)} tables to {published.database} ("
        + ("the marts as copied during the checks" if published.written_ahead
           else "the marts copied here")
        + ("; the run's history appended to the published file's" if published.history_appended
           else "; the history carried over row by row") + ")"
    )
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(published.database)),
            "tables": MetadataValue.json(published.tables),
            "definitions_version": run.definitions_version,
        }
    )
