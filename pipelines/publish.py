"""Publishing the marts (write–audit–publish): a fresh DuckDB file swapped in atomically,
plus Parquet copies, plus the history of what was published.

Readers open `<warehouse>/marts.duckdb` read-only. DuckDB lets no other process open a file
while one writes it, so the published file is never written in place: a new file is built
next to it and then replaces it with an atomic rename. A reader that has the old file open
keeps reading the old file; the next one opens the new one. The Parquet copies are written to
a new folder per run and `<warehouse>/parquet` is a symbolic link swapped the same way.

The published file is also the record of what was published: each publication carries over
the previous file's `runs`, `dim_leads_history` and `kpi_scorecard_history` and appends its
own rows, so what was reported when, and under which definitions version, stays visible.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

MARTS_SCHEMA = "marts"
# The published marts (contract) and the history tables kept across publications.
PUBLISHED_TABLES = (
    "dim_reps", "dim_leads", "fct_funnel_stages", "fct_activities", "fct_deals",
    "kpi_values", "kpi_baselines", "kpi_scorecard", "kpi_registry", "label_consistency",
    "fct_marketing_event_judgements",
)
HISTORY_COLUMNS = {
    "dim_leads_history": (
        "dim_leads",
        "contact_id, team, stage, lead_origin, marketing_lead_at, sales_lead_at, quote_at, "
        "customer_at, qualifying_event_id, sales_lead_deal_id, crm_label, crm_label_consistent, "
        "definitions_version, inputs_fingerprint",
    ),
    "kpi_scorecard_history": (
        "kpi_scorecard",
        "kpi_id, kpi_kind, scope, scope_id, period_start, actual, target, target_source, "
        "attainment, is_complete, status",
    ),
}
PARQUET_RUNS_KEPT = 3


@dataclass(frozen=True)
class RunRecord:
    """One published run, as the `runs` table records it."""

    run_id: str
    as_of: datetime | None
    definitions_version: str
    settings: dict[str, Any]
    source_files: int


@dataclass(frozen=True)
class Published:
    database: Path
    tables: dict[str, int]  # table → rows


def published_database(warehouse_dir: Path) -> Path:
    return warehouse_dir / "marts.duckdb"


def publish_marts(
    build_database: Path,
    warehouse_dir: Path,
    run: RunRecord,
    memory_limit: str = "4GB",
) -> Published:
    """Publish the build's marts with the history carried over; atomic for readers."""
    target = published_database(warehouse_dir)
    staging = warehouse_dir / f".marts-{uuid.uuid4().hex}.duckdb"
    tables: dict[str, int] = {}
    try:
        with duckdb.connect(str(staging), config={"memory_limit": memory_limit}) as con:
            con.execute("set TimeZone = 'UTC'")
            con.execute(f"attach '{build_database}' as build (read_only)")
            previous = target.exists()
            if previous:
                con.execute(f"attach '{target}' as previous (read_only)")
            con.execute(f"create schema {MARTS_SCHEMA}")
            for name in PUBLISHED_TABLES:
                con.execute(
                    f"create table {MARTS_SCHEMA}.{name} as "
                    f"select * from build.{MARTS_SCHEMA}.{name}"
                )
            _carry_history(con, run, previous)
            for name in (*PUBLISHED_TABLES, "runs", *HISTORY_COLUMNS):
                tables[name] = con.execute(
                    f"select count(*) from {MARTS_SCHEMA}.{name}"
                ).fetchone()[0]  # type: ignore[index]
            con.execute("detach build")
            if previous:
                con.execute("detach previous")
            parquet_dir = _write_parquet(con, warehouse_dir, run.run_id)
            con.execute("checkpoint")
        os.replace(staging, target)
        _swap_link(warehouse_dir / "parquet", parquet_dir)
        _prune_parquet_runs(warehouse_dir, keep=parquet_dir)
    finally:
        staging.unlink(missing_ok=True)
        Path(str(staging) + ".wal").unlink(missing_ok=True)
    return Published(target, tables)


def _carry_history(con: duckdb.DuckDBPyConnection, run: RunRecord, previous: bool) -> None:
    con.execute(
        f"""
        create table {MARTS_SCHEMA}.runs (
            run_id varchar not null, as_of timestamptz, published_at timestamptz not null,
            definitions_version varchar not null, settings varchar not null,
            source_files bigint not null
        )
        """
    )
    if previous:
        con.execute(f"insert into {MARTS_SCHEMA}.runs select * from previous.{MARTS_SCHEMA}.runs")
    con.execute(
        f"insert into {MARTS_SCHEMA}.runs values (?, ?, ?, ?, ?, ?)",
        [
            run.run_id, run.as_of, datetime.now(UTC), run.definitions_version,
            json.dumps(run.settings, sort_keys=True), run.source_files,
        ],
    )
    for history, (source, columns) in HISTORY_COLUMNS.items():
        current = f"select ? as run_id, {columns} from build.{MARTS_SCHEMA}.{source}"
        if previous:
            con.execute(
                f"create table {MARTS_SCHEMA}.{history} as "
                f"select * from previous.{MARTS_SCHEMA}.{history} union all {current}",
                [run.run_id],
            )
        else:
            con.execute(
                f"create table {MARTS_SCHEMA}.{history} as {current}", [run.run_id]
            )


def _write_parquet(con: duckdb.DuckDBPyConnection, warehouse_dir: Path, run_id: str) -> Path:
    folder = warehouse_dir / "parquet-runs" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*PUBLISHED_TABLES, "runs", *HISTORY_COLUMNS):
        con.execute(
            f"copy {MARTS_SCHEMA}.{name} to '{folder / (name + '.parquet')}' (format parquet)"
        )
    return folder


def _swap_link(link: Path, target: Path) -> None:
    """Point `link` at `target` atomically (a real folder left by an older layout is moved)."""
    if link.exists() and not link.is_symlink():
        shutil.rmtree(link)
    temporary = link.with_name(f".{link.name}-{uuid.uuid4().hex}")
    temporary.symlink_to(target.relative_to(link.parent), target_is_directory=True)
    os.replace(temporary, link)


def _prune_parquet_runs(warehouse_dir: Path, keep: Path) -> None:
    """Keep the last few runs' Parquet folders (a reader may still be reading one)."""
    runs = sorted(
        (p for p in (warehouse_dir / "parquet-runs").iterdir() if p.is_dir()),
        key=lambda p: p.stat().st_mtime,
    )
    for old in runs[:-PARQUET_RUNS_KEPT]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
