"""Read what the reports need from the published marts: read-only, set-based, in one go.

The published file may be swapped by the next run at any moment; reading everything a report
shows through one connection keeps one report consistent with one publication. Every query
is set-based (one statement per mart, grouped in DuckDB), never one query per rep or team:
the dashboard must cost the same handful of queries at 50 reps as at 1,500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from pipelines.publish import attach_published, published_table

# The alias the published file is attached under (never its own file name, so nothing
# depends on what the publisher calls the file).
PUBLISHED = "published"


def mart(table: str) -> str:
    """The SQL reference of a published mart, attached as `PUBLISHED` (the publisher's
    `published_table` knows the layout: tables at bare names since marts contract v1.1)."""
    return published_table(table, PUBLISHED)


@contextmanager
def published_connection(published_db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the published file attached read-only as `PUBLISHED`.

    UTC session time zone: instants are converted to the business time zone explicitly.
    """
    path = Path(published_db)
    if not path.exists():
        raise FileNotFoundError(f"no published marts at {path}")
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        attach_published(con, path, PUBLISHED)
        yield con
    finally:
        con.close()


@dataclass(frozen=True)
class PublishedRun:
    """The latest published run: what the header and the auditor's pack name."""

    run_id: str
    as_of: datetime | None
    published_at: datetime | None
    definitions_version: str
    settings: dict[str, Any]
    runs: pd.DataFrame  # every published run, newest first


def read_run(con: duckdb.DuckDBPyConnection) -> PublishedRun:
    """The newest run and its settings (thresholds come from here, never from a default)."""
    runs = con.execute(
        f"select run_id, as_of, published_at, definitions_version, settings, source_files "
        f"from {mart('runs')} order by published_at desc"
    ).df()
    if runs.empty:
        raise ValueError("the published file has no published run")
    latest = runs.iloc[0]
    return PublishedRun(
        run_id=str(latest.run_id),
        as_of=_instant(latest.as_of),
        published_at=_instant(latest.published_at),
        definitions_version=str(latest.definitions_version),
        settings=json.loads(latest.settings) if latest.settings else {},
        runs=runs,
    )


def read_registry(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The KPI registry, in its reading order (KPIs are only ever named through it)."""
    return con.execute(
        f"select * from {mart('kpi_registry')} order by display_order, kpi_id"
    ).df()


def _instant(value: Any) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime()


def as_local(instant: datetime | None, timezone: str) -> datetime | None:
    """A stored UTC instant in the business timezone."""
    if instant is None:
        return None
    return pd.Timestamp(instant).tz_convert(timezone).to_pydatetime()
