"""Reading one landing file into DuckDB as text, whatever its format.

Every format is turned into the same shape, a relation of VARCHAR columns named as in the file
plus the line number (header = line 1, first data row = line 2; `_line`, unless the file has
a column of that name: `line_column`), so one set of SQL rules
(`validation.py`) applies to all of them. Typed formats are cast to text on the way in, which
gives them exactly the text rules of the contract: a Parquet TIMESTAMPTZ prints with an offset
(exact), a naive TIMESTAMP without one (local wall time) and a DATE as a bare date (local
midnight).

CSV (plain or gzipped) and Parquet stay a *query* over DuckDB's reader (`open_source`), so the
loader types and checks the rows in the same pass that reads them: the text of a 3M-row file is
never stored. JSON lines and spreadsheets need a look at every row first (the keys, the cells),
so they are read into the small temporary table `landing_text`. `read_as_text` stores any
format in that table, for callers that want the text itself.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.contract import MAX_LINE_BYTES, MAX_XLSX_CELLS
from pipelines.ingest.csv_lines import (
    READ_ERRORS,
    csv_file_problem,
    decoded_lines,
    first_line,
    first_line_end,
    open_binary,
    read_error_reason,
)
from pipelines.ingest.landing import LandingFile
from pipelines.safe_text import excerpt
from pipelines.sql_text import quote_ident, sql_literal

TEXT_TABLE = "landing_text"
LINE_COLUMN = "_line"


def line_column(names: Iterable[str]) -> str:
    """The name of the line-number column beside a file's own column `names`: `_line`, or,
    when the file has a column of that name (DuckDB's names ignore case), `_line_2`,
    `_line_3`, …: a file's `_line` column stays one of its columns (an extra, kept in raw)
    and never takes the place of the line numbers ("the later line wins", the quarantine's
    lines)."""
    taken = {name.lower() for name in names}
    candidate, number = LINE_COLUMN, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{LINE_COLUMN}_{number}"
    return candidate


class UnreadableFileError(Exception):
    """The file cannot be read as its format at all (encoding, structure, corruption)."""


@dataclass(frozen=True)
class TextRelation:
    """What `read_as_text` produced: the file's own column names, in file order, and the name
    of its line-number column (`line_column`)."""

    columns: tuple[str, ...]
    rows: int
    line: str = LINE_COLUMN


@dataclass(frozen=True)
class FileSource:
    """A landing file as something to select from: `query` yields the file's columns as
    VARCHAR, named as in the file (`columns`, file order), plus the line number, named `line`
    (`line_column`). For CSV and Parquet it is a query over DuckDB's reader, so the file is
    read (and may turn out unreadable) only when a statement selects from it; `unreadable`
    then says why, naming the line where it can."""

    columns: tuple[str, ...]
    query: str
    unreadable: Callable[[duckdb.Error], str]
    line: str = LINE_COLUMN

    def relation(self) -> str:
        """The query as a parenthesised relation for a `from` clause."""
        return f"({self.query})"


# DuckDB errors that are about the run, not the file (an interrupt, the memory budget): never
# turned into "unreadable", which would reject a good file for good.
NOT_ABOUT_THE_FILE: tuple[type[duckdb.Error], ...] = (
    duckdb.InterruptException, duckdb.OutOfMemoryException,
)


def open_source(con: duckdb.DuckDBPyConnection, file: LandingFile) -> FileSource:
    """`file` as a FileSource; raise UnreadableFileError if its header or schema cannot be read.

    JSON lines and xlsx are read here into `landing_text` (the caller drops it)."""
    con.execute(f"drop table if exists {TEXT_TABLE}")
    opener = {
        "csv": _csv_source,
        "csv.gz": _csv_source,
        "parquet": _parquet_source,
        "jsonl": _stored_source(_read_jsonl),
        "xlsx": _stored_source(_read_xlsx),
    }[file.extension]
    try:
        return opener(con, file.path)
    except NOT_ABOUT_THE_FILE:
        raise
    except duckdb.Error as exc:
        raise UnreadableFileError(error_gist(str(exc), file.path)) from exc


def read_as_text(con: duckdb.DuckDBPyConnection, file: LandingFile) -> TextRelation:
    """Create the temp table `landing_text` from `file`; raise UnreadableFileError if we can't."""
    source = open_source(con, file)
    if source.query != _stored_query():
        try:
            con.execute(f"create temp table {TEXT_TABLE} as {source.query}")
        except NOT_ABOUT_THE_FILE:
            raise
        except duckdb.Error as exc:
            raise UnreadableFileError(source.unreadable(exc)) from exc
    rows = con.execute(f"select count(*) from {TEXT_TABLE}").fetchone()[0]  # type: ignore[index]
    return TextRelation(source.columns, rows, source.line)


def _stored_query() -> str:
    return f"select * from {TEXT_TABLE}"


def _stored_source(
    reader: Callable[[duckdb.DuckDBPyConnection, Path], list[str]],
) -> Callable[[duckdb.DuckDBPyConnection, Path], FileSource]:
    """A reader that fills `landing_text` itself, as an opener of a FileSource over it."""

    def opener(con: duckdb.DuckDBPyConnection, path: Path) -> FileSource:
        columns = reader(con, path)
        return FileSource(
            tuple(columns), _stored_query(), lambda exc: error_gist(str(exc), path),
            line_column(columns),
        )

    return opener


# Lines of a database error that quote the file's content: never passed on (a file reached by
# mistake, or a field holding a secret, must not travel into logs and alerts).
_CONTENT_LINES = ("original line", "line:", "value:")
MESSAGE_CHARACTERS = 200


def error_gist(message: str, path: Path, keep: int = 3) -> str:
    """The gist of a DuckDB error about the file at `path`, bounded and escaped, without the
    lines that quote data, and without the file's path (messages name the file by its label:
    `<delivery>/<file>`). A line that quotes the file ("Original Line: …") may run over several
    lines (a quoted value with line breaks in it): what follows it is left out up to DuckDB's
    next words on what is wrong (DUCKDB_REASONS), or to the paragraph's end; DuckDB's advice
    ("Possible fixes") and its reader's settings are left out too."""
    lines: list[str] = []
    for paragraph in re.split(r"\n\s*\n", without_path(message, path).strip()):
        quoting = False
        for line in (line.strip() for line in paragraph.splitlines()):
            if line.lower().startswith(_CONTENT_LINES):
                quoting = True  # it, and what of the file follows it
            elif quoting and not DUCKDB_REASONS.match(line):
                continue
            elif line.lower().startswith(_NOT_THE_GIST):
                break
            elif line:
                quoting = False
                lines.append(line)
    return excerpt(" ".join(lines[:keep]), MESSAGE_CHARACTERS)


def without_path(message: str, path: Path) -> str:
    """`message` with the file's path said as "the file" (a library's message names it)."""
    for named in (f' from {path}', f'file "{path}"', f'"{path}"', f"'{path}'", str(path)):
        message = message.replace(named, "" if named.startswith(" from") else "the file")
    return message


# How DuckDB's CSV reader begins to say what is wrong, after quoting the line it refused
DUCKDB_REASONS = re.compile(
    r"(Expected Number of Columns|Value with unterminated quote|Maximum line size|"
    r"Invalid unicode|Could not convert|Error when converting|Wrong NewLine)", re.IGNORECASE)
# Paragraphs of DuckDB's errors that are advice or settings, not what went wrong
_NOT_THE_GIST = ("possible fixes", "* ", "file = ", "delimiter = ")


# --- CSV -----------------------------------------------------------------------------------


def _csv_header(path: Path) -> tuple[list[str], str]:
    """The header's column names and the delimiter (`,` or `;`), detected on the header.

    Empty names at the end of the header (a trailing delimiter, as spreadsheet exports
    write) become `_unnamed_<n>` columns: kept in raw with the extras, never dropped.
    """
    try:
        with open_binary(path) as handle:
            first_bytes = handle.readline(MAX_LINE_BYTES + 1)
    except READ_ERRORS as exc:
        raise UnreadableFileError(f"cannot read the header row: {read_error_reason(exc)}") from exc
    # a line ends at CR, LF or CR LF (a file of CR-ended lines is read as lines, as DuckDB
    # reads it): the header is what comes before the first of them
    first_bytes = first_line(first_bytes)
    if len(first_bytes) > MAX_LINE_BYTES:
        raise UnreadableFileError(
            f"line 1: the header row is longer than the line limit ({MAX_LINE_BYTES:,} bytes)"
        )
    try:
        first = first_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"line 1: not UTF-8 encoded ({exc.reason})") from exc
    if not first_bytes:
        raise UnreadableFileError("no header row (the file is empty)")
    if not first.strip():
        raise UnreadableFileError("line 1: the header row is blank (the header must come first)")
    delimiter = ";" if first.count(";") > first.count(",") else ","
    try:
        names = [name.strip() for name in next(csv.reader([first], delimiter=delimiter))]
    except csv.Error as exc:  # e.g. a bare carriage return inside the header row
        raise UnreadableFileError(
            f"line 1: the header row is not valid CSV ({excerpt(exc, MESSAGE_CHARACTERS)})"
        ) from exc
    for position, name in enumerate(names, start=1):
        if not name:
            if all(not later for later in names[position - 1:]):
                names[position - 1] = f"_unnamed_{position}"
            else:
                raise UnreadableFileError(f"line 1: column {position} of the header has no name")
    return names, delimiter


def _csv_source(_con: duckdb.DuckDBPyConnection, path: Path) -> FileSource:
    names, delimiter = _csv_header(path)
    if _has_a_line_beyond_the_limit(path):
        # DuckDB's reader returns the other rows and no error when a line larger than its
        # buffer (32 MB) is the last record (blank lines after it included): refused here,
        # naming the line, before DuckDB reads the file
        raise UnreadableFileError(
            _csv_structure_problem(path, delimiter, names)
            or f"a line is longer than the line limit ({MAX_LINE_BYTES:,} bytes)"
        )
    # Unique positional names; the file's own names are returned for matching.
    columns = ", ".join(f"{sql_literal(f'c{i}')}: 'VARCHAR'" for i in range(len(names)))
    select = ", ".join(f"c{i} as {quote_ident(name)}" for i, name in enumerate(names))
    line = line_column(names)
    # DuckDB's own limit leaves room for a line's ending (it counted a CR LF line of exactly
    # the limit as over it): the limit itself is held above, on every physical line
    query = f"""
            select {select}, cast(ordinality + 1 as bigint) as {quote_ident(line)}
            from read_csv(
                {sql_literal(str(path))}, header = true, auto_detect = false,
                delim = {sql_literal(delimiter)}, quote = '"', escape = '"',
                columns = {{{columns}}}, strict_mode = true,
                max_line_size = {MAX_LINE_BYTES + 2}
            ) with ordinality
            """

    def unreadable(exc: duckdb.Error) -> str:
        """DuckDB refused the file: our own reader names the line and the column."""
        return _csv_structure_problem(path, delimiter, names) or error_gist(str(exc), path)

    return FileSource(tuple(names), query, unreadable, line)


def _has_a_line_beyond_the_limit(path: Path) -> bool:
    """Whether a physical line of the file (CR, LF or CRLF ended, without its ending) is
    longer than MAX_LINE_BYTES. One streaming pass, a chunk of the limit's size at a time: a
    line inside one chunk is shorter than the limit by construction, so only the runs that
    cross chunks are counted (C-speed searches; a compressed file is decompressed once)."""
    run = 0  # bytes since the last line ending
    try:
        with open_binary(path) as handle:
            while chunk := handle.read(MAX_LINE_BYTES):
                first = first_line_end(chunk)
                if first < 0:
                    run += len(chunk)
                else:
                    if run + first > MAX_LINE_BYTES:
                        return True
                    run = len(chunk) - max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) - 1
                if run > MAX_LINE_BYTES:
                    return True
    except READ_ERRORS as exc:  # a truncated or damaged .gz
        raise UnreadableFileError(f"not a readable CSV file: {read_error_reason(exc)}") from exc
    return False


def _csv_structure_problem(path: Path, delimiter: str, names: list[str]) -> str | None:
    """Explain a CSV that DuckDB refused (pipelines/ingest/csv_lines.py): the first line that
    is not UTF-8, that is longer than the contract's line limit (naming the column of its
    largest value), or the first row a strict reader refuses."""
    width = len(names)

    def lines() -> Iterator[str]:
        return decoded_lines(path, "utf-8", lambda number, exc: (
            f"line {number}: not UTF-8 encoded ({exc.reason} at byte {exc.start + 1} of the "
            "line)"))

    def too_long(start: int, record: list[str]) -> str | None:
        size = sum(len(value.encode("utf-8")) for value in record) + max(
            len(record) - 1, 0)  # the values and the delimiters between them
        if size <= MAX_LINE_BYTES:
            return None
        position = max(range(len(record)), key=lambda i: len(record[i]))
        column = names[position] if position < width else f"#{position + 1}"
        return (
            f"line {start}, column {excerpt(column)}: a value of {len(record[position]):,} "
            f"characters makes the line longer than the line limit ({MAX_LINE_BYTES:,} bytes)"
        )

    return csv_file_problem(lines, delimiter, width, record_problem=too_long,
                            unreadable="not a readable CSV file: ")


# --- Parquet -------------------------------------------------------------------------------


def _parquet_source(_con: duckdb.DuckDBPyConnection, path: Path) -> FileSource:
    # The names as the file has them: DuckDB renames a repeated name (`role`, `ROLE` →
    # `ROLE_1`), which would hide the repetition that a CSV header is rejected for
    # (match_columns says so). The file's schema is its metadata: no row is read.
    try:
        names = pq.read_schema(path).names
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableFileError(
            f"not a readable Parquet file: {excerpt(exc, MESSAGE_CHARACTERS)}"
        ) from exc
    # Rows are numbered by DuckDB's `file_row_number`, unless the file has a column of that
    # name (an extra column like any other): then by the reader's ordinality, in file order.
    # Either way the reader's columns are renamed by position (c0, c1, …, and _n for the
    # number), so no name of the file can stand in for the row number.
    # (A reader whose columns are not the schema's would fail the file at its read, naming
    # DuckDB's error, as any unreadable file.)
    numbered = "file_row_number" not in {name.lower() for name in names}
    reader = f"read_parquet({sql_literal(str(path))}{', file_row_number = true' * numbered})"
    positions = ", ".join(f"c{i}" for i in range(len(names)))
    source = f"{reader}{'' if numbered else ' with ordinality'} as t({positions}, _n)"
    select = ", ".join(
        f"cast(c{i} as varchar) as {quote_ident(name)}" for i, name in enumerate(names)
    )
    line = line_column(names)
    first = 2 if numbered else 1  # file_row_number counts from 0, ordinality from 1
    query = f"select {select}, cast(_n + {first} as bigint) as {quote_ident(line)} from {source}"
    return FileSource(tuple(names), query, lambda exc: error_gist(str(exc), path), line)


# --- JSON lines ----------------------------------------------------------------------------


# DuckDB's words for a line that is no JSON; its line is the loader's (blank lines not
# counted, the first object line 2), its byte counts from 1
_MALFORMED_JSON = re.compile(r"Malformed JSON in file .*, at byte (\d+) in line (\d+): ([^.\n]+)")


def _read_jsonl(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    try:
        con.execute(
            "create temp table landing_json as "
            "select json, cast(ordinality + 1 as bigint) as _line "
            f"from read_ndjson_objects({sql_literal(str(path))}) with ordinality"
        )
    except duckdb.InvalidInputException as exc:
        if malformed := _MALFORMED_JSON.search(str(exc)):
            byte, line, reason = malformed.groups()
            raise UnreadableFileError(
                f"line {line}: not valid JSON ({excerpt(reason, MESSAGE_CHARACTERS)} at byte "
                f"{byte} of the line)"
            ) from exc
        raise
    try:
        not_objects = con.execute(
            "select min(_line) from landing_json where json_type(json) <> 'OBJECT'"
        ).fetchone()[0]  # type: ignore[index]
        if not_objects is not None:
            raise UnreadableFileError(f"line {not_objects}: not a JSON object")
        # A key twice in one object has no one value (JSON leaves it open; DuckDB takes the
        # first), and a key without a name names no column: the file is refused, named.
        repeated, unnamed = con.execute(
            "select min(_line) filter (where len(json_keys(json)) "
            "<> len(list_distinct(json_keys(json)))), "
            "min(_line) filter (where list_contains(json_keys(json), '')) from landing_json"
        ).fetchone()  # type: ignore[misc]
        if repeated is not None:
            raise UnreadableFileError(f"line {repeated}: a key appears twice in one object")
        if unnamed is not None:
            raise UnreadableFileError(f"line {unnamed}: a key with an empty name")
        keys = [
            row[0]
            for row in con.execute(
                "select key from (select unnest(json_keys(json)) as key, _line "
                "from landing_json) group by key order by min(_line), key"
            ).fetchall()
        ]
        select = ", ".join(
            f"json_extract_string(json, {sql_literal('$.' + _json_path_key(k))}) "
            f"as {quote_ident(k)}"
            for k in keys
        )
        con.execute(
            f"create temp table {TEXT_TABLE} as select {select}{', ' if keys else ''}"
            f"_line as {quote_ident(line_column(keys))} from landing_json"
        )
    finally:
        con.execute("drop table if exists landing_json")
    return keys


def _json_path_key(key: str) -> str:
    return '"' + key.replace('"', '\\"') + '"'


# --- Excel ---------------------------------------------------------------------------------


def _read_xlsx(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    """The first sheet, first row = header. DuckDB reads no xlsx without a downloaded
    extension, so openpyxl reads the cells (spreadsheets are small by nature) and the
    result is handed to DuckDB as one Arrow table."""
    import openpyxl

    try:
        # the cells' values (a formula's saved result), and beside them what was written in
        # them: a formula without a saved result has no value to load
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        written = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many kinds for a broken workbook
        raise UnreadableFileError(_not_a_workbook(exc, path)) from exc
    try:
        sheets = [book.worksheets[0] for book in (workbook, written)]
        for sheet in sheets:
            # read to the last row the sheet holds, not the size it records (`<dimension
            # ref>`): some exporters write it wrong, and the read-only mode stops there
            sheet.reset_dimensions()
        rows = sheets[0].iter_rows()
        formulas = sheets[1].iter_rows(values_only=True)
        next(formulas, None)
        header = next(rows, None)
        if header is None:
            raise UnreadableFileError("no header row (the first sheet is empty)")
        names = [str(c.value).strip() if c.value is not None else "" for c in header]
        while names and names[-1] == "":
            names.pop()
        if "" in names:
            raise UnreadableFileError("the header row has an empty column name")
        data: list[list[str | None]] = [[] for _ in names]
        lines: list[int] = []
        cells_read = len(header)
        for number, cells in enumerate(rows, start=2):
            cells_read += len(cells)
            if cells_read > MAX_XLSX_CELLS:
                raise UnreadableFileError(
                    f"line {number}: the first sheet holds more than {MAX_XLSX_CELLS:,} cells "
                    "(each row counted to its last cell, empty ones included): export it as "
                    "CSV, or clear the cells right of the data"
                )
            _refuse_formulas_without_values(number, names, cells, next(formulas, ()))
            row = [cell.value for cell in cells]
            values = [_cell_text(v) for v in row[: len(names)]]
            values += [None] * (len(names) - len(values))
            extra = [v for v in row[len(names):] if v is not None and str(v).strip()]
            if extra:
                raise UnreadableFileError(
                    f"line {number}: a value outside the header's {len(names)} columns"
                )
            if all(v is None or v.strip() == "" for v in values):
                continue  # an empty spreadsheet row holds nothing to load or lose
            for column, value in zip(data, values, strict=True):
                column.append(value)
            lines.append(number)
    except UnreadableFileError:
        raise
    except Exception as exc:  # a sheet is parsed as it is read: its damage shows here
        raise UnreadableFileError(_not_a_workbook(exc, path)) from exc
    finally:
        workbook.close()
        written.close()
    arrays = {f"c{i}": pa.array(column, pa.string()) for i, column in enumerate(data)}
    arrays["_line"] = pa.array(lines, pa.int64())
    table = pa.table(arrays)
    con.register("landing_arrow", table)
    try:
        select = ", ".join(f"c{i} as {quote_ident(name)}" for i, name in enumerate(names))
        con.execute(
            f"create temp table {TEXT_TABLE} as select {select}, "
            f"_line as {quote_ident(line_column(names))} from landing_arrow"
        )
    finally:
        con.unregister("landing_arrow")
    return names


# What openpyxl reads as a cell's saved type when that is text: a formula whose saved result
# is the empty text (`t="str"` and an empty `<v>`, as spreadsheet apps write `=IF(…, "", …)`)
# has a value, the empty one.
_TEXT_TYPES = ("s", "str", "inlineStr")


def _not_a_workbook(exc: Exception, path: Path) -> str:
    """openpyxl's (or its zip and XML readers') reason, its first line, without the path."""
    reason = (without_path(str(exc), path).strip().splitlines() or [type(exc).__name__])[0]
    return f"not a readable xlsx workbook: {excerpt(reason, MESSAGE_CHARACTERS)}"


def _refuse_formulas_without_values(
    number: int, names: list[str], cells: tuple[Any, ...], written: tuple[object, ...]
) -> None:
    """A cell that holds a formula (plain, array or data table) and no saved result (a
    workbook written by a library and never opened in a spreadsheet app) is not an empty
    value: the file is refused, naming the cell, inside the header's columns or beyond."""
    from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

    for position, (cell, text) in enumerate(zip(cells, written, strict=False)):
        formula = isinstance(text, ArrayFormula | DataTableFormula) or (
            isinstance(text, str) and text.startswith("=")
        )
        if formula and cell.value is None and cell.data_type not in _TEXT_TYPES:
            column = names[position] if position < len(names) else f"#{position + 1}"
            raise UnreadableFileError(
                f"line {number}, column {excerpt(column)}: a formula without a saved "
                "value (open and save the workbook in a spreadsheet app, or export its values)"
            )


def _cell_text(value: object) -> str | None:
    """A cell as the text the contract's rules expect (naive datetimes stay naive = local)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
