"""The dbt project as Dagster sees it, with a manifest that is never missing or stale.

dagster-dbt prepares the manifest only under `dagster dev`; the CLI, the tests and a
production deployment load these definitions too, so the manifest is (re)built here whenever
a model, seed, macro or the project file is newer than it.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from dagster_dbt import DbtProject

from pipelines.run_guard import guarded_executable
from pipelines.settings import DEFINITION_SETTINGS, PROJECT_ROOT, Settings

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
DBT_DATABASE_ENV = "SALES_KPI_DBT_DATABASE"
_SOURCE_FOLDERS = ("models", "seeds", "macros", "tests")


def dbt_executable() -> str:
    """The dbt of this environment (the CLI may run without the venv on PATH), started
    through a guard that dies with the run (pipelines/run_guard.py)."""
    candidate = Path(sys.executable).with_name("dbt")
    return guarded_executable(str(candidate) if candidate.exists() else "dbt")


def manifest_is_stale(project: DbtProject) -> bool:
    manifest = project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = [project.project_dir / "dbt_project.yml", project.project_dir / "profiles.yml"]
    for folder in _SOURCE_FOLDERS:
        sources.extend(p for p in (project.project_dir / folder).rglob("*") if p.is_file())
    return any(p.stat().st_mtime > built for p in sources if p.exists())


def prepared_dbt_project() -> DbtProject:
    """The project, its manifest freshly parsed when missing or older than its sources."""
    from dagster_dbt import DbtCliResource

    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    if manifest_is_stale(project):
        # Our own dbt (not whatever `dbt` is on PATH), like the job's resource.
        DbtCliResource(project_dir=project, dbt_executable=dbt_executable()).cli(
            ["parse", "--quiet"], target_path=project.target_path
        ).wait()
    return project


def dbt_environment_values(settings: Settings) -> dict[str, str]:
    """What the dbt profile reads from the environment for a run: the warehouse file and
    DuckDB's memory budget (on Spark: where and how Spark runs, pipelines/spark_build.py),
    where dbt logs, and no colour codes. One home for the build, the docs and the parse
    ahead (pipelines/dbt_parse_ahead.py), which must all parse with the same profile."""
    env = {
        DBT_DATABASE_ENV: str(settings.raw_database),
        "SALES_KPI_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit,
        # dbt's logs go under the warehouse, never into the (possibly read-only) project
        "DBT_LOG_PATH": str(settings.warehouse_dir / "logs" / "dbt"),
        # plain text: dbt's lines end up in the run's log file and the Dagster UI, where
        # colour codes are noise (the CLI's console draws its own)
        "DBT_USE_COLORS": "false",
    }
    if settings.engine == "spark":
        from pipelines.spark_build import spark_dbt_environment

        env.update(spark_dbt_environment(settings))
    return env


def dbt_vars(settings: Settings) -> dict[str, object]:
    """The run's settings as dbt vars: every threshold of the definitions (the vars
    dbt_project.yml declares with their defaults), as_of, and whether any differs."""
    values: dict[str, object] = {
        name: _var_value(getattr(settings, name)) for name in DEFINITION_SETTINGS
    }
    values["as_of"] = settings.as_of.isoformat() if settings.as_of else None
    values["definitions_custom"] = bool(settings.definition_overrides())
    return values


def _var_value(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value
