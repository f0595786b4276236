"""The raw layer's tables: one per entity (every version of every row, with its file and
line), the load manifest, the quarantine and the operator's list of skipped files."""

from __future__ import annotations

import duckdb

from pipelines.contract import ENTITIES, Entity
from pipelines.ingest.validation import sql_type
from pipelines.sql_text import quote_ident

RAW_SCHEMA = "raw"

LINEAGE_COLUMNS = (
    ("_load_id", "bigint not null"),
    ("_delivery", "varchar not null"),
    ("_file", "varchar not null"),
    ("_line", "bigint not null"),
    ("_extra_columns", "varchar"),
    ("_loaded_at", "timestamptz not null"),
)

MANIFEST_DDL = f"""
create table if not exists {RAW_SCHEMA}.load_manifest (
    load_id bigint primary key,
    run_id varchar,
    entity varchar not null,
    delivery varchar not null,
    file_name varchar not null,
    file_path varchar not null,
    file_format varchar not null,
    content_hash varchar not null,
    file_bytes bigint not null,
    status varchar not null,  -- loaded | duplicate | rejected | skipped
    rows_read bigint,
    rows_loaded bigint not null,
    rows_quarantined bigint not null,
    message varchar,
    loaded_at timestamptz not null
)
"""

QUARANTINE_DDL = f"""
create table if not exists {RAW_SCHEMA}.quarantine (
    load_id bigint not null,
    entity varchar not null,
    delivery varchar not null,
    file_name varchar not null,
    line bigint not null,
    column_name varchar not null,
    reason varchar not null,
    record varchar,
    quarantined_at timestamptz not null
)
"""

SKIPPED_DDL = f"""
create table if not exists {RAW_SCHEMA}.skipped_files (
    delivery varchar not null,
    file_name varchar not null,
    content_hash varchar not null,
    skipped_by varchar not null,
    reason varchar,
    skipped_at timestamptz not null
)
"""


def entity_table(entity: Entity) -> str:
    return f"{RAW_SCHEMA}.{entity.name}"


def entity_ddl(entity: Entity) -> str:
    columns = [f"{quote_ident(c.name)} {sql_type(c)}" for c in entity.columns]
    columns += [f"{name} {kind}" for name, kind in LINEAGE_COLUMNS]
    return f"create table if not exists {entity_table(entity)} (\n    " + ",\n    ".join(
        columns
    ) + "\n)"


def ensure_raw_layer(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema and its tables if they do not exist yet (idempotent)."""
    con.execute(f"create schema if not exists {RAW_SCHEMA}")
    con.execute(f"create sequence if not exists {RAW_SCHEMA}.load_id_seq start 1")
    for ddl in (MANIFEST_DDL, QUARANTINE_DDL, SKIPPED_DDL):
        con.execute(ddl)
    for entity in ENTITIES.values():
        con.execute(entity_ddl(entity))
    from pipelines.targets import OVERRIDES_DDL

    con.execute(OVERRIDES_DDL)
