"""Dagster resources: where the pipeline reads and writes, and with which settings."""


from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from dagster import ConfigurableResource
from dagster_duckdb import DuckDBResource

from pipelines.settings import Settings, parse_instant


class PipelineSettings(ConfigurableResource):
    """The run's paths and `as_of`; thresholds come from `SALES_KPI_*` environment variables
    (see `pipelines/settings.py`), so the UI, the schedule and the CLI share one source."""

    extracts_dir: str
    warehouse_dir: str
    as_of: str | None = None

    def settings(self) -> Settings:
        base = Settings.from_env()
        as_of = parse_instant(self.as_of, base.business_timezone) if self.as_of else None
        return base.replace(
            extracts_dir=_path(self.extracts_dir), warehouse_dir=_path(self.warehouse_dir),
            as_of=as_of,
        )


def _path(text: str):
    from pathlib import Path

    return Path(text).expanduser().resolve()


def warehouse_resource(settings: Settings) -> DuckDBResource:
    """The raw/build DuckDB file (DuckDB allows one writer: the job runs in one process)."""
    settings.warehouse_dir.mkdir(parents=True, exist_ok=True)
    return DuckDBResource(
        database=str(settings.raw_database),
        connection_config={"memory_limit": settings.duckdb_memory_limit},
    )


@contextmanager
def warehouse_connection(resource: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection whose session prints instants in UTC (ICU loads after connecting)."""
    with resource.get_connection() as con:
        con.execute("set TimeZone = 'UTC'")
        yield con
