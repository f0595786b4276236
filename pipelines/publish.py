"""Publishing the marts: a fresh DuckDB file swapped in atomically, plus Parquet copies.

Readers open `<warehouse>/marts.duckdb` read-only. DuckDB lets no other process open a file
while one writes it, so the marts are never written in place: they are copied into a new
file next to it, which then replaces the published one with an atomic rename. A reader that
has the old file open keeps reading the old file; the next one opens the new one.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

MARTS_SCHEMA = "marts"


@dataclass(frozen=True)
class Published:
    database: Path
    tables: dict[str, int]  # table → rows


def published_database(warehouse_dir: Path) -> Path:
    return warehouse_dir / "marts.duckdb"


def publish_marts(
    build_database: Path, warehouse_dir: Path, memory_limit: str = "4GB"
) -> Published:
    """Copy every table of the build's `marts` schema into the published file and Parquet."""
    target = published_database(warehouse_dir)
    staging = warehouse_dir / f".marts-{uuid.uuid4().hex}.duckdb"
    parquet_dir = warehouse_dir / "parquet"
    parquet_dir.mkdir(parents=True, exist_ok=True)
    tables: dict[str, int] = {}
    try:
        with duckdb.connect(str(staging), config={"memory_limit": memory_limit}) as con:
            con.execute(f"attach '{build_database}' as build (read_only)")
            names = [
                row[0]
                for row in con.execute(
                    "select table_name from information_schema.tables "
                    "where table_catalog = 'build' and table_schema = ? order by table_name",
                    [MARTS_SCHEMA],
                ).fetchall()
            ]
            con.execute(f"create schema {MARTS_SCHEMA}")
            for name in names:
                con.execute(
                    f"create table {MARTS_SCHEMA}.{name} as "
                    f"select * from build.{MARTS_SCHEMA}.{name}"
                )
                tables[name] = con.execute(
                    f"select count(*) from {MARTS_SCHEMA}.{name}"
                ).fetchone()[0]  # type: ignore[index]
            con.execute("detach build")
            for name in names:
                tmp = parquet_dir / f".{name}-{uuid.uuid4().hex}.parquet"
                con.execute(f"copy {MARTS_SCHEMA}.{name} to '{tmp}' (format parquet)")
                os.replace(tmp, parquet_dir / f"{name}.parquet")
            con.execute("checkpoint")
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
        Path(str(staging) + ".wal").unlink(missing_ok=True)
    return Published(target, tables)
