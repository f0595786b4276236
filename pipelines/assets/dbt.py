"""dbt models as Dagster assets (downstream of the raw assets through dbt sources); every
dbt test becomes an asset check on the model it tests."""

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dagster import AssetExecutionContext, Failure
from dagster_dbt import (
    DagsterDbtCliRuntimeError,
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from pipelines.dbt_project import DBT_DATABASE_ENV, dbt_vars, prepared_dbt_project
from pipelines.resources import PipelineSettings
from pipelines.settings import Settings

dbt_project = prepared_dbt_project()


class LayeredTranslator(DagsterDbtTranslator):
    """Groups assets by dbt layer (staging, intermediate, marts; seeds as `definitions`)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "definitions"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"


@contextmanager
def _dbt_env(values: dict[str, str]) -> Iterator[None]:
    """Environment variables the dbt profile reads, set for the duration of one invocation."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def dbt_environment(settings: Settings) -> Iterator[None]:
    """The environment the dbt profile reads: the run's warehouse file and memory budget."""
    env = {
        DBT_DATABASE_ENV: str(settings.raw_database),
        "SALES_KPI_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit,
    }
    with _dbt_env(env):
        yield


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=LayeredTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    ),
)
def sales_kpi_dbt_models(
    context: AssetExecutionContext, dbt: DbtCliResource, pipeline: PipelineSettings
) -> Iterator[Any]:
    """`dbt build` with the run's settings as vars, against the run's warehouse file.

    Unit tests pin the rules at the definitions' defaults with hand-made rows; they belong to
    the project's test suite (tests/test_dbt_unit_tests.py), not to a nightly run whose
    settings may differ from the defaults."""
    settings = pipeline.settings()
    with dbt_environment(settings):
        args = ["build", "--exclude", "test_type:unit", "--vars", json.dumps(dbt_vars(settings))]
        try:
            yield from dbt.cli(args, context=context).stream()
        except DagsterDbtCliRuntimeError as exc:
            # A failing model or test fails the same way on a retry: report, don't retry.
            raise Failure(description=f"dbt build failed: {exc}", allow_retries=False) from exc
