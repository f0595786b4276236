"""Dagster resources: where the pipeline reads and writes, and with which settings."""


import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import duckdb
from dagster import ConfigurableResource, InitResourceContext, ResourceDependency
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource
from packaging import version
from pydantic import PrivateAttr

from pipelines.dbt_ahead_process import DbtAhead, start_dbt_ahead
from pipelines.dbt_parse_ahead import ParseAhead, start_parse_ahead
from pipelines.settings import Settings


class PipelineSettings(ConfigurableResource):
    """Every setting of the run (pipelines/settings.py), carried as JSON so that the CLI, the
    tests, the schedule and `dagster dev` hand the job exactly the same thing."""

    settings_json: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "PipelineSettings":
        return cls(settings_json=json.dumps(settings.as_dict(), sort_keys=True))

    @classmethod
    def at_launch(cls, settings: Settings) -> Any:
        """`settings` as the default of a resource configured at launch: a run's config
        (the launchpad's, a schedule's) may replace them, and a resource that depends on this
        one (the dbt resource's parse ahead) then gets the replaced settings too.
        (Dagster's partial resource: a fully configured one would be handed to the dependent
        resources as it was built, whatever the run's config says.)"""
        return cls.configure_at_launch(settings_json=cls.from_settings(settings).settings_json)

    def settings(self) -> Settings:
        return Settings.from_text(json.loads(self.settings_json))


def warehouse_resource(settings: Settings) -> DuckDBResource:
    """The raw/build DuckDB file (DuckDB allows one writer: the job runs in one process)."""
    settings.warehouse_dir.mkdir(parents=True, exist_ok=True)
    return DuckDBResource(
        database=str(settings.raw_database),
        connection_config={"memory_limit": settings.duckdb_memory_limit},
    )


@contextmanager
def warehouse_connection(resource: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection whose session prints instants in UTC (ICU loads after connecting), and
    draws no progress bar: DuckDB writes it straight onto the process's stdout, past any
    console or log (the CLI shows its own progress line on a terminal)."""
    with resource.get_connection() as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute("set enable_progress_bar = false")
        yield con


@contextmanager
def build_connection(
    resource: DuckDBResource, settings: Settings
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the build the checks and the publisher read (Settings.build_database):
    the warehouse file on DuckDB, the file of views over Spark's tables on Spark; set up as
    `warehouse_connection` sets its own."""
    if settings.build_database == settings.raw_database:
        with warehouse_connection(resource) as con:
            yield con
        return
    with duckdb.connect(
        str(settings.build_database), config={"memory_limit": settings.duckdb_memory_limit}
    ) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute("set enable_progress_bar = false")
        yield con


class DbtBuildResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource without its two in-process preliminaries, which cost
    seconds of every run and serve nothing the job uses: `dbt --version` in a subprocess
    (the version is the installed dbt-core's) and a dbt adapter in this process (used only
    by dagster-dbt's row-count and column-metadata fetches; the job counts rows itself,
    pipelines/assets/dbt.py)."""

    @cached_property
    def _cli_version(self) -> version.Version:
        from dbt.version import __version__

        return version.parse(__version__)

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None

    # The run's settings (the `pipeline` resource itself, as the run configured it), for
    # dbt's parse of a fresh warehouse ahead of the build (pipelines/dbt_parse_ahead.py);
    # none: no parse ahead.
    pipeline: ResourceDependency[PipelineSettings | None] = None
    _parse_ahead: ParseAhead | None = PrivateAttr(default=None)
    _dbt_ahead: DbtAhead | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """With the in-process executor, at the start of the run: the parse and the build's
        dbt's imports (pipelines/dbt_ahead.py) run beside the load."""
        if self.pipeline is not None:
            settings = self.pipeline.settings()
            self._parse_ahead = start_parse_ahead(settings, self.dbt_executable)
            self._dbt_ahead = start_dbt_ahead(settings)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._parse_ahead is not None:
            self._parse_ahead.stop()
        if self._dbt_ahead is not None:
            self._dbt_ahead.stop()

    def build_ran_ahead(self) -> int | None:
        """The process id of the dbt started ahead when it ran the build to a good end (one
        that took no command is still waiting, or was ended)."""
        ahead = self._dbt_ahead
        return ahead.process.pid if ahead is not None and ahead.process.poll() == 0 else None

    def build_environment(self) -> dict[str, str]:
        """For the one `dbt build` of the run: where its launcher finds the dbt started ahead
        (empty: none, and the launcher starts dbt as usual)."""
        return self._dbt_ahead.environment() if self._dbt_ahead is not None else {}

    def wait_for_parse_ahead(self) -> None:
        """Before the build: the parse ahead's state kept for it (or nothing to wait for)."""
        if self._parse_ahead is not None:
            self._parse_ahead.finish()
            self._parse_ahead = None

