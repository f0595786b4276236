"""Great Expectations (GX Core 1.x) suites validated on Spark DataFrames, through GX's own
Spark data source, in a Spark session configured as the dbt build's.

The session is the one dbt-spark's `session` method opens (Hive support, then every setting
of the target's `server_side_parameters`), with the settings rendered from the dbt profile
itself (`dbt_project/profiles.yml`): the session timezone, the Parquet timestamp type, the
warehouse and metastore under `<warehouse>/spark`, or the Spark Connect URL — one home for
how Spark is reached, whether dbt or GX is asking. Over Spark Connect the DataFrames are
Connect DataFrames: GX 1.24 validates those as well.

GX validates a DataFrame through a data asset of type `dataframe` and a batch definition of
the whole DataFrame, handed over at run time; the results are stored (Data Docs) and must
show that every expectation was evaluated (`assert_evaluated`), as on DuckDB.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from great_expectations.core import ExpectationSuiteValidationResult
from great_expectations.data_context import AbstractDataContext
from great_expectations.datasource.fluent import SparkDatasource

from pipelines.quality.gx_duckdb import BATCH_DEFINITION_NAME, run_validation

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SPARK_DATASOURCE_NAME = "spark_build"
DBT_PROFILE_NAME = "sales_kpi"


def dbt_target(
    profiles_dir: str, target: str, environment: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """dbt target `target` of the project's profile, rendered by dbt with `environment`
    (default: this process's), as `dbt build` renders it: how Spark is reached, from one
    home. dbt's `env_var()` reads the environment it is handed, not `os.environ`, which is
    left as it is."""
    from dbt.config.profile import Profile, read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    set_invocation_context(dict(os.environ if environment is None else environment))
    raw = read_profile(profiles_dir)
    _name, rendered = Profile.render_profile(
        raw[DBT_PROFILE_NAME], DBT_PROFILE_NAME, target, ProfileRenderer({})
    )
    return dict(rendered)


def session_parameters(rendered: Mapping[str, Any]) -> dict[str, str]:
    """The Spark settings of a rendered dbt target (its `server_side_parameters`), as text."""
    return {str(k): str(v) for k, v in rendered.get("server_side_parameters", {}).items()}


def spark_session_parameters(profiles_dir: str, target: str) -> dict[str, str]:
    """The Spark settings of dbt target `target`, as `dbt build` renders them."""
    return session_parameters(dbt_target(profiles_dir, target))


def open_spark_session(parameters: Mapping[str, str]) -> SparkSession:
    """A Spark session built as dbt-spark's `session` method builds its own: Hive support,
    then the target's settings (a `spark.remote` among them makes it a Connect session)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.enableHiveSupport()
    for key, value in parameters.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def spark_datasource(context: AbstractDataContext) -> SparkDatasource:
    """The context's Spark data source (added on first use; it uses the active session)."""
    return context.data_sources.add_or_update_spark(name=SPARK_DATASOURCE_NAME)


def validate_dataframe(
    context: AbstractDataContext,
    suite_name: str,
    dataframe: DataFrame,
    *,
    name: str | None = None,
    result_format: str | Mapping[str, Any] = "SUMMARY",
    require_evaluated: bool = True,
    expectation_parameters: Mapping[str, Any] | None = None,
    run_name: str | None = None,
) -> ExpectationSuiteValidationResult:
    """Validate the rows of `dataframe` against suite `suite_name` (the Spark twin of
    `gx_duckdb.validate_query`): a dataframe asset and validation definition called `name`
    (default: the suite's name), the result stored for Data Docs and checked by
    `assert_evaluated` unless `require_evaluated` is false."""
    name = name or suite_name
    datasource = context.data_sources.get(SPARK_DATASOURCE_NAME)
    if not isinstance(datasource, SparkDatasource):
        raise TypeError(f"data source {SPARK_DATASOURCE_NAME!r} is not a SparkDatasource")
    if name in datasource.get_asset_names():
        asset = datasource.get_asset(name)
    else:
        asset = datasource.add_dataframe_asset(name=name)
    try:
        batch_definition = asset.get_batch_definition(BATCH_DEFINITION_NAME)
    except KeyError:
        batch_definition = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION_NAME)
    result = run_validation(
        context, name, suite_name, batch_definition, batch_parameters={"dataframe": dataframe},
        result_format=result_format, require_evaluated=require_evaluated,
        expectation_parameters=expectation_parameters, run_name=run_name,
    )
    return with_offending_keys(context, result)


def with_offending_keys(
    context: AbstractDataContext, result: ExpectationSuiteValidationResult
) -> ExpectationSuiteValidationResult:
    """The stored result again, each failed expectation's first offending keys under the name
    GX's Data Docs read them from. The audit on Spark validates with SUMMARY (GX's Spark engine
    would collect every offending key under COMPLETE), which keeps the first
    `partial_unexpected_count` keys as `partial_unexpected_index_list`; the page shows keys only
    from `unexpected_index_list` — which a DuckDB night's COMPLETE fills with the same first
    keys (GX's SQL engine fetches no more). Without this a Spark night's pages showed counts
    and no contact, deal or KPI."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    copied = False
    for expectation in result.results:
        found = expectation.result
        if found and found.get("partial_unexpected_index_list") and (
                "unexpected_index_list" not in found):
            found["unexpected_index_list"] = found["partial_unexpected_index_list"]
            copied = True
    if copied:
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
            run_id=result.meta["run_id"],
            batch_identifier=result.batch_id,  # the validator's active batch, as GX keyed it
        )
        context.validation_results_store.set(key, result)
    return result
