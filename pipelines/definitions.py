"""The one `Definitions` of the project: `dagster dev` (via workspace.yaml), the CLI, the
schedule and the sensor all run the `nightly` job defined here.

Nothing expensive happens at import: the assets (whose dbt manifest may need a `dbt parse`)
are imported and built only when the definitions are asked for — by Dagster through the
lazy `defs` below, by the CLI through `build_definitions`.
"""

from __future__ import annotations

from dagster import (
    MAX_RUNTIME_SECONDS_TAG,
    AssetSelection,
    Definitions,
    define_asset_job,
    definitions,
    in_process_executor,
)

from pipelines.no_op import RESUME_JOB
from pipelines.operations import NIGHTLY_JOB
from pipelines.settings import Settings

__all__ = ["NIGHTLY_JOB", "RESUME_JOB", "build_definitions", "defs"]


def build_definitions(settings: Settings | None = None) -> Definitions:
    """Definitions bound to `settings` (default: from the environment)."""
    from pipelines.assets.dbt import dbt_project, sales_kpi_dbt_models
    from pipelines.assets.publish import published_marts
    from pipelines.assets.quality import quality_checks
    from pipelines.assets.raw import raw_assets
    from pipelines.assets.site import kpi_site
    from pipelines.console_log import terminal_safe_console_logger
    from pipelines.dbt_project import dbt_executable
    from pipelines.operations import (
        alert_on_failure,
        freshness_checks,
        freshness_sensor,
        new_delivery_sensor,
        nightly_schedule,
        retry_policy,
    )
    from pipelines.resources import DbtBuildResource, PipelineSettings, warehouse_resource

    settings = settings or Settings.from_env()
    # Both jobs run the same way: one process (DuckDB allows a single writer per database
    # file), the failure alert, the retries for transient failures
    run_as_nightly = {"executor_def": in_process_executor, "hooks": {alert_on_failure},
                      "op_retry_policy": retry_policy(settings), "tags": run_time_limit(settings)}
    nightly = define_asset_job(
        NIGHTLY_JOB,
        selection=AssetSelection.all(),
        description="Load new CRM extracts, rebuild, audit and publish the KPI marts.",
        **run_as_nightly,
    )
    # The nightly job's last steps alone, on the complete build a stopped run left behind
    # (pipelines/no_op.py): the same checks gate the same publication
    resume = define_asset_job(
        RESUME_JOB,
        selection=AssetSelection.assets(published_marts, kpi_site)
        | AssetSelection.checks(quality_checks),
        description="Audit and publish the complete build a stopped nightly run left behind "
        "(its load and dbt build are not repeated).",
        **run_as_nightly,
    )
    freshness = freshness_checks(settings)
    # configured at launch: a run's config may replace the settings, and the dbt resource reads
    # the replaced ones (the warehouse resource is bound here, to these settings' file)
    pipeline = PipelineSettings.at_launch(settings)
    return Definitions(
        assets=[*raw_assets, sales_kpi_dbt_models, published_marts, kpi_site],
        # a materialization in the UI runs as the jobs do: one process (one writer per DuckDB
        # file; the warehouse's lock held by the run's process, pipelines/assets/warehouse_lock.py)
        executor=in_process_executor,
        asset_checks=[quality_checks, *freshness],
        jobs=[nightly, resume],
        schedules=[nightly_schedule(settings)],
        sensors=[new_delivery_sensor(settings), freshness_sensor(freshness, settings)],
        # the default `console` logger, with data escaped for terminals
        loggers={"console": terminal_safe_console_logger},
        resources={
            "warehouse": warehouse_resource(settings),
            "dbt": DbtBuildResource(
                project_dir=dbt_project, dbt_executable=dbt_executable(), pipeline=pipeline,
            ),
            "pipeline": pipeline,
        },
    )


def run_time_limit(settings: Settings) -> dict[str, str]:
    """The jobs' time limit for the runs the daemon and the UI launch: Dagster's run monitoring
    (enabled in the instance's dagster.yaml) stops a run past its `dagster/max_runtime` as
    `sales-kpi run` stops itself past `max_run_minutes` (pipelines/run_guard.py)."""
    seconds = settings.run_time_limit_seconds
    return {} if seconds is None else {MAX_RUNTIME_SECONDS_TAG: str(max(1, round(seconds)))}


@definitions
def defs() -> Definitions:
    """What `dagster dev` and the daemon load (workspace.yaml), built when they ask."""
    return build_definitions()
