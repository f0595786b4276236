"""Publishing: after a green dbt build, the marts are copied to where readers find them."""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from pipelines.assets.dbt import sales_kpi_dbt_models
from pipelines.publish import publish_marts
from pipelines.resources import PipelineSettings

MART_KEYS: list[AssetKey] = sorted(
    key for key, group in sales_kpi_dbt_models.group_names_by_key.items() if group == "marts"
)


@asset(
    key=["published_marts"],
    group_name="publish",
    deps=MART_KEYS,
    kinds={"duckdb", "parquet"},
    description=(
        "The marts as dashboards and auditors read them: `<warehouse>/marts.duckdb` (schema "
        "`marts`, swapped in atomically) and `<warehouse>/parquet/<table>.parquet`."
    ),
)
def published_marts(
    context: AssetExecutionContext, pipeline: PipelineSettings
) -> MaterializeResult:
    settings = pipeline.settings()
    published = publish_marts(
        settings.raw_database, settings.warehouse_dir, settings.duckdb_memory_limit
    )
    context.log.info(f"published {len(published.tables)} marts to {published.database}")
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(published.database)),
            "tables": MetadataValue.json(published.tables),
        }
    )
