"""What the audit compares the current build with: the last published run.

The published file is the record of what was published (pipelines/publish.py). Before the
checks run, its last run's classification is copied into the build's `audit` schema, next
to the current run's identity, so the stability check is one SQL query in the build.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from pipelines.publish import (
    attach_published,
    attached_table,
    history_copy_column,
    published_database,
)

AUDIT_SCHEMA = "audit"
# what `stage_previous_publication` stages there (the stability check's query reads them)
AUDIT_TABLES = ("current_run", "previous_run", "previous_dim_leads")


def stage_previous_publication(
    con: duckdb.DuckDBPyConnection,
    warehouse_dir: Path,
    run_id: str,
    run_settings: dict[str, Any],
) -> dict[str, Any] | None:
    """Copy the last published run's classification into `audit.*`; return that run."""
    con.execute(f"create schema if not exists {AUDIT_SCHEMA}")
    con.execute(
        f"create or replace table {AUDIT_SCHEMA}.current_run as "
        "select ? as run_id, ? as settings",
        [run_id, json.dumps(run_settings, sort_keys=True)],
    )
    published = published_database(warehouse_dir)
    previous: dict[str, Any] | None = None
    if published.exists():
        attach_published(con, published, "published")
        try:
            runs = attached_table(con, "published", "runs")
            history = attached_table(con, "published", "dim_leads_history")
            row = con.execute(
                f"select run_id, definitions_version, settings from {runs} "
                "order by published_at desc limit 1"
            ).fetchone()
            if row is not None:
                previous = {"run_id": row[0], "definitions_version": row[1], "settings": row[2]}
                con.execute(
                    f"create or replace table {AUDIT_SCHEMA}.previous_run as "
                    f"select run_id, definitions_version, settings from {runs} "
                    "where run_id = ?",
                    [row[0]],
                )
                # its classification: its own copy, or the earlier identical one it points at
                copy_of = history_copy_column(con, "published")
                con.execute(
                    f"create or replace table {AUDIT_SCHEMA}.previous_dim_leads as "
                    f"select * from {history} where run_id = "
                    f"(select {copy_of} from {runs} where run_id = ?)",
                    [row[0]],
                )
        finally:
            con.execute("detach published")
    if previous is None:
        con.execute(
            f"create or replace table {AUDIT_SCHEMA}.previous_run "
            "(run_id varchar, definitions_version varchar, settings varchar)"
        )
        con.execute(
            f"create or replace table {AUDIT_SCHEMA}.previous_dim_leads "
            "(run_id varchar, contact_id varchar, stage varchar, "
            "marketing_lead_at timestamptz, sales_lead_at timestamptz, quote_at timestamptz, "
            "customer_at timestamptz, definitions_version varchar, inputs_fingerprint varchar)"
        )
    return previous
