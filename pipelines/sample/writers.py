"""Turning record versions into landing files: CSV (plain or gzip), Parquet, JSON lines, XLSX.

Every file is byte-stable for the same input (content hashes matter to the loader): gzip
headers carry no time, the xlsx zip entries and document properties carry a fixed date, and
nothing depends on the wall clock or the machine's time zone. Large files are written in
chunks so memory stays flat at large scales.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.sample.frames import ENUMS, EXTRA_COLUMNS, ID_FORMAT, SCHEMA, Col, Versions
from pipelines.sample.timeutil import (
    NULL_TS,
    TsStyle,
    format_ids,
    format_month,
    format_ts,
    utc_offset,
)

Format = Literal["csv", "csv.gz", "parquet", "jsonl", "xlsx"]
CHUNK_ROWS = 500_000
FIXED_XLSX_TIME = dt.datetime(2026, 1, 1)


@dataclass(frozen=True)
class FileSpec:
    """How one entity is written in one delivery (the mix exercises every reader path)."""

    entity: str
    fmt: Format
    ts: TsStyle = "Z"
    ts_columns: tuple[tuple[str, TsStyle], ...] = ()
    bools: tuple[str, str] | None = ("false", "true")  # (false, true) text; None = native
    delimiter: str = ","
    bom: bool = False
    crlf: bool = False
    upper_header: bool = False
    order: tuple[str, ...] = ()  # these columns first, in this order; the rest after
    drop: tuple[str, ...] = ()  # optional columns left out of the file
    extras: bool = False  # include the CRM's extra columns (e.g. deals.deal_name)
    eur_blank: bool = False  # EUR written as an empty currency (empty means EUR)
    naive_parquet: bool = False  # Parquet timestamps as naive local wall time

    @property
    def filename(self) -> str:
        return f"{self.entity}.{self.fmt}"

    def columns(self) -> list[Col]:
        cols = list(SCHEMA[self.entity])
        if self.extras:
            cols += list(EXTRA_COLUMNS.get(self.entity, ()))
        cols = [c for c in cols if c.name not in self.drop]
        first = [next(c for c in cols if c.name == name) for name in self.order]
        return first + [c for c in cols if c.name not in self.order]

    def ts_style(self, column: str) -> TsStyle:
        return dict(self.ts_columns).get(column, self.ts)


def _decimal(cents: np.ndarray) -> pa.Array:
    """decimal128(14, 2) from integer cents (negative = null)."""
    cents = np.asarray(cents, dtype=np.int64)
    valid = cents >= 0
    data = np.ascontiguousarray(np.stack([cents, cents >> 63], axis=1))
    bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.decimal128(14, 2),
        len(cents),
        [bitmap, pa.py_buffer(data)],
        null_count=int((~valid).sum()),
    )


def _enum(values: np.ndarray, enum: str) -> pa.Array:
    codes = np.asarray(values, dtype=np.int64)
    return pa.array(list(ENUMS[enum]), pa.string()).take(pa.array(codes, mask=codes < 0))


def _id(values: np.ndarray, entity: str, width: dict[str, int]) -> pa.Array:
    return format_ids(values, ID_FORMAT[entity][0], width[entity])


def render(
    spec: FileSpec, rows: dict[str, Any], width: dict[str, int], typed: bool
) -> dict[str, pa.Array]:
    """Column arrays for a file: text for text formats; typed (Parquet) or JSON-friendly
    (native booleans and numbers) otherwise."""
    out: dict[str, pa.Array] = {}
    for col in spec.columns():
        v = rows[col.name]
        name = col.name.upper() if spec.upper_header else col.name
        if col.kind == "id":
            arr = _id(v, col.ref, width)
        elif col.kind == "ts":
            arr = _timestamps(
                v,
                spec.ts_style(col.name),
                typed and spec.fmt == "parquet",
                spec.naive_parquet,
            )
        elif col.kind == "enum":
            arr = _enum(v, col.ref)
        elif col.kind == "int":
            ints = np.asarray(v, dtype=np.int64)
            arr = pa.array(ints, mask=ints < 0, type=pa.int64())
        elif col.kind == "money":
            arr = _decimal(v)
            if spec.fmt in ("jsonl", "xlsx"):
                arr = arr.cast(pa.float64())
        elif col.kind == "bool":
            flags = np.asarray(v, dtype=bool)
            if spec.bools is None or typed:
                arr = pa.array(flags, pa.bool_())
            else:
                arr = pa.array(list(spec.bools), pa.string()).take(pa.array(flags.astype(np.int64)))
                arr = pc.if_else(pc.equal(arr, ""), pa.nulls(len(arr), pa.string()), arr)
        elif col.kind == "month":
            arr = format_month(v)
        elif col.kind == "rate":
            arr = pa.array(np.asarray(v, dtype=np.float64))
        else:
            arr = v
            if spec.eur_blank and col.name == "currency":
                arr = pc.if_else(pc.equal(arr, "EUR"), pa.nulls(len(arr), pa.string()), arr)
        out[name] = arr
    return out


def _timestamps(v: np.ndarray, style: TsStyle, parquet: bool, naive: bool) -> pa.Array:
    """Timestamps as text, or typed for Parquet."""
    if not parquet:
        return format_ts(v, style)
    v = np.asarray(v, dtype=np.int64)
    mask = v == NULL_TS
    safe = np.where(mask, 0, v)
    if style == "date":
        days = (safe + utc_offset(safe)) // 86_400
        return pa.array(days.astype(np.int32), mask=mask, type=pa.date32())
    if naive:
        local = (safe + utc_offset(safe)) * 1_000_000
        return pa.array(local, mask=mask, type=pa.timestamp("us"))
    return pa.array(safe * 1_000_000, mask=mask, type=pa.timestamp("us", tz="UTC"))


# --- CSV ------------------------------------------------------------------------------------


def _csv_field(arr: pa.Array, delimiter: str, free_text: bool) -> pa.Array:
    """Text of one column: null → empty; free text quoted (RFC 4180) where a value needs it
    (ids, timestamps, enumerations and numbers never do)."""
    text = arr if pa.types.is_string(arr.type) else pc.cast(arr, pa.string())
    text = pc.fill_null(text, "")
    if not free_text:
        return text
    pattern = "[" + ("\\;" if delimiter == ";" else ",") + '"\\r\\n]'
    needs = pc.match_substring_regex(text, pattern)
    if pc.any(needs).as_py():
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        text = pc.if_else(needs, quoted, text)
    return text


def csv_parts(
    columns: dict[str, pa.Array],
    delimiter: str,
    newline: str,
    header: bool,
    free_text: set[str] | None = None,
) -> list[bytes | memoryview]:
    """CSV text of the columns, built column-wise (no per-row Python): header, then body.
    `free_text` names the columns whose values may need quoting (None: all of them)."""
    parts: list[bytes | memoryview] = []
    if header:
        parts.append((delimiter.join(columns) + newline).encode())
    fields = [
        _csv_field(a, delimiter, free_text is None or name in free_text)
        for name, a in columns.items()
    ]
    if not fields or len(fields[0]) == 0:
        return parts
    lines = pc.binary_join_element_wise(*fields, delimiter)
    lines = pc.binary_join_element_wise(lines, newline, "")
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    offsets = offsets[lines.offset : lines.offset + len(lines) + 1]
    parts.append(memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]])
    return parts


# --- Writing one file ----------------------------------------------------------------------


def write_file(
    path: Path, spec: FileSpec, versions: Versions, positions: np.ndarray, width: dict[str, int]
) -> int:
    """Write the rows at `positions` of an entity to `path`; return the row count."""
    chunks = [positions[i : i + CHUNK_ROWS] for i in range(0, len(positions), CHUNK_ROWS)] or [
        positions[:0]
    ]
    if spec.fmt in ("csv", "csv.gz"):
        _write_csv(path, spec, versions, chunks, width)
    elif spec.fmt == "parquet":
        _write_parquet(path, spec, versions, chunks, width)
    elif spec.fmt == "jsonl":
        _write_jsonl(path, spec, versions, positions, width)
    else:
        _write_xlsx(path, spec, versions, positions, width)
    return len(positions)


def _write_csv(
    path: Path, spec: FileSpec, versions: Versions, chunks: list[np.ndarray], width: dict[str, int]
) -> None:
    """CSV in chunks; compressing and writing one chunk overlaps rendering the next."""
    newline = "\r\n" if spec.crlf else "\n"
    gz = zlib.compressobj(1, zlib.DEFLATED, 31) if spec.fmt == "csv.gz" else None
    free_text = {
        c.name.upper() if spec.upper_header else c.name for c in spec.columns() if c.kind == "str"
    }
    with path.open("wb") as fh, ThreadPoolExecutor(max_workers=1) as pool:

        def put(parts: list[bytes | memoryview]) -> None:
            for part in parts:
                fh.write(gz.compress(part) if gz is not None else part)

        pending = pool.submit(put, ["\ufeff".encode()] if spec.bom else [])
        for i, chunk in enumerate(chunks):
            cols = render(spec, versions.rows(chunk), width, typed=False)
            parts = csv_parts(cols, spec.delimiter, newline, i == 0, free_text)
            pending.result()
            pending = pool.submit(put, parts)
        pending.result()
        if gz is not None:
            fh.write(gz.flush())


def _write_parquet(
    path: Path, spec: FileSpec, versions: Versions, chunks: list[np.ndarray], width: dict[str, int]
) -> None:
    """Typed Parquet (TIMESTAMPTZ, or naive local TIMESTAMP; DATE; DECIMAL; BOOLEAN)."""
    writer: pq.ParquetWriter | None = None
    try:
        for chunk in chunks:
            table = pa.table(render(spec, versions.rows(chunk), width, typed=True))
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="snappy")
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def _py_rows(
    spec: FileSpec, versions: Versions, positions: np.ndarray, width: dict[str, int]
) -> tuple[list[str], list[dict[str, object]]]:
    cols = render(spec, versions.rows(positions), width, typed=False)
    return list(cols), pa.table(cols).to_pylist()


def _write_jsonl(
    path: Path, spec: FileSpec, versions: Versions, positions: np.ndarray, width: dict[str, int]
) -> None:
    """One JSON object per line: timestamps as ISO text, native booleans and numbers."""
    _, rows = _py_rows(spec, versions, positions, width)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_xlsx(
    path: Path, spec: FileSpec, versions: Versions, positions: np.ndarray, width: dict[str, int]
) -> None:
    """A small workbook, first sheet: header then rows (timestamps as ISO text, booleans as
    Excel booleans). Zip entry dates and document properties are fixed for byte stability."""
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    names, rows = _py_rows(spec, versions, positions, width)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(spec.entity)
    ws.append(names)
    for row in rows:
        ws.append([row[n] for n in names])
    wb.properties.creator = "sales-kpi-pipeline sample"
    wb.properties.created = FIXED_XLSX_TIME
    wb.properties.modified = FIXED_XLSX_TIME
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).save()
    stable = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(stable, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            dst.writestr(fixed, src.read(info.filename))
    path.write_bytes(stable.getvalue())
