"""Shared helpers for the ingestion tests: tiny landing folders and one-call loading.

Every test writes its own small files under `tmp_path`; nothing reads the shared sample.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.ingest.landing import scan_landing
from pipelines.ingest.loader import EntityLoad, load_entity
from pipelines.ingest.raw_layer import ensure_raw_layer
from pipelines.settings import Settings

DELIVERY = "2026-11-24T0200"
LATER_DELIVERY = "2026-11-25T0200"

# One valid row per entity; the rows refer to each other, so a landing folder made of them
# is consistent (user u1, company c1, contact p1, deal d1, ...).
VALID: dict[str, dict[str, str]] = {
    "users": {
        "user_id": "u1", "full_name": "Ann Smit", "email": "ann@example.com", "role": "ae",
        "team": "North", "is_active": "true", "updated_at": "2026-11-01T09:00:00Z",
    },
    "companies": {
        "company_id": "c1", "name": "Acme BV", "domain": "acme.example", "industry": "Software",
        "employee_count": "40", "country": "NL", "created_at": "2026-10-01T09:00:00Z",
        "updated_at": "2026-11-01T09:00:00Z", "is_deleted": "false",
    },
    "contacts": {
        "contact_id": "p1", "company_id": "c1", "email": "piet@acme.example",
        "first_name": "Piet", "last_name": "Jansen", "job_title": "CTO", "owner_user_id": "u1",
        "created_at": "2026-10-02T09:00:00Z", "updated_at": "2026-11-01T09:00:00Z",
        "is_deleted": "false",
    },
    "lifecycle_changes": {
        "change_id": "lc1", "contact_id": "p1", "lifecycle_stage": "lead",
        "changed_at": "2026-10-02T09:00:00Z", "changed_by_user_id": "u1", "is_deleted": "false",
    },
    "marketing_events": {
        "event_id": "me1", "contact_id": "p1", "event_type": "demo_request",
        "occurred_at": "2026-10-03T09:00:00Z", "campaign": "autumn", "channel": "web",
        "is_deleted": "false",
    },
    "activities": {
        "activity_id": "a1", "activity_type": "call", "direction": "outbound",
        "owner_user_id": "u1", "contact_id": "p1", "deal_id": "d1",
        "occurred_at": "2026-10-04T09:00:00Z", "duration_seconds": "420",
        "outcome": "connected", "updated_at": "2026-10-04T09:10:00Z", "is_deleted": "false",
    },
    "deals": {
        "deal_id": "d1", "contact_id": "p1", "company_id": "c1", "owner_user_id": "u1",
        "deal_type": "new_business", "stage": "proposal", "amount": "1000.00",
        "currency": "EUR", "created_at": "2026-10-05T09:00:00Z", "closed_at": "",
        "lost_reason": "", "updated_at": "2026-10-06T09:00:00Z", "is_deleted": "false",
    },
    "deal_stage_changes": {
        "deal_id": "d1", "stage": "proposal", "changed_at": "2026-10-06T09:00:00Z",
        "changed_by_user_id": "u1", "is_deleted": "false",
    },
    "quotes": {
        "quote_id": "q1", "deal_id": "d1", "status": "sent", "amount": "1000.00",
        "currency": "EUR", "created_at": "2026-10-06T09:00:00Z",
        "sent_at": "2026-10-06T10:00:00Z", "updated_at": "2026-10-06T10:00:00Z",
        "is_deleted": "false",
    },
    "fx_rates": {"currency": "USD", "month": "2026-10", "rate_to_eur": "0.92"},
}


def row(entity: str, **values: str) -> dict[str, str]:
    """A valid row of `entity` with some values replaced."""
    return {**VALID[entity], **values}


def _columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    names: list[str] = []
    for record in rows:
        names += [name for name in record if name not in names]
    return names


def csv_text(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, delimiter: str = ","
) -> str:
    names = _columns(rows, columns)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(names)
    for record in rows:
        writer.writerow([record.get(name, "") for name in names])
    return out.getvalue()


def write_file(
    landing: Path,
    delivery: str,
    file_name: str,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    delimiter: str = ",",
    bom: bool = False,
) -> Path:
    """Write `rows` (all values as text) as `<landing>/<delivery>/<file_name>`, in the format
    its extension names: csv, csv.gz, jsonl, parquet (string columns) or xlsx."""
    path = landing / delivery / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    names = _columns(rows, columns)
    lowered = file_name.lower()
    if lowered.endswith((".csv", ".csv.gz")):
        data = (("\ufeff" if bom else "") + csv_text(rows, names, delimiter)).encode("utf-8")
        path.write_bytes(gzip.compress(data) if lowered.endswith(".gz") else data)
    elif lowered.endswith(".jsonl"):
        lines = [json.dumps({n: r[n] for n in names if n in r}) for r in rows]
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    elif lowered.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            {n: pa.array([r.get(n) for r in rows], pa.string()) for n in names}
        )
        pq.write_table(table, path)
    elif lowered.endswith(".xlsx"):
        import openpyxl

        workbook = openpyxl.Workbook()
        sheet = workbook.active
        sheet.append(names)
        for record in rows:
            sheet.append([record.get(n) for n in names])
        workbook.save(path)
    else:
        raise ValueError(f"no writer for {file_name}")
    return path


def write_delivery(
    landing: Path, delivery: str, files: Mapping[str, Sequence[Mapping[str, Any]]]
) -> None:
    """One CSV per entity: {"deals": [row, ...], ...}."""
    for entity, rows in files.items():
        write_file(landing, delivery, f"{entity}.csv", rows)


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory warehouse whose session prints instants in UTC (as the job's does)."""
    connection = duckdb.connect()
    connection.execute("set TimeZone = 'UTC'")
    ensure_raw_layer(connection)
    yield connection
    connection.close()


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


def load(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    entity: str,
    settings: Settings | None = None,
) -> EntityLoad:
    """scan_landing + ensure_raw_layer + load_entity, as the raw asset does."""
    settings = settings or Settings(extracts_dir=landing, warehouse_dir=landing.parent / "wh")
    files, _notes = scan_landing(landing)
    ensure_raw_layer(con)
    return load_entity(con, entity, files, settings, run_id="test")


def fetch(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[dict]:
    """Rows of a query as dicts."""
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def manifest(con: duckdb.DuckDBPyConnection) -> list[dict]:
    return fetch(con, "select * from raw.load_manifest order by load_id")


def quarantine(con: duckdb.DuckDBPyConnection) -> list[dict]:
    return fetch(con, "select * from raw.quarantine order by line, column_name")
